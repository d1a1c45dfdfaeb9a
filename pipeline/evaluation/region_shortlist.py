"""Filter and refine for fragment search: nearest windows find candidate regions, subsequence DTW runs
only there.

Exhaustive subsequence DTW of a fragment costs (query windows × every database window) cells: 1.9 s
per 20-window query at 1 M windows on 2 cores. Here each query window's ``k`` nearest database
windows (:class:`pipeline.evaluation.window_index.WindowIndex`: exact, or HNSW above its size) are
*hits*; hits of one piece that lie within ``gap`` windows of each other form a **region**, scored by
the number of distinct query windows that hit it. The ``top`` regions, each widened by ``margin``
windows on both sides (the match may extend past the hits), are searched by exact subsequence DTW
(:func:`pipeline.evaluation.dtw.subsequence_best`); a piece's cost is its best region's. Pieces
without a searched region rank after all others, ordered by their hits.

``gap`` and ``margin`` default to the query's length in windows: a fragment's true region is about
that long in either modality up to the modalities' rate ratio (50 px sheet hop against 0.5 s audio
hop: 0.5–2 sheet windows per audio window in our corpora).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.evaluation.dtw import Database, subsequence_best
from pipeline.evaluation.window_index import WindowIndex


@dataclass
class Regions:
    """Candidate regions of one query: ``piece`` (R,), ``lo`` / ``hi`` (R,) first and last window
    (inclusive, within the piece), ``votes`` (R,) distinct query windows with a hit inside; best first."""
    piece: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    votes: np.ndarray


class RegionSearch:
    """Database of pieces' window sequences with one nearest-window index over all of them.

    ``sequences``: list of (M_p, dim) arrays (pieces in order); ``index``: ``piece_id.index`` keywords
    (:class:`WindowIndex`; ``None`` = exact), or ``window_index`` already built over the concatenated sequences."""

    def __init__(self, sequences: list[np.ndarray], index: dict | None = None, window_index: WindowIndex | None = None):
        self.sequences = sequences
        self.lengths = np.array([len(s) for s in sequences])
        self.offset = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.owner = np.repeat(np.arange(len(sequences)), self.lengths)
        self.index = window_index or WindowIndex(np.concatenate(sequences).astype(np.float32), **(index or {}))

    def regions(self, query: np.ndarray, k: int, gap: int | None = None, margin: int | None = None) -> Regions:
        """Every region of ``query`` (N, dim), most votes first (ties: piece, then position)."""
        n = len(query)
        gap = n if gap is None else gap
        margin = n if margin is None else margin
        _, rows = self.index.search(np.asarray(query, np.float32), k)
        rows = rows.numpy()
        qwin = np.repeat(np.arange(n), rows.shape[1])
        rows = rows.ravel()
        piece = self.owner[rows]
        pos = rows - self.offset[piece]
        order = np.lexsort((pos, piece))
        piece, pos, qwin = piece[order], pos[order], qwin[order]
        new = np.ones(len(pos), bool)
        new[1:] = (piece[1:] != piece[:-1]) | (pos[1:] - pos[:-1] > gap)
        cluster = np.cumsum(new) - 1
        first = np.flatnonzero(new)
        last = np.append(first[1:], len(pos)) - 1
        # distinct query windows per cluster
        pairs = np.unique(cluster * n + qwin)
        votes = np.bincount(pairs // n, minlength=len(first))
        c_piece = piece[first]
        lo = np.maximum(pos[first] - margin, 0)
        hi = np.minimum(pos[last] + margin, self.lengths[c_piece] - 1)
        best = np.lexsort((lo, c_piece, -votes))
        return Regions(c_piece[best], lo[best], hi[best], votes[best])

    def search(self, query: np.ndarray, k: int, top: int, gap: int | None = None,
               margin: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like :func:`subsequence_best` over the whole database: per piece (score, end, start) with
        positions in the piece's windows. Searched pieces score their best region's normalised cost;
        the others ``+2 + 1 / (1 + hits)`` (after every searched piece, more hits first; end = start = -1)."""
        r = self.regions(query, k, gap, margin)
        n_pieces = len(self.sequences)
        hits = np.zeros(n_pieces)
        np.add.at(hits, r.piece, r.votes)
        score = 2.0 + 1.0 / (1.0 + hits)                        # costs are <= 2: unsearched pieces after them
        end = np.full(n_pieces, -1)
        start = np.full(n_pieces, -1)
        piece, lo, hi = r.piece[:top], r.lo[:top], r.hi[:top]
        if len(piece):
            db = Database({i: self.sequences[p][a:b + 1] for i, (p, a, b) in enumerate(zip(piece, lo, hi))},
                          max_padding=1.0)
            cost, e, s = subsequence_best(query, db)
            for i in np.argsort(cost, kind="stable"):           # a piece keeps its best region
                p = piece[i]
                if end[p] < 0:
                    score[p], end[p], start[p] = cost[i], lo[i] + e[i], lo[i] + s[i]
        return score, end, start


def subsequence_searcher(database: list[np.ndarray], shortlist: dict | None,
                         index: dict | None = None) -> Callable[[np.ndarray], tuple]:
    """``search(query) -> (score, end, start)`` per piece of ``database``: exhaustive subsequence DTW, or with
    ``shortlist`` (``{k, top, ...}``) the filter and refine of :class:`RegionSearch` (its index built once here)."""
    if shortlist:
        regions = RegionSearch(database, index)
        return lambda query: regions.search(query, shortlist["k"], shortlist["top"])
    db = Database(dict(enumerate(database)))
    return lambda query: subsequence_best(query, db)
