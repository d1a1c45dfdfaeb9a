"""Snippet-model variants (issue 14): longer audio contexts, the attention branch inside the snippet model,
the variant windows and pool, the entropy switch, the context x attention table, the optional workflow target
(outside dvc.yaml), and the whole chain on the tiny corpus; downstream (item 6): a passage model on a snippet variant
(attention branch, longer windows), BL with a variant's snippet model, and the default passage path unchanged."""
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


def test_retimed_excerpts_look_like_renderings_at_that_tempo():
    """An excerpt of a ρ = 1 spectrogram retimed by ρ equals the excerpt of a rendering at ρ (time scaled by
    1/ρ) around the same musical position; ρ = 1 is the plain cut; frames outside the bounds are silent."""
    from pipeline.models.snippets import cut_spec, cut_spec_retimed
    bins, n = 92, 4000
    phase = torch.linspace(0, 3, bins)[:, None]
    rendering = lambda rho: torch.sin(0.05 * rho * torch.arange(n, dtype=torch.float32)[None, :] + phase)  # noqa: E731
    spec, frames = rendering(1.0), 42
    onset = torch.tensor([900, 1000, 1200])
    lo, hi = torch.zeros(3, dtype=torch.long), torch.full((3,), n)
    for rho in (0.5, 0.8, 1.25, 2.0):                                # onsets / ρ are whole frames
        got = cut_spec_retimed(spec, onset, torch.full((3,), rho), lo, hi, frames)
        at = torch.round(onset / rho).long()                          # the same notes in the rendering at ρ
        want = cut_spec(rendering(rho), at - frames // 2, lo, hi, frames)
        assert got.shape == (3, 1, bins, frames) and (got - want).abs().max() < 2e-3, rho
    assert torch.equal(cut_spec_retimed(spec, onset, torch.ones(3), lo, hi, frames), cut_spec(spec, onset - 21, lo, hi, frames))
    edge = cut_spec_retimed(spec, torch.tensor([10]), torch.tensor([2.0]), torch.tensor([0]), torch.tensor([n]), frames)
    assert (edge[0, 0, :, :15] == 0).all() and (edge[0, 0, :, 16:] != 0).any()   # before the piece: silence


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
                                                    "attention", "train_passage_att", "evaluate_att", "table2_attention"))]
    assert not [s for s in stages if "passage_att" in s or "--label" in stages[s]["cmd"]]
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
        "att42": {"audio_context_frames": 42, "attention": True, "sheet_context_px": 180, "tempo_augment": [0.5, 2.0],
                  "train_snippet": {"epochs": 1}}}
    p["attention"] = {"entropy_weight": 0.1, "analysis": {"variant": "att42", "n_examples": 2},
                      "passage_variants": {}, "baseline_variants": []}      # (the downstream rows need the default run's models)
    write_params(wd, p)
    res = snakemake(wd, "attention")
    assert res.returncode == 0, res.stderr[-3000:]
    assert not (wd / "models/snippet_variant/ctx20").exists() and (wd / "models/snippet_variant_cca/att42/model.pt").is_file()
    log = (wd / "logs/train/snippet_variant/att42.log").read_text()
    assert "42-frame audio" in log and "attention on (entropy weight 0.1)" in log and "pairs/s" in log
    r = json.loads((wd / "results/snippet_variants/att42.json").read_text())
    assert r["pool_window"] == {"context_frames": 42, "sheet_px": 180} and [t["tempo"] for t in r["by_tempo"]] == [0.5, 1.0]
    assert r["tempo_augment"] == [0.5, 2.0] and "tempo_augment" not in json.loads(
        (wd / "results/snippet_variants/ctx20.json").read_text())
    for model in ("snippet_variant", "snippet_variant_cca"):     # the CCA refit reads the training range from the model
        assert torch.load(wd / f"models/{model}/att42/model.pt", weights_only=False)["meta"]["tempo_augment"] == [0.5, 2.0]
    ctx20 = json.loads((wd / "results/snippet_variants/ctx20.json").read_text())
    assert ctx20["n_pairs"] == r["n_pairs"] and ctx20["model"] == "snippet_cca"           # the same pool, the default model
    table = pd.read_csv(wd / "results/tables/snippet_variants.csv", keep_default_na=False)
    assert table.variant.tolist() == ["ctx20", "att42"] * 2 and table.tempo_augment.tolist() == ["", "0.5–2"] * 2
    assert "2.1 s + Att + tempo aug. ρ 0.5–2" in (wd / "results/tables/snippet_variants_tempo.md").read_text()
    a = json.loads((wd / "results/attention/analysis.json").read_text())
    assert a["variant"] == "att42" and {"spearman_rho", "spearman_p", "pearson_r", "pearson_p"} <= set(a["correlation"])
    assert len(a["examples"]) == 2 and abs(sum(a["examples"][0]["weights"]) - 1) < 1e-3
    assert [t["tempo"] for t in a["by_tempo"]] == [0.5, 1.0] and (wd / "results/attention/analysis.png").is_file()
    again = snakemake(wd, "attention")
    assert "Nothing to be done" in again.stdout + again.stderr


