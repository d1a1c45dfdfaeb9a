"""Snippet cutting (sheet masks, audio zero padding, lcasr passage hops) and retrieval metrics."""
import numpy as np
import torch

from pipeline.metrics import match_ranks, retrieval_metrics
from pipeline.snippets import audio_starts, cut_sheet, cut_spec, sheet_starts


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


def test_ranks_metrics_ties_perfect_and_worst():
    perfect = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    assert match_ranks(perfect).tolist() == [1, 1, 1]
    assert match_ranks(torch.zeros(3, 3)).tolist() == [3, 3, 3]          # all tied: pessimistic
    worst = 2 * torch.eye(3)                                            # the match is the farthest
    assert match_ranks(worst).tolist() == [3, 3, 3]
    m = retrieval_metrics(np.array([1, 2, 4, 30]))
    assert m["R@1"] == 25.0 and m["R@5"] == 75.0 and m["R@25"] == 75.0
    assert np.isclose(m["MRR"], (1 + 1 / 2 + 1 / 4 + 1 / 30) / 4) and m["median_rank"] == 3.0 and m["mean_rank"] == 9.25


def test_snippet_voting_on_a_constructed_case():
    from pipeline.evaluate import vote_ranks
    # 3 passages in a 2-d space: passage p's snippets point at angle p; query snippets of passage 0 and 2
    # land on their own passage, those of passage 1 land on passage 2 (wrong), all hits unambiguous.
    ang = {0: 0.0, 1: 1.2, 2: 2.4}
    db_owner = np.array([0, 0, 1, 1, 2, 2])
    db = torch.tensor([[np.cos(ang[o]), np.sin(ang[o])] for o in db_owner], dtype=torch.float32)
    q_owner = np.array([0, 0, 1, 2])
    q = torch.tensor([[np.cos(a), np.sin(a)] for a in (0.0, 0.05, 2.4, 2.35)], dtype=torch.float32)
    ranks = vote_ranks(q, q_owner, db, db_owner, n_passages=3, n_candidates=2)
    # passage 0: 2 hits x 2 snippets, all its own -> rank 1; passage 1: its 2 votes go to passage 2, so it
    # ties with passage 0 at 0 votes and ranks behind both (pessimistic) -> 3; passage 2: all its own -> 1
    assert ranks.tolist() == [1, 3, 1]
