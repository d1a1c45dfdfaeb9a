"""Shared plumbing of the per-piece stage CLIs: status files, timings, failure handling."""
from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from pipeline.core.errors import PieceError


def write_json(path: Path, obj) -> None:
    """Deterministic JSON (sorted keys, fixed indent, trailing newline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")


def read_status(folder: Path) -> dict:
    return json.loads((Path(folder) / "status.json").read_text())


class Timer:
    """Accumulates named wall-clock durations [s] (written next to the logs, never into artifacts)."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self.parts: dict[str, float] = {}

    @contextmanager
    def part(self, name: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.parts[name] = self.parts.get(name, 0.0) + time.perf_counter() - t

    def add(self, name: str, seconds: float) -> None:
        self.parts[name] = self.parts.get(name, 0.0) + seconds

    def summary(self) -> dict:
        return {"total": time.perf_counter() - self.t0, **self.parts}


def run_piece_stage(stage: str, piece: str, out_dir: Path, work, timings: Path | None) -> int:
    """Run ``work(timer) -> dict`` for one piece; write ``out_dir/status.json`` either way.

    A :class:`PieceError` quarantines the piece (status ok=false, exit 0) so the workflow goes on;
    the message names piece and stage. Any other exception is a bug and propagates.
    """
    timer = Timer()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        info = work(timer) or {}
        status = {"piece": piece, "stage": stage, "ok": True, **info}
    except PieceError as e:
        print(f"[{stage}] piece {piece} quarantined: {e}", file=sys.stderr)
        status = {"piece": piece, "stage": stage, "ok": False, "reason": e.reason, "detail": e.detail}
    write_json(out_dir / "status.json", status)
    if timings is not None:
        write_json(timings, {"piece": piece, "stage": stage, **timer.summary()})
    return 0


def upstream_failure(status: dict) -> "PieceError":
    """The error a downstream stage raises when an earlier stage quarantined the piece."""
    return PieceError(status.get("reason", "failed upstream"),
                      f"(from stage {status.get('stage')}) {status.get('detail', '')}".strip())
