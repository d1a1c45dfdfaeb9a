"""Stage ``passages``: per piece and performance, system passages and notehead snippet pairs.

A passage is one system: its strip ``[x0, x1)`` of the unrolled score and, per performance, the
audio frames ``[f0, f1)`` from the system's first onset to the next system's first onset (the
last system runs to the end of the spectrogram), as in lcasr's ``o2sc``. A snippet pair is
(notehead x in the unrolled score, onset frame) for every matched notehead (MSMD's ``o2c``:
optionally one pair per onset frame). Frames: ``ceil(t * fps)`` with t the performance time.

Writes ``OUT/passages.csv``, ``OUT/snippets.csv`` and ``OUT/status.json``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from pipeline.core import constants as C
from pipeline.core.csvtable import read_csv, write_csv
from pipeline.core.params import add_params_argument, from_args
from pipeline.core.stage import Timer, read_status, run_piece_stage, upstream_failure


def onset_frames(seconds: np.ndarray, rho: float) -> np.ndarray:
    """Frame index of score times [s at ρ = 1] in a performance at tempo factor ``rho`` (time / ρ; ceil, MSMD)."""
    return np.ceil(np.asarray(seconds) / rho * C.FPS - 1e-6).astype(np.int64)


def _take(table: dict[str, np.ndarray], keep) -> dict[str, np.ndarray]:
    return {k: v[keep] for k, v in table.items()}


def piece_passages(systems: dict, heads: dict, perfs: dict, dedupe: bool) -> tuple[dict, dict]:
    """(passages, snippets) tables ``{column: array}`` of one piece over all its performances; the
    inputs are the columns of ``systems.csv``, ``noteheads.csv`` and ``performances.csv``."""
    matched = _take(heads, heads["status"] == "matched")
    matched = _take(matched, np.lexsort((matched["pitch"], matched["x"])))      # by x, then pitch (stable)
    passages, snippets = [], []
    for perf, rho, n_frames in zip(perfs["performance"], perfs["tempo_ratio"], perfs["n_frames"]):
        f0 = onset_frames(systems["first_onset_s"], rho)
        f1 = np.append(f0[1:], n_frames)
        n = len(f0)
        passages.append({"performance": np.full(n, perf, dtype=object), "system": systems["system"],
                         "x0": systems["x0"], "x1": systems["x1"], "f0": np.minimum(f0, n_frames), "f1": f1})
        frames = onset_frames(matched["onset_s"], rho)
        snip = {"performance": np.full(len(frames), perf, dtype=object), "system": matched["system"],
                "x": np.round(matched["x"], 2), "frame": frames, "pitch": matched["pitch"]}
        snip = _take(snip, snip["frame"] < n_frames)
        if dedupe:
            snip = _take(snip, np.sort(np.unique(snip["frame"], return_index=True)[1]))   # first of each frame
        snippets.append(_take(snip, np.lexsort((snip["x"], snip["frame"]))))         # by frame, then x (stable)
    return _concat(passages), _concat(snippets)


def _concat(tables: list[dict]) -> dict:
    return {k: np.concatenate([t[k] for t in tables]) for k in tables[0]}


def passages_piece(score: Path, audio: Path, out: Path, cfg: dict, timer: Timer) -> dict:
    for folder in (score, audio):
        status = read_status(folder)
        if not status["ok"]:
            raise upstream_failure(status)
    with timer.part("passages"):
        passages, snippets = piece_passages(read_csv(score / "systems.csv"), read_csv(score / "noteheads.csv"),
                                            read_csv(audio / "performances.csv"), cfg["dedupe_onset_frames"])
        write_csv(out / "passages.csv", passages)
        write_csv(out / "snippets.csv", snippets)
    return {"passages": len(passages["system"]), "snippets": len(snippets["system"])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--piece", required=True)
    ap.add_argument("--score", required=True, type=Path)
    ap.add_argument("--audio", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--timings", type=Path, default=None)
    add_params_argument(ap)
    args = ap.parse_args(argv)
    cfg = from_args(args)["passages"]
    return run_piece_stage("passages", args.piece, args.out,
                           lambda t: passages_piece(args.score, args.audio, args.out, cfg, t), args.timings)


if __name__ == "__main__":
    sys.exit(main())