# --- downstream (issue 14 item 6): the attention encoder inside the passage model and as BL's snippet model ----

@pytest.fixture
def passage_dataset(tiny_dataset):
    """The tiny piece cut into three passages (systems) of 330-340 px and 100 frames, in the splits train, valid, test."""
    test = tiny_dataset / "test"
    pd.DataFrame({"piece": "p", "performance": "rho-1000_sf", "system": [0, 1, 2], "x0": [0, 330, 660],
                  "x1": [330, 660, 1000], "f0": [0, 100, 200], "f1": [100, 200, 300]}).to_csv(test / "passages.csv", index=False)
    for split in ("train", "valid"):
        (tiny_dataset / split).mkdir()
        for f in test.iterdir():
            (tiny_dataset / split / f.name).write_bytes(f.read_bytes())
    return tiny_dataset


def _snippet_artifact(path, context_frames=20, attention=False, seed=0):
    """A (random) snippet model artifact of this geometry with a CCA projection; attention not uniform."""
    from pipeline.models.training import save_model
    torch.manual_seed(seed)
    model = SnippetModel(8, use_cca=True, context_frames=context_frames, attention=attention)
    with torch.no_grad():
        model.cca.U.copy_(torch.eye(8)), model.cca.V.copy_(torch.eye(8))
        if attention:
            model.audio_net.attention.to_frames.weight.normal_(0, 0.5)
    save_model(path, model.state_dict(), {"kind": "snippet", "emb_dim": 8, "cca": True, **model.geometry()})
    return path


def test_passage_windows_follow_the_geometry(passage_dataset):
    """20 frames / 180 px: the existing cutters themselves; longer windows share the 1-s windows' centres, hops and the
    passage bounds (silence beyond the passage's audio span)."""
    from pipeline.models.embedding import _windows_audio, _windows_sheet, model_passage_audio, model_passage_sheet
    from pipeline.models.snippets import passage_audio, passage_sheet
    bank, rows = load_split(passage_dataset, "test"), np.arange(3)
    a20, n20 = passage_audio(bank, rows, 18)
    s180, m180 = passage_sheet(bank, rows, 81)
    assert torch.equal(_windows_audio(bank, rows, 18, 20)[0], a20) and torch.equal(_windows_sheet(bank, rows, 81, 180)[0], s180)
    a42, n42 = model_passage_audio(bank, rows, 18, 42)
    s200, m200 = model_passage_sheet(bank, rows, 81, 200)
    assert torch.equal(n42, n20) and torch.equal(m200, m180) and a42.shape == (len(a20), 1, 92, 42) and s200.shape[-1] == 100
    assert torch.equal(a42[..., 11:31], a20)                      # [s - 11, s + 31) around the 1-s window [s, s + 20)
    assert a42[0, 0, 0, :11].abs().sum() == 0 and a42[0, 0, 0, 12] == 1           # before the first passage: silence
    last = int(n42[:2].sum()) - 1                                  # the second passage's last window: frames >= 200 are silent
    assert a42[last, 0, 0].max() == 199 and a42[last, 0, 0, -1] == 0
    assert torch.equal(s200[..., 5:95], s180)


