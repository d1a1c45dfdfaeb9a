"""Development-corpus tier: real Mutopia sources from ../shared/corpus (skipped when absent)."""
import json
import subprocess
import sys
from collections import Counter

import pytest
import yaml
from conftest import REPO, SHARED_CORPUS, as_json

pytestmark = pytest.mark.corpus


@pytest.fixture
def mutopia_params(base_params):
    import copy
    p = copy.deepcopy(base_params)
    overlay = yaml.safe_load((REPO / "config" / "mutopia.yaml").read_text())
    p["corpus"].update(overlay["corpus"])
    p["corpus"]["mutopia_root"] = str(SHARED_CORPUS / "mutopia")
    p["corpus"]["splits"]["file"] = str(SHARED_CORPUS / "splits" / "msmd_split_trainvalid.yaml")
    return p


def test_every_msmd_name_resolves_and_splits_are_built(mutopia_params):
    from pipeline.data.corpus import piece_index
    idx = piece_index(mutopia_params)
    assert idx.missing == []
    assert Counter(p.split for p in idx.pieces) == {"train": 295, "test": 48, "valid": 30}
    manifest = {row.split(",")[0]: row.split(",")[3] for row in
                (SHARED_CORPUS / "mutopia" / "MANIFEST.csv").read_text().splitlines()[1:]}
    for p in idx.pieces:   # our resolution agrees with the corpus manifest's main file
        assert manifest[p.name].endswith(p.main), p.name


@pytest.mark.parametrize("name", ["BachJS__BWV772__bach-invention-01", "SchumannR__O68__schumann-op68-14-petite-etude"])
def test_real_pieces_engrave_and_align_exactly(tmp_path, mutopia_params, name):
    from pipeline.data.corpus import piece_index
    piece = next(p for p in piece_index(mutopia_params).pieces if p.name == name)
    out = tmp_path / "score"
    res = subprocess.run([sys.executable, "-m", "pipeline.data.engrave", "--piece", name, "--source", piece.source,
                          "--main", piece.main, "--out", str(out), "--params-json", as_json(mutopia_params, "engrave")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    status = json.loads((out / "status.json").read_text())
    assert status["ok"], status
    report = json.loads((out / "alignment.json").read_text())
    assert report["noteheads_matched_ratio"] >= 0.99 and report["onsets_covered_ratio"] >= 0.99
