"""The paper's experiments on the tiny corpus built by the real workflow (run a of ``two_runs``)."""
import json

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_corpus_params
from PIL import Image


def test_dimension_sweep_trains_one_model_per_dimension(project):
    df = pd.read_csv(project / "results/experiments/dim_sweep.csv")
    assert list(df.emb_dim) == [8, 16]
    assert df.MRR_a2s.between(0, 1).all() and df.MRR_s2a.between(0, 1).all()
    for dim in (8, 16):
        meta = json.loads((project / f"results/experiments/dim_sweep/d{dim}.json").read_text())
        assert meta["emb_dim"] == dim and meta["model"] == "rnn_fz_cca"
        # the sweep's own training budget (experiments.dim_sweep.train_passage: 1 epoch), not the variants' 2
        assert json.loads((project / f"models/sweep/d{dim}/metrics.json").read_text())["epochs"] == 1
    assert Image.open(project / "results/experiments/dim_sweep.png").size[0] > 300


def test_tempo_table_has_every_model_and_ratio(project):
    df = pd.read_csv(project / "results/experiments/tempo.csv")
    assert [c for c in df.columns if not c.endswith("95")] == ["direction", "model", "ρ=0.5", "ρ=1", "chance_MRR", "n_queries"]
    assert (df["ρ=1_lo95"] <= df["ρ=1"]).all() and (df["ρ=1"] <= df["ρ=1_hi95"]).all()
    assert list(df.model) == ["BL", "RNN", "BL", "RNN"] and list(df.direction) == ["A2S", "A2S", "S2A", "S2A"]
    # the tempo-1.0 column is the main evaluation (same model, same passages)
    main = json.loads((project / "results/metrics/rnn.json").read_text())
    assert df["ρ=1"][1] == pytest.approx(main["a2s"]["MRR"], abs=1e-4)
    slow = json.loads((project / "results/experiments/tempo/rnn/rho-0500.json").read_text())
    assert slow["tempo"] == 0.5 and slow["n_passages"] == main["n_passages"]


def test_details_and_distance_figure_agree_with_the_metrics(project):
    details = pd.read_csv(project / "results/retrieval/rnn_ft_cca.csv")
    m = json.loads((project / "results/metrics/rnn_ft_cca.json").read_text())
    assert len(details) == m["n_passages"]
    for d in ("a2s", "s2a"):
        assert np.mean(details[f"rr_{d}"]) == pytest.approx(m[d]["MRR"])
        # the top list is consistent with the rank: the match is listed at its rank when ranks are unique
        first = details[f"top_{d}"].str.split().str[0].astype(int)
        assert ((first == details.index) == (details[f"rank_{d}"] == 1)).mean() > 0.5
    assert details.distance.between(0, 2).all() and (details.audio_s > 0).all()
    assert pd.read_csv(project / "results/retrieval/bl.csv").distance.isna().all()
    pts = pd.read_csv(project / "results/experiments/distance_vs_duration.csv")
    assert len(pts) == len(details)
    assert (project / "results/experiments/retrieval_examples.png").stat().st_size > 10_000


def test_report_holds_every_table_and_figure(project, tmp_path):
    from conftest import snakemake
    report = tmp_path / "report.html"
    r = snakemake(project, "--report", str(report), "all", "identification")
    assert r.returncode == 0, r.stderr[-3000:]
    names = report.read_text()
    for f in ("table2.csv", "dim_sweep.png", "dim_sweep.csv", "tempo.csv", "distance_vs_duration.png",
              "retrieval_examples.png", "piece_id.md", "fragments.png", "scalability.png", "dtw_paths.png",
              "snippet_retrieval.md"):
        assert f in names, f


def test_snippet_retrieval_of_every_snippet_model(project):
    table = pd.read_csv(project / "results/tables/snippet_retrieval.csv")
    assert sorted(table.model) == ["snippet (pretraining)"] * 2 + ["snippet + CCA refit"] * 2
    m = json.loads((project / "results/snippet_retrieval/snippet_cca.json").read_text())
    n = m["n_pairs"]
    assert 2 <= n <= 2000 and m["a2s"]["n_queries"] == m["s2a"]["n_queries"] == n
    assert abs(m["a2s"]["chance_MRR"] - sum(1 / k for k in range(1, n + 1)) / n) < 1e-9


def test_experiment_params_are_checked(base_params):
    from pipeline.core.errors import ConfigError
    from pipeline.core.params import validate
    p = tiny_corpus_params(base_params)
    p["experiments"]["tempo"]["variants"] = ["rnn_xl"]
    with pytest.raises(ConfigError, match="experiments.tempo.variants: 'rnn_xl'"):
        validate(p)
