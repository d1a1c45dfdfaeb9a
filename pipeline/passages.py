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
import pandas as pd

from pipeline import constants as C
from pipeline.params import add_params_argument, from_args
from pipeline.stage import Timer, read_status, run_piece_stage, upstream_failure


def onset_frames(seconds: np.ndarray, rho: float) -> np.ndarray:
    """Frame index of score times [s at ρ = 1] in a performance at tempo factor ``rho`` (time / ρ; ceil, MSMD)."""
    return np.ceil(np.asarray(seconds) / rho * C.FPS - 1e-6).astype(np.int64)


def piece_passages(systems: pd.DataFrame, heads: pd.DataFrame, perfs: pd.DataFrame, dedupe: bool):
    """(passages, snippets) DataFrames of one piece over all its performances."""
    matched = heads[heads.status == "matched"].sort_values(["x", "pitch"], kind="stable")
    passages, snippets = [], []
    for perf in perfs.itertuples():
        f0 = onset_frames(systems.first_onset_s.to_numpy(), perf.tempo_ratio)
        f1 = np.append(f0[1:], perf.n_frames)
        passages.append(pd.DataFrame({
            "performance": perf.performance, "system": systems.system, "x0": systems.x0, "x1": systems.x1,
            "f0": np.minimum(f0, perf.n_frames), "f1": f1}))
        frames = onset_frames(matched.onset_s.to_numpy(), perf.tempo_ratio)
        snip = pd.DataFrame({"performance": perf.performance, "system": matched.system.to_numpy(),
                             "x": np.round(matched.x.to_numpy(), 2), "frame": frames, "pitch": matched.pitch.to_numpy()})
        snip = snip[snip.frame < perf.n_frames]
        if dedupe:
            snip = snip.drop_duplicates("frame", keep="first")
        snippets.append(snip.sort_values(["frame", "x"], kind="stable"))
    return pd.concat(passages, ignore_index=True), pd.concat(snippets, ignore_index=True)


def passages_piece(score: Path, audio: Path, out: Path, cfg: dict, timer: Timer) -> dict:
    for folder in (score, audio):
        status = read_status(folder)
        if not status["ok"]:
            raise upstream_failure(status)
    with timer.part("passages"):
        passages, snippets = piece_passages(pd.read_csv(score / "systems.csv"), pd.read_csv(score / "noteheads.csv"),
                                            pd.read_csv(audio / "performances.csv"), cfg["dedupe_onset_frames"])
        passages.to_csv(out / "passages.csv", index=False)
        snippets.to_csv(out / "snippets.csv", index=False)
    return {"passages": len(passages), "snippets": len(snippets)}


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
