"""Dynamic time warping of embedding sequences (piece identification, Carvalho & Widmer 2021).

Exact DTW and subsequence DTW on a cosine cost, in NumPy, vectorised over the pieces of a database
(one pass over the query's rows; no compiled extension).

Conventions (the 2021 paper does not state them; these are the choices recorded in the README):

* cost of a query window ``q`` against a database window ``d``: ``1 - cos(q, d)`` in [0, 2];
* steps (1, 0), (0, 1), (1, 1) with weights 1, 1, 2 (dtw-python's ``symmetric2``, Müller's
  FMP default with diagonal weight 2): every path from (0, s) to (N - 1, e) has weight sum
  ``N + (e - s)``, so dividing by it compares paths of different shapes fairly;
* DTW (whole query against a whole piece): accumulated cost / (N + M), dtw-python's normalisation;
* subsequence DTW (the query may start and end anywhere in a piece, never across pieces): for each
  end column ``e`` the cheapest path's cost divided by ``N + (e - s + 1)``, ``s`` its start column;
  a piece's score is the best (lowest) value over its columns.

The horizontal steps inside a row, ``D[j] = min(X[j], D[j - 1] + c[j])``, are computed at once as
``D[j] = S[j] + min_{k <= j}(X[k] - S[k])`` with ``S = cumsum(c)`` (float64).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

W_VERTICAL, W_HORIZONTAL, W_DIAGONAL = 1.0, 1.0, 2.0


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` (n, d) scaled to unit length (float64); zero rows stay zero."""
    x = np.asarray(x, np.float64)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def cosine_cost(q: np.ndarray, d: np.ndarray) -> np.ndarray:
    """(N, M) cost ``1 - cos`` between query windows ``q`` (N, dim) and database windows ``d`` (M, dim)."""
    return 1.0 - unit_rows(q) @ unit_rows(d).T


@dataclass
class PaddedDatabase:
    """Database pieces' window embeddings side by side: ``emb`` (P, M_max, dim) unit rows, zero padding;
    ``lengths`` (P,) windows per piece; ``names`` the pieces' ids."""
    emb: np.ndarray
    lengths: np.ndarray
    names: list

    @classmethod
    def build(cls, sequences: dict) -> "PaddedDatabase":
        """From ``{piece: (M_p, dim) array}`` (every M_p >= 1)."""
        names = sorted(sequences)
        lengths = np.array([len(sequences[n]) for n in names])
        dim = sequences[names[0]].shape[1]
        emb = np.zeros((len(names), int(lengths.max()), dim))
        for p, n in enumerate(names):
            emb[p, :lengths[p]] = unit_rows(sequences[n])
        return cls(emb, lengths, names)

    def valid(self) -> np.ndarray:
        """(P, M_max) bool: columns that hold a window."""
        return np.arange(self.emb.shape[1])[None, :] < self.lengths[:, None]

    def cost_row(self, q_row: np.ndarray) -> np.ndarray:
        """(P, M_max) cost of one unit query window against every database window (+inf in the padding)."""
        c = 1.0 - self.emb @ q_row
        return np.where(self.valid(), c, np.inf)


class Database:
    """Pieces grouped by length into :class:`PaddedDatabase` buckets (padding at most ``max_padding`` of a
    bucket's cells), so that a few long pieces do not multiply the work for all the others."""

    def __init__(self, sequences: dict, max_padding: float = 0.25):
        self.names = list(sequences)
        order = sorted(self.names, key=lambda n: (len(sequences[n]), str(n)))
        self.buckets: list[PaddedDatabase] = []
        group: list = []
        for n in order:                       # ascending lengths: a bucket's padding grows with its last piece
            cand = group + [n]
            cells = len(cand) * len(sequences[n])
            if group and 1 - sum(len(sequences[m]) for m in cand) / cells > max_padding:
                self.buckets.append(PaddedDatabase.build({m: sequences[m] for m in group}))
                cand = [n]
            group = cand
        self.buckets.append(PaddedDatabase.build({m: sequences[m] for m in group}))
        where = {n: (b, i) for b, db in enumerate(self.buckets) for i, n in enumerate(db.names)}
        self.where = [where[n] for n in self.names]

    def gather(self, per_bucket: list[np.ndarray]) -> np.ndarray:
        """Per-piece values in ``names`` order from one array per bucket."""
        return np.array([per_bucket[b][i] for b, i in self.where])


