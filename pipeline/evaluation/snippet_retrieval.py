"""Stage ``snippet_retrieval``: snippet-level retrieval of a snippet model (the tutorial's and 2021 papers' table).

A pool of ``snippet_retrieval.pool`` evenly spaced snippet pairs (notehead snippet <-> its 1 s audio
excerpt) of the test split at ``evaluation.tempo`` (the unseen soundfont); A2S: each audio snippet
queries all sheet snippets of the pool, S2A the reverse; R@k, MRR (95 % interval), median rank,
chance MRR, under ``evaluation.ties``. Writes a metrics JSON in the layout of
:mod:`pipeline.evaluation.evaluate` (``{"a2s": {...}, "s2a": {...}, "model", ...}``), so
:mod:`pipeline.evaluation.tables` builds the table from it.

``--variant V`` evaluates a snippet-model variant (``snippet_variants.V``, issue 14) the same way at every
``render.test_tempo_ratios`` (its ``by_tempo`` list; the top-level metrics are those at ``evaluation.tempo``).
Every variant is evaluated on the same pairs: those whose windows fit inside the piece for the longest
audio context and the widest sheet snippet of all ``snippet_variants`` (MSMD's filter), each pair cut to
the model's own geometry.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from pipeline.core.metrics import cosine_distances, rank_counts, retrieval_metrics
from pipeline.core.params import add_params_argument, from_args
from pipeline.core.stage import write_json
from pipeline.models.embedding import embed_snippets
from pipeline.models.networks import SnippetModel
from pipeline.models.sampling import valid_rows
from pipeline.models.snippets import common_window, load_split
from pipeline.models.training import load_model, pick_device, setup_torch


@torch.no_grad()
def snippet_retrieval(params: dict, model_path: Path, dataset: Path, log=print, tempo: float | None = None,
                      fit: dict | None = None, model: SnippetModel | None = None) -> dict:
    """Retrieval metrics both ways on the pool at ``tempo`` (default ``evaluation.tempo``); ``fit``:
    ``{"context_frames", "sheet_px"}`` of the windows a pair must fit to enter the pool (default: the model's own)."""
    e, t = params["evaluation"], params["training"]
    tempo = e["tempo"] if tempo is None else tempo
    device = pick_device(t["device"])
    setup_torch(params["seed"], t["threads"])
    art = load_model(model_path)
    if model is None:
        model = SnippetModel.from_artifact(art).to(device).eval()
    fit = fit or {"context_frames": model.context_frames, "sheet_px": model.sheet_px}
    bank = load_split(dataset, e["split"], tempo_range=(tempo, tempo), **fit).to(device)
    if len(bank.snippets) < 2:
        raise ValueError(f"{dataset}/{e['split']}: {len(bank.snippets)} snippet pairs at ρ {tempo}; need at least 2")
    rows = valid_rows(len(bank.snippets), params["snippet_retrieval"]["pool"])
    sheet, audio = embed_snippets(model, bank, rows)
    a2s = cosine_distances(audio, sheet)
    out = {d: retrieval_metrics(*rank_counts(m), rule=e["ties"]) for d, m in (("a2s", a2s), ("s2a", a2s.T))}
    out.update({"model": model_path.parent.name, "emb_dim": art["meta"]["emb_dim"], "split": e["split"],
                "tempo": tempo, "n_pairs": int(len(rows)), "pairs_available": int(len(bank.snippets))})
    log(f"{model_path.parent.name} at ρ {tempo}: {len(rows)} of {len(bank.snippets)} snippet pairs (chance MRR "
        f"{out['a2s']['chance_MRR']:.4f}); MRR a2s {out['a2s']['MRR']:.3f} s2a {out['s2a']['MRR']:.3f}")
    return out


@torch.no_grad()
def variant_retrieval(params: dict, variant: str, model_path: Path, dataset: Path, log=print) -> dict:
    """Snippet retrieval of ``snippet_variants.<variant>`` (its model: ``model_path``) at every test tempo
    on the variants' common pool: ``{"variant", geometry..., "a2s", "s2a" (at evaluation.tempo), "by_tempo": [...]}``."""
    fit = common_window(params["snippet_variants"])
    model = SnippetModel.from_artifact(load_model(model_path)).to(pick_device(params["training"]["device"])).eval()
    v = params["snippet_variants"][variant]
    by_tempo = [snippet_retrieval(params, model_path, dataset, log, tempo=rho, fit=fit, model=model)
                for rho in sorted(params["render"]["test_tempo_ratios"])]
    main = (next((r for r in by_tempo if r["tempo"] == params["evaluation"]["tempo"]), None)
            or snippet_retrieval(params, model_path, dataset, log, fit=fit, model=model))
    return {"variant": variant, **{k: v[k] for k in ("audio_context_frames", "attention", "sheet_context_px")},
            **({"tempo_augment": v["tempo_augment"]} if "tempo_augment" in v else {}),
            "pool_window": fit, **main, "by_tempo": by_tempo}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="snippet model artifact (models/<name>/model.pt)")
    ap.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    ap.add_argument("--out", type=Path, required=True, help="metrics JSON")
    ap.add_argument("--variant", default=None,
                    help="a key of snippet_variants: evaluate at every test tempo on the variants' common pool")
    add_params_argument(ap)
    args = ap.parse_args(argv)
    params = from_args(args)
    log = lambda msg: print(f"[snippet_retrieval] {msg}", file=sys.stderr, flush=True)
    if args.variant is not None:
        write_json(args.out, variant_retrieval(params, args.variant, args.model, args.dataset, log))
    else:
        write_json(args.out, snippet_retrieval(params, args.model, args.dataset, log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
