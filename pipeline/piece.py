"""Stage ``piece``: one piece's whole data chain — engrave, render, passages — in one process.

A work of the embedded music21 corpus (``--music21-work``) is first converted to LilyPond
(:mod:`pipeline.corpus_music21`) in the same process; its normalised source lands in ``OUT/score/source``
like any other, and a failed conversion quarantines the piece at the engrave step.

The three steps keep their own modules (:mod:`pipeline.engrave`, :mod:`pipeline.render`,
:mod:`pipeline.passages`, each with its own CLI for debugging one step), output folders and
status files (``OUT/score``, ``OUT/audio``, ``OUT/passages``); a quarantined step passes its reason
on to the next ones, exactly as when they ran as separate jobs. Running them in one process saves
two Python start-ups and two workflow jobs per piece: a third of the data side's wall time on the
default corpus, whose pieces are short (README "Benchmarks"). The price: a change of one
step's parameters reruns the piece's whole chain.

Timings of each step go to ``--timings-dir/<step>/<piece>.json`` (``benchmarks/data_pipeline.py``).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from pipeline.corpus_music21 import convert as convert_music21
from pipeline.engrave import engrave_piece
from pipeline.errors import ConfigError
from pipeline.params import add_params_argument, from_args
from pipeline.passages import passages_piece
from pipeline.render import render_piece
from pipeline.stage import run_piece_stage

STEPS = ("score", "audio", "passages")     # output folders, in order


def engrave_step(source: Path | None, main: str, music21_work: str | None, score: Path, cfg: dict, timer) -> dict:
    """Engrave ``source/main``, or the LilyPond conversion of ``music21_work`` (written to a temporary folder)."""
    if not music21_work:
        return engrave_piece(source, main, score, cfg, timer)
    with tempfile.TemporaryDirectory(prefix="scorelink-music21-") as tmp:
        with timer.part("music21"):
            convert_music21(music21_work, Path(tmp))
        return engrave_piece(Path(tmp), main, score, cfg, timer)


def build_piece(piece: str, split: str, source: Path | None, main: str, out: Path, params: dict,
                timings_dir: Path | None = None, music21_work: str | None = None) -> None:
    """Engrave, render and cut passages of one piece into ``out/{score,audio,passages}``; the source
    is the folder ``source`` (main file ``main``) or the music21 corpus work ``music21_work``.

    Raises :class:`ConfigError` for a configuration error (e.g. a missing soundfont), which is not the
    piece's fault and must stop the run rather than quarantine the piece."""
    for name in STEPS:
        if (out / name).exists():
            shutil.rmtree(out / name)
    timing = (lambda stage: timings_dir / stage / f"{piece}.json") if timings_dir else (lambda stage: None)
    score, audio = out / "score", out / "audio"
    run_piece_stage("engrave", piece, score,
                    lambda t: engrave_step(source, main, music21_work, score, params["engrave"], t), timing("engrave"))
    run_piece_stage("render", piece, audio,
                    lambda t: render_piece(score, audio, piece, split, params, t), timing("render"))
    run_piece_stage("passages", piece, out / "passages",
                    lambda t: passages_piece(score, audio, out / "passages", params["passages"], t), timing("passages"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--piece", required=True)
    ap.add_argument("--split", required=True, choices=["train", "valid", "test"])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--source", type=Path, help="piece source folder")
    src.add_argument("--music21-work", help="a work of music21's corpus (e.g. bach/bwv2.6), converted first")
    ap.add_argument("--main", required=True, help="main .ly file, relative to --source (music21: <piece>.ly)")
    ap.add_argument("--out", required=True, type=Path, help="the piece's folder (data/pieces/<piece>)")
    ap.add_argument("--timings-dir", type=Path, default=None)
    add_params_argument(ap)
    args = ap.parse_args(argv)
    try:
        build_piece(args.piece, args.split, args.source, args.main, args.out, from_args(args), args.timings_dir,
                    args.music21_work)
    except ConfigError as e:
        print(f"[piece] piece {args.piece}: configuration error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
