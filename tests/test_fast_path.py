"""The sync-free training step (issue 15: the fast CUDA path), checked on the CPU where it runs the same code:
fused AdamW with the on-device non-finite check trains the same model as the default step, skips the same
steps, reads nothing back to the host inside a step, and resumes; the masked triplet loss equals the
indexed one; torch.compile trains the same model."""
import copy
import dataclasses

import pytest
import torch

from pipeline.models.networks import SnippetModel, triplet_loss
from pipeline.models.training import Schedule, Stepper, fit, optimizer_groups

CPU = torch.device("cpu")
SCHED = Schedule(epochs=2, lr=1e-3, weight_decay=1e-4, norm_bias_weight_decay=0.01, lr_factor=0.5, lr_patience=5, min_lr=0.0)
VALID = {"MRR": 0.5, "MRR_ci95": [0.4, 0.6], "n": 2, "chance_MRR": 0.75}


def _snippet_batches(gen, n=3, b=8):
    return [(torch.rand(b, 1, 80, 90, generator=gen), torch.rand(b, 1, 92, 20, generator=gen)) for _ in range(n)]


def _snippet_loss(bad_step=None, sync_free=None):
    calls = {"n": 0}

    def loss_fn(m, batch):
        calls["n"] += 1
        x, y = m(*batch)
        loss = triplet_loss(x, y, 2.0, sync_free=sync_free)     # margin 2: every pair contributes (random inputs)
        return loss * float("nan") if calls["n"] == bad_step else loss
    return loss_fn


def _small_net():
    """Conv + linear without BatchNorm: every parameter gets a real gradient (a bias before a BatchNorm gets
    only rounding noise, which Adam's normalisation turns into lr-sized steps either way)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 5, stride=4), torch.nn.Tanh(), torch.nn.AdaptiveAvgPool2d(2),
                               torch.nn.Flatten(), torch.nn.Linear(16, 8))


def _small_loss(bad_step=None):
    calls = {"n": 0}

    def loss_fn(m, batch):
        calls["n"] += 1
        loss = (m(batch[0]) - batch[1].mean()).pow(2).mean()
        return loss * float("nan") if calls["n"] == bad_step else loss
    return loss_fn


def _fit(model, tmp, fused, loss_fn, epochs=2, compile_model=False, logs=None):
    sched = dataclasses.replace(SCHED, epochs=epochs)
    return fit(model, sched=sched, seed=3, device=CPU, amp=False, batches=_snippet_batches, loss_fn=loss_fn,
               validate=lambda: VALID, checkpoint=tmp / "ck.pt", live_dir=tmp / "live", fp="fp", fused=fused,
               compile_model=compile_model, log=(logs.append if logs is not None else lambda m: None))


def _close(a: dict, b: dict, atol):
    for k in a:
        if a[k].is_floating_point():
            assert torch.allclose(a[k], b[k], atol=atol, rtol=0), (k, (a[k] - b[k]).abs().max())
        else:
            assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("grouped", [False, True])
def test_masked_triplet_loss_equals_the_indexed_one(symmetric, grouped):
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(16, 32, generator=g), dim=1)
    y = torch.nn.functional.normalize(torch.randn(16, 32, generator=g), dim=1)
    groups = torch.randint(0, 5, (16,), generator=g) if grouped else None
    a = triplet_loss(x, y, 0.6, symmetric, groups, sync_free=False)
    b = triplet_loss(x, y, 0.6, symmetric, groups, sync_free=True)
    assert torch.allclose(a, b, atol=1e-6)
    one = torch.zeros(3, dtype=torch.long)           # every row the same item: no negative, loss 0 both ways
    assert triplet_loss(x[:3], y[:3], 0.6, groups=one, sync_free=True) == 0 == triplet_loss(x[:3], y[:3], 0.6, groups=one)


def test_sync_free_step_trains_the_same_model_and_skips_the_same_steps(tmp_path):
    init = _small_net()
    runs = {}
    for fused in (False, True):
        logs = []
        model = copy.deepcopy(init)
        state = _fit(model, tmp_path / str(fused), fused, _small_loss(bad_step=2), logs=logs)
        runs[fused] = (model.state_dict(), state, logs)
    (w_ref, s_ref, log_ref), (w_fast, s_fast, log_fast) = runs[False], runs[True]
    _close(w_ref, w_fast, atol=1e-6)
    for r, f in zip(s_ref["history"], s_fast["history"]):
        assert f["train/loss"] == pytest.approx(r["train/loss"], rel=1e-6)
    assert "1 step(s) with non-finite gradients skipped" in log_ref[1] and "1 step(s)" in log_fast[1]
    assert "sync-free, fused AdamW" in log_fast[0] and "foreach AdamW" in log_ref[0]
    not_skipped = copy.deepcopy(init)          # the NaN step really changed something when it was skipped
    _fit(not_skipped, tmp_path / "ref", False, _small_loss(), logs=[])
    assert not torch.allclose(not_skipped.state_dict()["4.weight"], w_fast["4.weight"], atol=1e-4)


def test_sync_free_step_reads_nothing_back_to_the_host(monkeypatch):
    """Every way a tensor's value reaches Python (item, bool, int, float, tolist, numpy) raises inside the step."""
    torch.manual_seed(0)
    model = SnippetModel(use_cca=False)
    opt = torch.optim.AdamW(optimizer_groups(model, SCHED), lr=1e-3, fused=True)
    no_autocast = dict(device_type="cpu", dtype=torch.bfloat16, enabled=False)
    step = Stepper(model, opt, _snippet_loss(sync_free=True), no_autocast, sync_free=True)
    batch = _snippet_batches(torch.Generator().manual_seed(1), n=1)[0]

    def readback(*a, **k):
        raise AssertionError("host read-back inside the training step")
    with monkeypatch.context() as m:
        for name in ("item", "__bool__", "__int__", "__float__", "__index__", "tolist", "numpy"):
            m.setattr(torch.Tensor, name, readback)
        step(batch)
        step(batch)
    total, n, skipped = step.epoch_totals()
    assert n == 2 and skipped == 0 and total > 0


def test_sync_free_training_resumes_after_a_kill_like_the_default(tmp_path):
    torch.manual_seed(0)
    init = SnippetModel(use_cca=False)
    whole = copy.deepcopy(init)
    _fit(whole, tmp_path / "whole", True, _snippet_loss(sync_free=True), epochs=2)
    part = copy.deepcopy(init)
    _fit(part, tmp_path / "part", True, _snippet_loss(sync_free=True), epochs=1)          # "killed" after epoch 1
    logs = []
    resumed = copy.deepcopy(init)
    _fit(resumed, tmp_path / "part", True, _snippet_loss(sync_free=True), epochs=2, logs=logs)
    assert any("resuming" in m for m in logs)
    _close(whole.state_dict(), resumed.state_dict(), atol=0)


def test_compiled_training_trains_the_same_model(tmp_path):
    torch.manual_seed(0)
    init = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())

    def loss_fn(m, batch):
        return m(batch[0]).pow(2).mean()
    runs = []
    for compile_model in (False, True):
        model = copy.deepcopy(init)
        fit(model, sched=SCHED, seed=3, device=CPU, amp=False, batches=lambda gen: _snippet_batches(gen, b=4),
            loss_fn=loss_fn, validate=lambda: VALID, checkpoint=tmp_path / f"{compile_model}.pt",
            live_dir=tmp_path / f"live{compile_model}", fp="fp", compile_model=compile_model, log=lambda m: None)
        runs.append(model.state_dict())
    _close(runs[0], runs[1], atol=1e-5)
