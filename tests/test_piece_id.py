"""Piece identification: window geometry, the database/query renderings, voting vs DTW on a constructed
case, and the stage outputs of the tiny corpus's workflow run."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.core.constants import SHEET_CONTEXT_PX, SPEC_CONTEXT_FRAMES
from pipeline.core.metrics import rank_counts
from pipeline.evaluation.fragments import iou, search
from pipeline.evaluation.identification import dtw_method, dtw_tempo_method, refine_method, vote_method
from pipeline.evaluation.piece_windows import database_and_queries
from pipeline.models.windows import audio_window_starts, retimed, sheet_centres


def test_windows_cover_the_score_and_the_audio():
    c = sheet_centres(1000, 50)
    assert c[0] == SHEET_CONTEXT_PX / 2 and c[-1] == 1000 - SHEET_CONTEXT_PX / 2 and np.all(np.diff(c) <= 50)
    assert sheet_centres(100, 50).tolist() == [50.0]                       # narrower than a window: one, centred
    s = audio_window_starts(95, 10)
    assert s[0] == 0 and s[-1] + SPEC_CONTEXT_FRAMES <= 95 and s[-1] + 10 + SPEC_CONTEXT_FRAMES > 95
    assert audio_window_starts(5, 10).tolist() == [0]


def test_database_and_query_renderings():
    render = {"train_soundfonts": ["a", "b"], "valid_soundfont": "v", "test_soundfont": "t",
              "test_tempo_ratios": [0.5, 1.0, 2.0]}
    test = pd.DataFrame({"piece": "p", "performance": ["x", "y", "z", "w"], "soundfont": "t",
                         "tempo_ratio": [0.5, 1.0, 2.0, 0.66]})
    rows = database_and_queries(test, "test", render).set_index("performance")
    assert rows.role.to_dict() == {"y": "database+query", "x": "query", "z": "query"}   # 0.66 is not a test ratio
    train = pd.DataFrame({"piece": "q", "performance": ["1", "2", "3"], "soundfont": ["b", "a", "a"],
                          "tempo_ratio": [1.0, 1.0, 1.05]})
    assert database_and_queries(train, "train", render).performance.tolist() == ["2"]   # first training soundfont, ρ = 1


def test_order_lets_dtw_identify_a_piece_that_voting_misses():
    """Piece 1 holds the query's exact windows in a shuffled order, piece 0 the right order (other noise):
    every query window's nearest window is in piece 1, so voting picks it; DTW follows the order."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(30, 8))
    query = np.repeat(base, 2, axis=0) + 0.4 * rng.normal(size=(60, 8))
    pieces = [base, query[rng.permutation(60)], rng.normal(size=(40, 8))]
    match = np.array([0])
    votes = vote_method([query], pieces, k=1, tiebreak=True)
    assert int(torch.argmin(votes[0])) == 1 and rank_counts(votes, match)[0][0] == 1
    dtw = dtw_method([query], pieces)
    assert int(torch.argmin(dtw[0])) == 0 and rank_counts(dtw, match)[0][0] == 0
    vote_filter = {"filter": "vote", "vote_k": 1, "coarse": 1, "top": 2}
    refined = refine_method([query], pieces, vote_filter, tiebreak=True)      # the shortlist holds both
    assert int(torch.argmin(refined[0])) == 0
    assert torch.argsort(refine_method([query], pieces, {**vote_filter, "top": 1}, tiebreak=True)[0]).tolist()[0] == 1
    coarse = refine_method([query], pieces, {"filter": "coarse_dtw", "vote_k": 1, "coarse": 3, "top": 1}, tiebreak=True)
    assert int(torch.argmin(coarse[0])) == 0                                  # pooled DTW keeps the order: right piece first


def test_retimed_spectrogram_brings_a_slow_rendering_to_the_nominal_tempo():
    t = np.arange(400) / 20.0
    nominal = np.stack([np.sin(2 * np.pi * 0.2 * t + b) for b in range(92)]).astype(np.float32)    # 20 s at 20 fps
    slow = np.stack([np.sin(2 * np.pi * 0.1 * np.arange(800) / 20.0 + b) for b in range(92)]).astype(np.float32)  # rho 0.5
    back = retimed(slow, 0.5)
    assert back.shape == nominal.shape and back.dtype == np.float32
    assert np.abs(back[:, 2:-2] - nominal[:, 2:-2]).max() < 0.02
    assert retimed(nominal, 1.0) is nominal and retimed(nominal[:, :30], 0.1).shape[1] == SPEC_CONTEXT_FRAMES


