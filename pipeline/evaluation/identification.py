"""Piece identification methods on window sequences (shared by the piece_id and scalability stages):
each returns (Q, P) scores of Q query sequences against P database pieces, lower = better."""
from __future__ import annotations

import numpy as np
import torch

from pipeline.evaluation.dtw import Database, dtw_costs, dtw_pairs
from pipeline.evaluation.fingerprint import FingerprintIndex
from pipeline.evaluation.voting import vote_scores, vote_tables
from pipeline.evaluation.window_index import WindowIndex


def vote_method(queries: list[np.ndarray], database: list[np.ndarray], k: int, tiebreak: bool,
                index: dict | None = None) -> torch.Tensor:
    """(Q, P) distance-like scores of the vote method (lower = better). ``index``: ``piece_id.index``
    (approximate search above its size; default exact)."""
    q_emb = torch.from_numpy(np.concatenate(queries))
    q_owner = np.repeat(np.arange(len(queries)), [len(q) for q in queries])
    db_emb = torch.from_numpy(np.concatenate(database))
    db_owner = np.repeat(np.arange(len(database)), [len(d) for d in database])
    search = WindowIndex(db_emb, **index) if index else None
    return vote_scores(*vote_tables(q_emb, q_owner, db_emb, db_owner, len(database), k, n_queries=len(queries),
                                    index=search), tiebreak)


def dtw_method(queries: list[np.ndarray], database: list[np.ndarray]) -> torch.Tensor:
    """(Q, P) normalised DTW costs (lower = better)."""
    db = Database({i: d for i, d in enumerate(database)})                   # names 0..P-1 in order
    return torch.from_numpy(np.stack([dtw_costs(q, db) for q in queries]))


def standardised(scores: np.ndarray, reference: np.ndarray, axis: int) -> np.ndarray:
    """``scores`` minus the mean, over the std, of ``reference`` along ``axis`` (a zero std counts as 1e-9)."""
    mean, std = reference.mean(axis, keepdims=True), reference.std(axis, keepdims=True)
    return (scores - mean) / np.maximum(std, 1e-9)


def dtw_tempo_method(by_factor: dict, direction: str, cohort: list[np.ndarray], normalise: str = "cohort") -> torch.Tensor:
    """(Q, P) scores of DTW under tempo hypotheses (lower = better).

    ``by_factor``: per retiming factor f, the (queries, database) of one direction with the audio side's
    spectrograms retimed by f (:meth:`pipeline.evaluation.piecedb.Windows.tempo_inputs`; include 1.0).
    DTW costs of different factors are not comparable as they are: a stretched recording is smoother and
    closer to every score (measured: the plain minimum over factors loses at ρ = 0.5 what it gains). So
    costs are standardised, partly against a fixed ``cohort`` of training pieces (never the queries), and a
    pair scores its best factor:

    * A2S (the query recording is retimed; ``cohort``: training pieces' *recordings*, as played): per query
      and factor over all database pieces (the row's mean and std), then per database piece by the cohort
      recordings' scores standardised the same way (speaker verification's ZT-norm: the second step
      removes the pieces that are close to every recording);
    * S2A (the database recordings are retimed; ``cohort``: training pieces' *scores*): per database
      recording and factor, by the DTW costs of the cohort scores against it.

    ``normalise="none"``: the plain minimum of the raw costs over the factors (for comparison).
    """
    best = None
    for queries, database in by_factor.values():
        costs = dtw_method(queries, database).numpy()
        if normalise == "none":
            z = costs
        elif direction == "a2s":
            z = standardised(costs, costs, axis=1)
        else:
            z = standardised(costs, dtw_method(cohort, database).numpy(), axis=0)
        best = z if best is None else np.minimum(best, z)
    if direction == "a2s" and normalise != "none":
        database = next(iter(by_factor.values()))[1]
        c = dtw_method(cohort, database).numpy()
        best = standardised(best, standardised(c, c, axis=1), axis=0)
    return torch.from_numpy(best)


def pooled(x: np.ndarray, factor: int) -> np.ndarray:
    """(ceil(W / factor), dim) the means of ``factor`` consecutive windows of a (W, dim) sequence (the last
    window repeated to fill the last group): the coarse sequence a filter aligns."""
    if factor == 1:
        return x
    pad = (-len(x)) % factor
    full = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
    return full.reshape(-1, factor, x.shape[1]).mean(axis=1)


def refine_method(queries: list[np.ndarray], database: list[np.ndarray], shortlist: dict, tiebreak: bool,
                  index: dict | None = None) -> torch.Tensor:
    """Filter and refine: a cheap filter ranks every piece, its ``shortlist.top`` pieces are re-ranked by
    exact DTW ahead of all others (which keep the filter's order). Filters (``shortlist.filter``):
    ``coarse_dtw`` = DTW of the sequences mean-pooled by ``shortlist.coarse`` (``coarse``² times fewer
    cells), ``vote`` = the vote method with ``shortlist.vote_k``. (Q, P) scores, lower = better."""
    if shortlist["filter"] == "vote":
        first = vote_method(queries, database, shortlist["vote_k"], tiebreak, index)
    else:
        f = shortlist["coarse"]
        first = dtw_method([pooled(q, f) for q in queries], [pooled(d, f) for d in database])
    out = first.clone()
    short = np.argsort(first.numpy(), axis=1, kind="stable")[:, :shortlist["top"]]
    rows = np.repeat(np.arange(len(queries)), short.shape[1])
    costs = dtw_pairs([queries[i] for i in rows], [database[j] for j in short.ravel()])   # every query's shortlist at once
    lowest = first.min(dim=1, keepdim=True).values
    out[torch.from_numpy(rows), torch.from_numpy(short.ravel())] = (torch.from_numpy(costs).to(out.dtype)
                                                                     + lowest[torch.from_numpy(rows), 0] - 10.0)
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
