"""Stage ``evaluate``: passage retrieval in both directions (method.md §6.1) for one model.

Every passage of the split's selected performances (default: test split, tempo 1.0, i.e. the
unseen soundfont) is one (sheet, audio) pair. ``a2s``: each audio passage queries all sheet
passages; ``s2a`` the reverse. Metrics: R@1/5/10/25 [%], MRR, median and mean rank
(:mod:`pipeline.metrics`, pessimistic ties).

Models: a passage model artifact (``models/passage/<variant>/model.pt``) is embedded directly;
a snippet model artifact gives the **snippet-voting baseline** (BL): each query passage is cut
into snippets (the passage hops), each snippet retrieves its ``n_candidates`` nearest snippets
among those of all candidate passages, each hit votes for its passage, and passages are ranked by
votes. Tie rule: pessimistic, as everywhere (a passage tied with the match ranks before it).
Writes ``--out`` JSON: ``{"a2s": {...}, "s2a": {...}, "model", "split", "tempo", "n_passages"}``
and, with ``--details``, one CSV row per passage (the experiments' input): piece, performance,
system, ``audio_s`` (passage duration [s]), ``sheet_px`` (strip width [px]), ``rank_a2s``,
``rank_s2a``, ``distance`` (cosine distance of the matching pair; empty for BL) and ``top_a2s`` /
``top_s2a`` (the best ``N_TOP`` candidate passages, space-separated row numbers of this CSV).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline.constants import FPS
from pipeline.metrics import cosine_distances, match_ranks, retrieval_metrics
from pipeline.models import SnippetModel
from pipeline.params import add_params_argument, from_args
from pipeline.snippets import SplitBank, load_split, passage_batch
from pipeline.stage import write_json
from pipeline.train_passage import embed_passages, load_passage_model
from pipeline.training import load_model, pick_device, setup_torch


N_TOP = 25  # candidates listed per query in the details CSV (the largest R@k)


def passage_distances(sheet: torch.Tensor, audio: torch.Tensor) -> dict:
    """(N, N) query x candidate distances both ways from (N, d) passage embeddings (row i = passage i)."""
    a2s = cosine_distances(audio, sheet)
    return {"a2s": a2s, "s2a": a2s.T}


def vote_matrix(query_emb: torch.Tensor, query_owner: np.ndarray, db_emb: torch.Tensor, db_owner: np.ndarray,
                n_passages: int, n_candidates: int) -> np.ndarray:
    """Snippet voting: (N, N) votes [query passage, candidate passage].

    ``query_emb`` (Q, d) snippets of the query passages, ``query_owner`` (Q,) their passage index;
    ``db_emb`` (D, d), ``db_owner`` (D,) the candidate snippets and passages. Each query snippet
    votes once for the passage of each of its ``n_candidates`` nearest database snippets.
    """
    k = min(n_candidates, len(db_emb))
    nearest = cosine_distances(query_emb, db_emb).topk(k, dim=1, largest=False).indices.cpu().numpy()
    votes = np.zeros((n_passages, n_passages), np.int64)
    np.add.at(votes, (np.repeat(query_owner, k), db_owner[nearest].ravel()), 1)
    return votes


def vote_scores(*args) -> torch.Tensor:
    """Minus the :func:`vote_matrix` (same arguments): lower is better, like a distance."""
    return -torch.from_numpy(vote_matrix(*args)).double()


def vote_ranks(query_emb: torch.Tensor, query_owner: np.ndarray, db_emb: torch.Tensor, db_owner: np.ndarray,
               n_passages: int, n_candidates: int) -> np.ndarray:
    """Rank (1-based, pessimistic ties) of each query passage's own passage by votes (:func:`vote_matrix`)."""
    return match_ranks(vote_scores(query_emb, query_owner, db_emb, db_owner, n_passages, n_candidates))


