"""Stage ``repeats``: piece identification when the performance plays the repeats (structure mismatch).

The 2021 paper's open problem (26 % of its real pieces): a recording that plays the repeats no longer
follows the printed score in order, and whole-sequence DTW must then stretch one pass of the score
over two passes of the music. The queried pieces are the evaluation split's pieces with an unfolded
rendering (:mod:`pipeline.data.unfold`); each is identified among every piece (the database of
:mod:`pipeline.evaluation.piece_windows`) under two conditions:

* ``printed``: its test rendering at ``evaluation.tempo`` in printed order (as in ``piece_id``);
* ``unfolded``: its rendering with the repeats played (same soundfont and tempo).

A2S: the query's audio windows against every piece's sheet windows. S2A: the piece's sheet against
every piece's database audio, where the queried pieces are present by the rendering of the condition
(in ``unfolded``, every queried piece's recording plays its repeats).

Methods: ``dtw`` (as in ``piece_id``) and, for every ``piece_id.repeats.jump_penalties`` λ,
``jump_dtw_l<λ>`` (:func:`pipeline.evaluation.dtw.jump_dtw_batch`: DTW that may also jump back in the
score, for λ per jump — a played repeat). The DTW loss is MRR(printed) − MRR(unfolded) of ``dtw``; the
recovery is what a jump method regains on ``unfolded``, and its price what it loses on ``printed``.

Writes ``--out`` (JSON: condition → method → direction → metrics with n, chance and interval),
``--details`` (one row per query) and ``--table`` (Markdown).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline.core.metrics import rank_counts, ranks, reciprocal_ranks, retrieval_metrics
from pipeline.core.params import add_params_argument, from_args
from pipeline.core.stage import write_json
from pipeline.evaluation.dtw import jump_dtw_costs
from pipeline.evaluation.identification import dtw_method
from pipeline.evaluation.piecedb import Windows
from pipeline.models.networks import SnippetModel
from pipeline.models.training import load_model, pick_device, setup_torch
from pipeline.models.windows import embed_performance

CONDITIONS = ("printed", "unfolded")
DIRECTIONS = ("a2s", "s2a")


def penalty_label(penalty: float) -> str:
    return f"jump_dtw_l{penalty:g}"


def embed_unfolded(params: dict, model_path: Path, unfolded: pd.DataFrame, root: Path = Path(".")) -> list[np.ndarray]:
    """Window embeddings (W, dim) of every unfolded rendering, as ``piece_windows`` embeds audio."""
    device = pick_device(params["training"]["device"])
    setup_torch(params["seed"], params["training"]["threads"])
    model = SnippetModel.from_artifact(load_model(model_path)).to(device).eval()
    return [embed_performance(model, np.load(root / spec).astype(np.float32), params["piece_id"]["audio_hop_frames"],
                              device)[1] for spec in unfolded.spec]


def method_scores(method: str, direction: str, queries: list[np.ndarray], database: list[np.ndarray]) -> torch.Tensor:
    """(Q, P) scores, lower = better."""
    if method == "dtw":
        return dtw_method(queries, database)
    penalty = float(method[len("jump_dtw_l"):])
    if direction == "a2s":        # the query is the performance
        return torch.from_numpy(np.stack([jump_dtw_costs(q, database, penalty) for q in queries]))
    return torch.from_numpy(np.stack([jump_dtw_costs(database, q, penalty) for q in queries]))


def evaluate_repeats(params: dict, windows: Windows, unfolded: pd.DataFrame, unfolded_windows: list[np.ndarray],
                     log=print) -> tuple[dict, pd.DataFrame]:
    """Every condition, method and direction: (metrics, per-query rows)."""
    e, rho = params["evaluation"], params["evaluation"]["tempo"]
    pieces = list(unfolded.piece)
    names = list(windows.pieces.piece)
    match = np.array([windows.piece_row[p] for p in pieces])
    methods = ["dtw"] + [penalty_label(x) for x in params["piece_id"]["repeats"]["jump_penalties"]]
    metrics: dict = {}
    rows = []
    for condition in CONDITIONS:
        inputs = windows.inputs(pieces, rho)
        if condition == "unfolded":          # the queried pieces' recordings play the repeats, as queries and in the database
            inputs["a2s"] = (unfolded_windows, inputs["a2s"][1])
            for p, w in zip(pieces, unfolded_windows):
                inputs["s2a"][1][windows.piece_row[p]] = w
        for method in methods:
            for direction in DIRECTIONS:
                scores = method_scores(method, direction, *inputs[direction])
                better, tied = rank_counts(scores, match)
                m = retrieval_metrics(better, tied, rule=e["ties"], n_candidates=len(names))
                metrics.setdefault(condition, {}).setdefault(method, {})[direction] = m
                rows.append(pd.DataFrame({"condition": condition, "method": method, "direction": direction,
                                          "piece": pieces, "rank": ranks(better, tied, e["ties"]),
                                          "rr": reciprocal_ranks(better, tied, e["ties"])}))
                log(f"{condition:>8} {method:>14} {direction}: MRR {m['MRR']:.3f} {np.round(m['MRR_ci95'], 3).tolist()} "
                    f"(n {m['n_queries']}, {len(names)} pieces, chance {m['chance_MRR']:.3f})")
    return metrics, pd.concat(rows, ignore_index=True)


def markdown_table(metrics: dict, unfolded: pd.DataFrame, n_split: int) -> str:
    head = (f"{len(unfolded)} of {n_split} evaluation pieces have an unfolded rendering (repeats played; "
            f"median {np.median(unfolded.unfolded_duration_s / unfolded.printed_duration_s):.2f} x the printed duration).\n\n"
            if len(unfolded) else "")
    lines = [head + "| method | direction | MRR printed [95 % CI] | MRR unfolded [95 % CI] | unfolded − printed | "
             "R@1 printed | R@1 unfolded | chance_MRR | n_queries | n_pieces |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for method in metrics.get("printed", {}):
        for direction in DIRECTIONS:
            a, b = metrics["printed"][method][direction], metrics["unfolded"][method][direction]
            ci = lambda m: f"{m['MRR']:.3f} [{m['MRR_ci95'][0]:.3f}, {m['MRR_ci95'][1]:.3f}]"
            lines.append(f"| {method} | {direction.upper()} | {ci(a)} | {ci(b)} | {b['MRR'] - a['MRR']:+.3f} | "
                         f"{a['R@1']:.1f} | {b['R@1']:.1f} | {a['chance_MRR']:.3f} | {a['n_queries']} | {a['n_candidates']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=Path, required=True, help="windows.npz of piece_windows (its CSVs beside it)")
    ap.add_argument("--model", type=Path, required=True, help="the snippet model of those windows")
    ap.add_argument("--unfolded", type=Path, required=True, help="the unfold stage's folder (data/unfolded)")
    ap.add_argument("--out", type=Path, required=True, help="metrics JSON")
    ap.add_argument("--details", type=Path, required=True, help="per-query CSV")
    ap.add_argument("--table", type=Path, required=True, help="Markdown table")
    add_params_argument(ap)
    args = ap.parse_args(argv)
    params = from_args(args)
    log = lambda msg: print(f"[repeats] {msg}", file=sys.stderr, flush=True)
    windows = Windows(args.windows)
    unfolded = pd.read_csv(args.unfolded / "performances.csv")
    n_split = len(pd.read_csv(args.unfolded / "pieces.csv"))
    unfolded = unfolded[unfolded.piece.isin(windows.piece_row)].reset_index(drop=True)
    args.details.parent.mkdir(parents=True, exist_ok=True)
    args.table.parent.mkdir(parents=True, exist_ok=True)
    if unfolded.empty:
        log("no evaluation piece has an unfolded rendering (no repeats): nothing to measure")
        write_json(args.out, {"n_queries": 0, "note": "no evaluation piece has repeats"})
        pd.DataFrame(columns=["condition", "method", "direction", "piece", "rank", "rr"]).to_csv(args.details, index=False)
        args.table.write_text(f"None of the {n_split} evaluation pieces has repeats that change its duration.\n")
        return 0
    metrics, details = evaluate_repeats(params, windows, unfolded, embed_unfolded(params, args.model, unfolded), log)
    write_json(args.out, metrics)
    details.to_csv(args.details, index=False, float_format="%.6g")
    args.table.write_text(markdown_table(metrics, unfolded, n_split))
    return 0


if __name__ == "__main__":
    sys.exit(main())
