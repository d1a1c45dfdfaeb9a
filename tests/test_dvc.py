"""DVC on a built tiny project: record a Snakemake run, then a training hyper-parameter change reruns
exactly the training stages that read it (real git + dvc)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, write_params
from test_workflow import tree_digest

PASSAGE_STAGES = {f"train_passage-{v}" for v in ("rnn", "rnn_ft", "rnn_fz", "rnn_ft_cca", "rnn_fz_cca")}


def run(cwd: Path, *cmd: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
           "PYTHONPATH": str(REPO), "DVC_NO_ANALYTICS": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert res.returncode == 0, f"{cmd}: {res.stdout[-2000:]}{res.stderr[-2000:]}"
    return res


@pytest.fixture(scope="module")
def dvc_project(two_runs, tmp_path_factory):
    wd = tmp_path_factory.mktemp("dvc") / "project"
    shutil.copytree(two_runs[0], wd, ignore=shutil.ignore_patterns(".snakemake"))
    for name in ("Snakefile", ".gitignore"):
        shutil.copy(REPO / name, wd / name)
    for name in ("workflow", "pipeline"):
        shutil.copytree(REPO / name, wd / name, ignore=shutil.ignore_patterns("__pycache__"))
    # the tiny project's own params (fewer sweep dimensions): its dvc.yaml compiled from its workflow
    run(wd, sys.executable, "-m", "pipeline.core.dvcyaml")
    run(wd, "git", "init", "-q")
    run(wd, "dvc", "init", "-q")
    run(wd, "git", "add", "-A")
    run(wd, "git", "commit", "-qm", "tiny project")
    return wd


def test_recorded_snakemake_run_then_param_change_reruns_only_training(dvc_project):
    wd = dvc_project
    run(wd, "dvc", "commit", "-f", "-q")                    # record what Snakemake built
    assert "up to date" in run(wd, "dvc", "status").stdout
    p = yaml.safe_load((wd / "params.yaml").read_text())
    p["train_passage"]["margin"] = 0.4
    write_params(wd, p)
    status = run(wd, "dvc", "status", "--json").stdout
    changed = set(yaml.safe_load(status))
    sweep = {f"train_sweep-{d}" for d in p["experiments"]["dim_sweep"]["emb_dims"]}
    assert changed == PASSAGE_STAGES | sweep               # the dimension sweep trains with train_passage too
    out = run(wd, "dvc", "repro").stdout
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    evaluations = {"evaluate-" + s[len("train_passage-"):] for s in PASSAGE_STAGES} | {"evaluate_sweep"}
    assert PASSAGE_STAGES | sweep | evaluations <= ran
    # downstream tables/figures rerun only where an input's content changed; never data, the snippet
    # models, nor anything of BL
    forbidden = ("data", "train_snippet", "refine_cca", "evaluate-bl", "evaluate_tempo-bl")
    assert not [s for s in ran if s.startswith(forbidden)], ran
    assert "up to date" in run(wd, "dvc", "status").stdout
    metrics = run(wd, "dvc", "metrics", "show").stdout
    assert "models/passage/rnn_fz_cca/metrics.json" in metrics and "valid_mrr" in metrics
    plots = run(wd, "dvc", "plots", "show", "--json").stdout
    assert "results/training/rnn_ft/plots/metrics/valid/mrr.tsv" in plots
    assert "results/experiments/dim_sweep.csv" in plots and "retrieval_examples.png" in plots


def test_push_then_pull_in_a_fresh_clone_recomputes_nothing(dvc_project, tmp_path):
    wd = dvc_project
    run(wd, "dvc", "commit", "-f", "-q")                    # the run is recorded (as after a Snakemake run)
    remote = tmp_path / "dvc-remote"
    run(wd, "dvc", "remote", "add", "-d", "storage", str(remote))
    run(wd, "git", "add", "-A")
    run(wd, "git", "commit", "-qm", "record the run; directory remote")
    run(wd, "dvc", "push", "-q")
    assert len([f for f in remote.rglob("*") if f.is_file()]) > 30

    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(wd), str(clone))
    model = "models/snippet/model.pt"
    assert not (clone / model).exists() and not (clone / "data/dataset").exists()
    run(clone, "dvc", "pull", "-q")
    assert (clone / model).read_bytes() == (wd / model).read_bytes()
    assert tree_digest(clone / "data") == tree_digest(wd / "data")
    assert "up to date" in run(clone, "dvc", "status").stdout
    out = run(clone, "dvc", "repro").stdout
    assert "Running stage" not in out and "didn't change" in out, out[-2000:]
