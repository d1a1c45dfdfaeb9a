"""Training throughput of the snippet-model variants: audio context x attention, in one run.

    python benchmarks/attention_throughput.py [--dataset data/dataset] [--variants ctx20 att20 ...] [--steps 5]

For every variant of ``snippet_variants`` in params.yaml (or those named), times the training stage's own
step (forward, triplet loss, backward, AdamW; ``pipeline.models.training.Stepper``) on batches cut from the
real training split with the variant's geometry, exactly as ``train_snippet --variant`` cuts them, and prints
pairs/s and, per audio context, the attention model's throughput relative to the plain model's (measured in
the same run, interleaved, so that a change of machine load hits both alike). Data loading is not timed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.core.params import load  # noqa: E402
from pipeline.models.networks import SnippetModel, triplet_loss  # noqa: E402
from pipeline.models.snippets import Augment, load_split, snippet_batch  # noqa: E402
from pipeline.models.train_snippet import variant_settings  # noqa: E402
from pipeline.models.training import Stepper  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--variants", nargs="+", default=None, help="snippet_variants keys (default: all)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per variant and round")
    ap.add_argument("--rounds", type=int, default=2, help="rounds over all variants (the best round counts)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: training.threads)")
    ap.add_argument("--out", type=Path, default=None, help="write the table as JSON here")
    args = ap.parse_args(argv)
    params = load(args.params)
    names = args.variants or list(params["snippet_variants"])
    threads = args.threads or params["training"]["threads"]
    if threads:
        torch.set_num_threads(threads)
    setups = {}
    for name in names:
        p, geometry, _ = variant_settings(params, name)
        ctx, sheet_px = geometry["audio_context_frames"], geometry["sheet_context_px"]
        bank = load_split(args.dataset, "train", context_frames=ctx, sheet_px=sheet_px)
        gen = torch.Generator().manual_seed(0)
        rows = np.asarray(torch.randint(0, len(bank.snippets), (p["batch_size"],), generator=gen))
        aug = Augment.from_params(p["augment"], geometry.get("tempo_augment"))
        batch = snippet_batch(bank, rows, aug, gen, ctx, sheet_px)
        torch.manual_seed(0)
        model = SnippetModel(p["emb_dim"], use_cca=p["cca"], context_frames=ctx, attention=geometry["attention"],
                             sheet_px=sheet_px).train()
        opt = torch.optim.AdamW(model.parameters(), p["lr"])
        step = Stepper(model, opt, lambda m, b, margin=p["margin"]: triplet_loss(*m(*b), margin),
                       dict(device_type="cpu", dtype=torch.bfloat16, enabled=False))
        step(batch)                                                   # warm-up (allocations, kernels)
        setups[name] = (step, batch, geometry, p["batch_size"])
    best = {name: float("inf") for name in names}
    for _ in range(args.rounds):
        for name, (step, batch, _, _) in setups.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step(batch)
            best[name] = min(best[name], (time.perf_counter() - t0) / args.steps)
    rows = []
    for name, (_, _, geometry, batch_size) in setups.items():
        rows.append({"variant": name, "context_frames": geometry["audio_context_frames"],
                     "attention": geometry["attention"], "sheet_px": geometry["sheet_context_px"],
                     "batch": batch_size, "s_per_step": round(best[name], 4),
                     "pairs_per_s": round(batch_size / best[name], 1)})
    plain = {(r["context_frames"], r["sheet_px"]): r for r in rows if not r["attention"]}
    print(f"torch threads {torch.get_num_threads()}, {args.steps} steps x {args.rounds} rounds (best round)")
    print(f"{'variant':12s} {'context':>8s} {'attention':>9s} {'s/step':>8s} {'pairs/s':>8s} {'vs plain':>9s}")
    for r in rows:
        base = plain.get((r["context_frames"], r["sheet_px"]))
        r["relative_to_plain"] = round(r["pairs_per_s"] / base["pairs_per_s"], 3) if r["attention"] and base else None
        rel = f"x{r['relative_to_plain']:.2f}" if r["relative_to_plain"] else ""
        print(f"{r['variant']:12s} {r['context_frames']:8d} {str(r['attention']):>9s} {r['s_per_step']:8.3f} "
              f"{r['pairs_per_s']:8.1f} {rel:>9s}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
