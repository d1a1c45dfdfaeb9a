"""Stage ``train_passage``: train one variant of the recurrent passage model (ISMIR 2023, method.md §4.3–4.4).

Variants (``passage_variants`` in params.yaml): ``init`` = none (RNN, from scratch) or a snippet
model artifact (``--init``: the pretrained baseline for RNN-FT/FZ, the CCA-refined one for
RNN-FT-CCA/FZ-CCA; its CNNs and its CCA projection, kept frozen, are loaded); ``freeze_cnn`` =
FZ (CNNs frozen, BatchNorm statistics too) or FT (fine-tuned).
Writes ``OUT/model.pt`` (best weights by validation MRR) and ``OUT/metrics.json``; curves under ``--live``.
``--dim-sweep`` trains one point of Experiment 1: ``train_passage`` keys overridden by
``experiments.dim_sweep.train_passage``, embedding size ``--emb-dim``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from pipeline.metrics import mrr
from pipeline.models import PassageModel, triplet_loss
from pipeline.params import add_params_argument, from_args
from pipeline.snippets import SplitBank, load_split, passage_batch
from pipeline.stage import write_json
from pipeline.train_snippet import epoch_rows, valid_rows
from pipeline.training import Schedule, fingerprint, fit, load_model, pick_device, save_model, setup_torch


def build_model(p: dict, variant: dict, emb_dim: int, init: Path | None) -> PassageModel:
    """A passage model as the variant describes it (weights: fresh, or the snippet model's CNNs + CCA)."""
    model = PassageModel(p["snippet_dim"], p["rnn_hidden"], emb_dim, freeze_cnn=variant["freeze_cnn"],
                         frozen_bn_updates=p["frozen_bn_updates"])
    if variant["init"] is not None:
        if init is None:
            raise ValueError(f"variant with init '{variant['init']}' needs --init <snippet model.pt>")
        art = load_model(init)
        if art["meta"]["emb_dim"] != p["snippet_dim"]:
            raise ValueError(f"{init}: snippet model dim {art['meta']['emb_dim']} != train_passage.snippet_dim {p['snippet_dim']}")
        model.load_snippet_model(art["state_dict"])
    elif variant["freeze_cnn"]:
        raise ValueError("freeze_cnn without init would freeze random CNNs")
    return model


@torch.no_grad()
def embed_passages(model: PassageModel, bank: SplitBank, rows: np.ndarray, hops: tuple, batch: int = 64):
    """(N, emb) sheet and audio embeddings of passage-table ``rows`` (model in eval mode)."""
    xs, ys = [], []
    for i in range(0, len(rows), batch):
        x, y = model(*passage_batch(bank, rows[i:i + batch], *hops))
        xs.append(x.float()), ys.append(y.float())
    return torch.cat(xs), torch.cat(ys)


def train(params: dict, variant_name: str, dataset: Path, init: Path | None, out: Path, live: Path,
          checkpoint: Path, emb_dim: int | None = None, log=print) -> dict:
    p, t = params["train_passage"], params["training"]
    variant = params["passage_variants"][variant_name]
    emb_dim = emb_dim or p["emb_dim"]
    device = pick_device(t["device"])
    setup_torch(params["seed"], t["threads"])
    model = build_model(p, variant, emb_dim, init)
    train_bank = load_split(dataset, "train").to(device)
    valid_bank = load_split(dataset, "valid", tempo_range=(1.0, 1.0)).to(device)
    if len(train_bank.passages) == 0 or len(valid_bank.passages) == 0:
        raise ValueError(f"{dataset}: no passages in train ({len(train_bank.passages)}) or valid ({len(valid_bank.passages)})")
    log(f"variant {variant_name} (emb {emb_dim}): train {len(train_bank.passages)} passages, "
        f"valid {len(valid_bank.passages)}; device {device}")
    hops = (p["sheet_hop_half_px"], p["audio_hop_frames"])
    v_rows = valid_rows(len(valid_bank.passages), p["n_valid"])
    grus = [] if p["train_gru"] else list(model.sheet.rnn.parameters()) + list(model.audio.rnn.parameters())

    def batches(gen):
        for rows in epoch_rows(len(train_bank.passages), p["n_train"], p["batch_size"], gen):
            yield passage_batch(train_bank, rows, *hops)

    def loss_fn(m, batch):
        x, y = m(*batch)
        return triplet_loss(x.float(), y.float(), p["margin"], p["symmetric_loss"])

    def clip(m):
        if p["grad_clip_gru"]:
            for enc in (m.sheet, m.audio):
                torch.nn.utils.clip_grad_norm_(enc.rnn.parameters(), p["grad_clip_gru"])

    def validate():
        return mrr(*embed_passages(model, valid_bank, v_rows, hops))

    files = [dataset / s / f for s in ("train", "valid") for f in ("passages.csv", "performances.csv")]
    fp = fingerprint({"seed": params["seed"], "train_passage": p, "variant": variant, "emb_dim": emb_dim},
                     files + ([init] if variant["init"] else []))
    state = fit(model, sched=Schedule.from_params(p), seed=params["seed"], device=device, amp=t["amp"],
                batches=batches, loss_fn=loss_fn, validate=validate, checkpoint=checkpoint, live_dir=live,
                fp=fp, exclude=grus, clip=clip, log=log)
    meta = {"kind": "passage", "variant": variant_name, **variant, "emb_dim": emb_dim,
            "snippet_dim": p["snippet_dim"], "rnn_hidden": p["rnn_hidden"], "best_epoch": state["best_epoch"],
            "sheet_hop_half_px": hops[0], "audio_hop_frames": hops[1]}
    save_model(out / "model.pt", state["best_state"], meta)
    metrics = {"best_epoch": state["best_epoch"], "valid_mrr": state["best_mrr"], "epochs": len(state["history"])}
    write_json(out / "metrics.json", metrics)
    return metrics


def sweep_params(params: dict) -> dict:
    """``params`` with ``train_passage`` overridden by ``experiments.dim_sweep.train_passage``."""
    overrides = params["experiments"]["dim_sweep"]["train_passage"]
    return {**params, "train_passage": {**params["train_passage"], **overrides}}


def load_passage_model(path: Path) -> tuple[PassageModel, dict]:
    """Rebuild a trained passage model (eval mode) and its meta from its artifact."""
    art = load_model(path)
    m = art["meta"]
    model = PassageModel(m["snippet_dim"], m["rnn_hidden"], m["emb_dim"], freeze_cnn=m["freeze_cnn"])
    sd = art["state_dict"]
    for enc in (model.sheet, model.audio):
        prefix = "sheet." if enc is model.sheet else "audio."
        if sd[prefix + "cca_u"].numel():
            enc.set_cca(sd[prefix + "cca_u"], sd[prefix + "cca_mean"])
    model.load_state_dict(sd)
    return model.eval(), m


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", required=True, help="a key of passage_variants in params.yaml")
    ap.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    ap.add_argument("--init", type=Path, default=None,
                    help="snippet model artifact (variants with init); 'auto' = models/<the variant's init>/model.pt")
    ap.add_argument("--emb-dim", type=int, default=None, help="override train_passage.emb_dim (dimension sweep)")
    ap.add_argument("--dim-sweep", action="store_true",
                    help="apply experiments.dim_sweep.train_passage overrides (Experiment 1; needs --emb-dim)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--live", type=Path, required=True)
    ap.add_argument("--checkpoint", type=Path, required=True)
    add_params_argument(ap)
    args = ap.parse_args(argv)
    params = from_args(args)
    if args.dim_sweep:
        if args.emb_dim is None:
            ap.error("--dim-sweep needs --emb-dim")
        params = sweep_params(params)
    if args.variant not in params["passage_variants"]:
        ap.error(f"unknown variant '{args.variant}'; params.yaml defines {sorted(params['passage_variants'])}")
    init = args.init
    if init == Path("auto"):
        name = params["passage_variants"][args.variant]["init"]
        init = Path("models") / name / "model.pt" if name else None
    log = lambda msg: print(f"[train_passage] {msg}", file=sys.stderr, flush=True)
    metrics = train(params, args.variant, args.dataset, init, args.out, args.live, args.checkpoint,
                    args.emb_dim, log)
    log(f"done: {metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
