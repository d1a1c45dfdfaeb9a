"""Snippet-model variants (issue 14): longer audio contexts, the attention branch inside the snippet model,
the variant windows and pool, the entropy switch, the context x attention table, the optional workflow target
(outside dvc.yaml), and the whole chain on the tiny corpus."""
import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO, snakemake, write_params
from PIL import Image

from pipeline.core.errors import ConfigError
from pipeline.core.params import validate
from pipeline.core.variants import is_default_snippet_model, snippet_variant_keys, snippet_variant_model, trained_snippet_variants
from pipeline.models.networks import SnippetModel, attention_entropy, triplet_loss
from pipeline.models.snippets import common_window, load_split, snippet_batch


def test_snippet_model_with_attention_starts_uniform_and_trains_the_branch():
    torch.manual_seed(0)
    model = SnippetModel(8, use_cca=False, context_frames=42, attention=True, sheet_px=200).train()
    sheet, audio = torch.rand(6, 1, 80, 100), torch.randn(6, 1, 92, 42)
    x, y, w = model(sheet, audio, return_attention=True)
    assert x.shape == y.shape == (6, 8) and w.shape == (6, 42)
    assert torch.allclose(w.sum(1), torch.ones(6)) and torch.allclose(w, torch.full_like(w, 1 / 42))   # zero after the init
    assert model.audio_net.cnn.flat_size == 32 * (42 // 16) * (92 // 16) and model.sheet_net.flat_size == 32 * 6 * 5
    triplet_loss(x, y, 0.6).backward()
    assert model.audio_net.attention.to_frames.weight.grad.abs().sum() > 0      # gradients reach the attention branch
    plain = SnippetModel(8, use_cca=False)
    assert plain(torch.rand(2, 1, 80, 90), torch.randn(2, 1, 92, 20), return_attention=True)[2] is None
    assert torch.allclose(plain.attention_weights(torch.randn(3, 1, 92, 20)), torch.full((3, 20), 0.05))


def test_artifact_round_trip_keeps_the_geometry():
    model = SnippetModel(8, use_cca=True, context_frames=84, attention=True).eval()
    art = {"state_dict": model.state_dict(), "meta": {"emb_dim": 8, "cca": True, **model.geometry()}}
    back = SnippetModel.from_artifact(art)
    assert back.geometry() == {"audio_context_frames": 84, "attention": True, "sheet_context_px": 180}
    old = {"state_dict": SnippetModel(8, use_cca=False).state_dict(), "meta": {"emb_dim": 8, "cca": False}}
    assert SnippetModel.from_artifact(old).geometry() == {"audio_context_frames": 20, "attention": False, "sheet_context_px": 180}


def test_attention_entropy_and_the_regulariser_sign():
    t = 42
    uniform, peaked = torch.full((1, t), 1 / t), torch.nn.functional.one_hot(torch.tensor([3]), t).float()
    assert math.isclose(float(attention_entropy(uniform)), math.log(t), rel_tol=1e-6)
    assert float(attention_entropy(peaked)) < 1e-6
    logits = torch.zeros(1, t, requires_grad=True)
    w = torch.softmax(logits + torch.linspace(0, 3, t), dim=1)
    (-attention_entropy(w).mean()).backward()            # the loss term (weight 1): pushes towards uniform attention
    with torch.no_grad():
        after = attention_entropy(torch.softmax(logits - 0.5 * logits.grad + torch.linspace(0, 3, t), dim=1))
    assert float(after) > float(attention_entropy(w.detach()))


@pytest.fixture
def tiny_dataset(tmp_path):
    """One piece, one performance: a 1000-px unrolled score, 300 frames of audio, onsets near both ends."""
    d = tmp_path / "dataset" / "test"
    d.mkdir(parents=True)
    img = np.full((200, 1000), 255, np.uint8)
    img[60:140, ::7] = 0
    Image.fromarray(img).save(tmp_path / "unrolled.png")
    spec = np.tile(np.arange(300, dtype=np.float32), (92, 1))                # frame index as value
    np.save(tmp_path / "spec.npy", spec)
    pd.DataFrame({"piece": ["p"], "unrolled": [str(tmp_path / "unrolled.png")]}).to_csv(d / "pieces.csv", index=False)
    pd.DataFrame({"piece": ["p"], "performance": ["rho-1000_sf"], "spec": [str(tmp_path / "spec.npy")],
                  "tempo_ratio": [1.0], "soundfont": ["sf"]}).to_csv(d / "performances.csv", index=False)
    pd.DataFrame({"piece": ["p"], "performance": ["rho-1000_sf"], "system": [0], "x0": [0], "x1": [1000],
                  "f0": [0], "f1": [300]}).to_csv(d / "passages.csv", index=False)
    frames = [5, 15, 50, 100, 150, 216, 290]
    pd.DataFrame({"piece": "p", "performance": "rho-1000_sf", "system": 0, "x": [95, 120, 300, 500, 600, 700, 905],
                  "frame": frames}).to_csv(d / "snippets.csv", index=False)
    return tmp_path / "dataset"


def test_windows_follow_the_model_context(tiny_dataset):
    short = load_split(tiny_dataset, "test")
    assert short.snippets.frame.tolist() == [15, 50, 100, 150, 216, 290]     # 1 s: [f - 10, f + 10) inside 300 frames
    long = load_split(tiny_dataset, "test", context_frames=168, sheet_px=200)
    assert long.snippets.frame.tolist() == [100, 150, 216]                   # [f - 84, f + 84) inside; x +- 100 inside 1000 px
    rows = np.arange(len(long.snippets))
    s20, a20 = snippet_batch(long, rows)
    s200, a168 = snippet_batch(long, rows, context_frames=168, sheet_px=200)
    assert s20.shape == (3, 1, 80, 90) and s200.shape == (3, 1, 80, 100) and a168.shape == (3, 1, 92, 168)
    assert torch.equal(a168[..., 74:94], a20)                                 # the 1 s window is the long one's centre
    assert a168[0, 0, 0, 0] == 100 - 84 and torch.equal(s200[..., 5:95], s20)
    variants = {"a": {"audio_context_frames": 42, "sheet_context_px": 180},
                "b": {"audio_context_frames": 20, "sheet_context_px": 200}}
    assert common_window(variants) == {"context_frames": 42, "sheet_px": 200}


def test_which_variant_is_the_default_model_and_where_artifacts_live(base_params):
    v = {"ctx20": {"audio_context_frames": 20, "attention": False, "sheet_context_px": 180, "train_snippet": {}},
         "q20": {"audio_context_frames": 20, "attention": False, "sheet_context_px": 180, "train_snippet": {"epochs": 4}},
         "att42": {"audio_context_frames": 42, "attention": True, "sheet_context_px": 180, "train_snippet": None}}
    assert is_default_snippet_model(v["ctx20"]) and not is_default_snippet_model(v["q20"])
    assert trained_snippet_variants(v) == ["att42", "q20"]
    assert snippet_variant_model(v, "ctx20") == "models/snippet_cca/model.pt"
    assert snippet_variant_model(v, "att42", refined=False) == "models/snippet_variant/att42/model.pt"
    assert snippet_variant_keys(v, "att42")[-1] == "attention.entropy_weight"
    assert "attention.entropy_weight" not in snippet_variant_keys(v, "q20")
    assert set(trained_snippet_variants(base_params["snippet_variants"])) <= set(base_params["snippet_variants"])


def test_variant_params_are_checked(base_params):
    p = copy.deepcopy(base_params)
    assert {v["attention"] for v in p["snippet_variants"].values()} == {False, True}
    p["attention"]["analysis"]["variant"] = "ctx42"
    with pytest.raises(ConfigError, match="attention.analysis.variant"):
        validate(p)
    p = copy.deepcopy(base_params)
    p["snippet_variants"]["att42"]["audio_context_frames"] = 8
    with pytest.raises(ConfigError, match="snippet_variants.att42.audio_context_frames"):
        validate(p)
    p = copy.deepcopy(base_params)
    p["snippet_variants"]["att42"]["train_snippet"] = {"epoch": 3}
    with pytest.raises(ConfigError, match="snippet_variants.att42.train_snippet"):
        validate(p)
    from snakemake.utils import update_config

    p = copy.deepcopy(base_params)                               # the anchors' overlay, merged as --configfile does
    update_config(p, yaml.safe_load((REPO / "config" / "attention_anchor.yaml").read_text()))
    validate(p)
    assert {v["sheet_context_px"] for v in p["snippet_variants"].values()} == {200}
    assert p["snippet_variants"]["att168"]["audio_context_frames"] == 168 and p["snippet_variants"]["att168"]["attention"]


def _result(variant, ctx, att, mrr):
    m = {"R@1": 100 * mrr, "R@5": 90.0, "R@10": 95.0, "R@25": 99.0, "MRR": mrr, "MRR_ci95": [mrr - 0.05, mrr + 0.05],
         "chance_MRR": 0.004, "median_rank": 2.0, "mean_rank": 3.0, "n_queries": 2000}
    by_tempo = [{"tempo": t, "a2s": {**m, "MRR": mrr * (1 - abs(math.log(t)) / 4)}, "s2a": m} for t in (0.5, 1.0, 2.0)]
    return {"variant": variant, "audio_context_frames": ctx, "attention": att, "sheet_context_px": 180, "tempo": 1.0,
            "a2s": m, "s2a": m, "by_tempo": by_tempo}


def test_context_attention_table_and_figures(tmp_path):
    from pipeline.evaluation.attention import write_tables
    results = [_result("att42", 42, True, 0.6), _result("ctx20", 20, False, 0.4), _result("ctx42", 42, False, 0.45),
               _result("att20", 20, True, 0.5)]
    df = write_tables(results, tmp_path / "tables" / "snippet_variants", tmp_path / "fig")
    assert df.variant.tolist()[:4] == ["ctx20", "ctx42", "att20", "att42"] and df.direction.tolist() == ["A2S"] * 4 + ["S2A"] * 4
    md = (tmp_path / "tables" / "snippet_variants.md").read_text()
    assert "| A2S | 2.1 | yes | 180 |" in md and "MRR [95 % CI]" in md and "0.600 [0.550, 0.650]" in md
    tempo = pd.read_csv(tmp_path / "tables" / "snippet_variants_tempo.csv")
    assert {"ρ=0.5", "ρ=1", "ρ=2"} <= set(tempo.columns) and len(tempo) == 8
    assert (tmp_path / "fig" / "mrr_vs_context.png").stat().st_size > 0 and (tmp_path / "fig" / "mrr_vs_tempo.png").is_file()


def test_attention_target_is_outside_the_default_target_and_dvc_yaml():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert not [s for s in stages if s.startswith(("train_snippet_variant", "refine_cca_variant", "snippet_variant",
                                                    "attention"))]
    assert stages["train_snippet"]["cmd"].count("--variant") == 0


def test_attention_chain_on_the_tiny_corpus(base_params, tmp_path):
    """`snakemake attention` alone on the tiny corpus (it needs only the data and the default snippet model):
    train_snippet --variant (attention, 42 frames) -> refine_cca -> snippet retrieval at every test ρ -> table,
    and the analysis; the 20-frame variant is the default snippet model, not trained again."""
    from conftest import tiny_corpus_params
    wd = tmp_path / "project"
    wd.mkdir()
    p = tiny_corpus_params(base_params)
    p["snippet_variants"] = {
        "ctx20": {"audio_context_frames": 20, "attention": False, "sheet_context_px": 180, "train_snippet": {}},
        "att42": {"audio_context_frames": 42, "attention": True, "sheet_context_px": 180, "train_snippet": {"epochs": 1}}}
    p["attention"] = {"entropy_weight": 0.1, "analysis": {"variant": "att42", "n_examples": 2}}
    write_params(wd, p)
    res = snakemake(wd, "attention")
    assert res.returncode == 0, res.stderr[-3000:]
    assert not (wd / "models/snippet_variant/ctx20").exists() and (wd / "models/snippet_variant_cca/att42/model.pt").is_file()
    log = (wd / "logs/train/snippet_variant/att42.log").read_text()
    assert "42-frame audio" in log and "attention on (entropy weight 0.1)" in log and "pairs/s" in log
    r = json.loads((wd / "results/snippet_variants/att42.json").read_text())
    assert r["pool_window"] == {"context_frames": 42, "sheet_px": 180} and [t["tempo"] for t in r["by_tempo"]] == [0.5, 1.0]
    ctx20 = json.loads((wd / "results/snippet_variants/ctx20.json").read_text())
    assert ctx20["n_pairs"] == r["n_pairs"] and ctx20["model"] == "snippet_cca"           # the same pool, the default model
    table = pd.read_csv(wd / "results/tables/snippet_variants.csv")
    assert table.variant.tolist() == ["ctx20", "att42"] * 2
    a = json.loads((wd / "results/attention/analysis.json").read_text())
    assert a["variant"] == "att42" and {"spearman_rho", "spearman_p", "pearson_r", "pearson_p"} <= set(a["correlation"])
    assert len(a["examples"]) == 2 and abs(sum(a["examples"][0]["weights"]) - 1) < 1e-3
    assert [t["tempo"] for t in a["by_tempo"]] == [0.5, 1.0] and (wd / "results/attention/analysis.png").is_file()
    again = snakemake(wd, "attention")
    assert "Nothing to be done" in again.stdout + again.stderr
