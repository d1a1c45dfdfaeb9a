"""Training stages on the tiny corpus built by the real workflow: variants, anchor switches, SIGKILL resume."""
import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import REPO, as_json

VARIANTS = ("rnn", "rnn_ft", "rnn_fz", "rnn_ft_cca", "rnn_fz_cca")


def test_workflow_trains_every_model(project):
    for name in ("snippet", "snippet_cca", *[f"passage/{v}" for v in VARIANTS]):
        metrics = json.loads((project / "models" / name / "metrics.json").read_text())
        assert 0 < metrics["valid_mrr"] <= 1, name
        assert (project / "models" / name / "model.pt").is_file()
    for name in ("snippet", *VARIANTS):
        curve = pd.read_csv(project / "results/training" / name / "plots/metrics/valid/mrr.tsv", sep="\t")
        assert list(curve.step) == [0, 1], name
    refine = json.loads((project / "models/snippet_cca/metrics.json").read_text())
    assert refine["n_pairs"] == 128
    assert (project / "logs/train/rnn_fz_cca.log").is_file()
    assert (project / "logs/benchmarks/train/snippet.tsv").is_file()


def test_workflow_evaluates_every_model_into_table2(project):
    table = pd.read_csv(project / "results/tables/table2.csv")
    assert list(table.model[:6]) == ["BL", "RNN", "RNN-FT", "RNN-FZ", "RNN-FT-CCA", "RNN-FZ-CCA"]
    assert set(table.direction) == {"A2S", "S2A"} and table.MRR.between(0, 1).all()
    m = json.loads((project / "results/metrics/rnn.json").read_text())
    assert m["tempo"] == 1.0 and m["a2s"]["n_queries"] == m["n_passages"] >= 2


def _train(params, variant, tmp, init=None, **overrides):
    from pipeline.models.train_passage import train
    p = copy.deepcopy(params)
    p["train_passage"].update(overrides)
    return train(p, variant, Path("data/dataset"), init, tmp / "out", tmp / "live", tmp / "ck.pt", log=lambda m: None)


def _initial(params, variant, init=None):
    from pipeline.models.train_passage import build_model
    from pipeline.models.training import setup_torch
    setup_torch(params["seed"], None)
    return build_model(params["train_passage"], params["passage_variants"][variant],
                       params["train_passage"]["emb_dim"], init).state_dict()


def _trained(tmp):
    return torch.load(tmp / "out/model.pt", weights_only=False)["state_dict"]


@pytest.mark.parametrize("train_gru", [True, False])
def test_gru_is_trained_unless_the_anchor_switch_says_otherwise(project, params, tmp_path, train_gru):
    _train(params, "rnn", tmp_path, train_gru=train_gru)
    before, after = _initial(params, "rnn"), _trained(tmp_path)
    gru = [k for k in before if ".rnn." in k]
    assert len(gru) == 8
    changed = [k for k in gru if not torch.equal(before[k], after[k])]
    assert (changed == gru) if train_gru else (changed == [])
    assert not torch.equal(before["sheet.fc.weight"], after["sheet.fc.weight"])


@pytest.mark.parametrize("leak", [False, True])
def test_frozen_cnn_keeps_weights_and_batchnorm_statistics(project, params, tmp_path, leak):
    init = Path("models/snippet_cca/model.pt")
    _train(params, "rnn_fz_cca", tmp_path, init, frozen_bn_updates=leak)
    snippet = torch.load(init, weights_only=False)["state_dict"]
    after = _trained(tmp_path)
    cnn = {k[len("sheet_net."):]: v for k, v in snippet.items() if k.startswith("sheet_net.")}
    weights = [k for k in cnn if "running" not in k and "num_batches" not in k]
    stats = [k for k in cnn if "running_mean" in k]
    assert all(torch.equal(cnn[k], after["sheet.cnn." + k]) for k in weights)
    same_stats = all(torch.equal(cnn[k], after["sheet.cnn." + k]) for k in stats)
    assert same_stats != leak                     # the anchor's leak moves BN statistics; ours does not
    assert torch.equal(snippet["cca.U"], after["sheet.cca_u"]) and torch.equal(snippet["cca.V"], after["audio.cca_u"])


