"""The data part through SLURM against the same build run locally: wall times and their ratio.

Builds the ``data`` target of the tiny test corpus (tests/data; ``--corpus default``: the default
music21 corpus of params.yaml, 78 pieces) twice in fresh folders: locally
(``--cores 2``) and through ``--executor slurm`` with ``profiles/slurm`` on the single-node test cluster
of ``tests/slurm_cluster.py`` (started and stopped here; needs root and SLURM installed, as the
cluster test). Prints both wall times, the ratio (goal <= 1.5) and the SLURM jobs submitted.

    sudo .venv/bin/python benchmarks/cluster_data.py [--corpus default] [--log SLURM_LOG]
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO)]

from conftest import tiny_corpus_params, write_params  # noqa: E402
from slurm_cluster import SingleNodeSlurm  # noqa: E402
from test_cluster import cluster_test_profile  # noqa: E402

from pipeline.core.params import load  # noqa: E402


def build(workdir: Path, *extra: str) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "data",
           "--configfile", str(workdir / "params.yaml"), *extra]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    if res.returncode:
        sys.exit(res.stderr[-3000:])
    return wall, res.stdout + res.stderr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", choices=["tiny", "default"], default="tiny")
    ap.add_argument("--log", type=Path, help="keep the SLURM run's Snakemake log here")
    args = ap.parse_args()
    params = load(REPO / "params.yaml")
    if args.corpus == "tiny":
        params = tiny_corpus_params(params)
    with tempfile.TemporaryDirectory(prefix="scorelink-cluster-data-") as tmp:
        tmp = Path(tmp)
        local, cluster = tmp / "local", tmp / "cluster"
        for wd in (local, cluster):
            wd.mkdir()
            write_params(wd, params)
        local_wall, _ = build(local, "--cores", "2")
        profile = cluster_test_profile(tmp / "profile")
        with SingleNodeSlurm(tmp / "slurm"):
            cluster_wall, log = build(cluster, "--workflow-profile", str(profile), "--verbose")
    if args.log:
        args.log.write_text(log)
    jobs = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    print(yaml.safe_dump({"corpus": args.corpus, "local_wall_s": round(local_wall, 1), "slurm_wall_s": round(cluster_wall, 1),
                          "slurm_jobs": len(jobs), "ratio_slurm_over_local": round(cluster_wall / local_wall, 2),
                          "goal": "<= 1.5"}, sort_keys=False), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