def test_default_passage_model_is_built_and_fed_as_before(passage_dataset):
    """Without a snippet variant: the modules, initialisation, windows and feature-cache key of the code before it."""
    from pipeline.models.embedding import FEATURE_CACHE_VERSION, PASSAGE_COLUMNS, FeatureCache, model_passage_batch
    from pipeline.models.networks import AudioEncoder, PassageModel, SequenceEncoder, init_weights, sheet_encoder
    from pipeline.models.snippets import passage_batch

    def before(dim=8, hidden=16, emb=12):                          # PassageModel.__init__ before issue 14 item 6
        m = torch.nn.Module()
        m.sheet = SequenceEncoder(sheet_encoder(dim), dim, hidden, emb)
        m.audio = SequenceEncoder(AudioEncoder(dim), dim, hidden, emb)
        for part in (m.sheet.cnn, m.audio.cnn, m.sheet.fc, m.audio.fc):
            init_weights(part, "orthogonal")
        return m.to(memory_format=torch.channels_last)

    torch.manual_seed(7)
    old = before()
    torch.manual_seed(7)
    new = PassageModel(8, 16, 12).eval()
    assert new.geometry() == {"audio_context_frames": 20, "attention": False, "sheet_context_px": 180}
    so, sn = old.state_dict(), new.state_dict()
    assert list(so) == list(sn) and all(torch.equal(so[k], sn[k]) for k in so)
    bank, rows = load_split(passage_dataset, "test"), np.arange(3)
    batch = passage_batch(bank, rows, 81, 18)
    assert all(torch.equal(a, b) for a, b in zip(model_passage_batch(new, bank, rows, 81, 18), batch))
    old.eval()
    x, y = new(*batch)
    assert torch.equal(x, old.sheet(batch[0], batch[2])) and torch.equal(y, old.audio(batch[1], batch[3]))
    import hashlib
    h = hashlib.sha256(json.dumps([FEATURE_CACHE_VERSION, [81, 18], bank.passages[PASSAGE_COLUMNS].values.tolist()]).encode())
    for t in (bank.sheet, bank.spec, *new.sheet.cnn.state_dict().values(), *new.audio.cnn.state_dict().values()):
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    assert FeatureCache.key(new, bank, (81, 18)) == h.hexdigest()[:20]
    wide = PassageModel(8, 16, 12, audio_context_frames=42)
    assert FeatureCache.key(wide, bank, (81, 18)) != FeatureCache.key(PassageModel(8, 16, 12), bank, (81, 18))


def test_passage_model_on_an_attention_variant_trains_the_branch(passage_dataset, tmp_path):
    """The +Att passage model: the variant's attention branch and audio CNN (loaded with its weights and CCA
    projection) on 42-frame windows, then the GRU; gradients reach the attention branch."""
    from pipeline.models.embedding import FeatureCache, embed_cached, embed_passages, model_passage_batch
    from pipeline.models.train_passage import build_model
    from pipeline.models.training import load_model
    art_path = _snippet_artifact(tmp_path / "att42.pt", 42, attention=True)
    p = {"snippet_dim": 8, "rnn_hidden": 16, "frozen_bn_updates": False}
    variant = {"init": "snippet_cca", "snippet_variant": "att42", "freeze_cnn": False}
    params = {"snippet_variants": {"att42": {"audio_context_frames": 42, "attention": True, "sheet_context_px": 180}}}
    model = build_model(p, variant, 12, art_path, params).train()
    assert model.geometry() == {"audio_context_frames": 42, "attention": True, "sheet_context_px": 180}
    state = load_model(art_path)["state_dict"]
    assert torch.equal(model.audio.cnn.attention.to_frames.weight, state["audio_net.attention.to_frames.weight"])
    assert torch.equal(model.audio.cca_u, torch.eye(8))
    bank, rows = load_split(passage_dataset, "train"), np.arange(3)
    sheet, audio, n_s, n_a = model_passage_batch(model, bank, rows, 81, 18)
    assert audio.shape == (int(n_a.sum()), 1, 92, 42) and sheet.shape == (int(n_s.sum()), 1, 80, 90)
    x, y = model(sheet, audio, n_s, n_a)
    assert x.shape == y.shape == (3, 12) and torch.allclose(y.norm(dim=1), torch.ones(3))
    triplet_loss(x, y, 0.3, symmetric=True).backward()
    branch = model.audio.cnn.attention
    assert branch.to_frames.weight.grad.abs().sum() > 0 and branch.features[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="geometry"):                  # the artifact must be the named variant
        build_model(p, {**variant, "snippet_variant": "ctx20"}, 12, art_path,
                    {"snippet_variants": {"ctx20": {"audio_context_frames": 20, "attention": False, "sheet_context_px": 180}}})
    frozen = build_model(p, {**variant, "freeze_cnn": True}, 12, art_path, params).eval()   # FZ: the cache cuts the same windows
    direct = embed_passages(frozen, bank, rows, (81, 18))
    cached = embed_cached(frozen, FeatureCache(frozen, bank, (81, 18)), rows)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(direct, cached))


