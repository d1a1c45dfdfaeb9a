import copy

import pytest

from pipeline.core.errors import ConfigError
from pipeline.core.params import load, validate


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
    (lambda p: p["render"].update(valid_soundfont="sf_gmbank"), "valid_soundfont must differ"),
    (lambda p: p["evaluation"].update(ties="random"), "evaluation.ties"),
    (lambda p: p["training"].update(amp="maybe"), "training.amp"),
    (lambda p: p["refine_cca"].update(ridge=-1), "refine_cca.ridge"),
    (lambda p: p["train_passage"].update(pretrained_cnn_lr_scale=0), "train_passage.pretrained_cnn_lr_scale"),
    (lambda p: p["passage_variants"]["rnn_fz"].update(train_passage={"margn": 1}), "passage_variants.rnn_fz"),
    (lambda p: p["training"].update(fused_optimizer="sometimes"), "training.fused_optimizer"),
    (lambda p: p["piece_id"].update(model="att999"), "piece_id.model"),
    (lambda p: p["scenarios"]["sweep"].update(values=[0.1, -0.5]), "scenarios.sweep"),
    (lambda p: p["scenarios"]["sweep"].update(key="no_such_strength"), "scenarios.sweep"),
    (lambda p: p["scenarios"]["sweep"].update(models=["rnn_xyz"]), "scenarios.sweep.models"),
])
def test_invalid_params_name_the_key(base_params, edit, message):
    p = copy.deepcopy(base_params)
    edit(p)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        validate(p)


def _with_overlay(base_params, name):
    """params.yaml with config/<name> merged in, as `snakemake --configfile params.yaml config/<name>` does."""
    import yaml
    from conftest import REPO
    from snakemake.utils import update_config
    p = copy.deepcopy(base_params)
    update_config(p, yaml.safe_load((REPO / "config" / name).read_text()))
    return p


@pytest.mark.parametrize("overlay", ["anchor.yaml", "paper.yaml", "mutopia.yaml", "cpu.yaml"])
def test_overlays_give_valid_params(base_params, overlay):
    validate(_with_overlay(base_params, overlay))


def test_anchor_overlay_restores_every_anchor_behaviour(base_params):
    p = _with_overlay(base_params, "anchor.yaml")
    tp, ts = p["train_passage"], p["train_snippet"]
    assert (tp["train_gru"], tp["frozen_bn_updates"], tp["norm_bias_weight_decay"]) == (False, True, 0.01)
    assert not tp["mask_other_renderings"] and not ts["mask_other_renderings"] and ts["cca"]
    assert p["render"]["valid_soundfont"] in p["render"]["train_soundfonts"]        # lcasr validates on a training soundfont


def test_unreadable_params_file(tmp_path):
    (tmp_path / "p.yaml").write_text("seed: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(tmp_path / "p.yaml")
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "absent.yaml")


def test_paper_overlay_trains_every_variant_on_the_paper_schedule(base_params):
    """No quick-default override of a variant may survive into the paper-scale run."""
    from pipeline.models.train_passage import passage_params
    p = _with_overlay(base_params, "paper.yaml")
    for variant in p["passage_variants"]:
        tp = passage_params(p, variant)
        assert (tp["epochs"], tp["n_train"], tp["batch_size"]) == (180, 16384, 64), variant


def test_set_overrides_one_key_checked_against_its_schema(base_params):
    from pipeline.core.params import override
    p = override(base_params, "scenarios.performed.reverb.rt60_s=1.2")
    assert p["scenarios"]["performed"]["reverb"]["rt60_s"] == 1.2
    assert base_params["scenarios"]["performed"]["reverb"]["rt60_s"] != 1.2       # the caller's mapping is untouched
    assert override(base_params, "scenarios.performed.tempo_ratios=null")["scenarios"]["performed"]["tempo_ratios"] is None
    for bad, message in [("scenarios.performed.reverb.rt60_s=-1", "minimum"), ("scenarios.scan.nope=1", "no such key"),
                         ("scenarios.scan.blur_sigma", "KEY=VALUE"), ("scenarios.scan.binarize=maybe", "boolean")]:
        with pytest.raises(ConfigError, match=message):
            override(base_params, bad)
    with pytest.raises(ConfigError, match="not among the parameters"):          # a key the stage does not read
        override({"seed": 1}, "scenarios.scan.blur_sigma=1")


def test_piece_id_model_may_be_a_snippet_variant(base_params):
    from pipeline.core.variants import piece_id_model_dir
    p = copy.deepcopy(base_params)
    assert piece_id_model_dir(p) == "snippet_cca"
    p["piece_id"]["model"] = "att42"
    validate(p)
    assert piece_id_model_dir(p) == "snippet_variant_cca/att42"
