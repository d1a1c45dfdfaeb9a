"""Stage ``train_snippet``: pretrain the snippet baseline (two CNNs + CCA layer, triplet loss).

Reads ``DATASET/{train,valid}``; writes ``OUT/model.pt`` (best weights by validation MRR) and
``OUT/metrics.json``; curves under ``--live``; resumable checkpoint at ``--checkpoint``.
Training pairs: every notehead-onset pair of every training performance, ``n_train`` sampled per
epoch with the anchors' augmentation; validation: up to ``n_valid`` evenly spaced pairs of the
valid split at ρ = 1 (the validation soundfont), no augmentation, audio-to-sheet MRR.
``cca``: the CCA layer is fitted on every batch inside the loss (the anchors; it needs large
batches, it fits noise at 128) or, when false, left to ``refine_cca``, which fits it once on many
pairs. ``mask_other_renderings``: pairs of the same notehead position in other renderings are not
used as negatives.

``--variant V`` trains the snippet-model variant ``snippet_variants.V`` of params.yaml instead (issue 14:
``snakemake attention``): its audio context (``audio_context_frames``; pairs whose longer audio window
leaves the performance are dropped, as MSMD's filter), the attention branch (``attention``), the sheet
snippet width (``sheet_context_px``) and its overrides of ``train_snippet``; an attention variant adds
``- attention.entropy_weight x`` the batch's mean attention entropy to the loss (the anchors' weight: 0).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pipeline.core.constants import NOMINAL_TEMPO, SHEET_CONTEXT_PX, SPEC_CONTEXT_FRAMES
from pipeline.models.embedding import embed_snippets
from pipeline.core.metrics import validation_summary
from pipeline.models.networks import SnippetModel, attention_entropy, triplet_loss
from pipeline.core.params import add_params_argument, from_args
from pipeline.models.sampling import epoch_rows, item_groups, valid_rows
from pipeline.models.snippets import Augment, load_split, snippet_batch
from pipeline.core.stage import write_json
from pipeline.data.packfile import input_files
from pipeline.models.training import Schedule, fingerprint, fit, pick_device, save_model, setup_torch


def variant_settings(params: dict, variant: str | None) -> tuple[dict, dict, float]:
    """(``train_snippet`` settings, geometry, entropy weight) of the default snippet model (``variant``
    None) or of ``snippet_variants.<variant>``: geometry = audio context [frames], attention, sheet width [px]."""
    if variant is None:
        geometry = {"audio_context_frames": SPEC_CONTEXT_FRAMES, "attention": False, "sheet_context_px": SHEET_CONTEXT_PX}
        return params["train_snippet"], geometry, 0.0
    v = params["snippet_variants"][variant]
    geometry = {k: v[k] for k in ("audio_context_frames", "attention", "sheet_context_px")}
    weight = params["attention"]["entropy_weight"] if v["attention"] else 0.0
    if "tempo_augment" in v:
        geometry["tempo_augment"] = v["tempo_augment"]
    return {**params["train_snippet"], **(v.get("train_snippet") or {})}, geometry, weight


def train(params: dict, dataset: Path, out: Path, live: Path, checkpoint: Path, log=print,
          variant: str | None = None) -> dict:
    p, geometry, entropy_weight = variant_settings(params, variant)
    ctx, sheet_px = geometry["audio_context_frames"], geometry["sheet_context_px"]
    t = params["training"]
    device = pick_device(t["device"])
    setup_torch(params["seed"], t["threads"])
    train_bank = load_split(dataset, "train", context_frames=ctx, sheet_px=sheet_px).to(device)
    valid_bank = load_split(dataset, "valid", tempo_range=(NOMINAL_TEMPO, NOMINAL_TEMPO),
                            context_frames=ctx, sheet_px=sheet_px).to(device)
    if len(train_bank.snippets) == 0 or len(valid_bank.snippets) == 0:
        raise ValueError(f"{dataset}: no snippet pairs in train ({len(train_bank.snippets)}) "
                         f"or valid ({len(valid_bank.snippets)}) with {ctx}-frame audio and {sheet_px}-px sheet windows")
    log(f"train: {len(train_bank.snippets)} snippet pairs; valid: {len(valid_bank.snippets)}; device {device}; "
        f"{ctx}-frame audio, {sheet_px}-px sheet, attention {'on' if geometry['attention'] else 'off'}"
        + (f" (entropy weight {entropy_weight})" if geometry["attention"] else ""))
    model = SnippetModel(p["emb_dim"], use_cca=p["cca"], context_frames=ctx, attention=geometry["attention"],
                         sheet_px=sheet_px)
    aug = Augment.from_params(p["augment"], geometry.get("tempo_augment"))
    v_rows = valid_rows(len(valid_bank.snippets), p["n_valid"])
    groups = item_groups(train_bank.snippets, ["piece", "x"]) if p["mask_other_renderings"] else None

    def batches(gen):
        for rows in epoch_rows(len(train_bank.snippets), p["n_train"], p["batch_size"], gen):
            yield (*snippet_batch(train_bank, rows, aug, gen, ctx, sheet_px), None if groups is None else groups[rows])

    def loss_fn(m, batch):
        sheet, audio, g = batch
        if not entropy_weight:
            x, y = m(sheet, audio)
            return triplet_loss(x, y, p["margin"], p["symmetric_loss"], g)
        x, y, w = m(sheet, audio, return_attention=True)
        return triplet_loss(x, y, p["margin"], p["symmetric_loss"], g) - entropy_weight * attention_entropy(w).mean()

    def validate():
        return validation_summary(*embed_snippets(model, valid_bank, v_rows))

    keys = {k: params[k] for k in ("seed", "train_snippet")}
    if variant is not None:              # (the default model's fingerprint is unchanged: its checkpoints resume)
        keys.update(variant=params["snippet_variants"][variant], entropy_weight=entropy_weight)
    fp = fingerprint(keys, input_files(dataset, ("train", "valid"), ("snippets.csv", "performances.csv")))
    start = time.perf_counter()
    state = fit(model, sched=Schedule.from_params(p), seed=params["seed"], device=device, amp=t["amp"],
                fused=t["fused_optimizer"], compile_model=t["compile"], batches=batches, loss_fn=loss_fn, validate=validate, checkpoint=checkpoint, live_dir=live,
                fp=fp, log=log)
    seconds = time.perf_counter() - start
    pairs = p["n_train"] * len(state["history"])
    log(f"trained in {seconds:.1f} s: {len(state['history'])} epochs x {p['n_train']} pairs, validation included "
        f"({pairs / max(seconds, 1e-9):.1f} pairs/s; a resumed run's earlier epochs took no time here)")
    meta = {"kind": "snippet", "emb_dim": p["emb_dim"], "cca": p["cca"], "best_epoch": state["best_epoch"], **geometry}
    if variant is not None:
        meta["variant"] = variant
    save_model(out / "model.pt", state["best_state"], meta)
    metrics = {"best_epoch": state["best_epoch"], "valid_mrr": state["best_mrr"], "valid": state["best_valid"],
               "epochs": len(state["history"]), "train_pairs": len(train_bank.snippets), **geometry}
    write_json(out / "metrics.json", metrics)
    return metrics


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    ap.add_argument("--out", type=Path, default=Path("models/snippet"))
    ap.add_argument("--live", type=Path, default=Path("results/training/snippet"))
    ap.add_argument("--checkpoint", type=Path, default=Path("checkpoints/snippet.pt"))
    ap.add_argument("--variant", default=None, help="a key of snippet_variants in params.yaml (default: the snippet model)")
    add_params_argument(ap)
    args = ap.parse_args(argv)
    params = from_args(args)
    if args.variant is not None and args.variant not in params.get("snippet_variants", {}):
        ap.error(f"unknown snippet variant '{args.variant}'; params define {sorted(params.get('snippet_variants', {}))}")
    log = lambda msg: print(f"[train_snippet] {msg}", file=sys.stderr, flush=True)
    metrics = train(params, args.dataset, args.out, args.live, args.checkpoint, log, args.variant)
    log(f"done: {metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
