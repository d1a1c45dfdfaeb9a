"""Shared test fixtures: repository paths, the tiny Mutopia-layout corpus, parameter sets."""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
TEST_MUTOPIA = DATA / "mutopia"
SHARED_CORPUS = REPO.parent / "shared" / "corpus"


def pytest_collection_modifyitems(config, items):
    if (SHARED_CORPUS / "mutopia" / "ftp").is_dir():
        return
    skip = pytest.mark.skip(reason="../shared/corpus not present (development-corpus tier)")
    for item in items:
        if "corpus" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def base_params() -> dict:
    """The repository's params.yaml (validated)."""
    from pipeline.core.params import load
    return load(REPO / "params.yaml")


def tiny_corpus_params(base_params: dict) -> dict:
    """params for the tiny test corpus: 2 train soundfonts, 1 random performance, 2 test tempi (ρ 0.5, 1)."""
    p = copy.deepcopy(base_params)
    p["corpus"].update({"source": "mutopia", "mutopia_root": str(TEST_MUTOPIA),
                        "splits": {"file": str(TEST_MUTOPIA / "splits.yaml"),
                                   "rename": {"valid": "test", "holdout": "valid"},
                                   "carve_valid": 0, "default_split": "train"}})
    p["render"].update({"train_soundfonts": ["timgm6mb", "opl3"], "n_random_performances": 1,
                        "test_tempo_ratios": [0.5, 1.0]})
    p["figures"]["n_pieces"] = 2
    return tiny_training(p)


def tiny_training(p: dict) -> dict:
    """A few steps of every model on tiny data: the CI stand-in for GPU training."""
    p["training"].update({"device": "cpu", "amp": False, "threads": 2})
    p["train_snippet"].update({"epochs": 2, "n_train": 64, "n_valid": 32, "batch_size": 16})
    p["refine_cca"]["n_pairs"] = 128
    p["train_passage"].update({"epochs": 2, "n_train": 16, "batch_size": 8, "n_valid": 64})
    for v in p["passage_variants"].values():
        v.pop("train_passage", None)
    # the tiny train split is one system in three renderings: with them masked no negatives are left
    p["train_snippet"]["mask_other_renderings"] = p["train_passage"]["mask_other_renderings"] = False
    p["experiments"]["dim_sweep"].update({"emb_dims": [8, 16], "train_passage": {"epochs": 1}})
    p["experiments"]["sanity"].update({"n_queries": 2, "top_k": 3})
    return p


@pytest.fixture
def small_params(base_params) -> dict:
    return tiny_corpus_params(base_params)


@pytest.fixture
def params(small_params) -> dict:
    return small_params


@pytest.fixture
def project(two_runs, monkeypatch):
    """Run a of the tiny workflow (data, pack, tiny models, piece identification), as the working directory."""
    monkeypatch.chdir(two_runs[0])
    return two_runs[0]


def snakemake(workdir: Path, *extra: str):
    """The real Snakemake on the repository's Snakefile in ``workdir`` (params from workdir/params.yaml)."""
    import subprocess
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2",
           *extra, "--configfile", str(workdir / "params.yaml")]
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.fixture(scope="session")
def two_runs(tmp_path_factory):
    """Two clean Snakemake runs of the tiny corpus: ``a`` builds everything (data + tiny models),
    ``b`` only the data (``data`` target)."""
    from pipeline.core.params import load
    p = tiny_corpus_params(load(REPO / "params.yaml"))
    runs = []
    for name, target in (("a", ["all", "identification"]), ("b", ["data"])):
        wd = tmp_path_factory.mktemp(f"run_{name}")
        write_params(wd, p)
        res = snakemake(wd, *target)
        assert res.returncode == 0, res.stderr[-3000:]
        runs.append(wd)
    return runs


def as_json(params: dict, *sections: str) -> str:
    return json.dumps({s: params[s] for s in sections} if sections else params)


def write_params(folder: Path, params: dict) -> Path:
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path
sys.path.insert(0, str(Path(__file__).parent))
