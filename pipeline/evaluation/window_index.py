"""Nearest-window search over a piece database: exact, or approximate (faiss HNSW) when it is large.

The vote method and the vote filter of piece identification ask, for every query window, for its
``k`` nearest database windows (cosine similarity of unit rows). Exact search is a chunked matrix
product + top-k (:data:`CHUNK` query windows at a time). Above ``approximate_above`` database windows
(``piece_id.index``) an HNSW graph (faiss ``IndexHNSWFlat``, inner product, ``hnsw_m`` links,
``ef_search``) answers instead: at 1 M windows about 20× faster than exact on 2 cores with recall@25
≈ 0.9 (``benchmarks/piece_index.py``). The graph is built with one thread, so the same database gives
the same graph and the same answers (faiss's multithreaded insertion order is not deterministic).
"""
from __future__ import annotations

import numpy as np
import torch

from pipeline.core.metrics import cosine_distances

CHUNK = 1024   # query windows per distance matrix of the exact search


class WindowIndex:
    """``search(queries, k)`` -> (cosine distances (Q, k) float32, database rows (Q, k) int64), nearest first."""

    def __init__(self, db_emb: torch.Tensor | np.ndarray, approximate_above: int | None = None,
                 hnsw_m: int = 32, ef_search: int = 64):
        self.db = torch.as_tensor(db_emb)
        self.hnsw = None
        if approximate_above is not None and len(self.db) > approximate_above:
            import faiss  # only for large databases
            threads = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)                  # deterministic graph
            try:
                self.hnsw = faiss.IndexHNSWFlat(self.db.shape[1], hnsw_m, faiss.METRIC_INNER_PRODUCT)
                x = self.db.float().cpu().numpy()
                self.hnsw.add(np.ascontiguousarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)))
            finally:
                faiss.omp_set_num_threads(threads)
            self.hnsw.hnsw.efSearch = max(ef_search, 1)

    @property
    def approximate(self) -> bool:
        return self.hnsw is not None

    def search(self, queries: torch.Tensor | np.ndarray, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        q = torch.as_tensor(queries)
        k = min(k, len(self.db))
        if self.hnsw is not None:
            self.hnsw.hnsw.efSearch = max(self.hnsw.hnsw.efSearch, k)
            x = q.float().cpu().numpy()
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)   # cosine, as the exact search
            sim, idx = self.hnsw.search(np.ascontiguousarray(x), k)
            return torch.from_numpy(1.0 - sim), torch.from_numpy(idx.astype(np.int64))
        parts = [cosine_distances(q[i:i + CHUNK], self.db).topk(k, dim=1, largest=False) for i in range(0, len(q), CHUNK)]
        return torch.cat([d for d, _ in parts]), torch.cat([n for _, n in parts])
