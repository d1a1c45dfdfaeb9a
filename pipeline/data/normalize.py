"""Normalise a LilyPond source so that it engraves on LilyPond 2.24 and its MIDI follows the print.

* ``convert-ly -e`` on every ``.ly``/``.ily``/``.lyi`` of the piece (files without ``\\version``
  are converted from the main file's version);
* scores that only make MIDI (``\\midi`` without ``\\layout``, e.g. an ``\\unfoldRepeats`` copy) are
  removed, and every printed score gets a ``\\midi { }``: the audio then plays exactly the printed
  notes in printed order (repeats as printed, like MSMD);
* includes stay relative to the piece folder (it is copied whole), so no absolute path appears.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from contextlib import nullcontext
from pathlib import Path

from pipeline.core.errors import PieceError
from pipeline.data.textscan import code_mask, find_blocks, iter_scores

LY_SUFFIXES = (".ly", ".ily", ".lyi")
_VERSION = re.compile(r'\\version\s*"([0-9.]+)"')
_INCLUDE = re.compile(r'\\include\s*"([^"]+)"')


def source_version(text: str) -> str | None:
    m = _VERSION.search(text)
    return m.group(1) if m else None


def convert_sources(folder: Path, main_version: str | None, convert_ly: str = "convert-ly", timer=None) -> list[str]:
    """Run ``convert-ly -e`` in place on every LilyPond file under ``folder``; returns its warnings.
    ``timer`` (a :class:`pipeline.core.stage.Timer`) gets convert-ly's time as part ``convert_ly``."""
    warnings = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix in LY_SUFFIXES):
        text = path.read_text(encoding="utf-8", errors="replace")
        cmd = [convert_ly, "-e"]
        if source_version(text) is None:
            cmd.append(f"--from={main_version or '2.10.0'}")
        with timer.part("convert_ly") if timer else nullcontext():
            res = subprocess.run(cmd + [path.name], cwd=path.parent, capture_output=True, text=True,
                                 errors="replace")
        # convert-ly exits non-zero when a rule is "not smart enough" but still writes the file:
        # record it and let LilyPond judge the result
        warnings += [ln for ln in res.stderr.splitlines() if "Not smart enough" in ln or "error" in ln.lower()]
        backup = path.with_name(path.name + "~")
        if backup.exists():
            backup.unlink()
    return warnings


def add_midi_to_printed_scores(text: str) -> tuple[str, dict]:
    """Drop MIDI-only scores and give every printed score a ``\\midi { }``.

    Returns the new text and counts ``{"printed_scores": n, "midi_only_removed": m}``.
    Raises :class:`PieceError` if the file has no ``\\score`` block.
    """
    scores = list(iter_scores(find_blocks(text)))
    if not scores:
        raise PieceError("no score block", "the main file has no \\score { } (implicit scores are not supported)")
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement), applied back to front
    printed = removed = 0
    for s in scores:
        kinds = {c.keyword for c in s.children}
        if "midi" in kinds and "layout" not in kinds:
            edits.append((s.start, s.end, "% [scorelink] MIDI-only score removed\n"))
            removed += 1
            continue
        printed += 1
        insert = ""
        if "layout" not in kinds:
            insert += "\\layout { }\n"
        if "midi" not in kinds:
            insert += "\\midi { }\n"
        if insert:
            edits.append((s.end - 1, s.end - 1, "\n  " + insert))
    for start, end, repl in sorted(edits, reverse=True):
        text = text[:start] + repl + text[end:]
    return text, {"printed_scores": printed, "midi_only_removed": removed}


def code_includes(text: str) -> list[str]:
    """``\\include`` targets outside comments and strings."""
    mask = code_mask(text)
    return [m.group(1) for m in _INCLUDE.finditer(text) if mask[m.start()]]


def lilypond_data_file(name: str) -> bool:
    """True if ``name`` is one of LilyPond's own include files (its ``ly/`` folder)."""
    return any(Path(d, name).is_file() for d in glob.glob("/usr/share/lilypond/*/ly") + glob.glob(
        os.path.join(os.environ.get("CONDA_PREFIX", "/nonexistent"), "share/lilypond/*/ly")))


def include_closure(main: Path) -> tuple[list[Path], list[str]]:
    """Files reachable from ``main`` by ``\\include`` (relative to the including file or the main folder),
    in discovery order, and the include names that are not on disk."""
    missing, seen, todo = [], [], [main]
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.append(f)
        for name in code_includes(f.read_text(encoding="utf-8", errors="replace")):
            if lilypond_data_file(name):
                continue  # LilyPond's own ly/ files (english.ly, articulate.ly, ...)
            for cand in (f.parent / name, main.parent / name):
                if cand.exists():
                    todo.append(cand)
                    break
            else:
                missing.append(name)
    return seen, missing


def normalize_piece(src_folder: Path, main_rel: str, work: Path, timer=None) -> tuple[Path, dict]:
    """Copy the piece folder to ``work``, upgrade it and prepare its main file (``timer``: see :func:`convert_sources`).

    Returns (path of the normalised main file inside ``work``, report dict).
    """
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(src_folder, work, ignore=shutil.ignore_patterns("*.midi", "*.mid", "*.pdf", "*.ps"))
    main = work / main_rel
    if not main.exists():
        raise PieceError("missing main file", main_rel)
    files, missing = include_closure(main)
    if missing:
        raise PieceError("missing include", ", ".join(sorted(set(missing))))
    version = source_version(main.read_text(encoding="utf-8", errors="replace"))
    warnings = convert_sources(work, version, timer=timer)
    counts = {"printed_scores": 0, "midi_only_removed": 0}
    for f in files:
        text = f.read_text(encoding="utf-8", errors="replace")
        if not any(True for _ in iter_scores(find_blocks(text))):
            continue
        text, c = add_midi_to_printed_scores(text)
        f.write_text(text, encoding="utf-8")
        counts = {k: counts[k] + c[k] for k in counts}
    if counts["printed_scores"] == 0:
        raise PieceError("no score block", "no printed \\score { } in the main file or its includes")
    return main, {"source_version": version, "convert_ly_warnings": len(warnings), **counts}
