"""Stage ``piece_id``: which piece is this recording (A2S) or this score (S2A) of? (Carvalho & Widmer 2021)

Queries: every test piece at every ``render.test_tempo_ratios`` ρ (its unseen-soundfont rendering at ρ);
database: every piece of every split (:mod:`pipeline.evaluation.piece_windows`). A2S: the query's
audio windows against every piece's sheet windows. S2A: the test piece's sheet windows against
every piece's database audio, where a test piece is present by its rendering at the query's ρ (the
other pieces by their ρ = 1 rendering).

Methods (``piece_id.methods``):

* ``vote_k<k>`` for every ``piece_id.vote_k``: each query window's ``k`` nearest database windows vote
  for their piece; pieces ranked by votes, equal votes by the votes' summed similarity when
  ``evaluation.bl_similarity_tiebreak`` (as BL);
* ``dtw``: the query sequence aligned with every piece's sequence (:func:`pipeline.evaluation.dtw.dtw_costs`,
  cosine cost, steps (1,0)/(0,1)/(1,1) weighted 1/1/2, cost / (N + M)); pieces ranked by that cost;
* ``dtw_tempo``: DTW under tempo hypotheses (ours; the papers have none): the audio side's spectrograms
  retimed by every ``piece_id.tempo_hypotheses.factors`` before their windows are embedded, each factor's
  costs standardised (:func:`pipeline.evaluation.identification.dtw_tempo_method`), the best factor kept;
* ``fingerprint`` (:mod:`pipeline.evaluation.fingerprint`): codes of a k-means codebook, hashed in pairs,
  pieces scored by their largest offset-histogram bin;
* ``refine_top<K>`` (filter and refine): the top ``piece_id.shortlist.top`` pieces of a cheap filter
  (``shortlist.filter``: DTW of mean-pooled sequences, or voting) re-ranked by DTW, the others after
  them in the filter's order (its speed-up over ``dtw`` is in the log).

Remaining ties follow ``evaluation.ties`` as in every table. Query times go to the log only (outputs
stay deterministic). Writes ``--out`` (JSON: per method,
direction and ρ the metrics of :func:`pipeline.core.metrics.retrieval_metrics` with n, chance and
interval), ``--details`` (one row per query: method, direction, rho, piece, rank, rr, top5) and
``--table`` (Markdown) and ``--figure`` (the paper's Fig. 2: DTW cost matrix and path of the best and
the worst identified piece, A2S at ``evaluation.tempo``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline.core.constants import rho_label  # noqa: E402
from pipeline.core.metrics import rank_counts, ranks, reciprocal_ranks, retrieval_metrics  # noqa: E402
from pipeline.core.params import add_params_argument, from_args  # noqa: E402
from pipeline.core.stage import write_json  # noqa: E402
from pipeline.evaluation.dtw import accumulated_cost, backtrack, cosine_cost  # noqa: E402
from pipeline.evaluation.fingerprint import kmeans_codebook  # noqa: E402
from pipeline.evaluation.identification import (  # noqa: E402
    dtw_method,
    dtw_tempo_method,
    fingerprint_method,
    method_names,
    refine_method,
    vote_method,
)
from pipeline.evaluation.piecedb import Windows  # noqa: E402

DIRECTIONS = ("a2s", "s2a")
N_TOP = 5


def identify(params: dict, windows: Windows, log=print) -> tuple[dict, pd.DataFrame]:
    """Every method, direction and test ρ: (metrics, per-query rows)."""
    p, e = params["piece_id"], params["evaluation"]
    test = [piece for piece, split in zip(windows.pieces.piece, windows.pieces.split) if split == "test"]
    if not test:
        raise ValueError("no test pieces in the piece windows: nothing to identify")
    match = np.array([windows.piece_row[t] for t in test])
    names = list(windows.pieces.piece)
    metrics: dict = {}
    rows = []
    centres = None
    if "fingerprint" in p["methods"]:        # one codebook for every ρ and direction: both modalities' database windows
        centres = kmeans_codebook(np.concatenate([*windows.sheet, *windows.database_audio(1.0)]),
                                  p["fingerprint"]["codes"], params["seed"])
    cohort = tempo_cohort(windows, p["tempo_hypotheses"]["cohort"], params["seed"]) if "dtw_tempo" in p["methods"] else {}
    for rho in params["render"]["test_tempo_ratios"]:
        inputs = windows.inputs(test, rho)
        for method in method_names(p):
            for direction in DIRECTIONS:
                queries, database = inputs[direction]
                t0 = time.perf_counter()
                if method == "dtw":
                    scores = dtw_method(queries, database)
                elif method == "dtw_tempo":
                    by_factor = windows.tempo_inputs(test, rho, p["tempo_hypotheses"]["factors"])
                    scores = dtw_tempo_method({f: v[direction] for f, v in by_factor.items()}, direction, cohort[direction],
                                              p["tempo_hypotheses"]["normalise"])
                elif method == "fingerprint":
                    scores = fingerprint_method(queries, database, centres, p["fingerprint"])
                elif method.startswith("refine"):
                    scores = refine_method(queries, database, p["shortlist"], e["bl_similarity_tiebreak"], p["index"])
                else:
                    scores = vote_method(queries, database, int(method[len("vote_k"):]), e["bl_similarity_tiebreak"],
                                         p["index"])
                seconds = (time.perf_counter() - t0) / len(queries)
                better, tied = rank_counts(scores, match)
                m = retrieval_metrics(better, tied, rule=e["ties"], n_candidates=len(names))
                metrics.setdefault(method, {}).setdefault(direction, {})[rho_label(rho)] = m
                top = np.argsort(scores.numpy(), axis=1, kind="stable")[:, :N_TOP]
                rows.append(pd.DataFrame({
                    "method": method, "direction": direction, "rho": rho, "piece": test,
                    "rank": ranks(better, tied, e["ties"]), "rr": reciprocal_ranks(better, tied, e["ties"]),
                    "top": [" ".join(names[j] for j in r) for r in top]}))
                log(f"{method:>9} {direction} {rho_label(rho):>7}: MRR {m['MRR']:.3f} {np.round(m['MRR_ci95'], 3).tolist()} "
                    f"(n {m['n_queries']}, {len(names)} pieces, chance {m['chance_MRR']:.3f}; {seconds * 1e3:.0f} ms/query)")
    return metrics, pd.concat(rows, ignore_index=True)


def tempo_cohort(windows: Windows, size: int, seed: int) -> dict:
    """Per direction, the sequences that standardise the costs of ``dtw_tempo``: ``size`` training pieces
    drawn with ``seed`` (all non-test pieces when there are fewer than two training pieces); A2S: their
    database recordings (ρ = 1, as played), S2A: their sheets."""
    split = windows.pieces.split
    rows = np.flatnonzero(split == "train") if (split == "train").sum() >= 2 else np.flatnonzero(split != "test")
    rows = np.sort(np.random.default_rng([seed, 2021]).permutation(rows)[:size])
    return {"a2s": [windows.audio[windows.database_row(windows.pieces.piece[i], 1.0)] for i in rows],
            "s2a": [windows.sheet[i] for i in rows]}


def path_figure(windows: Windows, details: pd.DataFrame, rho: float, out: Path) -> None:
    """The paper's Fig. 2: A2S DTW cost matrices (query audio x true piece's score) with the optimal path,
    for the best and the worst identified test piece at ρ (DTW method)."""
    d = details[(details.method == "dtw") & (details.direction == "a2s") & np.isclose(details.rho, rho)]
    d = d.sort_values(["rr", "piece"], ascending=[False, True])
    cases = [("good", d.iloc[0]), ("bad", d.iloc[-1])] if len(d) > 1 else [("only", d.iloc[0])]
    fig, axes = plt.subplots(1, len(cases), figsize=(5.5 * len(cases), 4.2), constrained_layout=True, squeeze=False)
    for ax, (label, row) in zip(axes[0], cases):
        q = windows.audio[windows.perf_row(row.piece, rho, "query")]
        cost = cosine_cost(q, windows.sheet[windows.piece_row[row.piece]])
        path = backtrack(cost, accumulated_cost(cost), cost.shape[1] - 1)
        im = ax.imshow(cost, origin="lower", aspect="auto", cmap="viridis_r", vmin=0, vmax=max(1.0, float(cost.max())))
        ax.plot(path[:, 1], path[:, 0], color="red", lw=1.2)
        ax.set_title(f"{label}: {row.piece}\n(rank {row['rank']:g} among {len(windows.pieces)} pieces, {rho_label(rho)})",
                     fontsize=9)
        ax.set_xlabel("score windows (50 px hop)")
        ax.set_ylabel("audio windows (0.5 s hop)")
        fig.colorbar(im, ax=ax, label="1 - cosine similarity")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def markdown_table(metrics: dict) -> str:
    lines = ["| method | direction | ρ | R@1 | R@5 | R@10 | MRR [95 % CI] | MR | chance_MRR | n_queries | n_pieces |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for method, by_dir in metrics.items():
        for direction, by_rho in by_dir.items():
            for rho, m in by_rho.items():
                lo, hi = m["MRR_ci95"]
                lines.append(f"| {method} | {direction.upper()} | {rho} | {m['R@1']:.1f} | {m['R@5']:.1f} | {m['R@10']:.1f} | "
                             f"{m['MRR']:.3f} [{lo:.3f}, {hi:.3f}] | {m['median_rank']:g} | {m['chance_MRR']:.3f} | "
                             f"{m['n_queries']} | {m['n_candidates']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=Path, required=True, help="windows.npz of piece_windows (its CSVs beside it)")
    ap.add_argument("--out", type=Path, required=True, help="metrics JSON")
    ap.add_argument("--details", type=Path, required=True, help="per-query CSV")
    ap.add_argument("--table", type=Path, required=True, help="Markdown table")
    ap.add_argument("--figure", type=Path, required=True, help="PNG: DTW cost matrices and paths (good and bad case)")
    add_params_argument(ap)
    args = ap.parse_args(argv)
    params = from_args(args)
    log = lambda msg: print(f"[piece_id] {msg}", file=sys.stderr, flush=True)
    windows = Windows(args.windows)
    metrics, details = identify(params, windows, log)
    write_json(args.out, metrics)
    args.details.parent.mkdir(parents=True, exist_ok=True)
    details.to_csv(args.details, index=False, float_format="%.6g")
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.write_text(markdown_table(metrics))
    path_figure(windows, details, params["evaluation"]["tempo"], args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