def test_downstream_params_rows_and_labels(base_params):
    from pipeline.core.variants import check_downstream, downstream_init, downstream_label, downstream_models
    from pipeline.models.train_passage import variant_spec
    p = copy.deepcopy(base_params)
    att = p["attention"]
    att["passage_variants"] = {"rnn_ft_cca_att42": {"init": "snippet_cca", "snippet_variant": "att42", "freeze_cnn": False},
                               "rnn_fz_ctx20": {"init": "snippet", "snippet_variant": "ctx20", "freeze_cnn": True}}
    att["baseline_variants"] = ["att42", "ctx168"]
    validate(p), check_downstream(p)
    p["snippet_variants"]["ctx20"]["train_snippet"] = {}            # ctx20 = the default model: its artifacts
    p["evaluation"]["baseline_model"] = "snippet"
    assert downstream_models(p) == {"bl_att42": "models/snippet_variant/att42/model.pt",
                                    "bl_ctx168": "models/snippet_variant/ctx168/model.pt",
                                    "rnn_ft_cca_att42": "models/passage_att/rnn_ft_cca_att42/model.pt",
                                    "rnn_fz_ctx20": "models/passage_att/rnn_fz_ctx20/model.pt"}
    assert downstream_init(p, "rnn_ft_cca_att42") == "models/snippet_variant_cca/att42/model.pt"
    assert downstream_init(p, "rnn_fz_ctx20") == "models/snippet/model.pt"
    assert [downstream_label(p, r) for r in downstream_models(p)] == [
        "BL+Att (att42)", "BL (ctx168)", "RNN-FT-CCA+Att (att42)", "RNN-FZ (ctx20)"]
    assert variant_spec(p, "rnn_fz_ctx20")["snippet_variant"] == "ctx20" and variant_spec(p, "rnn")["init"] is None
    for bad, match in ((("passage_variants", "rnn_ft_cca_att42", "snippet_variant"), "not one of snippet_variants"),
                       (("baseline_variants",), "attention.baseline_variants")):
        q = copy.deepcopy(p)
        if bad[0] == "baseline_variants":
            q["attention"]["baseline_variants"] = ["att7"]
        else:
            q["attention"]["passage_variants"]["rnn_ft_cca_att42"]["snippet_variant"] = "att7"
        with pytest.raises(ValueError, match=match):
            check_downstream(q)
    q = copy.deepcopy(p)
    q["attention"]["passage_variants"]["rnn"] = q["attention"]["passage_variants"].pop("rnn_fz_ctx20")
    with pytest.raises(ValueError, match="passage_variants key"):
        check_downstream(q)
    with pytest.raises(KeyError, match="both"):
        variant_spec(q, "rnn")
    q = copy.deepcopy(p)
    q["attention"]["passage_variants"]["rnn_ft_cca_att42"]["init"] = "snippet_att"
    with pytest.raises(ConfigError, match="attention.passage_variants.rnn_ft_cca_att42.init"):
        validate(q)


def test_bl_with_a_variant_scores_the_same_passages(passage_dataset, tmp_path, base_params):
    """BL with a snippet variant as its snippet model: the protocol of BL (same passages, hops, candidates, tie rule),
    its windows cut to the variant's geometry; a label names the row, and the table shows it after BL."""
    from pipeline.evaluation.evaluate import baseline_scores, evaluate
    from pipeline.evaluation.tables import table2
    params = {k: copy.deepcopy(base_params[k]) for k in ("seed", "training", "evaluation")}
    params["training"].update(device="cpu", amp=False, threads=1)
    params["train_passage"] = {"sheet_hop_half_px": 81, "audio_hop_frames": 18}
    plain, att = _snippet_artifact(tmp_path / "bl.pt"), _snippet_artifact(tmp_path / "att42.pt", 42, attention=True)
    bl = evaluate(params, plain, passage_dataset, "test", 1.0, log=lambda m: None, details=tmp_path / "bl.csv")
    bla = evaluate(params, att, passage_dataset, "test", 1.0, log=lambda m: None, details=tmp_path / "bla.csv",
                   label="BL+Att (att42)")
    assert "label" not in bl and bla["label"] == "BL+Att (att42)" and bl["model"] == bla["model"] == "BL"
    assert bl["n_passages"] == bla["n_passages"] == 3 and bl["a2s"]["n_queries"] == bla["a2s"]["n_queries"] == 3
    assert bl["a2s"]["ties"] == bla["a2s"]["ties"] == params["evaluation"]["ties"]
    d, da = pd.read_csv(tmp_path / "bl.csv"), pd.read_csv(tmp_path / "bla.csv")
    cols = ["piece", "performance", "system", "audio_s", "sheet_px"]
    assert d[cols].equals(da[cols])
    bank = load_split(passage_dataset, "test")
    model = SnippetModel.from_artifact(torch.load(att, weights_only=False))
    scores = baseline_scores(model, bank, (81, 18), params["evaluation"]["n_candidates"])
    assert scores["a2s"].shape == scores["s2a"].shape == (3, 3)
    df = table2({"bl": bl, "bl_att42": bla})
    assert df.model.tolist() == ["BL", "BL+Att (att42)"] * 2


