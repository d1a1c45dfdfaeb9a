"""Table 2 across scenarios (issue 16): the paired drop from scenario I, on synthetic per-query tables."""
import numpy as np
import pandas as pd
import pytest

from pipeline.evaluation.scenarios import paired_drop, scenario_table


def _queries(rr_a2s, rr_s2a, order=None):
    n = len(rr_a2s)
    df = pd.DataFrame({"piece": [f"p{i // 4}" for i in range(n)], "system": [i % 4 for i in range(n)],
                       "rr_a2s": rr_a2s, "rr_s2a": rr_s2a})
    return df.iloc[order].reset_index(drop=True) if order is not None else df


def test_drop_is_paired_by_passage_not_by_row_order():
    rng = np.random.default_rng(0)
    ref = rng.uniform(0.2, 1.0, 40)
    scn = ref - 0.1                                  # every passage loses exactly 0.1
    shuffled = rng.permutation(40)
    d = paired_drop(_queries(ref, ref), _queries(scn, scn, order=shuffled), "a2s")
    assert d["drop"] == pytest.approx(0.1)
    assert d["drop_lo95"] == pytest.approx(0.1) and d["drop_hi95"] == pytest.approx(0.1)   # no spread: paired
    assert d["MRR"] == pytest.approx(scn.mean()) and d["n_paired"] == 40


def test_drop_interval_covers_the_drop_and_excludes_zero_when_clear():
    rng = np.random.default_rng(1)
    ref = rng.uniform(0.3, 1.0, 200)
    scn = np.clip(ref - rng.normal(0.2, 0.1, 200), 0.01, 1)
    d = paired_drop(_queries(ref, ref), _queries(scn, scn), "s2a")
    assert d["drop_lo95"] < d["drop"] < d["drop_hi95"] and d["drop_lo95"] > 0


def test_no_common_passage_is_an_error():
    a, b = _queries([0.5] * 4, [0.5] * 4), _queries([0.5] * 4, [0.5] * 4)
    b["piece"] = "other"
    with pytest.raises(ValueError, match="no passage"):
        paired_drop(a, b, "a2s")


def test_table_has_every_model_direction_and_scenario():
    ref = {"bl": _queries([1.0] * 8, [0.5] * 8), "rnn": _queries([0.5] * 8, [0.5] * 8)}
    scen = {"II-sim": {"bl": _queries([0.5] * 8, [0.5] * 8), "rnn": _queries([0.5] * 8, [0.25] * 8)}}
    t = scenario_table(ref, scen)
    assert list(t.direction) == ["A2S", "A2S", "S2A", "S2A"] and list(t.model) == ["BL", "RNN", "BL", "RNN"]
    assert list(t["II-sim drop"]) == pytest.approx([0.5, 0.0, 0.0, 0.25])
