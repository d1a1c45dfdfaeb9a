"""Stage ``tables``: the paper's Table 2 (scenario I) from the per-model metrics JSONs.

Rows: every model (BL, RNN, RNN-FT, RNN-FZ, RNN-FT-CCA, RNN-FZ-CCA) x direction (A2S, S2A);
columns as the paper: R@1, R@25, MRR, MR (median rank), plus R@5, R@10 and mean rank.
Writes ``OUT.csv`` and ``OUT.md``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

DISPLAY = {"bl": "BL", "rnn": "RNN", "rnn_ft": "RNN-FT", "rnn_fz": "RNN-FZ", "rnn_ft_cca": "RNN-FT-CCA",
           "rnn_fz_cca": "RNN-FZ-CCA"}
COLUMNS = ["R@1", "R@5", "R@10", "R@25", "MRR", "median_rank", "mean_rank"]


def table2(metrics: dict[str, dict]) -> pd.DataFrame:
    """``metrics``: model key -> evaluate JSON. One row per (direction, model), A2S first."""
    rows = []
    for direction in ("a2s", "s2a"):
        for key, m in metrics.items():
            rows.append({"direction": direction.upper(), "model": DISPLAY.get(key, key),
                         **{c: m[direction][c] for c in COLUMNS}, "n_queries": m[direction]["n_queries"]})
    return pd.DataFrame(rows).rename(columns={"median_rank": "MR", "mean_rank": "mean rank"})


def to_markdown(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns) + "\n"
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) and v <= 1 else (f"{v:.1f}" if isinstance(v, float) else str(v))
    return head + "".join("| " + " | ".join(fmt(v) for v in row) + " |\n" for row in df.itertuples(index=False))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("metrics", nargs="+", type=Path, help="results/metrics/<model>.json files, in table order")
    ap.add_argument("--out", type=Path, required=True, help="output path without suffix")
    args = ap.parse_args(argv)
    df = table2({p.stem: json.loads(p.read_text()) for p in args.metrics})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out.with_suffix(".csv"), index=False, float_format="%.4f")
    args.out.with_suffix(".md").write_text(to_markdown(df))
    print(to_markdown(df), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
