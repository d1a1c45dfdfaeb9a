"""Stage ``engrave``: LilyPond source -> page images, system boxes/time spans, aligned noteheads.

Per piece, writes into ``OUT`` (``data/pieces/<piece>/score``):

* ``source/``        normalised LilyPond sources (what was engraved)
* ``score.midi``     LilyPond's MIDI of the printed score (printed order)
* ``pages/NN.png``   page images, 835 px wide, grayscale uint8
* ``unrolled.png``   all system strips (200 rows) side by side, uint8
* ``systems.csv``    one row per system: page, box [px], x-range in the unrolled score [px],
                     start/end moment [whole notes], start time and first onset [s at tempo 1]
* ``noteheads.csv``  one row per notehead: system, moment, pitch, x on page / unrolled [px],
                     status (matched | tie | unmatched), onset [s at tempo 1]
* ``alignment.json`` the alignment report; ``status.json`` ok or the quarantine reason
"""
from __future__ import annotations

import argparse
import shutil
import struct
import sys
import tempfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from pipeline.data.alignment import alignment_report, match_heads, midi_origin_shift, monotonic_violations
from pipeline.core.csvtable import write_rows
from pipeline.core.errors import PieceError
from pipeline.data.layout import render_pages, system_boxes, system_strip
from pipeline.data.midi import read_midi
from pipeline.data.normalize import normalize_piece
from pipeline.core.params import add_params_argument, from_args
from pipeline.data.probe import LilypondRun, parse_probe, run_lilypond
from pipeline.core.stage import Timer, run_piece_stage, write_json


def png_bytes(img: np.ndarray) -> bytes:
    """An 8-bit grayscale PNG of ``img`` (H, W) uint8: unfiltered rows deflated by Python's zlib.

    Pillow's bundled zlib-ng picks compression kernels per CPU and does not promise identical
    bytes across machines; the system zlib does, so the dataset's PNGs are the same everywhere
    (and, for engraved music, smaller than Pillow's)."""
    h, w = img.shape
    rows = np.zeros((h, w + 1), np.uint8)        # filter byte 0 (None) before every row
    rows[:, 1:] = img

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)      # 8 bit, grayscale, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
            + chunk(b"IEND", b""))


def save_png(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(np.ascontiguousarray(img, dtype=np.uint8)))


def engrave_piece(src_folder: Path, main_rel: str, out: Path, cfg: dict, timer: Timer, name: str = "score") -> dict:
    """Core of the stage (see module docstring). Raises :class:`PieceError` for a bad piece."""
    main, norm = prepare_source(src_folder, main_rel, out, timer)
    return engrave_prepared(main, norm, out, cfg, timer, name)


def prepare_source(src_folder: Path, main_rel: str, out: Path, timer: Timer) -> tuple[Path, dict]:
    """Normalise the source into ``out/source``: (main file, normalisation report)."""
    with timer.part("normalize"):
        return normalize_piece(src_folder, main_rel, out / "source", timer)


def engrave_prepared(main: Path, norm: dict, out: Path, cfg: dict, timer: Timer, name: str,
                     run: LilypondRun | None = None) -> dict:
    """Analyse ``run`` (a normalised source's engraving from :func:`run_lilypond_batch`), or engrave
    the source alone first (as ``<name>.ly``) when there is none."""
    if run is None:
        with tempfile.TemporaryDirectory(prefix="scorelink-lilypond-") as workdir:
            return engrave_prepared(main, norm, out, cfg, timer, name,
                                    run_lilypond(main, name, Path(workdir), timeout=cfg["lilypond_timeout_s"]))
    timer.add("lilypond", run.seconds)
    (out / "lilypond.log").write_text(run.stderr)
    return _analyse(run, out, cfg, norm, timer)


