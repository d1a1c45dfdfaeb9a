"""Nearest-window search over a piece database of synthetic windows: exact and approximate, up to 1 M windows.

A fragment query (``--query-windows`` windows, e.g. 20 = a 10 s excerpt at the 0.5 s hop) asks for the
``--k`` nearest database windows of each of its windows (the vote method and the filter of
filter-and-refine). Database: ``--sizes`` unit vectors of the snippet embedding's dimension (32),
drawn around ``--clusters`` centres (real window embeddings are clustered, not uniform). Methods:

* ``exact-torch``: chunked matrix product + top-k (what the pipeline runs, :mod:`pipeline.evaluation.voting`);
* ``faiss-flat``: faiss's exact inner-product index;
* ``faiss-hnsw``: faiss HNSW graph (M 32, efSearch ``--ef``), with its recall@k against the exact result;
* ``sdtw``: subsequence DTW of the fragment over the whole database (:mod:`pipeline.evaluation.dtw`);
* ``shortlist``: filter and refine (:mod:`pipeline.evaluation.region_shortlist`, what the ``fragments``
  stage's ``shortlist`` method runs): HNSW nearest windows -> the ``--top`` most hit regions ->
  subsequence DTW there; with the fraction of queries whose planted piece ranks first and whose found
  region overlaps the planted one (IoU >= 0.5), and the same for ``sdtw``.

Prints per size: build time, p50/p95 latency per fragment query, recall, and each method's speed-up
over ``exact-torch`` measured in the same run; the goal is < 100 ms per fragment query at 1 M windows.

    .venv/bin/python benchmarks/piece_index.py [--sizes 100000 1000000] [--queries 50]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.evaluation.dtw import Database, subsequence_best  # noqa: E402
from pipeline.evaluation.region_shortlist import RegionSearch  # noqa: E402
from pipeline.evaluation.window_index import CHUNK, WindowIndex  # noqa: E402

PIECE = 1000      # windows per synthetic piece

DIM = 32


def synthetic(n: int, clusters: int, rng) -> np.ndarray:
    centres = rng.normal(size=(clusters, DIM)).astype(np.float32)
    x = centres[rng.integers(clusters, size=n)] + 0.6 * rng.normal(size=(n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_torch(db: torch.Tensor, q: torch.Tensor, k: int) -> np.ndarray:
    parts = [(q[i:i + CHUNK] @ db.T).topk(k, dim=1).indices for i in range(0, len(q), CHUNK)]
    return torch.cat(parts).numpy()


def percentiles(times: list[float]) -> tuple[float, float]:
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 95) * 1e3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--query-windows", type=int, default=20)
    ap.add_argument("--k", type=int, default=25)
    ap.add_argument("--clusters", type=int, default=256)
    ap.add_argument("--ef", type=int, default=64)
    ap.add_argument("--sdtw-max", type=int, default=1_000_000, help="largest database also searched by subsequence DTW")
    ap.add_argument("--top", type=int, default=20, help="regions the shortlist searches by subsequence DTW")
    args = ap.parse_args()
    import faiss

    threads = torch.get_num_threads()
    print(f"threads: torch {threads}, faiss {faiss.omp_get_max_threads()}; fragment query = {args.query_windows} "
          f"database windows played at half speed, "
          f"k = {args.k}, {args.queries} queries per size")
    rng = np.random.default_rng(0)
    for n in args.sizes:
        db = synthetic(n, args.clusters, rng)
        # a fragment inside one piece, played at half speed (every window twice), with noise
        starts = [int(p * PIECE + rng.integers(0, PIECE - args.query_windows)) for p in rng.integers(0, max(1, n // PIECE),
                                                                                                  size=args.queries)]
        queries = [np.repeat(db[s:s + args.query_windows], 2, axis=0)
                   + 0.1 * rng.normal(size=(2 * args.query_windows, DIM)).astype(np.float32) for s in starts]
        db_t = torch.from_numpy(db)
        times, exact = {}, {}
        t = []
        for i, q in enumerate(queries):
            t0 = time.perf_counter()
            exact[i] = exact_torch(db_t, torch.from_numpy(q), args.k)
            t.append(time.perf_counter() - t0)
        times["exact-torch"] = t
        t0 = time.perf_counter()
        flat = faiss.IndexFlatIP(DIM)
        flat.add(db)
        build = {"faiss-flat": time.perf_counter() - t0}
        t = []
        for q in queries:
            t0 = time.perf_counter()
            flat.search(q, args.k)
            t.append(time.perf_counter() - t0)
        times["faiss-flat"] = t
        t0 = time.perf_counter()
        index = WindowIndex(db, approximate_above=0, ef_search=args.ef)     # the pipeline's (one-thread) build
        hnsw = index.hnsw
        build["faiss-hnsw"] = time.perf_counter() - t0
        t, recall = [], []
        for i, q in enumerate(queries):
            t0 = time.perf_counter()
            _, idx = hnsw.search(q, args.k)
            t.append(time.perf_counter() - t0)
            recall.append(np.mean([len(set(a) & set(b)) / args.k for a, b in zip(idx, exact[i])]))
        times["faiss-hnsw"] = t
        pieces = [db[p * PIECE:(p + 1) * PIECE] for p in range(max(1, n // PIECE))]
        found = {}

        def hit(i, score, end, start):      # planted piece first, found region IoU >= 0.5 with the planted one
            p, a = divmod(starts[i], PIECE)
            b = a + args.query_windows - 1
            inter = max(0, min(b, end[p]) - max(a, start[p]) + 1)
            return int(np.argmin(score)) == p and end[p] >= 0 and inter / (max(b, end[p]) - min(a, start[p]) + 1) >= 0.5

        if n <= args.sdtw_max:
            sdb = Database(dict(enumerate(pieces)))
            t, ok = [], []
            for i, q in enumerate(queries[: max(3, args.queries // 10)]):
                t0 = time.perf_counter()
                result = subsequence_best(q, sdb)
                t.append(time.perf_counter() - t0)
                ok.append(hit(i, *result))
            times["sdtw"], found["sdtw"] = t, np.mean(ok)
        shortlist = RegionSearch(pieces, window_index=index)
        t, ok = [], []
        for i, q in enumerate(queries):
            t0 = time.perf_counter()
            result = shortlist.search(q, args.k, args.top)
            t.append(time.perf_counter() - t0)
            ok.append(hit(i, *result))
        times["shortlist"], found["shortlist"] = t, np.mean(ok)
        base = np.median(times["exact-torch"])
        print(f"\n{n:,} windows")
        for name, tt in times.items():
            p50, p95 = percentiles(tt)
            extra = f", build {build[name]:.1f} s" if name in build else ""
            extra += f", recall@{args.k} {np.mean(recall):.3f}" if name == "faiss-hnsw" else ""
            extra += f", found and localised {found[name]:.2f} of {len(tt)}" if name in found else ""
            speedup = base / np.median(tt)
            print(f"  {name:12s} p50 {p50:8.2f} ms  p95 {p95:8.2f} ms  speed-up vs exact-torch {speedup:6.2f}x{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
