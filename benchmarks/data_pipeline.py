"""Benchmark of the data side: where the time goes, and how well the workflow uses the tools/cores.

Runs the real workflow twice on the same pieces in fresh folders (``--cores 1`` then ``--cores 2``)
and prints, from the per-piece timings every stage writes (``logs/timings``):

* time per piece split into LilyPond, fluidsynth, music21 conversion, features and our own overhead;
* ratio (pipeline wall time, 1 core) / (LilyPond + fluidsynth own time)   goal <= 1.15
  (``lilypond`` only), the same with LilyPond's converters counted as LilyPond (``musicxml2ly`` of the
  music21 works, ``convert-ly`` of old Mutopia sources: LilyPond programs, run as their own processes),
  and the same over all the work a build must do (+ music21's own conversion + spectrograms): what is
  left is pure overhead (process start-ups, imports, our bookkeeping, Snakemake)
* speedup of ``--cores 2`` over ``--cores 1``                                goal >= 1.8

Or, with ``--summarize DIR``, only summarise the timings of a run already made in DIR.

    python benchmarks/data_pipeline.py                       # default music21 corpus
    python benchmarks/data_pipeline.py --configfile config/mutopia.yaml --pieces 40
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def summarize(run: Path) -> dict:
    """Sum the per-piece stage timings of a finished run [s]."""
    parts = ("lilypond", "fluidsynth", "music21", "musicxml2ly", "convert_ly", "features")
    tot = {"pieces": 0, **{k: 0.0 for k in parts}, "stage_total": 0.0}
    for f in sorted((run / "logs" / "timings").rglob("*.json")):
        t = json.loads(f.read_text())
        tot["stage_total"] += t["total"]
        for k in parts:
            tot[k] += t.get(k, 0.0)
        tot["pieces"] += t["stage"] == "engrave"
    tot["tools"] = tot["lilypond"] + tot["fluidsynth"]
    tot["music21_own"] = tot["music21"] - tot["musicxml2ly"]        # music21 part includes its musicxml2ly call
    tot["tools_converters"] = tot["tools"] + tot["musicxml2ly"] + tot["convert_ly"]
    tot["work"] = tot["tools_converters"] + tot["music21_own"] + tot["features"]
    return tot


def run_workflow(params: dict, cores: int) -> tuple[float, Path]:
    work = Path(tempfile.mkdtemp(prefix=f"scorelink-bench-{cores}c-"))
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "snakemake", "data", "-s", str(REPO / "Snakefile"), "-d", str(work),
                          "--cores", str(cores), "--quiet", "--configfile", str(work / "params.yaml")],
                         capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode:
        sys.exit(res.stderr[-2000:])
    return wall, work


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", default=None, help="params overlay (e.g. config/mutopia.yaml)")
    ap.add_argument("--pieces", type=int, default=None, help="only the first N pieces of the index")
    ap.add_argument("--summarize", type=Path, default=None, help="summarise an existing run folder instead")
    ap.add_argument("--keep", action="store_true", help="keep the run folders")
    args = ap.parse_args(argv)
    if args.summarize:
        s = summarize(args.summarize)
        print(json.dumps({k: round(v, 2) for k, v in s.items()}, indent=1))
        return 0
    sys.path.insert(0, str(REPO))
    from pipeline.data.corpus import piece_index
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    if args.configfile:
        overlay = yaml.safe_load(Path(args.configfile).read_text())
        params["corpus"].update(overlay.get("corpus", {}))
        for key in ("mutopia_root",):
            if key in params["corpus"] and not Path(params["corpus"][key]).is_absolute():
                params["corpus"][key] = str((REPO / params["corpus"][key]).resolve())
        split_file = params["corpus"]["splits"].get("file")
        if split_file and not Path(split_file).is_absolute():
            params["corpus"]["splits"]["file"] = str((REPO / split_file).resolve())
    if args.pieces:
        params["corpus"]["pieces"] = [p.name for p in piece_index(params).pieces[: args.pieces]]
    params["figures"]["n_pieces"] = 0
    results = {}
    for cores in (1, 2):
        wall, work = run_workflow(params, cores)
        results[cores] = (wall, summarize(work))
        if not args.keep:
            shutil.rmtree(work)
    wall1, s = results[1]
    n = max(1, s["pieces"])
    own = s["stage_total"] - s["work"]
    print(f"pieces: {s['pieces']}")
    print(f"per piece [s]: lilypond {s['lilypond'] / n:.2f}  fluidsynth {s['fluidsynth'] / n:.2f}  "
          f"musicxml2ly {s['musicxml2ly'] / n:.2f}  convert-ly {s['convert_ly'] / n:.2f}  "
          f"music21 (own) {s['music21_own'] / n:.2f}  features {s['features'] / n:.2f}  own overhead in stages {own / n:.2f}  "
          f"workflow overhead (start-ups, imports, Snakemake) {(wall1 - s['stage_total']) / n:.2f}")
    print(f"wall --cores 1: {wall1:.1f} s   --cores 2: {results[2][0]:.1f} s")
    print(f"ratio wall(1 core) / (lilypond + fluidsynth): {wall1 / s['tools']:.3f}   (goal <= 1.15)")
    print(f"ratio wall(1 core) / (lilypond, musicxml2ly, convert-ly + fluidsynth): {wall1 / s['tools_converters']:.3f}")
    print(f"ratio wall(1 core) / all work (+ music21's own conversion + features): {wall1 / s['work']:.3f}")
    print(f"lower bound of the first ratio with zero overhead: {s['work'] / s['tools']:.3f}")
    print(f"speedup --cores 2 over --cores 1: {wall1 / results[2][0]:.3f}   (goal >= 1.8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
