"""Stage ``evaluate``: passage retrieval in both directions (method.md §6.1) for one model.

Every passage of the split's selected performances (default: test split, tempo 1.0, i.e. the
unseen soundfont) is one (sheet, audio) pair. ``a2s``: each audio passage queries all sheet
passages; ``s2a`` the reverse. Metrics: R@1/5/10/25 [%], MRR, median and mean rank
(:mod:`pipeline.core.metrics`, tie rule ``evaluation.ties``, 95 % bootstrap interval and chance MRR).

Models: a passage model artifact (``models/passage/<variant>/model.pt``) is embedded directly;
a snippet model artifact gives the **snippet-voting baseline** (BL): each query passage is cut
into snippets (the passage hops), each snippet retrieves its ``n_candidates`` nearest snippets
among those of all candidate passages, each hit votes for its passage, and passages are ranked by
votes; with ``evaluation.bl_similarity_tiebreak`` equal vote counts are ordered by the summed cosine
similarity of those votes. Remaining ties follow ``evaluation.ties``, as for every model.
One process may evaluate several models and tempi (``--model``/``--tempo`` lists; each tempo's
renderings are loaded once): the dimension sweep's models, one model at every test tempo (Exp 3).
Writes per evaluation a JSON (``--out``, or ``--out-dir/rho-XXXX.json``, ρ x 1000):
``{"a2s": {...}, "s2a": {...}, "model", "split", "tempo", "n_passages"}``
and, with ``--details``, one CSV row per passage (the experiments' input): piece, performance,
system, ``audio_s`` (passage duration [s]), ``sheet_px`` (strip width [px]), ``rank_a2s``,
``rank_s2a`` (under the tie rule; fractional for ``expected``), ``rr_a2s``, ``rr_s2a`` (reciprocal
ranks: their mean is the MRR), ``distance`` (cosine distance of the matching pair; empty for BL) and ``top_a2s`` /
``top_s2a`` (the best ``N_TOP`` candidate passages, space-separated row numbers of this CSV).

Snippet-model variants (issue 14, ``snakemake attention``): a variant's snippet model (longer audio context,
attention) as BL's snippet model cuts each passage into windows of its own geometry at the same hops and
centres (``pipeline.models.embedding.model_passage_sheet`` / ``model_passage_audio``), and a passage model
trained on a variant (``attention.passage_variants``) does the same; everything else is the protocol above.
``--label`` names such a row (the JSON's ``label``: e.g. ``BL+Att (att42)``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline.core.constants import FPS, rho_id, rho_label
from pipeline.core.metrics import cosine_distances, rank_counts, ranks, reciprocal_ranks, retrieval_metrics
from pipeline.core.params import add_params_argument, from_args
from pipeline.core.stage import write_json
from pipeline.evaluation.voting import vote_scores, vote_tables
from pipeline.models import embedding
from pipeline.models.embedding import FeatureCache, embed_cached, load_passage_model, sheet_keys
from pipeline.models.networks import SnippetModel
from pipeline.models.snippets import SplitBank, load_split
from pipeline.models.training import load_model, pick_device, setup_torch

N_TOP = 25  # candidates listed per query in the details CSV (the largest R@k)


def passage_distances(sheet: torch.Tensor, audio: torch.Tensor) -> dict:
    """(N, N) query x candidate distances both ways from (N, d) passage embeddings (row i = passage i)."""
    a2s = cosine_distances(audio, sheet)
    return {"a2s": a2s, "s2a": a2s.T}


@torch.no_grad()
def baseline_scores(model: SnippetModel, bank: SplitBank, hops: tuple, n_candidates: int,
                    similarity_tiebreak: bool = True, batch: int = 64, sheet_memo: dict | None = None) -> dict:
    """(N, N) query x candidate scores both ways (:func:`vote_scores`: lower is better, like a distance).

    ``sheet_memo``: a dict of this model's sheet snippet embeddings, reused by a bank of the same
    systems (another tempo). The windows follow the model's geometry (a snippet variant's audio context and
    sheet width; the default model: 1 s and 180 px)."""
    rows = np.arange(len(bank.passages))
    sheet_key = ("baseline", tuple(sheet_keys(bank, rows)), hops[0])
    memo = {} if sheet_memo is None else sheet_memo
    sheets, audios, own_s, own_a = [], [], [], []
    for i in range(0, len(rows), batch):
        chunk = rows[i:i + batch]
        if sheet_key not in memo:
            s, ns = embedding.model_passage_sheet(bank, chunk, hops[0], model.sheet_px)
            sheets.append(model.embed_sheet(s)), own_s.append(np.repeat(chunk, ns.numpy()))
        a, na = embedding.model_passage_audio(bank, chunk, hops[1], model.context_frames)
        audios.append(model.embed_audio(a)), own_a.append(np.repeat(chunk, na.numpy()))
    if sheet_key not in memo:
        memo[sheet_key] = torch.cat(sheets), np.concatenate(own_s)
    (s, own_s), a, own_a = memo[sheet_key], torch.cat(audios), np.concatenate(own_a)
    n = len(rows)
    return {"a2s": vote_scores(*vote_tables(a, own_a, s, own_s, n, n_candidates), similarity_tiebreak),
            "s2a": vote_scores(*vote_tables(s, own_s, a, own_a, n, n_candidates), similarity_tiebreak)}


def details_table(bank: SplitBank, scores: dict, counts: dict, rule: str, distance: np.ndarray | None) -> pd.DataFrame:
    """One row per passage: durations, match ranks and reciprocal ranks both ways (tie rule ``rule``),
    matching distance, top candidates."""
    p = bank.passages
    out = pd.DataFrame({"piece": p.piece, "performance": p.performance, "system": p.system,
                        "audio_s": (p.f1 - p.f0) / FPS, "sheet_px": p.x1 - p.x0})
    for d, c in counts.items():
        out[f"rank_{d}"] = ranks(*c, rule)
        out[f"rr_{d}"] = reciprocal_ranks(*c, rule)
    out["distance"] = distance if distance is not None else np.nan
    for d, m in scores.items():
        # stable order: ties keep the lower row first (only the listing; ranks follow the tie rule)
        top = np.argsort(m.cpu().numpy(), axis=1, kind="stable")[:, :N_TOP]
        out[f"top_{d}"] = [" ".join(map(str, r)) for r in top]
    return out


def load_bank(dataset: Path, split: str, tempo: float, device: torch.device) -> SplitBank:
    """The split's passages at tempo factor ``tempo`` (its test-soundfont renderings for ``test``)."""
    bank = load_split(dataset, split, tempo_range=(tempo, tempo)).to(device)
    if len(bank.passages) < 2:
        raise ValueError(f"{dataset}/{split}: {len(bank.passages)} passages at tempo {tempo}; need at least 2")
    return bank


