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


def length_buckets(lengths: list[int], max_padding: float = 0.25) -> list[np.ndarray]:
    """Indices of sequences grouped by length (ascending) so that padding each group to its longest
    member pads at most ``max_padding`` of the group's cells."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    groups, group = [], []
    for i in order:                       # ascending lengths: a group's padding grows with its last member
        cand = group + [i]
        if group and 1 - sum(lengths[j] for j in cand) / (len(cand) * lengths[i]) > max_padding:
            groups.append(np.array(group))
            cand = [i]
        group = cand
    groups.append(np.array(group))
    return groups


class Database:
    """Pieces grouped by length into :class:`PaddedDatabase` buckets (padding at most ``max_padding`` of a
    bucket's cells), so that a few long pieces do not multiply the work for all the others."""

    def __init__(self, sequences: dict, max_padding: float = 0.25):
        self.names = list(sequences)
        keys = sorted(self.names, key=str)
        groups = length_buckets([len(sequences[n]) for n in keys], max_padding)
        self.buckets = [PaddedDatabase.build({keys[i]: sequences[keys[i]] for i in g}) for g in groups]
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


def dtw_pairs(queries: list[np.ndarray], sequences: list[np.ndarray], max_padding: float = 0.25) -> np.ndarray:
    """(K,) normalised DTW cost of K (query, sequence) pairs, each query against its own sequence — what
    :func:`dtw_costs` gives for one pair — computed together: one pass over the rows of a group of pairs
    (grouped by sequence length, then by query length, so that padding stays under ``max_padding`` in
    both), so that many small alignments (the shortlist of filter and refine) cost few NumPy calls."""
    out = np.full(len(queries), np.nan)
    for by_m in length_buckets([len(x) for x in sequences], max_padding):
        for sub in length_buckets([len(queries[k]) for k in by_m], max_padding):
            group = by_m[sub]
            n = np.array([len(queries[k]) for k in group])
            m = np.array([len(sequences[k]) for k in group])
            dim = queries[group[0]].shape[1]
            q = np.zeros((len(group), int(n.max()), dim))
            d = np.zeros((len(group), int(m.max()), dim))
            for i, k in enumerate(group):
                q[i, :n[i]], d[i, :m[i]] = unit_rows(queries[k]), unit_rows(sequences[k])
            valid = np.arange(d.shape[1])[None, :] < m[:, None]
            last = (np.arange(len(group)), m - 1)
            costs = 1.0 - np.matmul(q, d.transpose(0, 2, 1))          # (K, N, M): every row's costs at once
            acc = np.cumsum(W_HORIZONTAL * np.where(valid, costs[:, 0], np.inf), axis=-1)
            for i in range(int(n.max())):
                if i:
                    c = np.where(valid, costs[:, i], np.inf)
                    acc = _row_scan(_step_in(acc, c)[0], c)
                done = n - 1 == i
                out[group[done]] = acc[last][done] / (n[done] + m[done])
    return out


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


def jump_dtw_batch(cost_row, n_rows: np.ndarray, n_cols: np.ndarray, penalty: float) -> np.ndarray:
    """Repeat-aware DTW of P (performance, score) pairs at once: the DTW above plus a **backward jump**
    from any column of the previous row to an earlier column, for ``penalty`` (a repeat sign played:
    the performance goes back in the score). Rows are performance windows, columns score windows.

    ``cost_row(i)`` gives row ``i`` of every pair's cost matrix, (P, M) with M >= every ``n_cols``
    (entries past a pair's ``n_cols`` are ignored); pair p has ``n_rows[p]`` rows. Returns (P,) the
    accumulated cost at (n_rows - 1, n_cols - 1) divided by the path's weight sum + 1 (without jumps:
    exactly :func:`dtw_costs`'s cost / (N + M)). ``penalty = inf`` gives plain DTW."""
    n_rows, n_cols = np.asarray(n_rows, int), np.asarray(n_cols, int)
    out = np.full(len(n_rows), np.nan)
    c = np.asarray(cost_row(0), np.float64)
    m = c.shape[1]
    cols = np.arange(m)
    valid = cols[None, :] < n_cols[:, None]
    last = (np.arange(len(n_rows)), n_cols - 1)

    def finish(i: int) -> None:
        done = n_rows - 1 == i
        out[done] = (d[last] / (w[last] + 1.0))[done]

    d = np.where(valid, np.cumsum(W_HORIZONTAL * np.where(valid, c, 0.0), axis=1), np.inf)
    w = np.broadcast_to(W_HORIZONTAL * cols + 1.0, c.shape).copy()    # weight sum of the path into each cell
    finish(0)
    for i in range(1, int(n_rows.max())):
        c = np.where(valid, np.asarray(cost_row(i), np.float64), np.inf)
        vert, w_vert = d + W_VERTICAL * c, w + W_VERTICAL
        diag, w_diag = np.full_like(c, np.inf), np.full_like(c, np.inf)
        diag[:, 1:], w_diag[:, 1:] = d[:, :-1] + W_DIAGONAL * c[:, 1:], w[:, :-1] + W_DIAGONAL
        suffix = np.minimum.accumulate(d[:, ::-1], axis=1)[:, ::-1]          # min(d[:, j:])
        first = np.minimum.accumulate(np.where(d <= suffix, cols, m)[:, ::-1], axis=1)[:, ::-1]   # where attained
        jump, src = np.full_like(c, np.inf), np.zeros(c.shape, int)
        jump[:, :-1], src[:, :-1] = suffix[:, 1:], first[:, 1:]              # from a later column of the row above
        jump += penalty + W_VERTICAL * c
        w_jump = np.take_along_axis(w, np.minimum(src, m - 1), axis=1) + W_VERTICAL
        x = np.minimum(np.minimum(vert, diag), jump)
        wx = np.where(x == diag, w_diag, np.where(x == vert, w_vert, w_jump))
        d, origin = _row_scan_origin(x, c)
        w = np.take_along_axis(wx, origin, axis=1) + W_HORIZONTAL * (cols - origin)
        d = np.where(valid, d, np.inf)
        finish(i)
    return out


def jump_dtw_cost(cost: np.ndarray, penalty: float) -> float:
    """:func:`jump_dtw_batch` of one (N, M) cost matrix (rows: performance, columns: score)."""
    cost = np.asarray(cost, np.float64)
    return float(jump_dtw_batch(lambda i: cost[i][None], [cost.shape[0]], [cost.shape[1]], penalty)[0])


def _row_scan_origin(x: np.ndarray, c: np.ndarray):
    """:func:`_row_scan` along the last axis, with the column where each cell's horizontal run starts."""
    s = np.cumsum(W_HORIZONTAL * c, axis=-1)
    with np.errstate(invalid="ignore"):
        v = x - s
    running = np.minimum.accumulate(v, axis=-1)
    idx = np.broadcast_to(np.arange(x.shape[-1]), x.shape)
    with np.errstate(invalid="ignore"):
        origin = np.maximum.accumulate(np.where(v <= running, idx, 0), axis=-1)
    return s + running, origin


def _padded(sequences: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(P, L_max, dim) unit rows with zero padding, and the lengths (P,)."""
    lengths = np.array([len(x) for x in sequences])
    out = np.zeros((len(sequences), int(lengths.max()), sequences[0].shape[1]))
    for p, x in enumerate(sequences):
        out[p, :len(x)] = unit_rows(x)
    return out, lengths


def jump_dtw_costs(performance: list[np.ndarray] | np.ndarray, score: list[np.ndarray] | np.ndarray,
                   penalty: float) -> np.ndarray:
    """(P,) jump-DTW costs (:func:`jump_dtw_batch`, cosine cost) of one performance against P scores
    (A2S: the query is the performance) or of P performances against one score (S2A); windows as
    (n, dim) arrays."""
    out = np.empty(len(score) if isinstance(performance, np.ndarray) else len(performance))
    if isinstance(performance, np.ndarray):
        perf = unit_rows(performance)
        for group in length_buckets([len(s) for s in score]):     # pairs padded to similar lengths together
            scores, lengths = _padded([score[i] for i in group])
            out[group] = jump_dtw_batch(lambda i: 1.0 - scores @ perf[i], np.full(len(group), len(perf)), lengths, penalty)
        return out
    sc = unit_rows(score)
    for group in length_buckets([len(p) for p in performance]):
        perfs, lengths = _padded([performance[i] for i in group])
        out[group] = jump_dtw_batch(lambda i: 1.0 - perfs[:, i] @ sc.T, lengths, np.full(len(group), len(sc)), penalty)
    return out