def test_dtw_tempo_scores_each_query_on_its_own():
    """A query's scores do not depend on the other queries of the batch (the cohort is fixed, never the
    queries); with a perfect factor the right pieces come first."""
    rng = np.random.default_rng(3)
    sheets = [rng.normal(size=(int(m), 8)) for m in rng.integers(8, 20, size=7)]
    audio = [np.repeat(s, 2, axis=0) + 0.4 * rng.normal(size=(2 * len(s), 8)) for s in sheets]
    slow = [np.repeat(a, 2, axis=0) for a in audio]          # the "unretimed" rendering at rho 0.5
    a2s = dtw_tempo_method({1.0: (slow[:4], sheets), 0.5: (audio[:4], sheets)}, "a2s", audio[4:])
    a2s_one = dtw_tempo_method({1.0: (slow[2:3], sheets), 0.5: (audio[2:3], sheets)}, "a2s", audio[4:])
    np.testing.assert_allclose(a2s_one.numpy()[0], a2s.numpy()[2])
    assert (a2s.numpy().argmin(1) == np.arange(4)).all()
    cohort = sheets[4:]
    both = dtw_tempo_method({1.0: (sheets[:4], slow), 0.5: (sheets[:4], audio)}, "s2a", cohort)
    one = dtw_tempo_method({1.0: (sheets[1:2], slow), 0.5: (sheets[1:2], audio)}, "s2a", cohort)
    np.testing.assert_allclose(one.numpy()[0], both.numpy()[1])
    assert (both.numpy().argmin(1) == np.arange(4)).all()


def test_pooled_windows():
    from pipeline.evaluation.identification import pooled
    x = np.arange(10, dtype=float).reshape(5, 2)
    np.testing.assert_allclose(pooled(x, 2), [[1, 2], [5, 6], [8, 9]])       # the last group filled by the last window
    assert pooled(x, 1) is x


def test_fragment_search_finds_and_localises_planted_fragments():
    """Synthetic database with known positions: fragments of a piece, played slower and noisy, are found in
    their piece and localised (IoU >= 0.5) by subsequence DTW."""
    rng = np.random.default_rng(5)
    database = [rng.normal(size=(int(m), 16)) for m in rng.integers(60, 120, size=8)]
    positions = [np.arange(len(d)) * 50.0 for d in database]           # window centres [px], 50 px hop
    names = [f"p{i}" for i in range(8)]
    queries = []
    for _ in range(12):
        p = int(rng.integers(8))
        a = int(rng.integers(0, len(database[p]) - 25))
        frag = np.repeat(database[p][a:a + 20], 2, axis=0) + 0.3 * rng.normal(size=(40, 16))
        queries.append({"piece": names[p], "query": frag, "true": (positions[p][a], positions[p][a + 19]), "start": a})
    for shortlist in (None, {"k": 5, "top": 4}):      # exhaustive, then filter and refine (4 regions of 8 pieces)
        metrics, rows, _ = search(queries, database, positions, names, 0.0, "expected", shortlist)
        assert metrics["MRR"] == 1.0 and metrics["n_queries"] == 12 and metrics["n_candidates"] == 8
        assert all(r["iou"] >= 0.5 for r in rows)
    assert iou((0, 10), (5, 15)) == 5 / 15 and iou((0, 1), (2, 3)) == 0.0


def test_region_shortlist_matches_exhaustive_subsequence_dtw_inside_its_regions():
    """The shortlist's best region gives the exhaustive search's cost and path when the best path lies in
    it; pieces outside the searched regions rank after all searched ones, by their hits."""
    from pipeline.evaluation.dtw import Database, subsequence_best
    from pipeline.evaluation.region_shortlist import RegionSearch
    rng = np.random.default_rng(11)
    database = [rng.normal(size=(int(m), 8)) for m in rng.integers(80, 200, size=12)]
    search_ = RegionSearch(database)
    for p in (0, 5, 11):
        a = int(rng.integers(0, len(database[p]) - 30))
        query = np.repeat(database[p][a:a + 15], 2, axis=0) + 0.05 * rng.normal(size=(30, 8))
        exhaustive = subsequence_best(query, Database(dict(enumerate(database))))
        score, end, start = search_.search(query, k=3, top=2)
        assert np.argmin(score) == p == np.argmin(exhaustive[0])
        assert score[p] == pytest.approx(exhaustive[0][p]) and (end[p], start[p]) == (exhaustive[1][p], exhaustive[2][p])
        assert (start[p], end[p]) == (a, a + 14)
        regions = search_.regions(query, k=3)
        assert regions.votes[0] == 30 and regions.piece[0] == p and regions.lo[0] <= a and regions.hi[0] >= a + 14
        unsearched = end < 0
        assert unsearched.sum() >= len(database) - 2 and (score[unsearched] > 2).all() and (score[~unsearched] <= 2).all()


