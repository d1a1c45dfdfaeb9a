"""Stage ``tables``: the paper's Table 2 (scenario I) from the per-model metrics JSONs.

Rows: every model (BL, RNN, RNN-FT, RNN-FZ, RNN-FT-CCA, RNN-FZ-CCA) x direction (A2S, S2A);
columns as the paper: R@1, R@25, MRR, MR (median rank), plus R@5, R@10, mean rank, the MRR's 95 %
bootstrap interval, the chance MRR of the candidate pool, the number of queries and the tie rule.
Writes ``OUT.csv`` and ``OUT.md`` (where the MRR reads ``0.174 [0.128, 0.228]``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

DISPLAY = {"bl": "BL", "snippet": "snippet (pretraining)", "rnn": "RNN", "rnn_ft": "RNN-FT", "rnn_fz": "RNN-FZ", "rnn_ft_cca": "RNN-FT-CCA",
           "rnn_fz_cca": "RNN-FZ-CCA"}
COLUMNS = ["R@1", "R@5", "R@10", "R@25", "MRR", "median_rank", "mean_rank"]


def mrr_columns(m: dict) -> dict:
    """The MRR of one direction's metrics with its interval, chance level, n and tie rule (flat columns)."""
    lo, hi = m["MRR_ci95"]
    return {"MRR": m["MRR"], "MRR_lo95": lo, "MRR_hi95": hi, "chance_MRR": m["chance_MRR"],
            "n_queries": m["n_queries"], "ties": m["ties"]}


def table2(metrics: dict[str, dict]) -> pd.DataFrame:
    """``metrics``: model key -> evaluate JSON. One row per (direction, model), A2S first."""
    rows = []
    for direction in ("a2s", "s2a"):
        for key, m in metrics.items():
            d = m[direction]
            rows.append({"direction": direction.upper(), "model": DISPLAY.get(key, key),
                         **{c: d[c] for c in COLUMNS}, **mrr_columns(d)})
    return pd.DataFrame(rows).rename(columns={"median_rank": "MR", "mean_rank": "mean rank"})


ONE_DECIMAL = ("R@", "MR", "mean rank", "mean_rank", "median_rank")   # percentages and ranks


def _cell(column: str, v) -> str:
    if isinstance(v, float):
        return f"{v:.1f}" if column.startswith(ONE_DECIMAL) else f"{v:.3f}"
    return str(v)


def to_markdown(df: pd.DataFrame) -> str:
    """Markdown table; ``MRR`` + ``MRR_lo95`` + ``MRR_hi95`` columns become one ``MRR [95 % CI]`` cell
    (and ``X`` + ``X_lo95`` + ``X_hi95`` likewise for any other interval)."""
    cols, merged = [], set()
    for c in df.columns:
        if c.endswith(("_lo95", "_hi95")):
            continue
        if f"{c}_lo95" in df.columns:
            cols.append((f"{c} [95 % CI]", c))
            merged.add(c)
        else:
            cols.append((c, c))
    head = "| " + " | ".join(name for name, _ in cols) + " |\n|" + "---|" * len(cols) + "\n"
    lines = []
    for _, row in df.iterrows():
        cells = [f"{row[c]:.3f} [{row[c + '_lo95']:.3f}, {row[c + '_hi95']:.3f}]" if c in merged else _cell(c, row[c])
                 for _, c in cols]
        lines.append("| " + " | ".join(cells) + " |\n")
    return head + "".join(lines)


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