def test_cached_frozen_features_train_the_same_model(project, params, tmp_path):
    from pipeline.models.embedding import FeatureCache, embed_cached, embed_passages, load_passage_model
    from pipeline.models.snippets import load_split
    init = Path("models/snippet_cca/model.pt")
    for cache in (True, False):
        _train(params, "rnn_fz_cca", tmp_path / str(cache), init, cache_frozen_features=cache)
    # the same loss on the same first batch (later steps may part: Adam's normalised first steps turn
    # float rounding on near-zero gradients into full-size steps, so weights are not compared)
    first = [pd.read_csv(tmp_path / str(c) / "live/plots/metrics/train/loss.tsv", sep="\t").loss.iloc[0] for c in (True, False)]
    assert first[0] == pytest.approx(first[1], rel=1e-4)
    # and the same model: cached features give the embeddings of the full forward pass
    model, meta = load_passage_model(tmp_path / "True/out/model.pt")
    bank = load_split(Path("data/dataset"), "valid", tempo_range=(1.0, 1.0))
    hops, rows = (meta["sheet_hop_half_px"], meta["audio_hop_frames"]), np.arange(len(bank.passages))
    cached = embed_cached(model, FeatureCache(model, bank, hops, None, log=lambda m: None), rows)
    full = embed_passages(model, bank, rows, hops)
    for c, f in zip(cached, full):
        torch.testing.assert_close(c, f, atol=1e-4, rtol=1e-4)
    ma, mb = (json.loads((tmp_path / str(c) / "out/metrics.json").read_text()) for c in (True, False))
    assert ma["valid"]["n"] == mb["valid"]["n"]


def _cli(project, params, out: Path, variant="rnn"):
    return [sys.executable, "-m", "pipeline.models.train_passage", "--variant", variant, "--out", str(out / "model"),
            "--live", str(out / "live"), "--checkpoint", str(out / "ck.pt"), "--params-json", as_json(params)]


def test_sigkill_then_resume_equals_an_uninterrupted_run(project, params, tmp_path):
    params["train_passage"].update({"epochs": 4, "n_train": 32})
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(_cli(project, params, whole), check=True, env=env, capture_output=True)
    proc = subprocess.Popen(_cli(project, params, killed), env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (killed / "ck.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert torch.load(killed / "ck.pt", weights_only=False)["state"]["epoch"] < 4
    res = subprocess.run(_cli(project, params, killed), env=env, capture_output=True, text=True)
    assert res.returncode == 0 and "resuming from" in res.stderr
    a, b = (torch.load(d / "model/model.pt", weights_only=False)["state_dict"] for d in (whole, killed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for rel in ("model/metrics.json", "live/metrics.json", "live/plots/metrics/valid/mrr.tsv",
                "live/plots/metrics/train/loss.tsv"):
        assert (whole / rel).read_text() == (killed / rel).read_text(), rel


def test_a_checkpoint_for_other_parameters_is_not_reused(project, params, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(_cli(project, params, tmp_path), check=True, env=env, capture_output=True)
    params["train_passage"]["margin"] = 0.5
    res = subprocess.run(_cli(project, params, tmp_path), env=env, capture_output=True, text=True)
    assert res.returncode == 0 and "ignoring" in res.stderr and "resuming" not in res.stderr


def test_variant_needing_an_init_model_fails_clearly(project, params, tmp_path):
    with pytest.raises(ValueError, match="needs --init"):
        _train(params, "rnn_ft", tmp_path)


def test_evaluation_at_every_tempo_computes_the_sheet_side_once_with_the_same_result(project, params):
    from pipeline.evaluation.evaluate import evaluate
    quiet = lambda m: None                                                              # noqa: E731
    tempi = params["render"]["test_tempo_ratios"]
    for model in (Path("models/snippet/model.pt"), Path("models/passage/rnn_ft/model.pt")):
        memo = {}
        shared = [evaluate(params, model, Path("data/dataset"), "test", t, quiet, sheet_memo=memo) for t in tempi]
        alone = [evaluate(params, model, Path("data/dataset"), "test", t, quiet) for t in tempi]
        assert memo, model
        for s, a in zip(shared, alone):
            assert s["a2s"] == a["a2s"] and s["s2a"] == a["s2a"], model


def test_a_step_with_non_finite_gradients_is_skipped(tmp_path):
    from pipeline.models.training import Schedule, fit
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    bad_step = {"n": 0}

    def loss_fn(m, batch):
        bad_step["n"] += 1
        out = m(batch).pow(2).mean()
        return out * float("nan") if bad_step["n"] == 2 else out          # the second step's gradient is NaN

    sched = Schedule(epochs=1, lr=0.1, weight_decay=0.0, norm_bias_weight_decay=0.0, lr_factor=0.5, lr_patience=5, min_lr=0.0)
    batches = lambda gen: [torch.randn(8, 4, generator=gen) for _ in range(3)]          # noqa: E731
    logs = []
    state = fit(model, sched=sched, seed=0, device=torch.device("cpu"), amp=False, batches=batches, loss_fn=loss_fn,
                validate=lambda: {"MRR": 0.5, "MRR_ci95": [0.4, 0.6], "n": 2, "chance_MRR": 0.75},
                checkpoint=tmp_path / "ck.pt", live_dir=tmp_path / "live", fp="x", log=logs.append)
    assert all(torch.isfinite(v).all() for v in state["best_state"].values())
    assert "1 step(s) with non-finite gradients skipped" in logs[-1]
