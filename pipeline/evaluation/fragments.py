"""Stage ``fragments``: fragment search by subsequence DTW — which piece, and where in it (2021 paper, Table II).

Queries (seeded, ``piece_id.fragments``): per length, ``n_queries`` random fragments of the test pieces'
renderings at ``evaluation.tempo`` (the unseen soundfont):

* **A2S**: an audio excerpt of ``audio_seconds`` s (its 1 s windows that lie inside it) searched in
  every piece's sheet windows; the true region is the x-range of the noteheads sounding in it;
* **S2A**: ``systems`` consecutive systems of a score (the sheet windows centred inside them)
  searched in every piece's database audio; the true region is those systems' audio span.

Each piece's score is its best subsequence-DTW cost (:func:`pipeline.evaluation.dtw.subsequence_best`);
pieces are ranked by it (ties: ``evaluation.ties``). The matched region in the right piece is the span of
the window centres from the path's start to its end (audio: window starts, plus the 1 s window); a
query is **localised** when the right piece ranks first and that region overlaps the true one with
intersection over union >= ``piece_id.fragments.iou``.

Methods: ``sdtw`` searches every piece exhaustively; ``shortlist`` (when ``piece_id.fragments.shortlist``
is set) runs subsequence DTW only in the regions its nearest windows hit
(:mod:`pipeline.evaluation.region_shortlist`), on the same queries. Each method's milliseconds per query
go to the log.

Writes ``--out`` (JSON per method, direction and length: retrieval metrics with n / chance / interval, and
``localised`` with its 95 % interval), ``--details`` (one row per method and query) and ``--figure``.
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

from pipeline.core.constants import FPS, SPEC_CONTEXT_FRAMES  # noqa: E402
from pipeline.core.metrics import bootstrap_interval, rank_counts, reciprocal_ranks, retrieval_metrics  # noqa: E402
from pipeline.core.params import add_params_argument, from_args  # noqa: E402
from pipeline.core.stage import write_json  # noqa: E402
from pipeline.evaluation.piecedb import Windows  # noqa: E402
from pipeline.evaluation.region_shortlist import subsequence_searcher  # noqa: E402

MIN_WINDOWS = 2       # a query shorter than this is not drawn


def iou(a: tuple, b: tuple) -> float:
    """Intersection over union of intervals [a0, a1] and [b0, b1]."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else float(a == b)


def draw_audio_fragments(rng, windows: Windows, snippets: pd.DataFrame, tempo: float, seconds: float, n: int) -> list:
    """``n`` A2S queries of ``seconds`` s: dict(piece, query windows, true x-range)."""
    out, length = [], int(round(seconds * FPS))
    cands = [(piece, windows.perf_row(piece, tempo, "query")) for piece in windows.test_pieces]
    cands = [(p, r) for p, r in cands if windows.perfs.n_frames[r] >= length]
    for _ in range(n if cands else 0):
        piece, row = cands[rng.integers(len(cands))]
        f0 = int(rng.integers(0, windows.perfs.n_frames[row] - length + 1))
        starts = windows.audio_frame[row]
        inside = (starts >= f0) & (starts + SPEC_CONTEXT_FRAMES <= f0 + length)
        perf = windows.perfs.performance[row]
        heads = snippets[(snippets.piece == piece) & (snippets.performance == perf)
                         & snippets.frame.between(f0, f0 + length - 1)]
        if inside.sum() < MIN_WINDOWS or heads.empty:
            continue
        out.append({"piece": piece, "query": windows.audio[row][inside], "true": (float(heads.x.min()), float(heads.x.max())),
                    "start": f0 / FPS})
    return out


