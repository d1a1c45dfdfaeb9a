"""Stage ``scalability``: piece identification MRR against the size of the database (the 2021 paper's Fig. 3).

For each fraction in ``piece_id.scalability.fractions`` and each of ``repeats`` seeded draws, the
database is every test piece (the queries, at ``evaluation.tempo``) plus a random sample of the other
pieces, ``max(n_test, round(fraction x all pieces))`` in total; every method of
``piece_id.scalability.methods`` ranks it both ways (as :mod:`pipeline.evaluation.piece_id`). Query
times belong to ``benchmarks/piece_index.py`` (outputs stay deterministic).

Writes ``--out`` (CSV: fraction, pieces, repeat, method, direction, MRR, chance_MRR, n_queries) and
``--figure`` (MRR against database size, mean and range over the draws, chance level dotted).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from pipeline.core.metrics import rank_counts, retrieval_metrics  # noqa: E402
from pipeline.core.params import add_params_argument, from_args  # noqa: E402
from pipeline.evaluation.identification import dtw_method, vote_method  # noqa: E402
from pipeline.evaluation.piecedb import Windows  # noqa: E402


def method_scores(method: str, queries: list, database: list, tiebreak: bool) -> torch.Tensor:
    """(Q, P) scores, lower = better: ``dtw`` or ``vote_k<k>``."""
    if method == "dtw":
        return dtw_method(queries, database)
    return vote_method(queries, database, int(method[len("vote_k"):]), tiebreak)


def scalability(params: dict, windows: Windows, log=print) -> pd.DataFrame:
    s, e = params["piece_id"]["scalability"], params["evaluation"]
    rho = e["tempo"]
    names = list(windows.pieces.piece)
    test = [names.index(t) for t in windows.test_pieces]
    others = np.array([i for i in range(len(names)) if i not in set(test)])
    inputs = windows.inputs(windows.test_pieces, rho)
    rows = []
    for fraction in s["fractions"]:
        size = max(len(test), int(round(fraction * len(names))))
        for repeat in range(s["repeats"] if size < len(names) else 1):
            rng = np.random.default_rng([params["seed"], repeat, int(round(fraction * 1000))])
            chosen = sorted(test + rng.choice(others, size=size - len(test), replace=False).tolist())
            match = np.array([chosen.index(t) for t in test])
            for method in s["methods"]:
                for direction, (queries, database) in inputs.items():
                    database = [database[i] for i in chosen]
                    scores = method_scores(method, queries, database, e["bl_similarity_tiebreak"])
                    m = retrieval_metrics(*rank_counts(scores, match), rule=e["ties"], n_candidates=len(chosen))
                    rows.append({"fraction": fraction, "pieces": len(chosen), "repeat": repeat, "method": method,
                                 "direction": direction, "MRR": m["MRR"], "chance_MRR": m["chance_MRR"],
                                 "n_queries": m["n_queries"]})
                    log(f"{len(chosen):>4} pieces, draw {repeat}: {method:>8} {direction} MRR {m['MRR']:.3f}")
    return pd.DataFrame(rows)


def figure(table: pd.DataFrame, out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True, sharey=True)
    for ax, direction in zip(axes, ("a2s", "s2a")):
        d = table[table.direction == direction]
        for method, g in d.groupby("method", sort=True):
            agg = g.groupby("pieces").MRR.agg(["mean", "min", "max"])
            ax.errorbar(agg.index, agg["mean"], yerr=[agg["mean"] - agg["min"], agg["max"] - agg["mean"]],
                        marker="o", capsize=3, label=method)
        chance = d.groupby("pieces").chance_MRR.first()
        ax.plot(chance.index, chance.values, color="grey", ls=":", label="chance")
        ax.set_title(f"{direction.upper()} ({int(d.n_queries.iloc[0])} queries)" if len(d) else direction.upper())
        ax.set_xlabel("pieces in the database")
        ax.set_ylim(0, 1.02)
    axes[0].set_ylabel("MRR (mean, range over draws)")
    axes[0].legend(fontsize=8)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=Path, required=True, help="windows.npz of piece_windows (its CSVs beside it)")
    ap.add_argument("--out", type=Path, required=True, help="CSV")
    ap.add_argument("--figure", type=Path, required=True, help="PNG")
    add_params_argument(ap)
    args = ap.parse_args(argv)
    params = from_args(args)
    table = scalability(params, Windows(args.windows), lambda msg: print(f"[scalability] {msg}", file=sys.stderr, flush=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False, float_format="%.6g")
    figure(table, args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
