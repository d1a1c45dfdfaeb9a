"""The training loop shared by every model stage: resumable, deterministic, logged with dvclive.

Determinism and resume: every random choice of epoch ``e`` (sampling, augmentation) comes from a
generator seeded with ``(seed, e)``, and a checkpoint is written atomically after each epoch
(model, optimiser, scheduler, history, best weights). A run killed at any point restarts from
the last finished epoch and, on CPU, ends with exactly the weights and metrics of an
uninterrupted run. The checkpoint stores a fingerprint of the stage's parameters and inputs;
a checkpoint from different settings is ignored (and said so), never silently reused.

Curves: dvclive (``dvcyaml=False``; dvc.yaml declares the plots) under ``live_dir``: train loss,
validation MRR and learning rate per epoch. On resume the history is replayed from the
checkpoint, so the curves equal those of an uninterrupted run.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch
from tqdm import tqdm


@dataclass
class Schedule:
    epochs: int
    lr: float
    weight_decay: float
    norm_bias_weight_decay: float   # lcasr gives norms/biases AdamW's default 0.01 (method.md §4.4)
    lr_factor: float
    lr_patience: int
    min_lr: float

    @classmethod
    def from_params(cls, p: dict) -> "Schedule":
        return cls(p["epochs"], p["lr"], p["weight_decay"], p["norm_bias_weight_decay"],
                   p["lr_schedule"]["factor"], p["lr_schedule"]["patience"], p["lr_schedule"]["min_lr"])


def pick_device(name: str) -> torch.device:
    """``auto``: CUDA when present, else CPU; or an explicit torch device name."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def use_bf16(setting: bool | str, device: torch.device) -> bool:
    """Resolve ``training.amp``: true / false, or ``auto`` = bfloat16 autocast where the hardware computes
    bfloat16 natively (a CUDA GPU with bf16, a CPU with AVX512-BF16 or AMX), float32 elsewhere (an
    emulated bfloat16 would be slower than float32). On one machine the choice, hence the run, is fixed."""
    if setting != "auto":
        return bool(setting)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    native = [getattr(torch.cpu, f, lambda: False) for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return device.type == "cpu" and any(f() for f in native)


def setup_torch(seed: int, threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def optimizer_groups(model: torch.nn.Module, sched: Schedule, exclude: Iterable[torch.nn.Parameter] = (),
                     slow: Iterable[torch.nn.Parameter] = (), slow_lr_scale: float = 1.0) -> list:
    """AdamW groups: conv/linear/recurrent weight matrices get ``weight_decay``, norms and biases
    ``norm_bias_weight_decay``. ``exclude``: parameters left out of the optimiser (anchor switches);
    ``slow``: parameters trained at ``slow_lr_scale`` x the learning rate (pretrained CNNs being
    fine-tuned). The first group is always a full-rate one (its lr is the one logged)."""
    skip, slow_ids = {id(p) for p in exclude}, {id(p) for p in slow}
    groups = {(s, d): [] for s in (False, True) for d in (True, False)}
    for p in model.parameters():
        if p.requires_grad and id(p) not in skip:
            groups[(id(p) in slow_ids and slow_lr_scale != 1.0, p.dim() > 1)].append(p)
    return [{"params": ps, "weight_decay": sched.weight_decay if decay else sched.norm_bias_weight_decay,
             "lr": sched.lr * (slow_lr_scale if is_slow else 1.0)}
            for (is_slow, decay), ps in groups.items() if ps or (not is_slow and decay)]


def fingerprint(params: dict, files: Iterable[Path]) -> str:
    h = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for f in sorted(map(str, files)):
        h.update(f.encode())
        h.update(Path(f).read_bytes())
    return h.hexdigest()[:16]


def atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")    # per process: concurrent writers never mix
    with open(tmp, "wb") as f:      # a file object: the archive's inner name is fixed, not the tmp name
        torch.save(obj, f)
    os.replace(tmp, path)


def _live(live_dir: Path, history: list):
    from dvclive import Live
    live = Live(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None, resume=False)
    for row in history:
        _log(live, row)
    return live


def _log(live, row: dict) -> None:
    for key in ("train/loss", "valid/mrr", "lr"):
        live.log_metric(key, row[key])
    live.next_step()


def finite_gradients(model: torch.nn.Module) -> bool:
    """Whether every gradient is finite. On the CPU under bfloat16 autocast, torch 2.13 now and then
    returns a NaN gradient for one convolution weight of the audio CNN, not reproducibly (seen in 2 of 4
    runs of the RNN from scratch on the default corpus, at different steps, the other weights bit-identical
    across the runs); :func:`fit` skips such a step instead of letting the NaN into the weights."""
    return all(bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None)


def use_fused(setting: bool | str, device: torch.device) -> bool:
    """Resolve ``training.fused_optimizer``: ``auto`` = the sync-free step (fused AdamW) on CUDA only, so
    the CPU default keeps the foreach AdamW and its exact results; true / false force it."""
    return device.type == "cuda" if setting == "auto" else bool(setting)


class Stepper:
    """One optimisation step (forward under autocast, backward, optional clipping, AdamW), two ways.

    ``sync_free=False`` (the CPU default): the loss is read back after every step and a step with a
    non-finite gradient is skipped on the host (one check per parameter). ``sync_free=True`` (CUDA's
    default, ``training.fused_optimizer``): nothing is read back inside the step. The gradients are
    checked on the device in one fused call, fused AdamW receives the flag as ``found_inf`` and skips
    the update (and its step count) on the device, and loss sums and step counts stay device tensors
    until :meth:`epoch_totals` reads them once per epoch. Both skip exactly the same steps.
    ``compiled``: the module the loss calls (``torch.compile`` of ``model`` under ``training.compile``).
    """

    def __init__(self, model, opt, loss_fn, autocast: dict, clip=None, sync_free: bool = False, compiled=None):
        self.model, self.opt, self.loss_fn, self.autocast, self.clip = model, opt, loss_fn, autocast, clip
        self.sync_free, self.forward_module = sync_free, compiled if compiled is not None else model
        self.params = list(model.parameters())     # every gradient is checked, as finite_gradients does
        dev = self.params[0].device if self.params else torch.device("cpu")
        self._one = torch.ones((), device=dev)
        self.reset()

    def reset(self) -> None:
        """Zero the epoch's totals: device tensors on the sync-free path, Python numbers on the host path."""
        zero = (lambda: torch.zeros((), device=self._one.device)) if self.sync_free else (lambda: 0)
        self.loss_sum, self.steps, self.skipped = zero(), zero(), zero()

    def __call__(self, batch) -> None:
        with torch.autocast(**self.autocast):
            loss = self.loss_fn(self.forward_module, batch)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip is not None:
            self.clip(self.model)
        if not self.sync_free:
            if not finite_gradients(self.model):
                self.skipped += 1      # one NaN step would turn every weight it touches into NaN for good
                return
            self.opt.step()
            self.loss_sum, self.steps = self.loss_sum + loss.item(), self.steps + 1
            return
        found_inf = torch.zeros((), device=self._one.device)
        grads = [p.grad for p in self.params if p.grad is not None]
        if grads:
            torch._amp_foreach_non_finite_check_and_unscale_(grads, found_inf, self._one)
        self.opt.found_inf = found_inf          # fused AdamW skips the update where found_inf is 1
        self.opt.step()
        kept = 1.0 - found_inf
        self.loss_sum += torch.where(found_inf > 0, 0.0, loss.detach().float())    # as the host path: skipped steps add nothing
        self.steps += kept
        self.skipped += found_inf

    def epoch_totals(self) -> tuple[float, int, int]:
        """(summed loss of the applied steps, applied steps, skipped steps) of the epoch: one read-back."""
        if not self.sync_free:
            return float(self.loss_sum), int(self.steps), int(self.skipped)
        total, steps, skipped = torch.stack([self.loss_sum, self.steps, self.skipped]).tolist()
        return total, int(round(steps)), int(round(skipped))


def fit(model: torch.nn.Module, *, sched: Schedule, seed: int, device: torch.device, amp: bool | str,
        batches: Callable[[torch.Generator], Iterable], loss_fn: Callable, validate: Callable[[], dict],
        checkpoint: Path, live_dir: Path, fp: str, exclude: Iterable = (), slow: Iterable = (),
        slow_lr_scale: float = 1.0, clip: Callable | None = None, fused: bool | str = "auto",
        compile_model: bool = False, log=print) -> dict:
    """Train ``model``; return ``{"best_state", "best_epoch", "best_mrr", "best_valid", "history"}``.

    ``batches(gen)`` yields one epoch of batches (all randomness from ``gen``); ``loss_fn(model,
    batch)`` returns the loss; ``validate()`` returns :func:`pipeline.core.metrics.validation_summary`
    (model already in eval mode); ``clip(model)`` runs after backward (gradient clipping).
    ``fused`` (``training.fused_optimizer``) selects the sync-free step of :class:`Stepper`;
    ``compile_model`` (``training.compile``) trains through ``torch.compile(model)`` (static shapes first,
    then dimensions found to vary are made dynamic: the passage batches' snippet counts).
    """
    model.to(device)
    sync_free = use_fused(fused, device)
    opt = torch.optim.AdamW(optimizer_groups(model, sched, exclude, slow, slow_lr_scale), lr=sched.lr,
                            fused=True if sync_free else None)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=sched.lr_factor,
                                                         patience=sched.lr_patience, min_lr=sched.min_lr)
    state = {"epoch": 0, "history": [], "best_mrr": -1.0, "best_epoch": -1, "best_state": None, "best_valid": None}
    if checkpoint.is_file():
        ck = torch.load(checkpoint, map_location=device, weights_only=False)
        if ck.get("fingerprint") == fp:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            plateau.load_state_dict(ck["scheduler"])
            state = ck["state"]
            log(f"resuming from {checkpoint} after epoch {state['epoch']}")
        else:
            log(f"ignoring {checkpoint}: written for other parameters or inputs; starting afresh")
    live = _live(live_dir, state["history"])
    autocast = dict(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16(amp, device))
    compiled = torch.compile(model) if compile_model else None     # dynamic=True fails in inductor on the CNNs (torch 2.13)
    step = Stepper(model, opt, loss_fn, autocast, clip, sync_free, compiled)
    log(f"bfloat16 autocast: {'on' if autocast['enabled'] else 'off'} (training.amp: {amp}); "
        f"step: {'sync-free, fused AdamW' if sync_free else 'foreach AdamW, host checks'}"
        + ("; torch.compile" if compile_model else ""))
    for epoch in range(state["epoch"], sched.epochs):
        model.train()
        step.reset()
        for batch in tqdm(batches(epoch_generator(seed, epoch)), desc=f"epoch {epoch + 1}/{sched.epochs}",
                          file=sys.stderr, mininterval=5, leave=False):
            step(batch)
        total, n, skipped = step.epoch_totals()
        model.eval()
        with torch.no_grad(), torch.autocast(**autocast):
            valid = validate()
        mrr = valid["MRR"]
        row = {"epoch": epoch + 1, "train/loss": total / max(n, 1), "valid/mrr": mrr, "lr": opt.param_groups[0]["lr"]}
        plateau.step(mrr)
        state["history"].append(row)
        if mrr >= state["best_mrr"]:               # lcasr keeps the latest of equal scores (>=)
            state.update(best_mrr=mrr, best_epoch=epoch + 1, best_valid=valid, best_state=copy.deepcopy(model.state_dict()))
        state["epoch"] = epoch + 1
        atomic_save({"fingerprint": fp, "model": model.state_dict(), "optimizer": opt.state_dict(),
                      "scheduler": plateau.state_dict(), "state": state}, checkpoint)
        _log(live, row)
        log(f"epoch {epoch + 1}: loss {row['train/loss']:.4f}  valid MRR {mrr:.4f} {valid['MRR_ci95']} "
            f"(n {valid['n']}, chance {valid['chance_MRR']:.4f})  lr {row['lr']:.2e}"
            + (f"  ({skipped} step(s) with non-finite gradients skipped)" if skipped else ""))
    live.end()
    if state["best_state"] is None:
        state["best_state"] = model.state_dict()
    return state


def save_model(path: Path, model_state: dict, meta: dict) -> None:
    """A model artifact: weights + what is needed to rebuild it (``meta``), written atomically."""
    atomic_save({"state_dict": {k: v.detach().cpu() for k, v in model_state.items()}, "meta": meta}, path)


def load_model(path: Path) -> dict:
    if not Path(path).is_file():
        raise FileNotFoundError(f"model artifact not found: {path} (run its training stage first)")
    return torch.load(path, map_location="cpu", weights_only=False)
