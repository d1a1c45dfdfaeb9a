"""Training throughput of the snippet and passage models, next to the arithmetic floor.

    python benchmarks/training_throughput.py [--device cpu|cuda] [--amp] [--dataset data/dataset | pack]

Measures, with batches cut from the real dataset exactly as the training stages do:
- snippet pretraining steps (batch 256 pairs): pairs/s, forward + backward + AdamW step, through the
  training stages' own step (``pipeline.models.training.Stepper``) in each of ``--modes``: ``default``
  (foreach AdamW, loss read back and gradients checked on the host every step: the CPU's),
  ``sync_free`` (fused AdamW skipping non-finite steps on the device, nothing read back: CUDA's
  default, ``training.fused_optimizer``), ``sync_free_compiled`` (and ``torch.compile``,
  ``training.compile``); speed-ups against the first mode, measured in the same run, the first step
  (compilation) apart, and on CUDA the host synchronisations counted inside one step;
- passage-model steps (batch 64 passages, FT: CNNs trained): passages/s and snippets/s;
- the FLOPs of one training step (torch's FLOP counter) and the device's measured peak
  (a large matrix product in the same dtype, same run), hence the arithmetic floor = FLOPs / peak
  and the fraction of it reached;
- the projected wall time of the paper schedule (pretraining 280 epochs x 131 072 pairs, passage
  model 180 epochs x 16 384 passages), training steps only, at the measured rate; and its
  arithmetic floor on a GPU of ``--project-peak-tflops`` (what no implementation can beat there);
  the whole paper schedule (pretraining + five variants, the FT cost for each: an upper bound, FZ
  variants train on cached features) against the issue's goal of 30 min on one GPU.
``--dataset`` is a built dataset or a training pack (``python -m pipeline.data.pack``): a GPU node
needs only the pack. With ``--amp`` the peak and the floor are bfloat16's (the fraction reported is
of the bf16 floor); without, float32's.
Prints a table and writes it as JSON (``--out``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.models.networks import PassageModel, SnippetModel, triplet_loss  # noqa: E402
from pipeline.models.snippets import Augment, load_split, passage_batch, snippet_batch  # noqa: E402
from pipeline.models.training import Stepper  # noqa: E402

PAPER = {"snippet_pairs": 280 * 131_072, "passages": 180 * 16_384}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_flops(device, dtype, n=4096 if torch.cuda.is_available() else 1024, reps=10) -> float:
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t)


def timed_steps(step, n_steps, device, warmup=3) -> float:
    for _ in range(warmup):
        step()
    sync(device)
    t = time.perf_counter()
    for _ in range(n_steps):
        step()
    sync(device)
    return (time.perf_counter() - t) / n_steps


def host_syncs(step, batch, device) -> int | None:
    """Host synchronisations inside one step (CUDA's sync debug mode counts them); None on the CPU."""
    if device.type != "cuda":
        return None
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step(batch)
            torch.cuda.synchronize()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def step_flops(step) -> float:
    with FlopCounterMode(display=False) as fc:
        step()
    return float(fc.get_total_flops())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 5 on CPU, 30 on GPU)")
    ap.add_argument("--project-peak-tflops", type=float, default=800.0,
                    help="peak of the GPU to project the paper schedule onto (H100 bf16 matmul, measured: ~800)")
    ap.add_argument("--modes", nargs="+", default=["default", "sync_free", "sync_free_compiled"],
                    choices=["default", "sync_free", "sync_free_compiled"],
                    help="training steps to compare (the first is the baseline of the speed-ups): default = foreach AdamW "
                         "with host checks (the CPU's), sync_free = fused AdamW, no read-back (CUDA's), + torch.compile")
    ap.add_argument("--out", type=Path, default=Path("results/benchmarks/training_throughput.json"))
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    steps = args.steps or (30 if device.type == "cuda" else 5)
    torch.manual_seed(0)
    bank = load_split(args.dataset, "train").to(device)
    gen = torch.Generator().manual_seed(0)
    ac = dict(device_type=device.type, dtype=torch.bfloat16, enabled=args.amp)
    aug = Augment(5, (0.95, 1.05), 1)

    rows = lambda n, size: np.asarray(torch.randint(0, n, (size,), generator=gen))          # noqa: E731
    snippet_loss = lambda m, b: triplet_loss(*m(*b), 0.6)                                   # noqa: E731
    passage_loss = lambda m, b: triplet_loss(*m(*b), 0.3)                                   # noqa: E731

    def stepper(model, lr, loss_fn, mode):
        """The training stages' own step (pipeline.models.training.Stepper) in ``mode``."""
        sync_free = mode != "default"
        opt = torch.optim.AdamW(model.parameters(), lr, fused=True if sync_free else None)
        compiled = torch.compile(model) if mode == "sync_free_compiled" else None
        return Stepper(model, opt, loss_fn, ac, sync_free=sync_free, compiled=compiled)

    snip = SnippetModel().to(device).train()
    pas = PassageModel().to(device).train()
    batch = snippet_batch(bank, rows(len(bank.snippets), 256), aug, gen)
    pbatch = passage_batch(bank, rows(len(bank.passages), 64), 81, 18)
    n_snip = int(pbatch[2].sum() + pbatch[3].sum())
    res = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()}",
           "amp": args.amp, "torch": torch.__version__, "modes": args.modes}
    peak = peak_flops(device, torch.bfloat16 if args.amp else torch.float32)
    res["peak_tflops_matmul"] = peak / 1e12
    base = stepper(snip, 1e-4, snippet_loss, "default")
    f_s = step_flops(lambda: base(batch))
    pbase = stepper(pas, 3e-3, passage_loss, "default")
    f_p = step_flops(lambda: pbase(pbatch))
    res.update(snippet_gflop_per_pair=f_s / 256 / 1e9, passage_gflop_per_passage=f_p / 64 / 1e9,
               passage_snippets_per_step=n_snip)
    for mode in args.modes:       # each mode from the same weights: the step's cost, not the model's, is compared
        print(f"[training_throughput] measuring mode {mode} ...", file=sys.stderr, flush=True)
        s_step = stepper(SnippetModel().to(device).train(), 1e-4, snippet_loss, mode)
        p_step = stepper(PassageModel().to(device).train(), 3e-3, passage_loss, mode)
        t0 = time.perf_counter()
        s_step(batch), p_step(pbatch)          # first call: compilation, if any
        sync(device)
        first = time.perf_counter() - t0
        t_s = timed_steps(lambda: s_step(snippet_batch(bank, rows(len(bank.snippets), 256), aug, gen)), steps, device)
        t_s_nocut = timed_steps(lambda: s_step(batch), steps, device)
        t_p = timed_steps(lambda: p_step(passage_batch(bank, rows(len(bank.passages), 64), 81, 18)),
                          max(steps // 3, 2), device)
        res[mode] = {"first_step_s": first, "host_syncs_per_step": host_syncs(s_step, batch, device),
                     "snippet_pairs_per_s": 256 / t_s, "snippet_pairs_per_s_without_cutting": 256 / t_s_nocut,
                     "snippet_fraction_of_floor": (f_s / peak) / t_s_nocut,
                     "passages_per_s": 64 / t_p, "snippets_per_s_passage": n_snip / t_p,
                     "passage_fraction_of_floor": (f_p / peak) / t_p}
    ref = res[args.modes[0]]
    for mode in args.modes[1:]:
        res[mode]["speedup_vs_" + args.modes[0]] = {k: res[mode][k] / ref[k] for k in ("snippet_pairs_per_s", "passages_per_s")}
    schedule_min = lambda m: (PAPER["snippet_pairs"] / res[m]["snippet_pairs_per_s"]                  # noqa: E731
                              + 5 * PAPER["passages"] / res[m]["passages_per_s"]) / 60
    best = min(args.modes, key=schedule_min)          # the step that runs the paper schedule soonest
    res["fastest_mode"] = best
    res.update({k: res[best][k] for k in ("snippet_pairs_per_s", "passages_per_s")})
    res["paper_schedule_projection_min"] = {
        "pretraining": PAPER["snippet_pairs"] / res["snippet_pairs_per_s"] / 60,
        "passage_model_per_variant": PAPER["passages"] / res["passages_per_s"] / 60,
    }
    proj = res["paper_schedule_projection_min"]
    proj["pretraining_plus_one_variant"] = proj["pretraining"] + proj["passage_model_per_variant"]
    proj["pretraining_plus_five_variants"] = proj["pretraining"] + 5 * proj["passage_model_per_variant"]
    res["goal_paper_schedule_within_30_min"] = proj["pretraining_plus_five_variants"] <= 30
    peak_proj = args.project_peak_tflops * 1e12
    floor = {"pretraining": PAPER["snippet_pairs"] * f_s / 256 / peak_proj / 60,
             "passage_model_per_variant": PAPER["passages"] * f_p / 64 / peak_proj / 60}
    res[f"paper_schedule_floor_min_at_{args.project_peak_tflops:g}_tflops"] = floor
    for k, v in res.items():
        if isinstance(v, dict):
            print(k)
            for k2, v2 in v.items():
                print(f"  {k2:38s} {v2 if not isinstance(v2, float) else f'{v2:.4g}'}")
        else:
            print(f"{k:40s} {v if not isinstance(v, float) else f'{v:.4g}'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
