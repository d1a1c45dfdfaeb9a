"""Latency of ``python -m pipeline.query`` on a built pipeline: warm (in-process) and cold (the command).

Run in a project folder where ``snakemake piece_id`` has run (``embeddings/<model>/windows.npz``,
``models/<model>/model.pt``, ``data/pieces``):

    .venv/bin/python benchmarks/query_command.py [--seconds 10 30 60] [--queries 20] [--cold 3]

Queries are real audio: the test pieces' LilyPond MIDI rendered by fluidsynth with the test soundfont
(as the pipeline renders them), cut into seeded random excerpts of each length and written as WAV.
*Warm*: the database and the model loaded once, then per query what the command does after loading (read the
file, spectrogram, embed its windows, subsequence DTW against every piece's sheet windows — ``exhaustive`` —
or in the regions of the fragment shortlist — ``shortlist``, the command's default when
``piece_id.fragments.shortlist`` is set — rank): p50 / p95 [ms] per length and search. *Cold*: the command as
a user runs it (Python start-up, imports, database and model loading, the query, the PNG), ``--cold`` runs of
one excerpt: p50 [s].
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.core import constants as C  # noqa: E402
from pipeline.core.params import load  # noqa: E402
from pipeline.data.midi import write_performance_midi  # noqa: E402
from pipeline.data.render import fluidsynth, load_mono  # noqa: E402
from pipeline.evaluation.piecedb import Windows  # noqa: E402
from pipeline.evaluation.query import audio_query  # noqa: E402
from pipeline.models.networks import SnippetModel  # noqa: E402
from pipeline.models.training import load_model, pick_device  # noqa: E402


def render_test_audio(params: dict, pieces: list[str], tmp: Path) -> dict:
    """{piece: mono float32 samples} of each piece's score MIDI through the test soundfont at ρ = 1."""
    cfg = params["render"]
    sf_cfg = cfg["soundfonts"][cfg["test_soundfont"]]
    out = {}
    for piece in pieces:
        write_performance_midi(Path("data/pieces") / piece / "score" / "score.midi", tmp / "perf.midi", 1.0,
                               sf_cfg.get("program"), cfg["velocity"])
        fluidsynth(tmp / "perf.midi", Path(sf_cfg["file"]), tmp / "perf.wav", cfg["gain"])
        out[piece] = load_mono(tmp / "perf.wav")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, nargs="+", default=[10, 30, 60])
    ap.add_argument("--queries", type=int, default=20, help="warm queries per length")
    ap.add_argument("--cold", type=int, default=3, help="runs of the command itself")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    params = load(args.params)
    name = params["piece_id"]["model"]
    windows = Windows(Path(f"embeddings/{name}/windows.npz"))
    device = pick_device("cpu")
    model = SnippetModel.from_artifact(load_model(Path(f"models/{name}/model.pt"))).to(device).eval()
    n_windows = sum(map(len, windows.sheet))
    print(f"database: {len(windows.pieces)} pieces, {n_windows} sheet windows; {len(windows.test_pieces)} test pieces")
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        audio = render_test_audio(params, windows.test_pieces, tmp)
        files = {}
        for seconds in args.seconds:
            n = int(seconds * C.SAMPLE_RATE)
            long_enough = [p for p, a in audio.items() if len(a) > n]
            files[seconds] = []
            for i in range(args.queries if long_enough else 0):
                piece = long_enough[rng.integers(len(long_enough))]
                start = int(rng.integers(len(audio[piece]) - n))
                f = tmp / f"q{seconds:g}_{i}.wav"
                sf.write(f, audio[piece][start:start + n], C.SAMPLE_RATE)
                files[seconds].append((piece, f))
        rows = []
        searches = {"exhaustive": None, "shortlist": params["piece_id"]["fragments"].get("shortlist")}
        for seconds, queries in files.items():
            for search, shortlist in searches.items():
                if search == "shortlist" and not shortlist:
                    continue
                times, top1 = [], 0
                for piece, f in queries:
                    t0 = time.perf_counter()
                    hits, _ = audio_query(f, windows, model, params, 5, device, shortlist)
                    times.append(time.perf_counter() - t0)
                    top1 += hits[0]["piece"] == piece
                if times:
                    p50, p95 = np.percentile(times, [50, 95]) * 1e3
                    rows.append({"excerpt_s": seconds, "search": search, "queries": len(times), "p50_ms": round(p50),
                                 "p95_ms": round(p95), "top1": f"{top1}/{len(times)}"})
        print("warm (database and model loaded once):")
        print(pd.DataFrame(rows).to_string(index=False))
        cold = []
        piece, f = next(q for qs in files.values() for q in qs)
        for _ in range(args.cold):
            t0 = time.perf_counter()
            res = subprocess.run([sys.executable, "-m", "pipeline.query", str(f), "--png", str(tmp / "m.png"),
                                  "--params", args.params],
                                 capture_output=True, text=True)
            cold.append(time.perf_counter() - t0)
            if res.returncode != 0:
                print(res.stderr, file=sys.stderr)
                return 1
        print(f"cold (`python -m pipeline.query <{args.seconds[0]:g} s wav>`, {args.cold} runs): "
              f"p50 {np.median(cold):.2f} s, max {max(cold):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
