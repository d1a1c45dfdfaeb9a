"""Stage ``render``: LilyPond's MIDI -> fluidsynth audio per performance -> log spectrograms.

Per piece, writes into ``OUT`` (``data/pieces/<piece>/audio``):

* ``spec/<performance>.npy``  float32 (92, n_frames) log spectrogram at 20 fps
* ``performances.csv``       performance, tempo_ratio (ρ), soundfont, n_frames, duration_s
* ``status.json``

Performances (MSMD's scheme, our soundfonts): a train piece gets one rendering at ρ = 1 per
training soundfont plus ``n_random_performances`` distinct random (ρ, soundfont) pairs; a valid
piece the validation soundfont at ρ = 1 (neither a training nor the test soundfont by default); a
test piece the test soundfont at every test tempo factor ρ (performance time = score time / ρ).
Audio is not kept (like MSMD without ``--retain_audio``).
"""
from __future__ import annotations

import argparse
import hashlib
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from pipeline.core import constants as C
from pipeline.core.csvtable import write_rows
from pipeline.core.errors import ConfigError, PieceError
from pipeline.data.midi import write_performance_midi
from pipeline.core.params import add_params_argument, from_args
from pipeline.data.spectrogram import log_spectrogram
from pipeline.core.stage import Timer, read_status, run_piece_stage, upstream_failure


def performance_id(rho: float, soundfont: str) -> str:
    """Performance name from its tempo factor ρ x 1000 and soundfont, e.g. ``rho-0500_sf_gmbank`` (half speed).

    MSMD names its folders ``tempo-<1000 x r>`` with r multiplying the *duration* (its ``tempo-900``
    is 10 % faster, our ρ = 1.11); we name by the paper's ρ instead, so that the name says what tables say."""
    return f"{C.rho_id(rho)}_{soundfont}"


def plan_performances(piece: str, split: str, cfg: dict, seed: int) -> list[tuple[float, str]]:
    """(ρ, soundfont) pairs of one piece; deterministic in (seed, piece name)."""
    if split == "test":
        return [(float(r), cfg["test_soundfont"]) for r in cfg["test_tempo_ratios"]]
    if split == "valid":
        return [(1.0, cfg["valid_soundfont"])]
    fixed = [(1.0, sf_name) for sf_name in cfg["train_soundfonts"]]
    pool = [(float(r), s) for r in cfg["train_tempo_ratios"] for s in cfg["train_soundfonts"] if (float(r), s) not in fixed]
    digest = hashlib.sha256(f"{seed}:{piece}".encode()).hexdigest()
    rng = random.Random(int(digest[:16], 16))
    return fixed + sorted(rng.sample(pool, min(cfg["n_random_performances"], len(pool))))


def fluidsynth(midi: Path, soundfont: Path, wav: Path, gain: float) -> None:
    if not soundfont.is_file():
        raise ConfigError(f"soundfont not found: {soundfont}")
    cmd = ["fluidsynth", "-ni", "-q", "-g", str(gain), "-r", str(C.SAMPLE_RATE), "-O", "s16", "-T", "wav",
           "-F", str(wav), str(soundfont), str(midi)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0 or not wav.exists():
        raise PieceError("fluidsynth failed", res.stderr.strip()[-300:])


def load_mono(wav: Path) -> np.ndarray:
    """Mono float32 samples in [-1, 1] (channel mean, as madmom's remix)."""
    audio, rate = sf.read(str(wav), dtype="int16", always_2d=True)
    if rate != C.SAMPLE_RATE:
        raise PieceError("sample rate", f"fluidsynth wrote {rate} Hz")
    samples = audio.astype(np.float32)
    mono = samples[:, 0].copy()          # = samples.mean(axis=1), bit for bit, without its strided reduction
    for channel in range(1, samples.shape[1]):
        mono += samples[:, channel]
    mono /= np.float32(samples.shape[1])
    return mono / np.iinfo(np.int16).max


def render_piece(score_dir: Path, out: Path, piece: str, split: str, params: dict, timer: Timer) -> dict:
    status = read_status(score_dir)
    if not status["ok"]:
        raise upstream_failure(status)
    cfg = params["render"]
    rows = []
    (out / "spec").mkdir(parents=True, exist_ok=True)
    perfs = plan_performances(piece, split, cfg, params["seed"])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for ratio, sf_name in tqdm(perfs, desc=f"render {piece}", leave=False, disable=None):
            sf_cfg = cfg["soundfonts"][sf_name]
            pid = performance_id(ratio, sf_name)
            with timer.part("midi"):
                write_performance_midi(score_dir / "score.midi", tmp / "perf.midi", ratio, sf_cfg.get("program"),
                                       cfg["velocity"])
            with timer.part("fluidsynth"):
                fluidsynth(tmp / "perf.midi", Path(sf_cfg["file"]), tmp / "perf.wav", cfg["gain"])
            with timer.part("features"):
                audio = load_mono(tmp / "perf.wav")
                if not np.any(audio):
                    raise PieceError("silent rendering", f"{sf_name} ({sf_cfg['file']}) rendered silence")
                spec = log_spectrogram(audio)
                np.save(out / "spec" / f"{pid}.npy", spec)
            rows.append({"performance": pid, "tempo_ratio": ratio, "soundfont": sf_name,
                         "n_frames": spec.shape[1], "duration_s": round(len(audio) / C.SAMPLE_RATE, 4)})
    write_rows(out / "performances.csv", rows)
    return {"performances": len(rows), "audio_s": round(sum(r["duration_s"] for r in rows), 4)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--piece", required=True)
    ap.add_argument("--split", required=True, choices=["train", "valid", "test"])
    ap.add_argument("--score", required=True, type=Path, help="the piece's engrave output folder")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--timings", type=Path, default=None)
    add_params_argument(ap)
    args = ap.parse_args(argv)
    params = from_args(args)
    try:
        return run_piece_stage("render", args.piece, args.out,
                               lambda t: render_piece(args.score, args.out, args.piece, args.split, params, t),
                               args.timings)
    except ConfigError as e:
        print(f"[render] piece {args.piece}: configuration error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
