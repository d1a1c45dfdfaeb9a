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
Writes ``--out`` JSON: ``{"a2s": {...}, "s2a": {...}, "model", "split", "tempo", "n_passages"}``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from pipeline.metrics import cosine_distances, match_ranks, retrieval_metrics
from pipeline.models import SnippetModel
from pipeline.params import add_params_argument, from_args
from pipeline.snippets import SplitBank, load_split, passage_batch
from pipeline.stage import write_json
from pipeline.train_passage import embed_passages, load_passage_model
from pipeline.training import load_model, pick_device, setup_torch


def passage_ranks(sheet: torch.Tensor, audio: torch.Tensor) -> dict:
    """Match ranks both ways from (N, d) passage embeddings (row i of each = passage i)."""
    return {"a2s": match_ranks(cosine_distances(audio, sheet)), "s2a": match_ranks(cosine_distances(sheet, audio))}


def vote_ranks(query_emb: torch.Tensor, query_owner: np.ndarray, db_emb: torch.Tensor, db_owner: np.ndarray,
               n_passages: int, n_candidates: int) -> np.ndarray:
    """Snippet voting: rank (1-based, pessimistic ties) of each query passage's own passage.

    ``query_emb`` (Q, d) snippets of the query passages, ``query_owner`` (Q,) their passage index;
    ``db_emb`` (D, d), ``db_owner`` (D,) the candidate snippets and passages.
    """
    k = min(n_candidates, len(db_emb))
    nearest = cosine_distances(query_emb, db_emb).topk(k, dim=1, largest=False).indices.cpu().numpy()
    votes = np.zeros((n_passages, n_passages), np.int64)                 # [query passage, candidate passage]
    np.add.at(votes, (np.repeat(query_owner, k), db_owner[nearest].ravel()), 1)
    own = votes[np.arange(n_passages), np.arange(n_passages)]
    return (votes >= own[:, None]).sum(1)


@torch.no_grad()
def baseline_ranks(model: SnippetModel, bank: SplitBank, hops: tuple, n_candidates: int, batch: int = 64) -> dict:
    sheets, audios, own_s, own_a = [], [], [], []
    rows = np.arange(len(bank.passages))
    for i in range(0, len(rows), batch):
        s, a, ns, na = passage_batch(bank, rows[i:i + batch], *hops)
        sheets.append(model.embed_sheet(s)), audios.append(model.embed_audio(a))
        own_s.append(np.repeat(rows[i:i + batch], ns.numpy())), own_a.append(np.repeat(rows[i:i + batch], na.numpy()))
    s, a, own_s, own_a = torch.cat(sheets), torch.cat(audios), np.concatenate(own_s), np.concatenate(own_a)
    n = len(rows)
    return {"a2s": vote_ranks(a, own_a, s, own_s, n, n_candidates),
            "s2a": vote_ranks(s, own_s, a, own_a, n, n_candidates)}


def evaluate(params: dict, model_path: Path, dataset: Path, split: str, tempo: float, log=print) -> dict:
    e, t = params["evaluation"], params["training"]
    device = pick_device(t["device"])
    setup_torch(params["seed"], t["threads"])
    bank = load_split(dataset, split, tempo_range=(tempo, tempo)).to(device)
    if len(bank.passages) < 2:
        raise ValueError(f"{dataset}/{split}: {len(bank.passages)} passages at tempo {tempo}; need at least 2")
    art = load_model(model_path)
    hops = (params["train_passage"]["sheet_hop_half_px"], params["train_passage"]["audio_hop_frames"])
    if art["meta"]["kind"] == "snippet":
        model = SnippetModel(art["meta"]["emb_dim"], use_cca=art["meta"]["cca"])
        model.load_state_dict(art["state_dict"])
        ranks = baseline_ranks(model.to(device).eval(), bank, hops, e["n_candidates"])
        name = "BL"
    else:
        model, meta = load_passage_model(model_path)
        hops = (meta["sheet_hop_half_px"], meta["audio_hop_frames"])
        ranks = passage_ranks(*embed_passages(model.to(device), bank, np.arange(len(bank.passages)), hops))
        name = meta["variant"]
    out = {d: retrieval_metrics(r) for d, r in ranks.items()}
    out.update({"model": name, "split": split, "tempo": tempo, "n_passages": len(bank.passages)})
    log(f"{name} on {split} @ tempo {tempo}: {len(bank.passages)} passages; "
        f"MRR a2s {out['a2s']['MRR']:.3f}  s2a {out['s2a']['MRR']:.3f}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="a passage or snippet model artifact (model.pt)")
    ap.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--tempo", type=float, default=1.0, help="tempo ratio of the performances evaluated")
    ap.add_argument("--out", type=Path, required=True)
    add_params_argument(ap)
    args = ap.parse_args(argv)
    log = lambda msg: print(f"[evaluate] {msg}", file=sys.stderr, flush=True)
    write_json(args.out, evaluate(from_args(args), args.model, args.dataset, args.split, args.tempo, log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
