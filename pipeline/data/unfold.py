"""Stage ``unfold``: the evaluation split's pieces performed with their repeats (structure mismatch).

Our renderings play the score as printed (repeats once, as MSMD); a real performance plays the
repeats, so its audio no longer follows the printed score in order — the open problem of Carvalho &
Widmer (EUSIPCO 2021: 26 % of their pieces). For every piece of ``evaluation.split`` whose
normalised source has a ``\\repeat``, LilyPond writes the MIDI of the score unfolded as
``\\unfoldRepeats`` does (``scorelink_unfold.ily``, included with ``-dinclude-settings``: the source
is not edited; one LilyPond process for all pieces). When the unfolded MIDI lasts more than
``piece_id.repeats.min_extra_duration`` longer than the printed one, it is rendered like the piece's
test performance at ``evaluation.tempo`` (the test soundfont, the same gain and velocity) and
becomes an extra query / database recording of piece identification
(:mod:`pipeline.evaluation.repeats`).

Writes ``OUT/performances.csv`` (piece, performance, tempo_ratio, soundfont, n_frames, duration_s of
the audio, printed_duration_s and unfolded_duration_s of the MIDI's notes, spec), ``OUT/spec/<piece>.npy``
float32 (92, n_frames) log spectrograms at 20 fps and ``OUT/pieces.csv`` (every piece of the split: piece, repeats ∈ {none, no longer, unfolded,
failed}, printed_duration_s, unfolded_duration_s, detail). A piece that fails is reported there and
the others go on.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from pipeline.core import constants as C
from pipeline.core.errors import PieceError
from pipeline.core.params import add_params_argument, from_args
from pipeline.data.midi import read_midi, write_performance_midi
from pipeline.data.normalize import LY_SUFFIXES
from pipeline.data.probe import run_midi_batch
from pipeline.data.render import fluidsynth, load_mono, performance_id
from pipeline.data.spectrogram import log_spectrogram

UNFOLD_FILE = Path(__file__).with_name("scorelink_unfold.ily")
_REPEAT = re.compile(r"\\repeat\s+(volta|segno)\b")


def has_repeats(source: Path) -> bool:
    """Whether any LilyPond file of a normalised source folder has a volta or segno repeat (the kinds
    whose unfolding changes the order in which the printed music is played)."""
    return any(_REPEAT.search(p.read_text(encoding="utf-8", errors="replace"))
               for p in sorted(source.rglob("*")) if p.suffix in LY_SUFFIXES)


def midi_duration(path: Path) -> float:
    """[s] end of the last note of a MIDI file."""
    notes, tempo = read_midi(path)
    if not notes:
        raise PieceError("no notes", f"{path.name} has no notes")
    return tempo.time(max(n.offset_tick for n in notes))


def render_unfolded(midi: Path, out_spec: Path, params: dict, workdir: Path) -> tuple[str, float, int, float]:
    """Render an unfolded MIDI like a test performance at ``evaluation.tempo``; save its spectrogram.
    Returns (performance, ρ, n_frames, duration_s)."""
    cfg, rho = params["render"], float(params["evaluation"]["tempo"])
    sf_name = cfg["test_soundfont"]
    sf_cfg = cfg["soundfonts"][sf_name]
    write_performance_midi(midi, workdir / "perf.midi", rho, sf_cfg.get("program"), cfg["velocity"])
    fluidsynth(workdir / "perf.midi", Path(sf_cfg["file"]), workdir / "perf.wav", cfg["gain"])
    audio = load_mono(workdir / "perf.wav")
    if not np.any(audio):
        raise PieceError("silent rendering", f"{sf_name} rendered silence")
    spec = log_spectrogram(audio)
    np.save(out_spec, spec)
    return f"unfolded_{performance_id(rho, sf_name)}", rho, spec.shape[1], round(len(audio) / C.SAMPLE_RATE, 4)


def unfold_split(params: dict, dataset: Path, out: Path, root: Path = Path("."), log=print) -> pd.DataFrame:
    """Core of the stage (module docstring); returns the per-piece table."""
    split = params["evaluation"]["split"]
    pieces = pd.read_csv(dataset / split / "pieces.csv")
    index = pd.read_csv(dataset / "index.tsv", sep="\t").set_index("piece")
    min_extra = params["piece_id"]["repeats"]["min_extra_duration"]
    status = {p: {"piece": p, "repeats": "none", "printed_duration_s": np.nan, "unfolded_duration_s": np.nan,
                  "detail": ""} for p in pieces.piece}
    candidates = []
    for piece in pieces.piece:
        score = root / "data" / "pieces" / piece / "score"
        main = score / "source" / index.loc[piece, "main"]
        if has_repeats(score / "source"):
            candidates.append((piece, score, main))
    perf_rows = []
    (out / "spec").mkdir(parents=True, exist_ok=True)        # the folder's layout, whether or not a piece repeats
    with tempfile.TemporaryDirectory(prefix="scorelink-unfold-") as tmp:
        tmp = Path(tmp)
        names = [f"p{i:04d}" for i in range(len(candidates))]      # ASCII wrapper names, whatever the piece name
        midis = run_midi_batch([m for _, _, m in candidates], names, tmp, UNFOLD_FILE,
                               params["engrave"]["lilypond_timeout_s"]) if candidates else []
        for (piece, score, _), (midi, error) in zip(tqdm(candidates, desc="unfold", disable=None), midis):
            row = status[piece]
            try:
                if midi is None:
                    raise PieceError("lilypond failed", error)
                printed, unfolded = midi_duration(score / "score.midi"), midi_duration(midi)
                row.update(printed_duration_s=round(printed, 4), unfolded_duration_s=round(unfolded, 4))
                if unfolded <= printed * (1 + min_extra):
                    row["repeats"] = "no longer"
                    continue
                perf, rho, n_frames, seconds = render_unfolded(midi, out / "spec" / f"{piece}.npy", params, tmp)
                row["repeats"] = "unfolded"
                perf_rows.append({"piece": piece, "performance": perf, "tempo_ratio": rho,
                                  "soundfont": params["render"]["test_soundfont"], "n_frames": n_frames,
                                  "duration_s": seconds, "printed_duration_s": round(printed, 4),
                                  "unfolded_duration_s": round(unfolded, 4),
                                  "spec": str(out / "spec" / f"{piece}.npy")})
                log(f"{piece}: printed {printed:.1f} s, unfolded {unfolded:.1f} s")
            except PieceError as e:
                row.update(repeats="failed", detail=str(e))
                log(f"{piece}: {e} (no unfolded rendering; the other pieces go on)")
    pd.DataFrame(perf_rows, columns=["piece", "performance", "tempo_ratio", "soundfont", "n_frames", "duration_s",
                                     "printed_duration_s", "unfolded_duration_s", "spec"]).to_csv(out / "performances.csv", index=False)
    table = pd.DataFrame(list(status.values()))
    table.to_csv(out / "pieces.csv", index=False)
    counts = table.repeats.value_counts().to_dict()
    log(f"{len(table)} {split} pieces: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, required=True, help="the dataset stage's folder (data/dataset)")
    ap.add_argument("--out", type=Path, required=True, help="output folder (data/unfolded)")
    add_params_argument(ap)
    args = ap.parse_args(argv)
    params = from_args(args)
    unfold_split(params, args.dataset, args.out, log=lambda m: print(f"[unfold] {m}", file=sys.stderr, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