def test_piece_id_stage_outputs(two_runs):
    wd = two_runs[0]
    pieces = pd.read_csv(wd / "embeddings/snippet_cca/pieces.csv")
    assert sorted(pieces.split) == ["test", "train", "valid"]
    windows = np.load(wd / "embeddings/snippet_cca/windows.npz")
    assert windows["sheet"].shape[1] == windows["audio"].shape[1] == 32
    np.testing.assert_allclose(np.linalg.norm(windows["sheet"], axis=1), 1.0, rtol=1e-5)
    metrics = json.loads((wd / "results/piece_id/metrics.json").read_text())
    assert sorted(metrics) == ["dtw", "dtw_tempo", "fingerprint", "refine_top10", "vote_k1", "vote_k25"]
    assert windows["tempo_factors"].tolist() == [0.5, 0.71, 1.41, 2.0]
    assert set(np.unique(windows["hyp_factor"])) == {0, 1, 2, 3} and windows["hyp_audio"].shape[1] == 32
    m = metrics["dtw"]["a2s"]["ρ=0.5"]
    assert m["n_queries"] == 1 and m["n_candidates"] == 3 and abs(m["chance_MRR"] - 11 / 18) < 1e-9
    queries = pd.read_csv(wd / "results/piece_id/queries.csv")
    assert len(queries) == 6 * 2 * 2 and set(queries.piece) == {"TestC__Op1__rondo"}
    assert (wd / "results/tables/piece_id.md").read_text().startswith("| method |")
    assert (wd / "results/piece_id/dtw_paths.png").stat().st_size > 10_000
    scal = pd.read_csv(wd / "results/piece_id/scalability.csv")
    assert set(scal.method) == {"vote_k25", "dtw"} and scal.pieces.max() == 3 and scal.n_queries.eq(1).all()
    frag = json.loads((wd / "results/piece_id/fragments.json").read_text())
    assert sorted(frag) == ["sdtw", "shortlist"]
    assert "10 s" in frag["sdtw"]["a2s"] and "1 system" in frag["shortlist"]["s2a"]
    assert frag["sdtw"]["a2s"]["10 s"]["n_queries"] == 40 and 0 <= frag["sdtw"]["a2s"]["10 s"]["localised"] <= 1
    assert (wd / "results/piece_id/fragments.png").stat().st_size > 10_000
    unfolded = pd.read_csv(wd / "data/unfolded/pieces.csv")     # the tiny test piece repeats nothing (unfold only)
    assert unfolded.piece.tolist() == ["TestC__Op1__rondo"] and unfolded.repeats.tolist() == ["none"]
    assert json.loads((wd / "results/piece_id/repeats.json").read_text())["n_queries"] == 0