def evaluate(params: dict, model_path: Path, dataset: Path, split: str, tempo: float, log=print,
             details: Path | None = None, feature_store: Path | None = None, bank: SplitBank | None = None,
             sheet_memo: dict | None = None, label: str | None = None) -> dict:
    """Metrics of one model on one split at one tempo; ``bank`` (from :func:`load_bank`) saves
    reloading the split when one process evaluates several models or tempi, ``sheet_memo`` (a dict
    kept by the caller per model) computing the model's sheet side again at another tempo.
    ``label``: the row's name in tables (stored as ``label``; none by default)."""
    e, t = params["evaluation"], params["training"]
    device = pick_device(t["device"])
    setup_torch(params["seed"], t["threads"])
    bank = load_bank(dataset, split, tempo, device) if bank is None else bank
    art = load_model(model_path)
    hops = (params["train_passage"]["sheet_hop_half_px"], params["train_passage"]["audio_hop_frames"])
    if art["meta"]["kind"] == "snippet":
        scores = baseline_scores(SnippetModel.from_artifact(art).to(device), bank, hops, e["n_candidates"],
                                 e["bl_similarity_tiebreak"], sheet_memo=sheet_memo)
        distance, name = None, "BL"
    else:
        model, meta = load_passage_model(model_path)
        hops = (meta["sheet_hop_half_px"], meta["audio_hop_frames"])
        # CNN outputs via the frozen-feature cache: models with frozen pretrained CNNs (FZ, every sweep
        # point) share them, so only the first of them computes the split's snippets
        cache = FeatureCache(model.to(device), bank, hops, feature_store if meta["freeze_cnn"] else None, log,
                             sheet_memo)
        scores = passage_distances(*embed_cached(model, cache, np.arange(len(bank.passages))))
        cache.save()
        distance, name = scores["a2s"].diagonal().cpu().numpy(), meta["variant"]
    counts = {d: rank_counts(m) for d, m in scores.items()}
    out = {d: retrieval_metrics(*c, rule=e["ties"]) for d, c in counts.items()}
    if details is not None:
        details.parent.mkdir(parents=True, exist_ok=True)
        details_table(bank, scores, counts, e["ties"], distance).to_csv(details, index=False, float_format="%.6g")
    out.update({"model": name, "emb_dim": art["meta"]["emb_dim"], "split": split, "tempo": tempo,
                "n_passages": len(bank.passages)})
    if label is not None:               # (the default rows' JSON is unchanged)
        out["label"], name = label, label
    log(f"{name} on {split} @ {rho_label(tempo)}: {len(bank.passages)} passages (chance MRR {out['a2s']['chance_MRR']:.3f}); "
        f"MRR a2s {out['a2s']['MRR']:.3f} {out['a2s']['MRR_ci95']}  s2a {out['s2a']['MRR']:.3f} {out['s2a']['MRR_ci95']}")
    return out


