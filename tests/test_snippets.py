"""Snippet cutting (sheet masks, audio zero padding, lcasr passage hops) and retrieval metrics."""
import numpy as np
import torch

from pipeline.core.metrics import rank_counts, ranks, recall_at, reciprocal_ranks, retrieval_metrics
from pipeline.models.snippets import audio_starts, cut_sheet, cut_spec, sheet_starts


def test_sheet_snippet_is_white_outside_its_bounds_and_halved():
    sheet = torch.zeros(200, 1000, dtype=torch.uint8)                 # black paper
    out = cut_sheet(sheet, torch.tensor([100.0]), torch.tensor([50]), torch.tensor([150]))
    assert out.shape == (1, 1, 80, 90)
    # full-res columns 10..189 -> [10, 50) white, [50, 150) black, [150, 190) white; halved
    assert torch.all(out[0, 0, :, :20] == 1) and torch.all(out[0, 0, :, 20:70] == 0) and torch.all(out[0, 0, :, 70:] == 1)
    shifted = cut_sheet(sheet, torch.tensor([500.0]), torch.tensor([0]), torch.tensor([1000]), dy=torch.tensor([95]))
    assert torch.all(shifted[0, 0, :7] == 0) and torch.all(shifted[0, 0, -7:] == 1)   # rows beyond the strip are white


def test_audio_snippet_is_zero_beyond_its_span():
    spec = torch.arange(1, 31, dtype=torch.float32).repeat(92, 1)         # frame t holds t + 1
    out = cut_spec(spec, torch.tensor([5]), torch.tensor([0]), torch.tensor([15]))
    assert out.shape == (1, 1, 92, 20)
    assert out[0, 0, 0, :10].tolist() == list(range(6, 16)) and torch.all(out[0, 0, :, 10:] == 0)


def test_passage_hops_follow_lcasr():
    # strip 700 px -> 350 half-res columns, starts range(0, 370, 81) = 5 snippets
    assert len(sheet_starts(700, 81)) == 5 and sheet_starts(700, 81)[0] == 2 * -20 + 90
    assert audio_starts(100, 18).tolist() == [0, 18, 36, 54, 72, 90]


def test_rank_counts_and_the_three_tie_rules():
    perfect = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    better, tied = rank_counts(perfect)
    assert better.tolist() == [0, 0, 0] and tied.tolist() == [0, 0, 0]
    better, tied = rank_counts(torch.zeros(4, 4))                      # a collapsed model: everything tied
    assert better.tolist() == [0] * 4 and tied.tolist() == [3] * 4
    assert ranks(better, tied, "pessimistic").tolist() == [4] * 4
    assert ranks(better, tied, "optimistic").tolist() == [1] * 4
    assert ranks(better, tied, "expected").tolist() == [2.5] * 4
    # expected reciprocal rank of a uniform rank in 1..4, R@1 = P(rank 1) = 1/4
    assert np.allclose(reciprocal_ranks(better, tied, "expected"), (1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)
    assert np.allclose(recall_at(better, tied, 1, "expected"), 0.25)
    m = retrieval_metrics(better, tied, "expected")
    assert np.isclose(m["MRR"], m["chance_MRR"]) and m["tied_fraction"] == 1.0   # collapsed = chance, not best
    assert m["MRR_by_tie_rule"]["pessimistic"] == 0.25 and m["MRR_by_tie_rule"]["optimistic"] == 1.0
    worst = 2 * torch.eye(3)                                            # the match is the farthest
    assert ranks(*rank_counts(worst), "expected").tolist() == [3, 3, 3]


def test_retrieval_metrics_values_chance_and_interval():
    better, tied = np.array([0, 1, 3, 29]), np.zeros(4, np.int64)      # ranks 1, 2, 4, 30, no ties
    m = retrieval_metrics(better, tied, n_candidates=30)
    assert m["R@1"] == 25.0 and m["R@5"] == 75.0 and m["R@25"] == 75.0
    assert np.isclose(m["MRR"], (1 + 1 / 2 + 1 / 4 + 1 / 30) / 4) and m["median_rank"] == 3.0 and m["mean_rank"] == 9.25
    assert np.allclose([m["MRR_by_tie_rule"][t] for t in ("pessimistic", "optimistic")], m["MRR"])
    assert np.isclose(m["chance_MRR"], sum(1 / r for r in range(1, 31)) / 30) and m["n_queries"] == 4
    lo, hi = m["MRR_ci95"]
    assert lo < m["MRR"] < hi and lo >= 1 / 30 and hi <= 1.0
    assert retrieval_metrics(better, tied)["MRR_ci95"] == m["MRR_ci95"]   # the interval is reproducible


def _voting_case():
    # 3 passages in a 2-d space: passage p's snippets point at angle p; query snippets of passage 0 and 2
    # land on their own passage, those of passage 1 land on passage 2 (wrong), all hits unambiguous.
    ang = {0: 0.0, 1: 1.2, 2: 2.4}
    db_owner = np.array([0, 0, 1, 1, 2, 2])
    db = torch.tensor([[np.cos(ang[o]), np.sin(ang[o])] for o in db_owner], dtype=torch.float32)
    q_owner = np.array([0, 0, 1, 2])
    q = torch.tensor([[np.cos(a), np.sin(a)] for a in (0.0, 0.05, 2.4, 2.35)], dtype=torch.float32)
    return q, q_owner, db, db_owner


def test_snippet_voting_on_a_constructed_case():
    from pipeline.evaluation.voting import vote_scores, vote_tables
    votes, sim = vote_tables(*_voting_case(), n_passages=3, n_candidates=2)
    assert votes.tolist() == [[4, 0, 0], [0, 0, 2], [0, 0, 2]]
    # passage 0: 2 hits x 2 snippets, all its own -> rank 1; passage 1: its 2 votes go to passage 2, so it
    # ties with passage 0 at 0 votes, behind passage 2: ranks 2 and 3 equally likely -> 2.5; passage 2 -> 1
    counts = rank_counts(vote_scores(votes, sim, similarity_tiebreak=False))
    assert ranks(*counts, "expected").tolist() == [1, 2.5, 1]
    assert ranks(*counts, "pessimistic").tolist() == [1, 3, 1]
    assert ranks(*counts, "optimistic").tolist() == [1, 2, 1]


def test_bl_similarity_tiebreak_orders_equal_votes_and_never_overturns_a_vote():
    from pipeline.evaluation.voting import vote_scores
    votes = np.array([[3, 3, 4], [1, 1, 0], [0, 0, 0]])
    sim = np.array([[2.0, 2.9, 0.1], [0.5, 0.9, 0.0], [0.0, 0.0, 0.0]])
    s = vote_scores(votes, sim, similarity_tiebreak=True)
    better, tied = rank_counts(s)
    # query 0 (match = candidate 0): candidate 2 has more votes (4 > 3) despite its low similarity, candidate 1
    # ties on votes but its votes are more similar -> the match ranks 3rd; query 1: the match wins its vote
    # tie by similarity -> 1st; query 2: no votes at all -> still tied with every candidate
    assert better.tolist() == [2, 0, 0] and tied.tolist() == [0, 0, 2]
    plain = rank_counts(vote_scores(votes, sim, similarity_tiebreak=False))
    assert plain[0].tolist() == [1, 0, 0] and plain[1].tolist() == [1, 1, 2]