def _analyse(run, out: Path, cfg: dict, norm: dict, timer: Timer) -> dict:
    staves, heads = parse_probe(run.stderr)
    if not staves:
        raise PieceError("no systems", "LilyPond reported no staff (empty score?)")
    n_scores = len({s.score for s in staves})
    if n_scores > 1:
        raise PieceError("multiple printed scores", f"{n_scores} scores (movements) in one file")
    per_system = Counter(s.system for s in staves)
    bad = sorted({n for n in per_system.values() if n != cfg["staves_per_system"]})
    if bad:
        raise PieceError("not a grand staff", f"{'/'.join(map(str, bad))} staves per system, "
                         f"expected {cfg['staves_per_system']}")
    if not heads:
        raise PieceError("no notes", "the score has no noteheads")
    if len(run.midi) != 1:
        raise PieceError("midi output", f"{len(run.midi)} MIDI files written")
    notes, tempo = read_midi(run.midi[0])
    if not notes:
        raise PieceError("no notes", "LilyPond's MIDI has no note events")
    shutil.copy(run.midi[0], out / "score.midi")

    n_sys = max(per_system) + 1
    staff_ext = {k: (min(s.x0 for s in staves if s.system == k), max(s.x1 for s in staves if s.system == k))
                 for k in range(n_sys)}
    with timer.part("layout"):
        pages, scales = render_pages(run.pdf)
        boxes, extra_staves = system_boxes(run.pdf, scales, cfg["staves_per_system"],
                                           [staff_ext[k][1] - staff_ext[k][0] for k in range(n_sys)])
    if len(boxes) != n_sys:
        raise PieceError("system count mismatch", f"PDF has {len(boxes)} systems, LilyPond {n_sys}")

    with timer.part("align"):
        sys_rows, strips, offset = [], [], 0
        shift = midi_origin_shift(heads, notes, tempo)
        starts = {s.system: s.start for s in staves}
        ends = {s.system: s.end for s in staves}
        for k, box in enumerate(boxes):
            strip = system_strip(pages[box.page], box)
            strips.append(strip)
            sys_rows.append({"system": k, "page": box.page + 1, "top": box.top, "bottom": box.bottom,
                             "left": box.left, "right": box.right, "x0": offset, "x1": offset + strip.shape[1],
                             "start_moment": str(starts[k]), "end_moment": str(ends[k]),
                             "start_s": tempo.time(tempo.moment_to_tick(starts[k]) + (shift if k else 0))})
            offset += strip.shape[1]
        unrolled = np.concatenate(strips, axis=1)

        matches = match_heads(heads, notes, tempo, shift)
        head_rows = []
        for h, m in zip(heads, matches):
            box, (sx0, sx1), row = boxes[h.system], staff_ext[h.system], sys_rows[h.system]
            x_page = box.left + ((h.x0 + h.x1) / 2 - sx0) * (box.right - box.left) / (sx1 - sx0)
            head_rows.append({
                "system": h.system, "moment": str(h.moment), "grace": str(h.grace), "pitch": h.pitch,
                "x_page": x_page, "x": row["x0"] + x_page - round(box.left), "status": m["status"],
                "onset_s": tempo.time(m["onset_tick"]) if m["onset_tick"] is not None else np.nan})
        head_rows.sort(key=lambda r: (r["system"], r["x"], r["pitch"]))    # stable: ties keep probe order
        first_onset = {}
        for r in head_rows:
            if r["status"] == "matched":
                first_onset[r["system"]] = min(first_onset.get(r["system"], np.inf), r["onset_s"])
        for r in sys_rows:  # a system that starts with rests begins at its first onset
            r["first_onset_s"] = float(first_onset.get(r["system"], r["start_s"]))
        plain = [r for r in head_rows if r["grace"] == "0" and r["status"] != "unmatched"]
        violations = monotonic_violations(np.array([r["system"] for r in plain]),
                                          np.array([eval_frac(r["moment"]) for r in plain]),
                                          np.array([r["x"] for r in plain]))
        report = alignment_report(matches, notes, violations, [r["first_onset_s"] for r in sys_rows],
                                  cfg["min_noteheads_matched"], cfg["min_onsets_covered"])

    with timer.part("write"):
        for i, page in enumerate(pages):
            save_png(out / "pages" / f"{i + 1:02d}.png", page)
        save_png(out / "unrolled.png", unrolled)
        write_rows(out / "systems.csv", sys_rows, float_format="%.4f")
        write_rows(out / "noteheads.csv", head_rows, float_format="%.4f")
        write_json(out / "alignment.json", report)
    if not report["passed"]:
        raise PieceError("alignment report failed", "; ".join(report["failures"]))
    return {"systems": n_sys, "pages": len(pages), "noteheads": report["noteheads"], "extra_staves": extra_staves,
            "lilypond_errors": run.n_errors, "duration_s": round(tempo.time(max(n.offset_tick for n in notes)), 4),
            **norm}


def eval_frac(s: str) -> float:
    num, _, den = s.partition("/")
    return int(num) / int(den or 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--piece", required=True)
    ap.add_argument("--source", required=True, type=Path, help="piece source folder")
    ap.add_argument("--main", required=True, help="main .ly file, relative to --source")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--timings", type=Path, default=None)
    add_params_argument(ap)
    args = ap.parse_args(argv)
    cfg = from_args(args)["engrave"]
    if args.out.exists():
        shutil.rmtree(args.out)
    return run_piece_stage("engrave", args.piece, args.out,
                           lambda t: engrave_piece(args.source, args.main, args.out, cfg, t, args.piece), args.timings)


if __name__ == "__main__":
    sys.exit(main())
