"""DTW and subsequence DTW kernels against an independent implementation (dtw-python) and brute force."""
import numpy as np
import pytest
from dtw import dtw as reference_dtw
from dtw import symmetric2

from pipeline.evaluation.dtw import (
    Database,
    PaddedDatabase,
    accumulated_cost,
    backtrack,
    cosine_cost,
    dtw_costs,
    subsequence_best,
    subsequence_costs,
)


def random_pieces(rng, n_pieces=4, dim=6, lo=3, hi=15):
    return {f"p{k}": rng.normal(size=(int(rng.integers(lo, hi)), dim)) for k in range(n_pieces)}


@pytest.mark.parametrize("seed", range(5))
def test_dtw_equals_dtw_python_symmetric2(seed):
    rng = np.random.default_rng(seed)
    pieces = random_pieces(rng)
    query = rng.normal(size=(int(rng.integers(2, 12)), 6))
    db = PaddedDatabase.build(pieces)
    ours = dtw_costs(query, db)
    for p, name in enumerate(db.names):
        ref = reference_dtw(cosine_cost(query, pieces[name]), step_pattern=symmetric2, keep_internals=True)
        assert ours[p] == pytest.approx(ref.normalizedDistance, rel=1e-9, abs=1e-12)
        acc = accumulated_cost(cosine_cost(query, pieces[name]))
        np.testing.assert_allclose(acc, ref.costMatrix, rtol=1e-9, atol=1e-12)
        path = backtrack(cosine_cost(query, pieces[name]), acc, len(pieces[name]) - 1)
        cost = cosine_cost(query, pieces[name])
        weights = [1.0] + [2.0 if (a[0] != b[0] and a[1] != b[1]) else 1.0 for a, b in zip(path[:-1], path[1:])]
        assert sum(w * cost[i, j] for w, (i, j) in zip(weights, path)) == pytest.approx(ref.distance, rel=1e-9)
        assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (len(query) - 1, len(pieces[name]) - 1)


@pytest.mark.parametrize("seed", range(5))
def test_subsequence_equals_brute_force_over_starts(seed):
    """For each end column: the cheapest whole-DTW over every start (dtw-python), and its start."""
    rng = np.random.default_rng(100 + seed)
    pieces = random_pieces(rng, lo=2, hi=10)
    query = rng.normal(size=(int(rng.integers(1, 6)), 6))
    db = PaddedDatabase.build(pieces)
    delta, starts = subsequence_costs(query, db)
    for p, name in enumerate(db.names):
        cost = cosine_cost(query, pieces[name])
        m = cost.shape[1]
        for e in range(m):
            costs = [reference_dtw(cost[:, s:e + 1], step_pattern=symmetric2).distance if len(query) > 1
                     else float(cost[0, s:e + 1].sum()) for s in range(e + 1)]
            best = int(np.argmin(costs))
            assert starts[p, e] == best
            assert delta[p, e] == pytest.approx(costs[best] / (len(query) + e - best + 1), rel=1e-9)
        assert np.all(np.isinf(delta[p, m:]))


def test_subsequence_path_localises_a_planted_fragment():
    rng = np.random.default_rng(7)
    pieces = random_pieces(rng, n_pieces=6, lo=40, hi=60)
    target = pieces["p3"]
    # the fragment: columns 12..27 of p3, every window twice (half speed), with a little noise
    query = np.repeat(target[12:28], 2, axis=0) + 0.05 * rng.normal(size=(32, 6))
    db = PaddedDatabase.build(pieces)
    delta, starts = subsequence_costs(query, db)
    best_piece = int(np.argmin(delta.min(axis=1)))
    assert db.names[best_piece] == "p3"
    end = int(np.argmin(delta[best_piece]))
    assert (starts[best_piece, end], end) == (12, 27)
    cost = cosine_cost(query, target)
    path = backtrack(cost, accumulated_cost(cost, subsequence=True), end, subsequence=True)
    assert tuple(path[0]) == (0, 12) and tuple(path[-1]) == (31, 27)


def test_dtw_identifies_a_time_stretched_piece_where_it_is_not_cheapest_by_windows():
    """DTW uses order: a piece holding the query's windows in another order scores worse."""
    rng = np.random.default_rng(3)
    base = rng.normal(size=(20, 6))
    pieces = {"right": base, "shuffled": base[rng.permutation(20)], "other": rng.normal(size=(25, 6))}
    query = np.repeat(base, 2, axis=0) + 0.3 * rng.normal(size=(40, 6))
    db = PaddedDatabase.build(pieces)
    assert db.names[int(np.argmin(dtw_costs(query, db)))] == "right"


def test_length_buckets_give_the_same_costs_as_one_padded_database():
    rng = np.random.default_rng(11)
    pieces = {f"p{k}": rng.normal(size=(int(m), 5)) for k, m in enumerate([3, 4, 40, 41, 9, 120, 5])}
    query = rng.normal(size=(12, 5))
    one, buckets = PaddedDatabase.build(pieces), Database(pieces, max_padding=0.25)
    assert len(buckets.buckets) > 2 and buckets.names == list(pieces)
    order = [one.names.index(n) for n in buckets.names]
    np.testing.assert_allclose(dtw_costs(query, buckets), dtw_costs(query, one)[order], rtol=1e-12)
    delta, starts = subsequence_costs(query, one)
    best, end, start = subsequence_best(query, buckets)
    np.testing.assert_allclose(best, delta.min(axis=1)[order], rtol=1e-12)
    assert end.tolist() == np.argmin(delta, axis=1)[order].tolist()
    assert start.tolist() == [starts[p, e] for p, e in zip(order, end)]


