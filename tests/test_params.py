import copy

import pytest

from pipeline.errors import ConfigError
from pipeline.params import load, validate


def test_repository_params_are_valid(base_params):
    assert base_params["corpus"]["source"] == "music21"


@pytest.mark.parametrize("edit,message", [
    (lambda p: p["engrave"].update(min_onsets_covered=1.5), "engrave.min_onsets_covered"),
    (lambda p: p["corpus"].update(source="imslp"), "corpus.source"),
    (lambda p: p["render"].update(test_soundfont="nope"), "'nope' is not defined"),
    (lambda p: p["render"].update(test_soundfont="opl3"), "also a training soundfont"),
    (lambda p: p["render"]["soundfonts"]["opl3"].update(file="/missing.sf2"), "render.soundfonts.opl3.file"),
    (lambda p: p["render"].update(test_tempo_ratios=[0.5]), "must include 1.0"),
    (lambda p: p["train_passage"].update(lr=-1), "train_passage.lr"),
    (lambda p: p["passage_variants"]["rnn"].update(init="imagenet"), "passage_variants.rnn.init"),
    (lambda p: p["passage_variants"]["rnn"].update(freeze_cnn=True), "passage_variants.rnn: freeze_cnn needs"),
    (lambda p: p["training"].update(device="tpu"), "training.device"),
    (lambda p: p["train_snippet"].update(epoch=3), "train_snippet"),
])
def test_invalid_params_name_the_key(base_params, edit, message):
    p = copy.deepcopy(base_params)
    edit(p)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        validate(p)


def test_unreadable_params_file(tmp_path):
    (tmp_path / "p.yaml").write_text("seed: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(tmp_path / "p.yaml")
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "absent.yaml")