def test_query_command_end_to_end(two_runs, tmp_path):
    """A test piece rendered again (fluidsynth, stereo 44.1 kHz mp3) is answered; with a planted exact copy
    of its windows in the database, that copy is the top hit; bad audio gets a clear error."""
    import subprocess
    import sys

    import soundfile as sf
    import yaml

    from pipeline.core.constants import SAMPLE_RATE
    from pipeline.data.render import fluidsynth, load_mono
    from pipeline.data.spectrogram import log_spectrogram
    from pipeline.models.networks import SnippetModel
    from pipeline.models.training import load_model
    from pipeline.models.windows import embed_performance

    wd = two_runs[0]
    params = yaml.safe_load((wd / "params.yaml").read_text())
    sf_cfg = params["render"]["soundfonts"][params["render"]["test_soundfont"]]
    wav = tmp_path / "take.wav"
    fluidsynth(wd / "data/pieces/TestC__Op1__rondo/score/score.midi", Path(sf_cfg["file"]), wav, 0.5)
    mono = load_mono(wav)
    stereo = np.stack([mono, 0.5 * mono], axis=1)
    idx = np.arange(0, len(mono) - 1, SAMPLE_RATE / 44100.0)
    up = np.stack([np.interp(idx, np.arange(len(mono)), stereo[:, c]) for c in range(2)], axis=1)
    mp3 = tmp_path / "take.mp3"
    sf.write(mp3, up.astype(np.float32), 44100, format="MP3")
    # the planted copy: a database piece whose sheet windows are this recording's own audio windows
    model = SnippetModel.from_artifact(load_model(wd / "models/snippet_cca/model.pt")).eval()
    _, emb = embed_performance(model, log_spectrogram(load_mono(wav)), params["piece_id"]["audio_hop_frames"], "cpu")
    src = wd / "embeddings/snippet_cca"
    z = dict(np.load(src / "windows.npz"))
    pieces = pd.read_csv(src / "pieces.csv")
    z["sheet"] = np.concatenate([z["sheet"], emb.astype(np.float32)])
    z["sheet_piece"] = np.concatenate([z["sheet_piece"], np.full(len(emb), len(pieces))])
    z["sheet_x"] = np.concatenate([z["sheet_x"], 90.0 + 50.0 * np.arange(len(emb))])
    planted = tmp_path / "db"
    planted.mkdir()
    np.savez(planted / "windows.npz", **z)
    pd.concat([pieces, pd.DataFrame([{"piece": "PLANTED", "split": "train", "width_px": 1000}])]).to_csv(
        planted / "pieces.csv", index=False)
    (planted / "performances.csv").write_text((src / "performances.csv").read_text())
    run = lambda *a: subprocess.run([sys.executable, "-m", "pipeline.query", *map(str, a)], cwd=wd,
                                    capture_output=True, text=True)
    res = run(mp3, "--png", tmp_path / "m.png", "--top", "3")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith(" 1. ") and "cost" in lines[0] and "page" in res.stdout
    assert (tmp_path / "m.png").stat().st_size > 5_000
    res = run(mp3, "--windows", planted / "windows.npz", "--png", tmp_path / "p.png")
    assert res.returncode == 0 and res.stdout.splitlines()[0].split()[1] == "PLANTED", res.stdout + res.stderr
    res = run("--piece", "TestC__Op1__rondo", "--systems", "0:1", "--png", tmp_path / "s.png")
    assert res.returncode == 0 and " s of rho-1000" in res.stdout, res.stderr
    sf.write(tmp_path / "silent.wav", np.zeros(SAMPLE_RATE * 3, np.float32), SAMPLE_RATE)
    sf.write(tmp_path / "short.wav", 0.1 * np.ones(SAMPLE_RATE // 2, np.float32), SAMPLE_RATE)
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    for name, message in (("silent.wav", "silent"), ("short.wav", "at least"), ("junk.wav", "cannot read")):
        res = run(tmp_path / name)
        assert res.returncode == 2 and message in res.stderr, res.stderr


def test_fingerprints_find_a_piece_from_an_excerpt_of_its_windows():
    from pipeline.evaluation.fingerprint import FingerprintIndex, hashes, kmeans_codebook
    rng = np.random.default_rng(2)
    centres_true = rng.normal(size=(16, 8))
    database = [centres_true[rng.integers(16, size=int(n))] + 0.05 * rng.normal(size=(int(n), 8))
                for n in rng.integers(80, 120, size=6)]
    centres = kmeans_codebook(np.concatenate(database), 16, seed=0)
    assert centres.shape == (16, 8) and np.allclose(np.linalg.norm(centres, axis=1), 1)
    index = FingerprintIndex(database, centres, fan_out=3, offset_bin=4)
    query = database[4][30:60] + 0.05 * rng.normal(size=(30, 8))
    scores = index.scores(query)
    assert int(np.argmax(scores)) == 4 and scores[4] >= 0.8 * 3 * 28
    h, t = hashes(np.array([1, 2, 3]), 4, 2)
    assert sorted(zip(h.tolist(), t.tolist())) == [(6, 0), (7, 0), (11, 1)]


def _write_windows(folder: Path, sheets: dict, perfs: list[tuple[str, float, str, np.ndarray]], splits: dict) -> Path:
    """A piece_windows output folder from sheet sequences {piece: (W, dim)} and performances
    [(piece, ρ, role, (W, dim))] (positions are window indices)."""
    names = list(sheets)
    np.savez(folder / "windows.npz",
             sheet=np.concatenate([sheets[n] for n in names]).astype(np.float32),
             sheet_piece=np.concatenate([np.full(len(sheets[n]), i) for i, n in enumerate(names)]),
             sheet_x=np.concatenate([np.arange(len(sheets[n]), dtype=float) for n in names]),
             audio=np.concatenate([a for *_, a in perfs]).astype(np.float32),
             audio_perf=np.concatenate([np.full(len(a), i) for i, (*_, a) in enumerate(perfs)]),
             audio_frame=np.concatenate([np.arange(len(a)) for *_, a in perfs]))
    pd.DataFrame({"piece": names, "split": [splits[n] for n in names], "width_px": 100}).to_csv(
        folder / "pieces.csv", index=False)
    pd.DataFrame({"piece": [p for p, *_ in perfs], "performance": [f"perf{i}" for i in range(len(perfs))],
                  "soundfont": "t", "tempo_ratio": [r for _, r, *_ in perfs], "n_frames": [len(a) for *_, a in perfs],
                  "role": [role for _, _, role, _ in perfs]}).to_csv(folder / "performances.csv", index=False)
    return folder / "windows.npz"


def test_jump_dtw_identifies_a_performance_that_plays_the_repeats(tmp_path, base_params):
    """Each test piece's score is A B C; its unfolded performance plays A B A B C. A decoy piece's score
    is A B A B D (the repeat written out, another ending): A2S, DTW prefers the decoy for the unfolded
    performance; jump-DTW (a backward jump for λ) finds the true piece, and both find it in printed order."""
    from pipeline.evaluation.piecedb import Windows
    from pipeline.evaluation.repeats import evaluate_repeats
    rng = np.random.default_rng(3)
    sheets, splits, perfs, unfolded = {}, {}, [], []
    for k in range(3):
        a, b, c, d = (rng.normal(size=(6, 8)) for _ in range(4))
        sheets[f"piece{k}"], splits[f"piece{k}"] = np.concatenate([a, b, c]), "test"
        sheets[f"decoy{k}"], splits[f"decoy{k}"] = np.concatenate([a, b, a, b, d]), "train"
        noisy = lambda x: np.repeat(x, 2, axis=0) + 0.3 * rng.normal(size=(2 * len(x), 8))
        perfs += [(f"piece{k}", 1.0, "database+query", noisy(sheets[f"piece{k}"])),
                  (f"decoy{k}", 1.0, "database", noisy(sheets[f"decoy{k}"]))]
        unfolded.append(noisy(np.concatenate([a, b, a, b, c])))
    windows = Windows(_write_windows(tmp_path, sheets, perfs, splits))
    table = pd.DataFrame({"piece": [f"piece{k}" for k in range(3)], "unfolded_duration_s": 10.0, "printed_duration_s": 6.0})
    params = {**base_params, "piece_id": {**base_params["piece_id"], "repeats": {"min_extra_duration": 0.05,
                                                                                  "jump_penalties": [0.5]}}}
    metrics, details = evaluate_repeats(params, windows, table, unfolded, log=lambda m: None)
    for direction in ("a2s", "s2a"):
        assert metrics["printed"]["dtw"][direction]["MRR"] == 1.0
        assert metrics["printed"]["jump_dtw_l0.5"][direction]["MRR"] == 1.0
        assert metrics["unfolded"]["jump_dtw_l0.5"][direction]["MRR"] == 1.0
        assert metrics["unfolded"]["dtw"][direction]["n_queries"] == 3
    assert metrics["unfolded"]["dtw"]["a2s"]["MRR"] == 0.5     # the decoy (its score = the performance's order) first
    assert set(details.condition) == {"printed", "unfolded"} and len(details) == 2 * 2 * 2 * 3


def test_unfold_renders_the_repeats_of_a_real_score(tmp_path, base_params):
    """LilyPond (with the unfold include) plays a volta repeat twice at the \\midi block's tempo: 3 printed
    bars of 4/4 at 120 bpm last 6 s, unfolded 5 bars 10 s; a piece whose repeats are written out
    (the tiny corpus's rondo: \\repeat unfold only) has none."""
    from pipeline.data.normalize import normalize_piece
    from pipeline.data.probe import run_lilypond
    from pipeline.data.unfold import unfold_split
    volta = tmp_path / "src" / "volta"
    volta.mkdir(parents=True)
    (volta / "volta.ly").write_text(
        '\\version "2.24.1"\n\\score { \\new Staff \\relative c\' { \\repeat volta 2 { c4 d e f | g1 } c1 } '
        '\\layout { } \\midi { \\tempo 4 = 120 } }\n')
    rondo = Path(__file__).parent / "data" / "mutopia" / "ftp" / "TestC" / "Op1" / "rondo"
    rows = []
    for piece, folder, main in (("volta", volta, "volta.ly"), ("rondo", rondo, "rondo-lys/rondo.ly")):
        score = tmp_path / "data" / "pieces" / piece / "score"
        norm_main, _ = normalize_piece(folder, main, score / "source")
        run = run_lilypond(norm_main, piece, tmp_path)
        (score / "score.midi").write_bytes(run.midi[0].read_bytes())
        rows.append({"piece": piece, "split": "test", "main": main})
    dataset = tmp_path / "data" / "dataset"
    (dataset / "test").mkdir(parents=True)
    pd.DataFrame({"piece": [r["piece"] for r in rows]}).to_csv(dataset / "test" / "pieces.csv", index=False)
    pd.DataFrame(rows).to_csv(dataset / "index.tsv", sep="\t", index=False)
    out = tmp_path / "data" / "unfolded"
    table = unfold_split(base_params, dataset, out, root=tmp_path, log=lambda m: None).set_index("piece")
    assert table.repeats.to_dict() == {"volta": "unfolded", "rondo": "none"}
    assert table.printed_duration_s["volta"] == pytest.approx(6.0, abs=1e-3)
    assert table.unfolded_duration_s["volta"] == pytest.approx(10.0, abs=1e-3)
    perf = pd.read_csv(out / "performances.csv")
    assert perf.piece.tolist() == ["volta"] and perf.soundfont.tolist() == [base_params["render"]["test_soundfont"]]
    spec = np.load(tmp_path / perf.spec[0])
    assert spec.shape == (92, perf.n_frames[0]) and perf.n_frames[0] >= 20 * 10.0


def test_window_index_exact_and_approximate():
    """Exact search returns the true k nearest windows; above its threshold the HNSW index answers with
    high recall, the same answers on a rebuild (one-thread graph), and the vote method keeps its ranking."""
    from pipeline.evaluation.window_index import WindowIndex
    rng = np.random.default_rng(2)
    db = rng.normal(size=(3000, 16)).astype(np.float32)
    db /= np.linalg.norm(db, axis=1, keepdims=True)
    q = db[:50] + 0.05 * rng.normal(size=(50, 16)).astype(np.float32)
    exact = WindowIndex(db, approximate_above=None)
    d, idx = exact.search(q, 10)
    truth = np.argsort(-(q @ db.T), axis=1, kind="stable")[:, :10]
    assert not exact.approximate and (idx.numpy()[:, 0] == np.arange(50)).all()
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx.numpy(), truth)]) == 1.0
    approx = WindowIndex(db, approximate_above=1000, hnsw_m=16, ef_search=64)
    d2, idx2 = approx.search(q, 10)
    assert approx.approximate and np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx2.numpy(), truth)]) >= 0.9
    assert torch.equal(WindowIndex(db, approximate_above=1000, hnsw_m=16, ef_search=64).search(q, 10)[1], idx2)
    np.testing.assert_allclose(d2.numpy()[:, 0], d.numpy()[:, 0], atol=1e-5)
    pieces = [db[i * 300:(i + 1) * 300] for i in range(10)]
    queries = [db[i * 300 + 10:i * 300 + 60] for i in range(10)]
    exact_votes = vote_method(queries, pieces, k=5, tiebreak=True)
    approx_votes = vote_method(queries, pieces, k=5, tiebreak=True,
                               index={"approximate_above": 1000, "hnsw_m": 16, "ef_search": 64})
    assert (exact_votes.argmin(1) == torch.arange(10)).all() and (approx_votes.argmin(1) == torch.arange(10)).all()