def test_att_passage_variant_trains_and_evaluates(passage_dataset, tmp_path, base_params):
    """train_passage on an attention.passage_variants entry (one tiny epoch from a snippet-variant artifact): the
    artifact records the geometry, and evaluate rebuilds it (windows, attention) and names the row."""
    from pipeline.evaluation.evaluate import evaluate
    from pipeline.models.embedding import load_passage_model
    from pipeline.models.train_passage import train
    p = copy.deepcopy(base_params)
    p["training"].update(device="cpu", amp=False, threads=1)
    p["train_passage"].update(snippet_dim=8, rnn_hidden=16, emb_dim=12, epochs=1, n_train=6, batch_size=3, n_valid=3,
                              mask_other_renderings=False)
    p["attention"]["passage_variants"] = {
        "rnn_ft_cca_att42": {"init": "snippet_cca", "snippet_variant": "att42", "freeze_cnn": False}}
    init = _snippet_artifact(tmp_path / "att42.pt", 42, attention=True)
    out = tmp_path / "models" / "passage_att" / "rnn_ft_cca_att42"
    metrics = train(p, "rnn_ft_cca_att42", passage_dataset, init, out, tmp_path / "live", tmp_path / "ck.pt", log=lambda m: None)
    assert metrics["epochs"] == 1
    model, meta = load_passage_model(out / "model.pt")
    assert meta["snippet_variant"] == "att42" and model.geometry() == {"audio_context_frames": 42, "attention": True,
                                                                      "sheet_context_px": 180}
    r = evaluate(p, out / "model.pt", passage_dataset, "test", 1.0, log=lambda m: None, label="RNN-FT-CCA+Att (att42)")
    assert r["n_passages"] == 3 and r["label"] == "RNN-FT-CCA+Att (att42)" and r["model"] == "rnn_ft_cca_att42"


def test_piece_windows_follow_the_snippet_model_geometry():
    """Piece-identification windows (pipeline.models.windows) of a variant: the same positions, the variant's window
    size around the same centres; the default model's windows as before."""
    from types import SimpleNamespace

    from pipeline.models.windows import embed_performance, embed_piece_sheet
    spec = np.tile(np.arange(100, dtype=np.float32), (92, 1))
    image = np.tile((np.arange(600) % 256).astype(np.uint8), (200, 1))
    raw = lambda x: x[:, 0, 0] if x.shape[2] == 92 else x[:, 0, 40]       # noqa: E731  (a window's first row / middle row)
    plain = SimpleNamespace(embed_audio=raw, embed_sheet=raw)
    long = SimpleNamespace(embed_audio=raw, embed_sheet=raw, context_frames=42, sheet_px=200)
    s20, e20 = embed_performance(plain, spec, 10, "cpu")
    s42, e42 = embed_performance(long, spec, 10, "cpu")
    assert np.array_equal(s20, s42) and e20.shape == (len(s20), 20) and e42.shape == (len(s20), 42)
    assert np.array_equal(e42[:, 11:31], e20) and e42[0, :11].sum() == 0 and e42[-1, -1] == 0     # silence beyond the recording
    c180, x180 = embed_piece_sheet(plain, image, 50, "cpu")
    c200, x200 = embed_piece_sheet(long, image, 50, "cpu")
    assert np.array_equal(c180, c200) and x200.shape == (len(c180), 100) and np.array_equal(x200[:, 5:95], x180)
