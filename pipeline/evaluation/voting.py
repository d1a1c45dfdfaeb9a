"""Snippet voting (Dorfer's baseline): each query snippet's nearest database snippets vote for the
passage or piece they belong to; candidates are ranked by votes (BL of Table 2, the vote method of
piece identification)."""
from __future__ import annotations

import numpy as np
import torch

from pipeline.evaluation.window_index import WindowIndex


def vote_tables(query_emb: torch.Tensor, query_owner: np.ndarray, db_emb: torch.Tensor, db_owner: np.ndarray,
                n_passages: int, n_candidates: int, n_queries: int | None = None,
                index: WindowIndex | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Snippet voting: (N_q, N) votes and (N_q, N) summed similarity of those votes [query, candidate].

    ``query_emb`` (Q, d) snippets (windows) of the queries, ``query_owner`` (Q,) their query index;
    ``db_emb`` (D, d), ``db_owner`` (D,) the candidate snippets and their candidate index (passage or
    piece) among ``n_passages``. Each query snippet votes once for the candidate of each of its
    ``n_candidates`` nearest database snippets. ``n_queries`` defaults to ``n_passages`` (queries and
    candidates are the same passages, the match of query i being candidate i). ``index``: a
    :class:`WindowIndex` of ``db_emb`` (default: exact search, by chunks of query snippets).
    """
    k = min(n_candidates, len(db_emb))
    dist, nearest = (index or WindowIndex(db_emb)).search(query_emb, k)
    rows, cols = np.repeat(query_owner, k), db_owner[nearest.cpu().numpy()].ravel()
    shape = (n_passages if n_queries is None else n_queries, n_passages)
    votes = np.zeros(shape, np.int64)
    similarity = np.zeros(shape, np.float64)
    np.add.at(votes, (rows, cols), 1)
    np.add.at(similarity, (rows, cols), 1.0 - dist.double().cpu().numpy().ravel())
    return votes, similarity


def vote_scores(votes: np.ndarray, similarity: np.ndarray, similarity_tiebreak: bool = True) -> torch.Tensor:
    """Distance-like (N_q, N) scores from :func:`vote_tables` (lower = better): minus the votes, and with
    ``similarity_tiebreak`` the summed similarity as a second key. It is scaled into (-0.5, 0.5) by
    the query's total number of votes, so it orders equal vote counts and never overturns a vote."""
    scores = votes.astype(np.float64)
    if similarity_tiebreak:
        total = votes.sum(1, keepdims=True)
        scores = scores + 0.5 * similarity / (total + 1)
    return -torch.from_numpy(scores)
