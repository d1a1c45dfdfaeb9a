"""Stage ``train_passage``: train one variant of the recurrent passage model (ISMIR 2023, method.md §4.3–4.4).

Variants (``passage_variants`` in params.yaml): ``init`` = none (RNN, from scratch) or a snippet
model artifact (``--init``: the pretrained baseline for RNN-FT/FZ, the CCA-refined one for
RNN-FT-CCA/FZ-CCA; its CNNs and its CCA projection, kept frozen, are loaded); ``freeze_cnn`` =
FZ (CNNs frozen, BatchNorm statistics too) or FT (fine-tuned; pretrained CNNs at
``pretrained_cnn_lr_scale`` x the learning rate, so that the randomly initialised GRUs' first
gradients do not erase the pretraining on short schedules).
FZ variants compute each passage's snippet features (CNN + CCA projection) once and reuse them
in every later epoch and validation (``cache_frozen_features``): the same model and loss, only the
GRUs and heads are evaluated per step. Not with ``frozen_bn_updates`` (the features then move).
``mask_other_renderings``: other renderings of the same system in a batch are not negatives.
Writes ``OUT/model.pt`` (best weights by validation MRR) and ``OUT/metrics.json``; curves under ``--live``.
Each variant may override schedule keys of ``train_passage`` (``passage_variants.<v>.train_passage``:
the quick default gives the cheap FZ variants more epochs). ``--dim-sweep`` trains one point of
Experiment 1: ``train_passage`` keys overridden by ``experiments.dim_sweep.train_passage``,
embedding size ``--emb-dim``.

``attention.passage_variants`` (issue 14, ``snakemake attention``; not in the default target) are passage variants
whose snippet CNNs are a snippet-model variant's (``snippet_variant``: a ``snippet_variants`` key, e.g. ``att42``):
the model cuts its audio windows with that variant's context (and, with attention, runs its attention branch
before the audio CNN) and its sheet windows with that variant's width, at the same hops; ``--init`` is that
variant's artifact (trained or CCA-refined, as ``init`` says). Without ``snippet_variant`` nothing changes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from pipeline.core.constants import NOMINAL_TEMPO
from pipeline.models.embedding import FeatureCache, embed_cached, embed_passages, model_passage_batch, passage_geometry, summarize
from pipeline.core.metrics import validation_summary
from pipeline.models.networks import PassageModel, triplet_loss
from pipeline.core.params import add_params_argument, from_args
from pipeline.models.sampling import epoch_rows, item_groups, valid_rows
from pipeline.models.snippets import load_split
from pipeline.core.stage import write_json
from pipeline.data.packfile import input_files
from pipeline.models.training import Schedule, fingerprint, fit, load_model, pick_device, save_model, setup_torch


def variant_spec(params: dict, name: str) -> dict:
    """The passage variant ``name``: a ``passage_variants`` key or an ``attention.passage_variants`` key
    (those with a ``snippet_variant``); a name may be only one of them."""
    tables = (params.get("passage_variants") or {}, (params.get("attention") or {}).get("passage_variants") or {})
    found = [v[name] for v in tables if name in v]
    if len(found) != 1:
        where = "both" if found else "neither"
        raise KeyError(f"passage variant '{name}': {where} of passage_variants and attention.passage_variants define(s) it")
    return found[0]


def variant_geometry(params: dict, variant: dict, art: dict | None) -> dict:
    """:class:`PassageModel` geometry arguments of a variant: none (the default model) without ``snippet_variant``;
    else the snippet model artifact's (``art``: what ``--init`` holds) or, from scratch, ``snippet_variants.<sv>``'s.
    When both are at hand they must agree."""
    sv = variant.get("snippet_variant")
    if sv is None:
        return {}
    spec = (params.get("snippet_variants") or {}).get(sv)
    want = None if spec is None else passage_geometry(spec)
    if art is None:
        if want is None:
            raise ValueError(f"snippet_variant '{sv}' from scratch: snippet_variants.{sv} is not in the params")
        return want
    got = passage_geometry(art["meta"])
    if want is not None and got != want:
        raise ValueError(f"--init model's geometry {got} is not snippet_variants.{sv}'s {want}")
    return got


def build_model(p: dict, variant: dict, emb_dim: int, init: Path | None, params: dict | None = None) -> PassageModel:
    """A passage model as the variant describes it (weights: fresh, or the snippet model's CNNs + CCA);
    with a ``snippet_variant``, that snippet model's window geometry and (with attention) its attention branch."""
    if variant["init"] is not None and init is None:
        raise ValueError(f"variant with init '{variant['init']}' needs --init <snippet model.pt>")
    art = load_model(init) if variant["init"] is not None else None
    model = PassageModel(p["snippet_dim"], p["rnn_hidden"], emb_dim, freeze_cnn=variant["freeze_cnn"],
                         frozen_bn_updates=p["frozen_bn_updates"], **variant_geometry(params or {}, variant, art))
    if art is not None:
        if art["meta"]["emb_dim"] != p["snippet_dim"]:
            raise ValueError(f"{init}: snippet model dim {art['meta']['emb_dim']} "
                             f"!= train_passage.snippet_dim {p['snippet_dim']}")
        model.load_snippet_model(art["state_dict"])
    elif variant["freeze_cnn"]:
        raise ValueError("freeze_cnn without init would freeze random CNNs")
    return model


def passage_params(params: dict, variant_name: str, dim_sweep: bool = False) -> dict:
    """The ``train_passage`` settings one run uses: the variant's own schedule overrides
    (``passage_variants.<v>.train_passage``), then, for a point of Experiment 1, the sweep's
    (``experiments.dim_sweep.train_passage``)."""
    p = {**params["train_passage"], **(variant_spec(params, variant_name).get("train_passage") or {})}
    if dim_sweep:
        p.update(params["experiments"]["dim_sweep"]["train_passage"])
    return p


def train(params: dict, variant_name: str, dataset: Path, init: Path | None, out: Path, live: Path,
          checkpoint: Path, emb_dim: int | None = None, dim_sweep: bool = False, log=print) -> dict:
    p, t = passage_params(params, variant_name, dim_sweep), params["training"]
    variant = variant_spec(params, variant_name)
    emb_dim = emb_dim or p["emb_dim"]
    device = pick_device(t["device"])
    setup_torch(params["seed"], t["threads"])
    model = build_model(p, variant, emb_dim, init, params)
    train_bank = load_split(dataset, "train").to(device)
    valid_bank = load_split(dataset, "valid", tempo_range=(NOMINAL_TEMPO, NOMINAL_TEMPO)).to(device)
    if len(train_bank.passages) == 0 or len(valid_bank.passages) == 0:
        raise ValueError(f"{dataset}: no passages in train ({len(train_bank.passages)}) or valid ({len(valid_bank.passages)})")
    log(f"variant {variant_name} (emb {emb_dim}): train {len(train_bank.passages)} passages, "
        f"valid {len(valid_bank.passages)}; device {device}")
    hops = (p["sheet_hop_half_px"], p["audio_hop_frames"])
    v_rows = valid_rows(len(valid_bank.passages), p["n_valid"])
    grus = [] if p["train_gru"] else list(model.sheet.rnn.parameters()) + list(model.audio.rnn.parameters())
    groups = item_groups(train_bank.passages, ["piece", "system"]) if p["mask_other_renderings"] else None
    cached = p["cache_frozen_features"] and model.features_are_fixed
    if cached:
        model.to(device).eval()
        store = checkpoint.parent / "features"
        train_cache = FeatureCache(model, train_bank, hops, store, log)
        valid_cache = FeatureCache(model, valid_bank, hops, store, log)
        log("frozen CNNs: snippet features computed once per passage and reused")
    slow = model.pretrained_cnn_parameters() if variant["init"] and not variant["freeze_cnn"] else []

    def batches(gen):
        for rows in epoch_rows(len(train_bank.passages), p["n_train"], p["batch_size"], gen):
            batch = train_cache.batch(rows) if cached else model_passage_batch(model, train_bank, rows, *hops)
            yield batch, None if groups is None else groups[rows]

    def loss_fn(m, batch):
        inputs, g = batch
        x, y = summarize(m, *inputs) if cached else m(*inputs)
        return triplet_loss(x, y, p["margin"], p["symmetric_loss"], g)

    def clip(m):
        if p["grad_clip_gru"]:
            for enc in (m.sheet, m.audio):
                torch.nn.utils.clip_grad_norm_(enc.rnn.parameters(), p["grad_clip_gru"])

    def validate():
        if cached:
            return validation_summary(*embed_cached(model, valid_cache, v_rows))
        return validation_summary(*embed_passages(model, valid_bank, v_rows, hops))

    files = input_files(dataset, ("train", "valid"), ("passages.csv", "performances.csv"))
    fp = fingerprint({"seed": params["seed"], "train_passage": p, "variant": variant, "emb_dim": emb_dim},
                     files + ([init] if variant["init"] else []))
    state = fit(model, sched=Schedule.from_params(p), seed=params["seed"], device=device, amp=t["amp"],
                fused=t["fused_optimizer"], compile_model=t["compile"], batches=batches, loss_fn=loss_fn, validate=validate, checkpoint=checkpoint, live_dir=live,
                fp=fp, exclude=grus, slow=slow, slow_lr_scale=p["pretrained_cnn_lr_scale"], clip=clip, log=log)
    if cached:
        train_cache.save(), valid_cache.save()
    meta = {"kind": "passage", "variant": variant_name, **variant, "emb_dim": emb_dim,
            "snippet_dim": p["snippet_dim"], "rnn_hidden": p["rnn_hidden"], "best_epoch": state["best_epoch"],
            "sheet_hop_half_px": hops[0], "audio_hop_frames": hops[1]}
    if variant.get("snippet_variant") is not None:       # (the default variants' artifacts are unchanged)
        meta.update(model.geometry())
    save_model(out / "model.pt", state["best_state"], meta)
    metrics = {"best_epoch": state["best_epoch"], "valid_mrr": state["best_mrr"], "valid": state["best_valid"],
               "epochs": len(state["history"])}
    write_json(out / "metrics.json", metrics)
    return metrics


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
    if args.dim_sweep and args.emb_dim is None:
        ap.error("--dim-sweep needs --emb-dim")
    try:
        spec = variant_spec(params, args.variant)
    except KeyError as e:
        ap.error(f"{e.args[0]}; params define {sorted(params.get('passage_variants') or {})} "
                 f"and attention.passage_variants {sorted((params.get('attention') or {}).get('passage_variants') or {})}")
    init = args.init
    if init == Path("auto"):
        if spec.get("snippet_variant") is not None:
            ap.error("--init auto: give the snippet variant's artifact (models/snippet_variant[_cca]/<name>/model.pt)")
        name = spec["init"]
        init = Path("models") / name / "model.pt" if name else None
    log = lambda msg: print(f"[train_passage] {msg}", file=sys.stderr, flush=True)
    metrics = train(params, args.variant, args.dataset, init, args.out, args.live, args.checkpoint,
                    args.emb_dim, args.dim_sweep, log)
    log(f"done: {metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
