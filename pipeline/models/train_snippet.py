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
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.core.constants import NOMINAL_TEMPO
from pipeline.models.embedding import embed_snippets
from pipeline.core.metrics import validation_summary
from pipeline.models.networks import SnippetModel, triplet_loss
from pipeline.core.params import add_params_argument, from_args
from pipeline.models.sampling import epoch_rows, item_groups, valid_rows
from pipeline.models.snippets import Augment, load_split, snippet_batch
from pipeline.core.stage import write_json
from pipeline.models.training import Schedule, fingerprint, fit, pick_device, save_model, setup_torch


def train(params: dict, dataset: Path, out: Path, live: Path, checkpoint: Path, log=print) -> dict:
    p, t = params["train_snippet"], params["training"]
    device = pick_device(t["device"])
    setup_torch(params["seed"], t["threads"])
    train_bank = load_split(dataset, "train").to(device)
    valid_bank = load_split(dataset, "valid", tempo_range=(NOMINAL_TEMPO, NOMINAL_TEMPO)).to(device)
    if len(train_bank.snippets) == 0 or len(valid_bank.snippets) == 0:
        raise ValueError(f"{dataset}: no snippet pairs in train ({len(train_bank.snippets)}) "
                         f"or valid ({len(valid_bank.snippets)})")
    log(f"train: {len(train_bank.snippets)} snippet pairs; valid: {len(valid_bank.snippets)}; device {device}")
    model = SnippetModel(p["emb_dim"], use_cca=p["cca"])
    aug = Augment.from_params(p["augment"])
    v_rows = valid_rows(len(valid_bank.snippets), p["n_valid"])
    groups = item_groups(train_bank.snippets, ["piece", "x"]) if p["mask_other_renderings"] else None

    def batches(gen):
        for rows in epoch_rows(len(train_bank.snippets), p["n_train"], p["batch_size"], gen):
            yield (*snippet_batch(train_bank, rows, aug, gen), None if groups is None else groups[rows])

    def loss_fn(m, batch):
        sheet, audio, g = batch
        x, y = m(sheet, audio)
        return triplet_loss(x, y, p["margin"], p["symmetric_loss"], g)

    def validate():
        return validation_summary(*embed_snippets(model, valid_bank, v_rows))

    fp = fingerprint({k: params[k] for k in ("seed", "train_snippet")},
                     [dataset / s / f for s in ("train", "valid") for f in ("snippets.csv", "performances.csv")])
    state = fit(model, sched=Schedule.from_params(p), seed=params["seed"], device=device, amp=t["amp"],
                batches=batches, loss_fn=loss_fn, validate=validate, checkpoint=checkpoint, live_dir=live,
                fp=fp, log=log)
    meta = {"kind": "snippet", "emb_dim": p["emb_dim"], "cca": p["cca"], "best_epoch": state["best_epoch"]}
    save_model(out / "model.pt", state["best_state"], meta)
    metrics = {"best_epoch": state["best_epoch"], "valid_mrr": state["best_mrr"], "valid": state["best_valid"],
               "epochs": len(state["history"]), "train_pairs": len(train_bank.snippets)}
    write_json(out / "metrics.json", metrics)
    return metrics


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    ap.add_argument("--out", type=Path, default=Path("models/snippet"))
    ap.add_argument("--live", type=Path, default=Path("results/training/snippet"))
    ap.add_argument("--checkpoint", type=Path, default=Path("checkpoints/snippet.pt"))
    add_params_argument(ap)
    args = ap.parse_args(argv)
    log = lambda msg: print(f"[train_snippet] {msg}", file=sys.stderr, flush=True)
    metrics = train(from_args(args), args.dataset, args.out, args.live, args.checkpoint, log)
    log(f"done: {metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