def draw_sheet_fragments(rng, windows: Windows, passages: pd.DataFrame, tempo: float, n_systems: int, n: int) -> list:
    """``n`` S2A queries of ``n_systems`` systems: dict(piece, query windows, true frame range)."""
    out = []
    perf = {piece: windows.perfs.performance[windows.perf_row(piece, tempo, "query")] for piece in windows.test_pieces}
    systems = {p: passages[(passages.piece == p) & (passages.performance == perf[p])].sort_values("system")
               for p in windows.test_pieces}
    cands = [p for p in windows.test_pieces if len(systems[p]) >= n_systems]
    for _ in range(n if cands else 0):
        piece = cands[rng.integers(len(cands))]
        s = systems[piece]
        first = int(rng.integers(0, len(s) - n_systems + 1))
        span = s.iloc[first:first + n_systems]
        x0, x1 = span.x0.min(), span.x1.max()
        i = windows.piece_row[piece]
        inside = (windows.sheet_x[i] >= x0) & (windows.sheet_x[i] <= x1)
        if inside.sum() < MIN_WINDOWS:
            continue
        out.append({"piece": piece, "query": windows.sheet[i][inside], "true": (float(span.f0.min()), float(span.f1.max())),
                    "start": float(first)})
    return out


def search(queries: list, database: list, positions: list, names: list, match_width: float, ties: str,
           shortlist: dict | None = None, index: dict | None = None) -> tuple[dict, list, float]:
    """Rank pieces for every query and localise it in its own piece; (metrics, per-query rows, seconds per
    query). ``positions[p]``: the database windows' positions in piece p (px or frames); a found region
    runs from its first window's position to its last one's plus ``match_width``. ``shortlist``
    (``{k, top}``): filter and refine (:class:`RegionSearch`) instead of the exhaustive search."""
    t0 = time.perf_counter()
    run = subsequence_searcher(database, shortlist, index)
    build = time.perf_counter() - t0
    scores, rows, seconds = [], [], []
    match = np.array([names.index(q["piece"]) for q in queries])
    for q, m in zip(queries, match):
        t0 = time.perf_counter()
        best, end, start = run(q["query"])
        seconds.append(time.perf_counter() - t0)
        scores.append(best)
        found = ((float(positions[m][start[m]]), float(positions[m][end[m]]) + match_width) if end[m] >= 0
                 else (float("nan"), float("nan")))
        rows.append({"piece": q["piece"], "start": q["start"], "windows": len(q["query"]), "true_from": q["true"][0],
                     "true_to": q["true"][1], "found_from": found[0], "found_to": found[1],
                     "iou": iou(q["true"], found) if end[m] >= 0 else 0.0, "top1": names[int(np.argmin(best))]})
    better, tied = rank_counts(np.array(scores), match)
    metrics = retrieval_metrics(better, tied, rule=ties, n_candidates=len(names))
    for r, rr in zip(rows, reciprocal_ranks(better, tied, ties)):
        r["rr"] = float(rr)
    return metrics, rows, float(np.mean(seconds) + build / max(len(queries), 1))


