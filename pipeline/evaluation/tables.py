"""Stage ``tables``: the paper's Table 2 (scenario I) from the per-model metrics JSONs.

Rows: every model (BL, RNN, RNN-FT, RNN-FZ, RNN-FT-CCA, RNN-FZ-CCA) x direction (A2S, S2A);
columns as the paper: R@1, R@25, MRR, MR (median rank), plus R@5, R@10, mean rank, the MRR's 95 %
bootstrap interval, the chance MRR of the candidate pool, the number of queries and the tie rule.
Writes ``OUT.csv`` and ``OUT.md`` (where the MRR reads ``0.174 [0.128, 0.228]``).
A metrics file of another row (``snakemake attention``: ``BL+Att (att42)``, ``RNN-FT-CCA+Att (att42)``) is named by
the ``label`` it stores (``evaluate --label``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from pipeline.evaluation.report import COLUMNS, DISPLAY, mrr_columns, to_markdown


def table2(metrics: dict[str, dict]) -> pd.DataFrame:
    """``metrics``: model key -> evaluate JSON. One row per (direction, model), A2S first; a model is named
    as in the paper (``DISPLAY``), else by the JSON's ``label``, else by its key."""
    rows = []
    for direction in ("a2s", "s2a"):
        for key, m in metrics.items():
            d = m[direction]
            rows.append({"direction": direction.upper(), "model": DISPLAY.get(key, m.get("label", key)),
                         **{c: d[c] for c in COLUMNS}, **mrr_columns(d)})
    return pd.DataFrame(rows).rename(columns={"median_rank": "MR", "mean_rank": "mean rank"})


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