@torch.no_grad()
def baseline_scores(model: SnippetModel, bank: SplitBank, hops: tuple, n_candidates: int, batch: int = 64) -> dict:
    """(N, N) query x candidate scores both ways (minus votes: lower is better, like a distance)."""
    sheets, audios, own_s, own_a = [], [], [], []
    rows = np.arange(len(bank.passages))
    for i in range(0, len(rows), batch):
        s, a, ns, na = passage_batch(bank, rows[i:i + batch], *hops)
        sheets.append(model.embed_sheet(s)), audios.append(model.embed_audio(a))
        own_s.append(np.repeat(rows[i:i + batch], ns.numpy())), own_a.append(np.repeat(rows[i:i + batch], na.numpy()))
    s, a, own_s, own_a = torch.cat(sheets), torch.cat(audios), np.concatenate(own_s), np.concatenate(own_a)
    n = len(rows)
    return {"a2s": vote_scores(a, own_a, s, own_s, n, n_candidates), "s2a": vote_scores(s, own_s, a, own_a, n, n_candidates)}


def details_table(bank: SplitBank, scores: dict, ranks: dict, distance: np.ndarray | None) -> pd.DataFrame:
    """One row per passage: durations, match ranks both ways, matching distance, top candidates."""
    p = bank.passages
    out = pd.DataFrame({"piece": p.piece, "performance": p.performance, "system": p.system,
                        "audio_s": (p.f1 - p.f0) / FPS, "sheet_px": p.x1 - p.x0})
    for d, r in ranks.items():
        out[f"rank_{d}"] = r
    out["distance"] = distance if distance is not None else np.nan
    for d, m in scores.items():
        # stable order: ties keep the lower row first (only the listing; ranks stay pessimistic)
        top = np.argsort(m.cpu().numpy(), axis=1, kind="stable")[:, :N_TOP]
        out[f"top_{d}"] = [" ".join(map(str, r)) for r in top]
    return out


def evaluate(params: dict, model_path: Path, dataset: Path, split: str, tempo: float, log=print,
             details: Path | None = None) -> dict:
    e, t = params["evaluation"], params["training"]
    device = pick_device(t["device"])
    setup_torch(params["seed"], t["threads"])
    bank = load_split(dataset, split, tempo_range=(tempo, tempo)).to(device)
    if len(bank.passages) < 2:
        raise ValueError(f"{dataset}/{split}: {len(bank.passages)} passages at tempo {tempo}; need at least 2")
    art = load_model(model_path)
    hops = (params["train_passage"]["sheet_hop_half_px"], params["train_passage"]["audio_hop_frames"])
    if art["meta"]["kind"] == "snippet":
        scores = baseline_scores(SnippetModel.from_artifact(art).to(device), bank, hops, e["n_candidates"])
        distance, name = None, "BL"
    else:
        model, meta = load_passage_model(model_path)
        hops = (meta["sheet_hop_half_px"], meta["audio_hop_frames"])
        scores = passage_distances(*embed_passages(model.to(device), bank, np.arange(len(bank.passages)), hops))
        distance, name = scores["a2s"].diagonal().cpu().numpy(), meta["variant"]
    ranks = {d: match_ranks(m) for d, m in scores.items()}
    out = {d: retrieval_metrics(r) for d, r in ranks.items()}
    if details is not None:
        details.parent.mkdir(parents=True, exist_ok=True)
        details_table(bank, scores, ranks, distance).to_csv(details, index=False, float_format="%.6g")
    out.update({"model": name, "emb_dim": art["meta"]["emb_dim"], "split": split, "tempo": tempo,
                "n_passages": len(bank.passages)})
    log(f"{name} on {split} @ tempo {tempo}: {len(bank.passages)} passages; "
        f"MRR a2s {out['a2s']['MRR']:.3f}  s2a {out['s2a']['MRR']:.3f}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="a passage or snippet model artifact (model.pt)")
    ap.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--tempo", type=float, default=1.0, help="tempo ratio of the performances evaluated")
    ap.add_argument("--out", type=Path, required=True, help="metrics JSON")
    ap.add_argument("--details", type=Path, default=None, help="per-passage CSV (ranks, distances, top candidates)")
    add_params_argument(ap)
    args = ap.parse_args(argv)
    log = lambda msg: print(f"[evaluate] {msg}", file=sys.stderr, flush=True)
    write_json(args.out, evaluate(from_args(args), args.model, args.dataset, args.split, args.tempo, log, args.details))
    return 0


if __name__ == "__main__":
    sys.exit(main())
