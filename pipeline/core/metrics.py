"""Cross-modal retrieval metrics (method.md §6.1): rank of the matching item, R@k, MRR, median rank,
with a named tie rule, the chance level and a bootstrap interval.

Convention: query i matches candidate i. Scores are distances (lower = better): cosine distances
of L2-normalised embeddings, or minus the votes of the snippet-voting baseline.

**Tie rules** (``evaluation.ties``). For each query, ``better`` candidates score strictly better
than the match and ``tied`` *other* candidates score exactly the same:

- ``expected`` (default): the match is placed uniformly at random among its ties; every metric is
  its expectation over those orderings (rank ``better + 1 + tied/2``, reciprocal rank the mean of
  ``1/r`` over ``r = better+1 … better+tied+1``, R@k the probability that the rank is ≤ k);
- ``pessimistic``: the match after all its ties (rank ``better + tied + 1``; a collapsed model scores worst);
- ``optimistic``: the match before all its ties (rank ``better + 1``).

Passage models' float distances practically never tie; the integer vote counts of BL do, which
is why the rule matters and is named.

Distances are always computed in float32 (even inside an autocast region).
"""
from __future__ import annotations

import numpy as np
import torch

RECALL_AT = (1, 5, 10, 25)
TIE_RULES = ("expected", "pessimistic", "optimistic")
N_BOOTSTRAP = 2000        # resamples of the queries for the 95 % interval of the MRR
BOOTSTRAP_SEED = 0        # fixed: the interval of a given set of ranks is reproducible


def cosine_distances(queries: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """(Q, d), (C, d) -> (Q, C) cosine distances (1 - cosine similarity), float32 even under autocast."""
    with torch.autocast(queries.device.type, enabled=False):
        q = torch.nn.functional.normalize(queries.float(), dim=1)
        c = torch.nn.functional.normalize(candidates.float(), dim=1)
        return 1.0 - q @ c.T


def rank_counts(distances: torch.Tensor, match: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per query i of a (N, N) score matrix (lower = better): the number of candidates strictly better
    than candidate i, and the number of *other* candidates tied with it. With ``match`` (N,), the
    query's matching candidate is ``match[i]`` in a (N, C) matrix (e.g. pieces)."""
    d = torch.as_tensor(distances).double()
    if match is None:
        match = d.diagonal().unsqueeze(1)
    else:
        match = d.gather(1, torch.as_tensor(np.asarray(match), dtype=torch.long, device=d.device)[:, None])
    better = (d < match).sum(1)
    tied = (d == match).sum(1) - 1
    return better.cpu().numpy().astype(np.int64), tied.cpu().numpy().astype(np.int64)


def _harmonic(n: np.ndarray) -> np.ndarray:
    """H(n) = 1 + 1/2 + ... + 1/n (H(0) = 0), exact enough for any rank (float64 cumulative sum)."""
    n = np.asarray(n, dtype=np.int64)
    table = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, int(n.max(initial=0)) + 1))])
    return table[n]


def ranks(better: np.ndarray, tied: np.ndarray, rule: str = "expected") -> np.ndarray:
    """Rank of the match (1-based; fractional under ``expected``)."""
    better, tied = np.asarray(better, np.float64), np.asarray(tied, np.float64)
    if rule == "pessimistic":
        return better + tied + 1
    if rule == "optimistic":
        return better + 1
    if rule == "expected":
        return better + 1 + tied / 2
    raise ValueError(f"unknown tie rule '{rule}'; one of {TIE_RULES}")


def reciprocal_ranks(better: np.ndarray, tied: np.ndarray, rule: str = "expected") -> np.ndarray:
    """Per-query reciprocal rank under the tie rule (its expectation under ``expected``)."""
    better, tied = np.asarray(better, np.int64), np.asarray(tied, np.int64)
    if rule == "expected":
        return (_harmonic(better + tied + 1) - _harmonic(better)) / (tied + 1)
    return 1.0 / ranks(better, tied, rule)


def recall_at(better: np.ndarray, tied: np.ndarray, k: int, rule: str = "expected") -> np.ndarray:
    """Per-query probability that the match is within the top ``k`` under the tie rule."""
    better, tied = np.asarray(better, np.float64), np.asarray(tied, np.float64)
    if rule == "expected":
        return np.clip((k - better) / (tied + 1), 0.0, 1.0)
    return (ranks(better, tied, rule) <= k).astype(np.float64)


def chance_mrr(n_candidates: int) -> float:
    """Expected MRR of a random ranking of ``n_candidates`` (the match at a uniform rank): H(n) / n."""
    return float(_harmonic(np.array([n_candidates]))[0] / n_candidates)


def bootstrap_interval(values: np.ndarray, level: float = 0.95, n: int = N_BOOTSTRAP,
                       seed: int = BOOTSTRAP_SEED) -> list[float]:
    """Percentile bootstrap interval of the mean of ``values`` (queries resampled with replacement)."""
    values = np.asarray(values, np.float64)
    idx = np.random.default_rng(seed).integers(0, len(values), size=(n, len(values)))
    means = values[idx].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return [float(lo), float(hi)]


def retrieval_metrics(better: np.ndarray, tied: np.ndarray, rule: str = "expected",
                      n_candidates: int | None = None) -> dict:
    """R@k [% of queries], MRR with its 95 % bootstrap interval, the chance MRR, median and mean rank,
    the number of queries and the fraction of queries whose match is tied."""
    better = np.asarray(better)
    if better.size == 0:
        raise ValueError("no queries to evaluate")
    n_candidates = n_candidates or int(better.size)
    rr = reciprocal_ranks(better, tied, rule)
    r = ranks(better, tied, rule)
    out = {f"R@{k}": float(100.0 * np.mean(recall_at(better, tied, k, rule))) for k in RECALL_AT}
    out.update({"MRR": float(np.mean(rr)), "MRR_ci95": bootstrap_interval(rr), "chance_MRR": chance_mrr(n_candidates),
                "median_rank": float(np.median(r)), "mean_rank": float(np.mean(r)), "n_queries": int(better.size),
                "n_candidates": n_candidates, "ties": rule, "tied_fraction": float(np.mean(np.asarray(tied) > 0)),
                "MRR_by_tie_rule": {t: float(np.mean(reciprocal_ranks(better, tied, t))) for t in TIE_RULES}})
    return out


def mrr(sheet: torch.Tensor, audio: torch.Tensor, direction: str = "a2s") -> float:
    """MRR (expected ties) of matching rows: ``a2s`` = audio queries against sheet candidates, ``s2a`` the reverse."""
    q, c = (audio, sheet) if direction == "a2s" else (sheet, audio)
    return float(np.mean(reciprocal_ranks(*rank_counts(cosine_distances(q, c)))))


def validation_summary(sheet: torch.Tensor, audio: torch.Tensor) -> dict:
    """A2S validation MRR with n, chance and its 95 % interval (what training stages report)."""
    better, tied = rank_counts(cosine_distances(audio, sheet))
    rr = reciprocal_ranks(better, tied)
    return {"MRR": float(np.mean(rr)), "MRR_ci95": bootstrap_interval(rr), "chance_MRR": chance_mrr(len(rr)),
            "n": int(len(rr))}
