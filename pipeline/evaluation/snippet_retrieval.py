"""Stage ``snippet_retrieval``: snippet-level retrieval of a snippet model (the tutorial's and 2021 papers' table).

A pool of ``snippet_retrieval.pool`` evenly spaced snippet pairs (notehead snippet <-> its 1 s audio
excerpt) of the test split at ``evaluation.tempo`` (the unseen soundfont); A2S: each audio snippet
queries all sheet snippets of the pool, S2A the reverse; R@k, MRR (95 % interval), median rank,
chance MRR, under ``evaluation.ties``. Writes a metrics JSON in the layout of
:mod:`pipeline.evaluation.evaluate` (``{"a2s": {...}, "s2a": {...}, "model", ...}``), so
:mod:`pipeline.evaluation.tables` builds the table from it.
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
from pipeline.models.snippets import load_split
from pipeline.models.training import load_model, pick_device, setup_torch


@torch.no_grad()
def snippet_retrieval(params: dict, model_path: Path, dataset: Path, log=print) -> dict:
    e, t = params["evaluation"], params["training"]
    device = pick_device(t["device"])
    setup_torch(params["seed"], t["threads"])
    bank = load_split(dataset, e["split"], tempo_range=(e["tempo"], e["tempo"])).to(device)
    if len(bank.snippets) < 2:
        raise ValueError(f"{dataset}/{e['split']}: {len(bank.snippets)} snippet pairs at ρ {e['tempo']}; need at least 2")
    art = load_model(model_path)
    model = SnippetModel.from_artifact(art).to(device).eval()
    rows = valid_rows(len(bank.snippets), params["snippet_retrieval"]["pool"])
    sheet, audio = embed_snippets(model, bank, rows)
    a2s = cosine_distances(audio, sheet)
    out = {d: retrieval_metrics(*rank_counts(m), rule=e["ties"]) for d, m in (("a2s", a2s), ("s2a", a2s.T))}
    out.update({"model": model_path.parent.name, "emb_dim": art["meta"]["emb_dim"], "split": e["split"],
                "tempo": e["tempo"], "n_pairs": int(len(rows)), "pairs_available": int(len(bank.snippets))})
    log(f"{model_path.parent.name}: {len(rows)} of {len(bank.snippets)} snippet pairs (chance MRR "
        f"{out['a2s']['chance_MRR']:.4f}); MRR a2s {out['a2s']['MRR']:.3f} s2a {out['s2a']['MRR']:.3f}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="snippet model artifact (models/<name>/model.pt)")
    ap.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    ap.add_argument("--out", type=Path, required=True, help="metrics JSON")
    add_params_argument(ap)
    args = ap.parse_args(argv)
    params = from_args(args)
    write_json(args.out, snippet_retrieval(params, args.model, args.dataset,
                                           lambda msg: print(f"[snippet_retrieval] {msg}", file=sys.stderr, flush=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