def _row_scan(x: np.ndarray, c: np.ndarray, starts: np.ndarray | None = None):
    """``D[..., j] = min(x[..., j], D[..., j - 1] + W_HORIZONTAL * c[..., j])`` along the last axis.

    With ``starts`` (the start column of each ``x`` entry's path) also returns the start column of
    each ``D`` entry's path (where a horizontal run begins, its ``x`` entry's start)."""
    s = np.cumsum(W_HORIZONTAL * c, axis=-1)
    with np.errstate(invalid="ignore"):             # inf - inf in the padding: NaN there only
        v = x - s
    running = np.minimum.accumulate(v, axis=-1)
    d = s + running
    if starts is None:
        return d
    idx = np.broadcast_to(np.arange(x.shape[-1]), x.shape)
    with np.errstate(invalid="ignore"):
        own = v <= running                          # x[j] itself is the cheapest way into column j
    origin = np.maximum.accumulate(np.where(own, idx, 0), axis=-1)
    return d, np.take_along_axis(starts, origin, axis=-1)


def _step_in(prev: np.ndarray, c: np.ndarray, prev_starts: np.ndarray | None = None):
    """Best way into each cell of a row from the row above: vertical (same column) or diagonal."""
    vert = prev + W_VERTICAL * c
    diag = np.full_like(c, np.inf)
    diag[..., 1:] = prev[..., :-1] + W_DIAGONAL * c[..., 1:]
    take_diag = diag < vert
    x = np.where(take_diag, diag, vert)
    if prev_starts is None:
        return x, None
    ds = np.zeros_like(prev_starts)
    ds[..., 1:] = prev_starts[..., :-1]
    return x, np.where(take_diag, ds, prev_starts)


def dtw_costs(query: np.ndarray, db: "PaddedDatabase | Database") -> np.ndarray:
    """(P,) normalised DTW cost of the whole ``query`` (N, dim) against each whole database piece."""
    if isinstance(db, Database):
        return db.gather([dtw_costs(query, b) for b in db.buckets])
    q = unit_rows(query)
    d = np.cumsum(W_HORIZONTAL * db.cost_row(q[0]), axis=-1)    # row 0: from (0, 0) by horizontal steps
    for i in range(1, len(q)):
        c = db.cost_row(q[i])
        x, _ = _step_in(d, c)
        d = _row_scan(x, c)
    end = d[np.arange(len(db.names)), db.lengths - 1]
    return end / (len(q) + db.lengths)


def subsequence_costs(query: np.ndarray, db: PaddedDatabase):
    """Subsequence DTW of ``query`` (N, dim) in every database piece.

    Returns ``(delta, starts)``: (P, M_max) normalised matching function (cost of the cheapest path
    ending at each column / (N + its length); +inf in the padding) and each such path's start column."""
    q = unit_rows(query)
    d = db.cost_row(q[0])                                        # a path may start in any column
    starts = np.broadcast_to(np.arange(d.shape[1]), d.shape).copy()
    for i in range(1, len(q)):
        c = db.cost_row(q[i])
        x, xs = _step_in(d, c, starts)
        d, starts = _row_scan(x, c, xs)
    length = np.arange(d.shape[1])[None, :] - starts + 1
    delta = np.where(db.valid(), d / (len(q) + length), np.inf)
    return delta, starts


