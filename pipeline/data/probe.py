"""Run LilyPond with the scorelink probe and parse what it reports (systems and noteheads)."""
from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from pipeline.core.errors import PieceError

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


LILYPOND = ["lilypond", "-dno-point-and-click", "--pdf"]
LILYPOND_ENV = {"SOURCE_DATE_EPOCH": "0"}
_PROCESSING = re.compile(r"^Processing `(.*)'$", re.M)
_VERDICT = re.compile(r"^(Success: compilation successfully completed|fatal error: failed files: .*)\n?\Z", re.M)  # of the run


def run_lilypond(main: Path, name: str, workdir: Path, timeout: float = 600) -> LilypondRun:
    """Engrave one normalised main file (outputs ``workdir/<name>.pdf`` + MIDI); a failure (LilyPond's
    exit status or no PDF) raises :class:`PieceError` with LilyPond's first error message."""
    done = _run([main], [name], workdir, timeout)
    if done is None:
        raise PieceError("lilypond timeout", f"no result after {timeout:.0f} s")
    (run,), returncode, stderr = done
    if returncode == 0 and run.pdf.exists():
        return run
    errors = [ln for ln in stderr.splitlines() if "error:" in ln]
    msg = errors[0] if errors else (stderr.strip().splitlines() or ["no output"])[-1]
    raise PieceError("lilypond failed", _strip_paths(msg, main.parent, workdir))


def run_lilypond_batch(mains: list[Path], names: list[str], workdir: Path, timeout: float = 600) -> list[LilypondRun | None]:
    """Engrave several pieces in one LilyPond process: its start-up (≈ 3 s, most of a short piece's
    engraving time) is paid once. Returns per main file its run, or ``None`` where the batch gave no
    result that a run of that piece alone would give too: the piece is in LilyPond's closing list of
    failed files or has no PDF; when the batch ended without its closing verdict (it crashed in a later
    piece), every piece with an error message too. A timeout of the batch gives ``None`` for all.
    Engrave those with :func:`run_lilypond`, which reports the failure as LilyPond's exit status does.
    A piece with errors LilyPond recovered from (e.g. "Guile signaled an error", still a PDF and not a
    failed file) is kept: alone, it would pass with exit status 0 too (it used to be engraved twice)."""
    done = _run(mains, names, workdir, timeout)
    if done is None:
        return [None] * len(mains)
    runs, _, stderr = done
    failed = failed_files(stderr)

    def kept(name: str, run: LilypondRun) -> bool:
        if not (run.pdf.exists() and run.stderr):
            return False
        # without a verdict (the process crashed in a later piece) only a piece without any error is sure
        return f"{name}.ly" not in failed if failed is not None else run.n_errors == 0
    return [run if kept(name, run) else None for name, run in zip(names, runs)]


def failed_files(stderr: str) -> set[str] | None:
    """Files of LilyPond's closing verdict ``fatal error: failed files: "a.ly" "b.ly"`` (empty after
    ``Success: compilation successfully completed``), or ``None`` when the run ended without a verdict."""
    verdict = _VERDICT.search(stderr)
    if verdict is None:
        return None
    return set(re.findall(r'"([^"]+)"', verdict.group(1)))


def run_midi_batch(mains: list[Path], names: list[str], workdir: Path, settings: Path,
                   timeout: float = 600) -> list[tuple[Path | None, str]]:
    """MIDI-only LilyPond runs (``settings`` drops the page output, e.g. the unfold include) of several
    mains in one process; per main ``(its one MIDI file or None, its first error line or "")`` (a main
    that wrote its MIDI counts as done even when LilyPond reported errors it recovered from). A main
    the batch gave nothing for (a crash or timeout of the batch) is run alone, so one bad piece costs
    only itself."""
    done = _run(mains, names, workdir, timeout, settings)
    out = []
    for i, (main, name) in enumerate(zip(mains, names)):
        run = done[0][i] if done is not None else None
        if run is None or (len(run.midi) != 1 and done[1] != 0):
            alone = _run([main], [name], workdir, timeout, settings)
            run = alone[0][0] if alone is not None else None
        if run is None:
            out.append((None, f"lilypond timeout: no result after {timeout:.0f} s"))
        elif len(run.midi) != 1:          # errors LilyPond recovers from are tolerated, as in the engraving
            errors = [ln for ln in run.stderr.splitlines() if "error:" in ln]
            out.append((None, errors[0] if errors else f"{len(run.midi)} MIDI files written"))
        else:
            out.append((run.midi[0], ""))
    return out


def _run(mains: list[Path], names: list[str], workdir: Path, timeout: float, settings: Path = PROBE_FILE):
    """(runs, exit status, stderr) of one LilyPond process on ``mains``, or ``None`` on a timeout.
    ``settings``: the file LilyPond includes before each main (``-dinclude-settings``), the probe by default.

    Each main is engraved through a wrapper ``workdir/<name>.ly`` that includes it by absolute path
    (its own includes resolve relative to its folder), so outputs never collide and a piece's log,
    its part of LilyPond's output from ``Processing `<name>.ly'`` on, does not depend on its batch."""
    probe = workdir / settings.name
    probe.write_text(settings.read_text())
    for name, main in zip(names, mains):
        path = str(main.resolve()).replace("\\", "\\\\").replace('"', '\\"')
        (workdir / f"{name}.ly").write_text(f'\\version "2.24.1"\n\\include "{path}"\n', encoding="utf-8")
    cmd = [*LILYPOND, f"-dinclude-settings={probe.name}", *[f"{n}.ly" for n in names]]
    t0 = time.perf_counter()
    try:
        res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, errors="replace",
                             timeout=timeout * len(mains), env={**os.environ, **LILYPOND_ENV})
    except subprocess.TimeoutExpired:
        return None
    share = (time.perf_counter() - t0) / len(mains)
    marks = list(_PROCESSING.finditer(res.stderr))
    logs = {m.group(1): _VERDICT.sub("", res.stderr[m.start():(marks[i + 1].start() if i + 1 < len(marks) else None)])
            for i, m in enumerate(marks)}
    runs = []
    for name, main in zip(names, mains):
        log = _strip_paths(logs.get(f"{name}.ly", ""), main.parent, workdir)
        midi = sorted([*workdir.glob(f"{name}.midi"), *workdir.glob(f"{name}-*.midi")])
        runs.append(LilypondRun(workdir / f"{name}.pdf", midi, log, share,
                                sum("error:" in ln for ln in log.splitlines())))
    return runs, res.returncode, res.stderr


def _strip_paths(text: str, *folders: Path) -> str:
    """``text`` without the folders' paths (absolute and as given), so that logs and messages do not
    depend on where the project lives."""
    for folder in folders:
        for path in dict.fromkeys([str(Path(folder).resolve()), str(folder)]):
            text = text.replace(path + "/", "").replace(path, ".")
    return text
