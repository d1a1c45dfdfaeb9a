"""Cross-modal fingerprints ("Shazam", the 2021 paper's third method) on window embeddings.

1. **Codebook**: k-means (seeded, ``codes`` centroids) on the database windows of both modalities (they
   share the CCA space); each window becomes the index of its nearest centroid (cosine).
2. **Hashes**: each window's code paired with the codes of the next ``fan_out`` windows, ``c1 * K + c2``.
   The pair's distance is not part of the hash: sheet (50 px) and audio (0.5 s) windows advance at
   different, piece-dependent rates, so a distance in windows does not carry across modalities.
3. **Matching**: every query hash found in a piece adds a vote at offset ``t_piece - t_query`` (in
   windows, binned by ``offset_bin``: a tempo difference makes the offset drift); a piece scores the
   largest bin of its offset histogram, i.e. the most hashes consistent with one alignment.
"""
from __future__ import annotations

import numpy as np

from pipeline.evaluation.dtw import unit_rows

KMEANS_ITERATIONS = 25


def kmeans_codebook(x: np.ndarray, codes: int, seed: int) -> np.ndarray:
    """(codes, dim) unit centroids of the rows of ``x`` (spherical k-means, k-means++-like seeded start)."""
    x = unit_rows(x)
    rng = np.random.default_rng(seed)
    k = min(codes, len(x))
    centres = x[rng.choice(len(x), size=k, replace=False)]
    for _ in range(KMEANS_ITERATIONS):
        assign = np.argmax(x @ centres.T, axis=1)
        sums = np.zeros_like(centres)
        np.add.at(sums, assign, x)
        empty = np.linalg.norm(sums, axis=1) == 0
        sums[empty] = x[rng.choice(len(x), size=int(empty.sum()), replace=False)]   # re-seed empty clusters
        centres = unit_rows(sums)
    return centres


def encode(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(n,) code of each row of ``x``: its nearest centroid by cosine."""
    return np.argmax(unit_rows(x) @ centres.T, axis=1)


def hashes(codes: np.ndarray, n_codes: int, fan_out: int) -> tuple[np.ndarray, np.ndarray]:
    """(hash, time) of every pair (window t, window t + d), 1 <= d <= fan_out."""
    hs, ts = [], []
    for d in range(1, fan_out + 1):
        if len(codes) > d:
            hs.append(codes[:-d] * n_codes + codes[d:])
            ts.append(np.arange(len(codes) - d))
    if not hs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(hs).astype(np.int64), np.concatenate(ts)


class FingerprintIndex:
    """Hashes of every database piece, sorted for lookup."""

    def __init__(self, database: list[np.ndarray], centres: np.ndarray, fan_out: int, offset_bin: int):
        self.centres, self.fan_out, self.offset_bin, self.n_pieces = centres, fan_out, offset_bin, len(database)
        h, t, p = [], [], []
        for i, seq in enumerate(database):
            hi, ti = hashes(encode(seq, centres), len(centres), fan_out)
            h.append(hi), t.append(ti), p.append(np.full(len(hi), i))
        h, t, p = np.concatenate(h), np.concatenate(t), np.concatenate(p)
        order = np.argsort(h, kind="stable")
        self.hash, self.time, self.piece = h[order], t[order], p[order]

    def scores(self, query: np.ndarray) -> np.ndarray:
        """(P,) the largest offset-histogram bin per piece (higher = better)."""
        qh, qt = hashes(encode(query, self.centres), len(self.centres), self.fan_out)
        lo, hi = np.searchsorted(self.hash, qh, "left"), np.searchsorted(self.hash, qh, "right")
        counts = hi - lo
        out = np.zeros(self.n_pieces)
        if counts.sum() == 0:
            return out
        idx = np.repeat(lo, counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
        offsets = (self.time[idx] - np.repeat(qt, counts)) // self.offset_bin
        pieces = self.piece[idx]
        key = pieces * (2 * (offsets.max() - offsets.min() + 1)) + (offsets - offsets.min())
        uniq, n = np.unique(key, return_counts=True)
        np.maximum.at(out, uniq // (2 * (offsets.max() - offsets.min() + 1)), n)
        return out
