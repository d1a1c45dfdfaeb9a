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
    from pipeline.params import load
    return load(REPO / "params.yaml")


def tiny_corpus_params(base_params: dict) -> dict:
    """params for the tiny test corpus: 2 train soundfonts, 1 random performance, 2 test tempi."""
    p = copy.deepcopy(base_params)
    p["corpus"].update({"source": "mutopia", "mutopia_root": str(TEST_MUTOPIA),
                        "splits": {"file": str(TEST_MUTOPIA / "splits.yaml"), "rename": {"valid": "test"},
                                   "carve_valid": 0, "default_split": "train"}})
    p["render"].update({"train_soundfonts": ["timgm6mb", "opl3"], "n_random_performances": 1,
                        "test_tempo_ratios": [1.0, 2.0]})
    p["figures"]["n_pieces"] = 2
    return p


@pytest.fixture
def small_params(base_params) -> dict:
    return tiny_corpus_params(base_params)


def as_json(params: dict, *sections: str) -> str:
    return json.dumps({s: params[s] for s in sections} if sections else params)


def write_params(folder: Path, params: dict) -> Path:
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path
sys.path.insert(0, str(Path(__file__).parent))