def fragments(params: dict, windows: Windows, dataset: Path, log=print) -> tuple[dict, pd.DataFrame]:
    f, e = params["piece_id"]["fragments"], params["evaluation"]
    tempo = e["tempo"]
    rng = np.random.default_rng([params["seed"], 2021])
    test = dataset / "test"
    passages = pd.read_csv(test / "passages.csv")
    snippets = pd.read_csv(test / "snippets.csv")
    names = list(windows.pieces.piece)
    audio_db = windows.database_audio(tempo)
    audio_pos = [windows.audio_frame[windows.database_row(p, tempo)] for p in names]
    plans = [("a2s", f"{s:g} s", s, lambda n, s=s: draw_audio_fragments(rng, windows, snippets, tempo, s, n),
              windows.sheet, windows.sheet_x, 0.0)
             for s in f["audio_seconds"]]
    plans += [("s2a", f"{k} system{'s' if k > 1 else ''}", k,
               lambda n, k=k: draw_sheet_fragments(rng, windows, passages, tempo, k, n),
               audio_db, audio_pos, float(SPEC_CONTEXT_FRAMES)) for k in f["systems"]]
    methods = {"sdtw": None, **({"shortlist": f["shortlist"]} if f.get("shortlist") else {})}
    metrics, rows = {}, []
    for direction, label, length, draw, database, positions, width in plans:
        queries = draw(f["n_queries"])
        if not queries:
            log(f"{direction} {label}: no test rendering is long enough; skipped")
            continue
        for method, shortlist in methods.items():
            m, r, seconds = search(queries, database, positions, names, width, e["ties"], shortlist,
                                   params["piece_id"]["index"])
            ok = np.array([(x["top1"] == x["piece"]) and x["iou"] >= f["iou"] for x in r], dtype=float)
            m.update({"length": length, "localised": float(ok.mean()), "localised_ci95": bootstrap_interval(ok),
                      "median_iou_when_right": float(np.median([x["iou"] for x in r if x["top1"] == x["piece"]] or [0.0]))})
            metrics.setdefault(method, {}).setdefault(direction, {})[label] = m
            rows += [{"method": method, "direction": direction, "length": label, **x, "localised": bool(o)}
                     for x, o in zip(r, ok)]
            log(f"{method:>9} {direction} {label:>10}: MRR {m['MRR']:.3f} {np.round(m['MRR_ci95'], 3).tolist()} "
                f"localised {m['localised']:.2f} (n {m['n_queries']}, {len(names)} pieces, chance {m['chance_MRR']:.3f}; "
                f"{seconds * 1e3:.0f} ms/query)")
    return metrics, pd.DataFrame(rows)


def figure(metrics: dict, out: Path) -> None:
    """MRR and localisation against query length, both directions; the shortlist search dashed."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    for ax, direction, xlabel in zip(axes, ("a2s", "s2a"), ("audio query length [s]", "score query length [systems]")):
        for method, style in (("sdtw", "-"), ("shortlist", "--")):
            by_len = metrics.get(method, {}).get(direction, {})
            x = [m["length"] for m in by_len.values()]
            for key, label, marker, colour in (("MRR", "MRR (piece)", "o", "C0"),
                                               ("localised", "localised (IoU ≥ 0.5, right piece)", "s", "C1")):
                y = [m[key] for m in by_len.values()]
                ci = np.array([m[f"{key}_ci95"] for m in by_len.values()]).reshape(-1, 2)
                if x:
                    ax.errorbar(x, y, yerr=[np.array(y) - ci[:, 0], ci[:, 1] - np.array(y)], marker=marker, capsize=3,
                                ls=style, color=colour, label=f"{label}, {method}")
        by_len = metrics.get("sdtw", {}).get(direction, {})
        if by_len:
            ax.axhline(next(iter(by_len.values()))["chance_MRR"], color="grey", ls=":", label="chance MRR")
            n = next(iter(by_len.values()))["n_queries"]
            ax.set_title(f"{direction.upper()} (≈{n} queries per length, 95 % CI)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel(xlabel)
        ax.set_ylim(0, 1.02)
    axes[0].legend(fontsize=7, loc="lower right")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=Path, required=True, help="windows.npz of piece_windows (its CSVs beside it)")
    ap.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    ap.add_argument("--out", type=Path, required=True, help="metrics JSON")
    ap.add_argument("--details", type=Path, required=True, help="per-query CSV")
    ap.add_argument("--figure", type=Path, required=True, help="PNG: MRR and localisation vs query length")
    add_params_argument(ap)
    args = ap.parse_args(argv)
    params = from_args(args)
    log = lambda msg: print(f"[fragments] {msg}", file=sys.stderr, flush=True)
    metrics, details = fragments(params, Windows(args.windows), args.dataset, log)
    write_json(args.out, metrics)
    args.details.parent.mkdir(parents=True, exist_ok=True)
    details.to_csv(args.details, index=False, float_format="%.6g")
    figure(metrics, args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