TEST_RATIOS = "test-ratios"   # --tempo word: every render.test_tempo_ratios (Experiment 3)


def tempo_file(tempo: float) -> str:
    """File name of one tempo's metrics under ``--out-dir``: ``rho-0500.json``, ``rho-1000.json``."""
    return f"{rho_id(tempo)}.json"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, nargs="+", required=True, help="passage or snippet model artifacts (model.pt)")
    ap.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    ap.add_argument("--split", default=None, help="default: evaluation.split (the protocol)")
    ap.add_argument("--tempo", nargs="+", default=None,
                    help=f"tempo factors ρ of the performances evaluated, or '{TEST_RATIOS}' (render.test_tempo_ratios); "
                         "default: evaluation.tempo (the protocol)")
    out = ap.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", type=Path, nargs="+", help="metrics JSON, one per (model, tempo), model-major order")
    out.add_argument("--out-dir", type=Path, help=f"one model: metrics JSON per tempo, OUT_DIR/{tempo_file(0.5)} ...")
    ap.add_argument("--details", type=Path, nargs="+", default=None,
                    help="per-passage CSV (ranks, distances, top candidates), one per --out")
    ap.add_argument("--feature-cache", type=Path, default=Path("checkpoints/features"),
                    help="folder of the frozen-feature cache shared with training (pipeline.models.embedding.FeatureCache)")
    ap.add_argument("--label", default=None, help="the row's name in tables, e.g. 'BL+Att (att42)' (one --model)")
    add_params_argument(ap)
    args = ap.parse_args(argv)
    params = from_args(args)
    split = args.split or params["evaluation"]["split"]
    if args.label is not None and len(args.model) != 1:
        ap.error("--label takes one --model")
    tempi = [float(t) for word in (args.tempo or [params["evaluation"]["tempo"]])
             for t in (params["render"]["test_tempo_ratios"] if word == TEST_RATIOS else [word])]
    runs = [(m, t) for m in args.model for t in tempi]
    if args.out_dir is not None:
        if len(args.model) != 1:
            ap.error("--out-dir takes one --model")
        outs = [args.out_dir / tempo_file(t) for t in tempi]
    else:
        outs = args.out
    if len(outs) != len(runs) or (args.details is not None and len(args.details) != len(runs)):
        ap.error(f"{len(args.model)} model(s) x {len(tempi)} tempo(s) = {len(runs)} evaluations: "
                 f"give as many --out (got {len(outs)}) and --details (got {len(args.details or [])}, or none)")
    log = lambda msg: print(f"[evaluate] {msg}", file=sys.stderr, flush=True)
    device = pick_device(params["training"]["device"])
    # several evaluations in one process: one start-up, each tempo's renderings loaded once
    # and a model's sheet side computed once for all tempi (the score is the same at every ρ)
    banks = {t: load_bank(args.dataset, split, t, device) for t in dict.fromkeys(tempi)}
    sheet_memos = {m: {} for m in args.model}
    for i, (model, tempo) in enumerate(runs):
        details = args.details[i] if args.details is not None else None
        write_json(outs[i], evaluate(params, model, args.dataset, split, tempo, log, details,
                                     args.feature_cache, banks[tempo], sheet_memos[model], args.label))
    return 0


if __name__ == "__main__":
    sys.exit(main())
