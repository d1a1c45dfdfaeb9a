"""Stage ``piece``: the whole data chain — engrave, render, passages — of a batch of pieces in one process.

A batch (``--batch``, a JSON list of piece specs from the piece index; or one piece from
``--piece/--split/--source|--music21-work/--main``) is built in three phases:

1. per piece: the music21 conversion of a work of the embedded corpus (:mod:`pipeline.data.corpus_music21`),
   then the normalisation of its LilyPond source into ``OUT/score/source``;
2. one LilyPond process engraves every normalised piece (:func:`pipeline.data.probe.run_lilypond_batch`):
   LilyPond's start-up (≈ 3 s) is most of a short piece's engraving time, so it is paid once per batch;
   a piece that LilyPond's verdict lists as failed (or the batch left without a result) is engraved again
   alone, which reports its failure exactly as a single run;
3. per piece: the analysis of its engraving, then its renderings and passages.

The three steps keep their own modules (:mod:`pipeline.data.engrave`, :mod:`pipeline.data.render`,
:mod:`pipeline.data.passages`, each with its own CLI for debugging one step), output folders and
status files (``OUT/score``, ``OUT/audio``, ``OUT/passages``); a quarantined step passes its reason
on to the next ones. One process per batch saves the Python start-up and imports (≈ 1 s) and the
workflow job of every other piece (README "Benchmarks"). The price: a change of one step's
parameters reruns the whole chain, and a change of one piece's source reruns its batch.

Timings of each step go to ``--timings-dir/<step>/<piece>.json`` (``benchmarks/data_pipeline.py``);
the batch's LilyPond time is shared evenly among its pieces.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from pipeline.data.corpus_music21 import convert as convert_music21
from pipeline.data.engrave import engrave_prepared, prepare_source
from pipeline.core.errors import ConfigError, PieceError
from pipeline.core.params import add_params_argument, from_args
from pipeline.data.passages import passages_piece
from pipeline.data.probe import run_lilypond_batch
from pipeline.data.render import render_piece
from pipeline.core.stage import Timer, run_piece_stage

STEPS = ("score", "audio", "passages")     # output folders, in order


@dataclass(frozen=True)
class PieceSpec:
    """One piece of a batch: its source is the folder ``source`` (main file ``main``) or the music21
    corpus work ``work`` (converted to ``main``)."""
    piece: str
    split: str
    main: str
    source: str | None = None
    work: str | None = None


@dataclass
class _Prepared:
    timer: Timer
    main: Path | None = None
    norm: dict | None = None
    error: PieceError | None = None
    seconds: float = 0.0


def _prepare(spec: PieceSpec, score: Path, stack: ExitStack) -> _Prepared:
    """Phase 1 of one piece: conversion (music21 works) and normalisation, timed."""
    prep = _Prepared(Timer())
    try:
        source = Path(spec.source) if spec.source else None
        if spec.work:
            source = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scorelink-music21-")))
            with prep.timer.part("music21"):
                convert_music21(spec.work, source, prep.timer)
        prep.main, prep.norm = prepare_source(source, spec.main, score, prep.timer)
    except PieceError as e:
        prep.error = e
    return prep


def build_pieces(specs: list[PieceSpec], out_root: Path, params: dict, timings_dir: Path | None = None) -> None:
    """Engrave, render and cut passages of every piece of ``specs`` into ``out_root/<piece>/{score,audio,passages}``.

    Raises :class:`ConfigError` for a configuration error (e.g. a missing soundfont), which is not a
    piece's fault and must stop the run rather than quarantine the piece."""
    cfg = params["engrave"]
    timing = (lambda stage, piece: timings_dir / stage / f"{piece}.json") if timings_dir else (lambda *_: None)
    for spec in specs:
        for name in STEPS:
            if (out_root / spec.piece / name).exists():
                shutil.rmtree(out_root / spec.piece / name)
    with ExitStack() as stack:
        prepared = {}
        for spec in specs:
            t0 = time.perf_counter()
            prepared[spec.piece] = prep = _prepare(spec, out_root / spec.piece / "score", stack)
            prep.seconds = time.perf_counter() - t0
        ready = [s.piece for s in specs if prepared[s.piece].error is None]
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scorelink-lilypond-")))
        runs = dict(zip(ready, run_lilypond_batch([prepared[p].main for p in ready], ready, workdir,
                                                   cfg["lilypond_timeout_s"]) if ready else []))
        share = next((r.seconds for r in runs.values() if r is not None), 0.0)    # LilyPond's time per piece of the batch
        for spec in specs:
            piece, prep, out = spec.piece, prepared[spec.piece], out_root / spec.piece
            run = runs.get(piece)

            def engrave(timer: Timer, prep=prep, run=run, out=out, piece=piece) -> dict:
                # this piece's share of phases 1-2 (also when the batch's result is not kept and it is engraved again)
                batch = run.seconds if run else (share if piece in runs else 0.0)
                timer.t0 -= prep.seconds + batch
                timer.parts.update(prep.timer.parts)
                if run is None and batch:
                    timer.add("lilypond", batch)
                if prep.error is not None:
                    raise prep.error
                return engrave_prepared(prep.main, prep.norm, out / "score", cfg, timer, piece, run)

            run_piece_stage("engrave", piece, out / "score", engrave, timing("engrave", piece))
            run_piece_stage("render", piece, out / "audio",
                            lambda t, s=spec, o=out: render_piece(o / "score", o / "audio", s.piece, s.split, params, t),
                            timing("render", piece))
            run_piece_stage("passages", piece, out / "passages",
                            lambda t, o=out: passages_piece(o / "score", o / "audio", o / "passages", params["passages"], t),
                            timing("passages", piece))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", default=None,
                    help='pieces as JSON: [{"piece", "split", "main", "source" or "work"}, ...] (the workflow\'s form)')
    ap.add_argument("--out-root", type=Path, default=Path("data/pieces"), help="folder of the pieces' folders")
    one = ap.add_argument_group("one piece (instead of --batch)")
    one.add_argument("--piece")
    one.add_argument("--split", choices=["train", "valid", "test"])
    src = one.add_mutually_exclusive_group()
    src.add_argument("--source", help="piece source folder")
    src.add_argument("--music21-work", help="a work of music21's corpus (e.g. bach/bwv2.6), converted first")
    one.add_argument("--main", help="main .ly file, relative to --source (music21: <piece>.ly)")
    ap.add_argument("--timings-dir", type=Path, default=None)
    add_params_argument(ap)
    args = ap.parse_args(argv)
    if args.batch is not None:
        specs = [PieceSpec(**s) for s in json.loads(args.batch)]
    elif args.piece and args.split and args.main and (args.source or args.music21_work):
        specs = [PieceSpec(args.piece, args.split, args.main, args.source, args.music21_work)]
    else:
        ap.error("give --batch, or --piece, --split, --main and --source or --music21-work")
    try:
        build_pieces(specs, args.out_root, from_args(args), args.timings_dir)
    except ConfigError as e:
        print(f"[piece] configuration error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
