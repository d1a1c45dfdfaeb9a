"""Run LilyPond with the scorelink probe and parse what it reports (systems and noteheads)."""
from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from pipeline.errors import PieceError

PROBE_FILE = Path(__file__).with_name("scorelink_probe.ily")
_STAFF = re.compile(r"SCORELINK staff score=(\d+) sys=(-?\d+) start=(\S+) end=(\S+) x0=(\S+) x1=(\S+)")
_HEAD = re.compile(r"SCORELINK head score=(\d+) sys=(-?\d+) when=(\S+) grace=(\S+) pitch=(-?\d+) x0=(\S+) x1=(\S+)")


@dataclass(frozen=True)
class StaffInfo:
    score: int
    system: int
    start: Fraction     # [whole notes] moment of the system's first column
    end: Fraction       # [whole notes] moment of the system's last column (= next system's start)
    x0: float           # [staff spaces] left end of the staff lines, relative to the system
    x1: float


@dataclass(frozen=True)
class HeadInfo:
    score: int
    system: int
    moment: Fraction    # [whole notes] main moment of the notehead's column
    grace: Fraction     # [whole notes] grace offset (negative for grace notes, else 0)
    pitch: int          # MIDI pitch (-1 if unknown)
    x0: float           # [staff spaces] horizontal extent relative to the system
    x1: float


def parse_probe(stderr: str) -> tuple[list[StaffInfo], list[HeadInfo]]:
    staves = [StaffInfo(int(a), int(b), Fraction(c), Fraction(d), float(e), float(f))
              for a, b, c, d, e, f in _STAFF.findall(stderr)]
    heads = [HeadInfo(int(a), int(b), Fraction(c), Fraction(d), int(e), float(f), float(g))
             for a, b, c, d, e, f, g in _HEAD.findall(stderr)]
    return staves, heads


@dataclass
class LilypondRun:
    pdf: Path
    midi: list[Path]
    stderr: str
    seconds: float
    n_errors: int


def run_lilypond(main: Path, out_stem: str = "score", timeout: float = 600) -> LilypondRun:
    """Engrave ``main`` (in its own folder, relative paths only) to ``<out_stem>.pdf`` + MIDI."""
    folder = main.parent
    probe = folder / "scorelink_probe.ily"
    probe.write_text(PROBE_FILE.read_text())
    cmd = ["lilypond", "-dno-point-and-click", f"-dinclude-settings={probe.name}", "--pdf",
           "-o", out_stem, main.name]
    t0 = time.perf_counter()
    try:
        res = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, errors="replace",
                             timeout=timeout, env={**os.environ, "SOURCE_DATE_EPOCH": "0"})
    except subprocess.TimeoutExpired as e:
        raise PieceError("lilypond timeout", f"no result after {timeout:.0f} s") from e
    seconds = time.perf_counter() - t0
    errors = [ln for ln in res.stderr.splitlines() if "error:" in ln]
    pdf = folder / f"{out_stem}.pdf"
    midi = sorted(folder.glob(f"{out_stem}*.midi"))
    if res.returncode != 0 or not pdf.exists():
        msg = errors[0] if errors else (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise PieceError("lilypond failed", _strip_paths(msg, folder))
    return LilypondRun(pdf, midi, _strip_paths(res.stderr, folder), seconds, len(errors))


def _strip_paths(text: str, folder: Path) -> str:
    return text.replace(str(folder) + "/", "").replace(str(folder), ".")
