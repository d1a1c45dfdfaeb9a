"""The SLURM profile: portable resources on every rule, GPUs for training only, and a real run of the
workflow through ``--executor slurm`` on a single-node cluster started here (tests/slurm_cluster.py)."""
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from slurm_cluster import ClusterUnavailable, SingleNodeSlurm
from test_workflow import data_digest

PROFILE = REPO / "profiles" / "slurm" / "profile.yaml"
TRAINING_RULES = {"train_snippet", "refine_cca", "train_passage", "train_sweep"}


def rule_blocks() -> dict[str, str]:
    """rule name -> its text, for every rule of the workflow."""
    blocks = {}
    for smk in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        # `rule name:`, or a rule defined in a loop: `rule:` + `name: f"piece_{_batch}"` (one per batch)
        text = re.sub(r"^( *)rule:\n\s+name:\n\s+f\"(\w+)_\{\w+\}\"\n", r"rule \2:\n", smk.read_text(), flags=re.M)
        parts = re.split(r"^rule (\w+):\n", text, flags=re.M)
        blocks.update(zip(parts[1::2], parts[2::2]))
    return blocks


def test_every_rule_with_a_command_declares_threads_memory_and_runtime():
    blocks = {name: text for name, text in rule_blocks().items() if "    shell:" in text}
    assert len(blocks) >= 16
    lacking = {name: [key for key in ("threads:", "mem_mb=", "runtime=") if key not in text]
               for name, text in blocks.items()}
    assert {name: keys for name, keys in lacking.items() if keys} == {}
    assert "slurm" not in "".join(blocks.values())              # cluster facts live in the profile only


def test_profile_asks_a_gpu_for_the_training_rules_only_and_comments_cluster_facts():
    text = PROFILE.read_text()
    profile = yaml.safe_load(text)
    assert profile["executor"] == "slurm" and "slurm_extra" not in text
    gpu_rules = {rule for rule, res in profile["set-resources"].items() if res.get("gpu")}
    assert gpu_rules == TRAINING_RULES
    assert set(profile["set-resources"]) <= set(rule_blocks())
    fact_lines = [line for line in text.splitlines() if re.match(r"\s*slurm_(partition|account):", line)]
    assert fact_lines and all("# CLUSTER FACT" in line for line in fact_lines)
    assert set(profile["groups"]) <= set(rule_blocks())
    assert not TRAINING_RULES & set(profile["groups"])          # a GPU job is never bundled


def cluster_test_profile(dst: Path) -> Path:
    """profiles/slurm with its cluster facts set for the test cluster (partition debug, no accounting)."""
    profile = yaml.safe_load(PROFILE.read_text())
    profile["default-resources"] = {"slurm_partition": "debug"}
    for res in profile["set-resources"].values():
        res["slurm_partition"] = "debug"
    profile.update({"slurm-no-account": True, "slurm-status-command": "squeue",   # no slurmdbd here
                    "slurm-init-seconds-before-status-checks": 2})
    dst.mkdir(parents=True)
    (dst / "profile.yaml").write_text(yaml.safe_dump(profile))
    return dst




@pytest.mark.slow
def test_workflow_through_slurm_equals_the_local_run(two_runs, tmp_path):
    local = two_runs[0]
    wd = tmp_path / "cluster_run"
    wd.mkdir()
    (wd / "params.yaml").write_text((local / "params.yaml").read_text())
    profile = cluster_test_profile(tmp_path / "profile")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(wd),
           "--workflow-profile", str(profile), "--configfile", str(wd / "params.yaml"), "--verbose",
           "data", "models/snippet/model.pt"]
    cluster = SingleNodeSlurm(tmp_path / "slurm")
    try:
        with cluster:
            start = time.time()
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            wall = time.time() - start
            jobs = cluster.jobs()
    except ClusterUnavailable as why:
        pytest.skip(str(why))
    assert cluster.running() == []                             # every daemon started here is stopped
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-4000:]

    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    assert submitted and set(submitted) <= set(jobs)           # the jobs really went through sbatch
    assert {jobs[j]["JobState"] for j in submitted} == {"COMPLETED"}
    per_rule = Counter(jobs[j]["Comment"] for j in submitted)
    # the data jobs (one per batch: train, valid and test pieces) and the alignment figures are bundled
    # into a single job (group `piece`); `dataset` runs where Snakemake runs (a local rule)
    assert per_rule == {"rule_piece_alignment_figure_piece_test_000_piece_train_000_piece_valid_000": 1,
                        "rule_train_snippet": 1}
    assert "localrule dataset:" in log
    # the GPU request reaches sbatch (--gpus=1) and the scheduler (gres) for the training job only
    calls = [line for line in log.splitlines() if line.startswith("sbatch call:")]
    assert [("--gpus=1" in c, "rule_train_snippet" in c) for c in calls].count((True, True)) == 1
    assert not [c for c in calls if "--gpus" in c and "rule_train_snippet" not in c]
    gpu_jobs = {jobs[j]["Comment"] for j in submitted if "gpu:1" in jobs[j].get("TresPerJob", "")}
    assert gpu_jobs == {"rule_train_snippet"}

    # outputs equal the local run's, byte for byte
    a, b = data_digest(local), data_digest(wd)
    assert a.keys() == b.keys() and [k for k in a if a[k] != b[k]] == []
    for path in ("models/snippet/model.pt", "results/figures/alignment/TestC__Op1__rondo.png"):
        assert (local / path).read_bytes() == (wd / path).read_bytes(), path
    finished = sum(1 for line in log.splitlines() if line.startswith('Finished jobid'))
    print(f"\ncluster test: {len(submitted)} SLURM jobs ({finished}"
          f" Snakemake jobs), wall {wall:.0f} s")
