"""Piece identification methods on window sequences (shared by the piece_id and scalability stages):
each returns (Q, P) scores of Q query sequences against P database pieces, lower = better."""
from __future__ import annotations

import numpy as np
import torch

from pipeline.evaluation.dtw import Database, dtw_costs
from pipeline.evaluation.fingerprint import FingerprintIndex
from pipeline.evaluation.voting import vote_scores, vote_tables


def vote_method(queries: list[np.ndarray], database: list[np.ndarray], k: int, tiebreak: bool) -> torch.Tensor:
    """(Q, P) distance-like scores of the vote method (lower = better)."""
    q_emb = torch.from_numpy(np.concatenate(queries))
    q_owner = np.repeat(np.arange(len(queries)), [len(q) for q in queries])
    db_emb = torch.from_numpy(np.concatenate(database))
    db_owner = np.repeat(np.arange(len(database)), [len(d) for d in database])
    return vote_scores(*vote_tables(q_emb, q_owner, db_emb, db_owner, len(database), k, n_queries=len(queries)),
                       tiebreak)


def dtw_method(queries: list[np.ndarray], database: list[np.ndarray]) -> torch.Tensor:
    """(Q, P) normalised DTW costs (lower = better)."""
    db = Database({i: d for i, d in enumerate(database)})                   # names 0..P-1 in order
    return torch.from_numpy(np.stack([dtw_costs(q, db) for q in queries]))


def refine_method(queries: list[np.ndarray], database: list[np.ndarray], k: int, top: int, tiebreak: bool) -> torch.Tensor:
    """Filter and refine: the vote method's ``top`` pieces (k nearest windows per query window), re-ranked
    by DTW, ahead of all others (which keep their vote order). (Q, P) scores, lower = better."""
    votes = vote_method(queries, database, k, tiebreak)
    out = votes.clone()
    for i, q in enumerate(queries):
        short = np.argsort(votes[i].numpy(), kind="stable")[:top]
        costs = dtw_costs(q, Database({int(j): database[j] for j in short}))    # in shortlist order
        out[i, torch.from_numpy(short)] = torch.from_numpy(costs) + float(votes[i].min()) - 10.0
    return out


def fingerprint_method(queries: list[np.ndarray], database: list[np.ndarray], centres: np.ndarray, fp: dict) -> torch.Tensor:
    """(Q, P) scores of the fingerprint method: minus each piece's largest offset-histogram bin."""
    index = FingerprintIndex(database, centres, fp["fan_out"], fp["offset_bin"])
    return -torch.from_numpy(np.stack([index.scores(q) for q in queries]))


def method_names(p: dict) -> list[str]:
    names = []
    for m in p["methods"]:
        names += ([f"vote_k{k}" for k in p["vote_k"]] if m == "vote" else
                  [f"refine_top{p['shortlist']['top']}"] if m == "refine" else [m])
    return names
