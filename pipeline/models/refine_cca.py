"""Stage ``refine_cca``: refit the snippet model's CCA layer once on many training pairs (method.md §4.2).

Embeds ``n_pairs`` random training snippet pairs *before* the CCA layer (augmentation active, as
lcasr's ``refine_cca.py``), fits CCA on all of them, and saves the model with the refitted U, V
and means as ``OUT/model.pt`` — its own artifact, next to the unrefined baseline. A snippet model
trained without the CCA layer in its loss (``train_snippet.cca: false``) gets the layer here, fitted
once on its embeddings; ``ridge`` regularises that fit (see :meth:`CCALayer.refit`).
``OUT/metrics.json`` gives the validation MRR before and after (with n, chance and 95 % intervals).
Pairs are cut to the model's own geometry (audio context, sheet width: a snippet variant's, issue 14).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from pipeline.core.constants import NOMINAL_TEMPO
from pipeline.models.embedding import embed_snippets
from pipeline.core.metrics import validation_summary
from pipeline.models.networks import CCALayer, SnippetModel
from pipeline.core.params import add_params_argument, from_args
from pipeline.models.sampling import epoch_rows, valid_rows
from pipeline.models.snippets import Augment, load_split, snippet_batch
from pipeline.core.stage import write_json
from pipeline.models.training import epoch_generator, load_model, pick_device, save_model, setup_torch


@torch.no_grad()
def refine(params: dict, dataset: Path, snippet_model: Path, out: Path, log=print) -> dict:
    p, sp, t = params["refine_cca"], params["train_snippet"], params["training"]
    device = pick_device(t["device"])
    setup_torch(params["seed"], t["threads"])
    art = load_model(snippet_model)
    model = SnippetModel.from_artifact(art)
    if model.cca is None:               # trained without the CCA layer: add it, fitted below
        model.cca = CCALayer(art["meta"]["emb_dim"])
    model.to(device).eval()
    geo = dict(context_frames=model.context_frames, sheet_px=model.sheet_px)
    train_bank = load_split(dataset, "train", **geo).to(device)
    valid_bank = load_split(dataset, "valid", tempo_range=(NOMINAL_TEMPO, NOMINAL_TEMPO), **geo).to(device)
    v_rows = valid_rows(len(valid_bank.snippets), sp["n_valid"])
    before = validation_summary(*embed_snippets(SnippetModel.from_artifact(art).to(device), valid_bank, v_rows))
    gen = epoch_generator(params["seed"], 0)
    aug = Augment.from_params(sp["augment"], art["meta"].get("tempo_augment"))   # as it was trained
    rows = np.concatenate(epoch_rows(len(train_bank.snippets), p["n_pairs"], p["n_pairs"], gen))
    xs, ys = [], []
    for i in range(0, len(rows), 512):
        x, y = model(*snippet_batch(train_bank, rows[i:i + 512], aug, gen, **geo), pre_cca=True)
        xs.append(x.float()), ys.append(y.float())
    model.cca.refit(torch.cat(xs), torch.cat(ys), p["ridge"])
    after = validation_summary(*embed_snippets(model, valid_bank, v_rows))
    log(f"refitted CCA on {len(rows)} pairs: valid MRR {before['MRR']:.4f} -> {after['MRR']:.4f} "
        f"(n {after['n']}, chance {after['chance_MRR']:.4f}, 95 % interval {after['MRR_ci95']})")
    save_model(out / "model.pt", model.state_dict(), {**art["meta"], "cca": True, "refined_on": int(len(rows))})
    metrics = {"n_pairs": int(len(rows)), "valid_mrr_before": before["MRR"], "valid_mrr": after["MRR"],
               "valid_before": before, "valid": after}
    write_json(out / "metrics.json", metrics)
    return metrics


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    ap.add_argument("--snippet-model", type=Path, default=Path("models/snippet/model.pt"))
    ap.add_argument("--out", type=Path, default=Path("models/snippet_cca"))
    add_params_argument(ap)
    args = ap.parse_args(argv)
    log = lambda msg: print(f"[refine_cca] {msg}", file=sys.stderr, flush=True)
    refine(from_args(args), args.dataset, args.snippet_model, args.out, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