def test_jump_dtw_without_jumps_is_dtw_and_absorbs_a_played_repeat():
    from pipeline.evaluation.dtw import jump_dtw_cost, jump_dtw_costs
    rng = np.random.default_rng(21)
    for _ in range(5):
        q, s = rng.normal(size=(int(rng.integers(2, 15)), 6)), rng.normal(size=(int(rng.integers(2, 15)), 6))
        plain = dtw_costs(q, PaddedDatabase.build({"s": s}))[0]
        assert jump_dtw_cost(cosine_cost(q, s), np.inf) == pytest.approx(plain, rel=1e-12)
        assert jump_dtw_cost(cosine_cost(q, s), 0.5) <= plain + 1e-12
    # score A B C; the performance plays A B A B C (the repeat unfolded), a little slower and noisy
    a, b, c = (rng.normal(size=(10, 6)) for _ in range(3))
    score = np.concatenate([a, b, c])
    perf = np.repeat(np.concatenate([a, b, a, b, c]), 2, axis=0) + 0.2 * rng.normal(size=(100, 6))
    decoy = np.concatenate([a, b, rng.normal(size=(10, 6))])          # shares A B, not C
    plain = dtw_costs(perf, PaddedDatabase.build({"score": score, "decoy": decoy}))
    jumped = jump_dtw_costs(perf, [score, decoy], penalty=0.5)
    assert jumped[0] < plain[0] - 0.05                 # the repeat no longer costs a long detour
    assert jumped[0] < jumped[1]                       # and the true score stays the best match


def test_jump_dtw_equals_a_direct_implementation():
    """Cell by cell: vertical, diagonal (weight 2), horizontal, and a backward jump from any later column of
    the previous row (+ penalty); the cheapest path's cost over its weight sum + 1."""
    from pipeline.evaluation.dtw import jump_dtw_cost
    rng = np.random.default_rng(8)
    for _ in range(20):
        cost = rng.uniform(0, 2, size=(int(rng.integers(1, 8)), int(rng.integers(1, 8))))
        n, m, lam = *cost.shape, 0.3
        d, w = np.full((n, m), np.inf), np.zeros((n, m))
        for i in range(n):
            for j in range(m):
                if i == 0 and j == 0:
                    d[0, 0], w[0, 0] = cost[0, 0], 1
                    continue
                cands = []
                if i > 0:
                    cands.append((d[i - 1, j] + cost[i, j], w[i - 1, j] + 1))
                    if j > 0:
                        cands.append((d[i - 1, j - 1] + 2 * cost[i, j], w[i - 1, j - 1] + 2))
                    cands += [(d[i - 1, k] + lam + cost[i, j], w[i - 1, k] + 1) for k in range(j + 1, m)]
                if j > 0:
                    cands.append((d[i, j - 1] + cost[i, j], w[i, j - 1] + 1))
                d[i, j], w[i, j] = min(cands, key=lambda t: t[0])
        assert jump_dtw_cost(cost, lam) == pytest.approx(d[-1, -1] / (w[-1, -1] + 1), rel=1e-9)


def test_jump_dtw_batches_equal_one_pair_at_a_time():
    """Both arrangements of the vectorised jump-DTW (one performance vs P scores of different lengths;
    P performances of different lengths vs one score) give each pair's own cost."""
    from pipeline.evaluation.dtw import jump_dtw_cost, jump_dtw_costs
    rng = np.random.default_rng(5)
    perf = rng.normal(size=(9, 4))
    scores = [rng.normal(size=(int(rng.integers(1, 12)), 4)) for _ in range(6)]
    for lam in (0.2, 1.0, np.inf):
        batch = jump_dtw_costs(perf, scores, lam)
        assert batch == pytest.approx([jump_dtw_cost(cosine_cost(perf, s), lam) for s in scores], rel=1e-9)
        perfs = [rng.normal(size=(int(rng.integers(1, 12)), 4)) for _ in range(6)]
        batch = jump_dtw_costs(perfs, scores[0], lam)
        assert batch == pytest.approx([jump_dtw_cost(cosine_cost(p, scores[0]), lam) for p in perfs], rel=1e-9)


def test_dtw_pairs_equal_one_pair_at_a_time():
    """Filter and refine aligns each query with its own shortlist at once; every pair's cost is DTW's."""
    from pipeline.evaluation.dtw import dtw_pairs
    rng = np.random.default_rng(8)
    queries = [rng.normal(size=(int(n), 6)) for n in rng.integers(1, 40, size=25)]
    sequences = [rng.normal(size=(int(m), 6)) for m in rng.integers(1, 60, size=25)]
    expected = [dtw_costs(q, Database({0: s}))[0] for q, s in zip(queries, sequences)]
    np.testing.assert_allclose(dtw_pairs(queries, sequences), expected, rtol=1e-12)
