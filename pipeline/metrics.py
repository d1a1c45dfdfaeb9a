"""Cross-modal retrieval metrics (method.md §6.1): rank of the matching item, R@k, MRR, median rank.

Convention: query i matches candidate i. Distances are cosine distances of L2-normalised
embeddings. **Tie rule (pessimistic)**: the rank of the match is the number of candidates at a
distance <= the match's, so a degenerate model that maps everything to one point gets the worst
rank, never the best.
"""
from __future__ import annotations

import numpy as np
import torch

RECALL_AT = (1, 5, 10, 25)


def cosine_distances(queries: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """(Q, d), (C, d) -> (Q, C) cosine distances (1 - cosine similarity)."""
    q = torch.nn.functional.normalize(queries.float(), dim=1)
    c = torch.nn.functional.normalize(candidates.float(), dim=1)
    return 1.0 - q @ c.T


def match_ranks(distances: torch.Tensor) -> np.ndarray:
    """1-based rank of candidate i for query i, from a (N, N) distance matrix (pessimistic ties)."""
    d = distances.double()
    match = d.diagonal().unsqueeze(1)
    return (d <= match).sum(1).cpu().numpy().astype(np.int64)


def retrieval_metrics(ranks: np.ndarray) -> dict:
    """R@k [% of queries], MRR, median and mean rank, and the number of queries."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.size == 0:
        raise ValueError("no queries to evaluate")
    out = {f"R@{k}": float(100.0 * np.mean(ranks <= k)) for k in RECALL_AT}
    out.update({"MRR": float(np.mean(1.0 / ranks)), "median_rank": float(np.median(ranks)),
                "mean_rank": float(np.mean(ranks)), "n_queries": int(ranks.size)})
    return out


def mrr(sheet: torch.Tensor, audio: torch.Tensor, direction: str = "a2s") -> float:
    """MRR of matching rows: ``a2s`` = audio queries against sheet candidates, ``s2a`` the reverse."""
    q, c = (audio, sheet) if direction == "a2s" else (sheet, audio)
    return float(np.mean(1.0 / match_ranks(cosine_distances(q, c))))
