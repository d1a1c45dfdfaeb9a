"""Stage ``sweep``: MRR against the strength of one degradation (issue 16), as a table and a figure.

``scenarios.sweep`` names a scenario (scan | performed), one of its strengths and the values to try; the
workflow builds the scenario once per value (``--set scenarios.<scenario>.<key>=<value>``) and evaluates
``scenarios.sweep.models`` on each with the protocol of Table 2. Per value, model and direction: the MRR with
its 95 % bootstrap interval, n and the chance MRR; the figure draws MRR against the strength, one line per
model, a panel per direction.

    python -m pipeline.evaluation.sweep --key scenarios.performed.tempo_curve_depth \\
        --point 0=results/scenarios/sweep/0 --point 0.1=... --models bl rnn_fz_cca --out results/scenarios/sweep
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.metrics import bootstrap_interval
from pipeline.evaluation.report import DISPLAY, to_markdown


def sweep_table(points: dict[float, Path], models: list[str]) -> pd.DataFrame:
    """``points``: strength -> folder holding ``retrieval/<model>.csv`` and ``metrics/<model>.json``."""
    rows = []
    for direction in ("a2s", "s2a"):
        for model in models:
            for value, folder in sorted(points.items()):
                rr = pd.read_csv(folder / "retrieval" / f"{model}.csv")[f"rr_{direction}"].to_numpy(np.float64)
                chance = json.loads((folder / "metrics" / f"{model}.json").read_text())[direction]["chance_MRR"]
                lo, hi = bootstrap_interval(rr)
                rows.append({"direction": direction.upper(), "model": DISPLAY.get(model, model), "strength": value,
                             "MRR": float(rr.mean()), "MRR_lo95": lo, "MRR_hi95": hi, "chance_MRR": chance, "n_queries": len(rr)})
    return pd.DataFrame(rows)


def sweep_figure(df: pd.DataFrame, key: str, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, direction in zip(axes, ("A2S", "S2A")):
        part = df[df.direction == direction]
        for model, g in part.groupby("model", sort=False):
            ax.plot(g.strength, g.MRR, marker="o", label=model)
            ax.fill_between(g.strength, g.MRR_lo95, g.MRR_hi95, alpha=0.2)
        ax.plot(part.strength, part.chance_MRR, color="grey", ls=":", label="chance")
        ax.set(title=f"{direction} (n {int(part.n_queries.iloc[0])} passages)", xlabel=key.split(".")[-1])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("MRR (95 % interval)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"MRR against {key}")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--key", required=True, help="the swept parameter (dotted), for the labels")
    ap.add_argument("--point", action="append", required=True, metavar="VALUE=DIR",
                    help="a strength and the folder of its evaluations (retrieval/, metrics/); repeatable")
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--out", type=Path, required=True, help="table path without suffix (.csv, .md)")
    ap.add_argument("--figure", type=Path, required=True)
    args = ap.parse_args(argv)
    points = {}
    for item in args.point:
        value, sep, folder = item.partition("=")
        if not sep:
            ap.error(f"--point {item!r}: expected VALUE=DIR")
        points[float(value)] = Path(folder)
    df = sweep_table(points, args.models)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out.with_suffix(".csv"), index=False, float_format="%.4f")
    args.out.with_suffix(".md").write_text(to_markdown(df))
    sweep_figure(df, args.key, args.figure)
    print(to_markdown(df), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