def subsequence_best(query: np.ndarray, db: "PaddedDatabase | Database") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per piece (``names`` order): the best normalised subsequence cost, its end and its start column."""
    if isinstance(db, Database):
        parts = [subsequence_best(query, b) for b in db.buckets]
        return tuple(db.gather([p[k] for p in parts]) for k in range(3))
    delta, starts = subsequence_costs(query, db)
    end = np.argmin(delta, axis=1)
    rows = np.arange(len(end))
    return delta[rows, end], end, starts[rows, end]


def accumulated_cost(cost: np.ndarray, subsequence: bool = False) -> np.ndarray:
    """(N, M) accumulated cost matrix of one cost matrix (row by row, as above), for paths and figures."""
    cost = np.asarray(cost, np.float64)
    acc = np.empty_like(cost)
    acc[0] = cost[0] if subsequence else np.cumsum(W_HORIZONTAL * cost[0])
    for i in range(1, len(cost)):
        x, _ = _step_in(acc[i - 1], cost[i])
        acc[i] = _row_scan(x, cost[i])
    return acc


def backtrack(cost: np.ndarray, acc: np.ndarray, end: int, subsequence: bool = False) -> np.ndarray:
    """Optimal path (L, 2) of (query row, database column) pairs ending at (N - 1, ``end``), in order.

    Follows the forward pass's choices: the row above (diagonal before vertical only when strictly
    cheaper), else the horizontal step; a subsequence path stops in row 0, a DTW path at (0, 0)."""
    i, j = len(cost) - 1, end
    path = [(i, j)]
    while i > 0 or (j > 0 and not subsequence):
        if i == 0:
            j -= 1
        else:
            vert = acc[i - 1, j] + W_VERTICAL * cost[i, j]
            diag = acc[i - 1, j - 1] + W_DIAGONAL * cost[i, j] if j > 0 else np.inf
            if j > 0 and min(vert, diag) > acc[i, j] + 1e-9 * max(1.0, abs(acc[i, j])):
                j -= 1                                           # horizontal step
            elif diag < vert:
                i, j = i - 1, j - 1
            else:
                i -= 1
        path.append((i, j))
    return np.array(path[::-1])


def _suffix_min_after(x: np.ndarray):
    """(value, index) of ``min(x[j + 1:])`` for every j (+inf, -1 past the end): where a backward jump comes from."""
    rev = np.minimum.accumulate(x[::-1])[::-1]                         # min(x[j:])
    idx = np.arange(len(x))
    own = x <= rev                                                     # x[j] is the minimum of x[j:]
    arg = np.minimum.accumulate(np.where(own, idx, len(x))[::-1])[::-1]   # first index attaining min(x[j:])
    value = np.append(rev[1:], np.inf)
    index = np.append(arg[1:], -1)
    return value, index


def jump_dtw_cost(cost: np.ndarray, penalty: float) -> float:
    """Repeat-aware DTW of a performance (rows) against a score (columns): the DTW above plus a
    **backward jump**: from any column of the previous row to an earlier column, for ``penalty``
    (a repeat sign played: the performance goes back in the score). Returns the accumulated cost at
    (N - 1, M - 1) divided by the path's weight sum + 1 (without jumps: exactly :func:`dtw_costs`'s
    cost / (N + M)). ``penalty = inf`` gives plain DTW."""
    cost = np.asarray(cost, np.float64)
    n, m = cost.shape
    cols = np.arange(m)
    d = np.cumsum(W_HORIZONTAL * cost[0])
    w = (cols + 1).astype(np.float64)                                  # weight sum of the path into each cell
    for i in range(1, n):
        c = cost[i]
        vert, w_vert = d + W_VERTICAL * c, w + W_VERTICAL
        diag, w_diag = np.full(m, np.inf), np.full(m, np.inf)
        diag[1:], w_diag[1:] = d[:-1] + W_DIAGONAL * c[1:], w[:-1] + W_DIAGONAL
        jump_from, src = _suffix_min_after(d)
        jump = jump_from + penalty + W_VERTICAL * c
        w_jump = np.where(src >= 0, w[np.maximum(src, 0)] + W_VERTICAL, np.inf)
        x = np.minimum(np.minimum(vert, diag), jump)
        wx = np.where(x == diag, w_diag, np.where(x == vert, w_vert, w_jump))
        d, origin = _row_scan_origin(x, c)
        w = wx[origin] + W_HORIZONTAL * (cols - origin)
    return float(d[-1] / (w[-1] + 1.0))


def _row_scan_origin(x: np.ndarray, c: np.ndarray):
    """:func:`_row_scan` of one row, with the column where each cell's horizontal run starts."""
    s = np.cumsum(W_HORIZONTAL * c)
    v = x - s
    running = np.minimum.accumulate(v)
    origin = np.maximum.accumulate(np.where(v <= running, np.arange(len(x)), 0))
    return s + running, origin


def jump_dtw_costs(performance: list[np.ndarray] | np.ndarray, score: list[np.ndarray] | np.ndarray,
                   penalty: float) -> np.ndarray:
    """(P,) :func:`jump_dtw_cost` of pairs: one performance against P scores (A2S: the query is the
    performance) or P performances against one score (S2A), windows as (n, dim) arrays."""
    if isinstance(performance, np.ndarray):
        return np.array([jump_dtw_cost(cosine_cost(performance, s), penalty) for s in score])
    return np.array([jump_dtw_cost(cosine_cost(p, score), penalty) for p in performance])
