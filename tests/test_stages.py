"""The real stage CLIs (LilyPond, fluidsynth) on the tiny Mutopia-layout corpus in tests/data."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import TEST_MUTOPIA, as_json
from test_workflow import tree_digest

from pipeline.data.corpus import piece_index

FTP = TEST_MUTOPIA / "ftp"


def run_stage(module, *args):
    return subprocess.run([sys.executable, "-m", f"pipeline.{module}", *map(str, args)], capture_output=True, text=True)


def engrave(tmp_path, params, name):
    piece = next(p for p in piece_index(params).pieces if p.name == name)
    out = tmp_path / name / "score"
    res = run_stage("data.engrave", "--piece", name, "--source", piece.source, "--main", piece.main, "--out", out,
                    "--params-json", as_json(params, "engrave"))
    assert res.returncode == 0, res.stderr
    return out, json.loads((out / "status.json").read_text()), res.stderr


def test_index_resolves_names_layouts_and_reports_absent(small_params, capsys):
    idx = piece_index(small_params)
    names = {p.name: p for p in idx.pieces}
    assert set(names) == {"TestC__Op1__minuet", "TestC__Op2__broken", "TestC__Op2__trio", "TestC__Op2__silence",
                          "TestC__Op2__lost", "TestC__Op1__rondo", "TestC__Op1__gavotte"}
    assert names["TestC__Op1__gavotte"].split == "valid"
    assert names["TestC__Op1__rondo"].main == "rondo-lys/rondo.ly" and names["TestC__Op1__rondo"].split == "test"
    assert idx.missing == [("TestC__Op9__ghost", "train")]
    assert "TestC__Op9__ghost" in capsys.readouterr().err


def test_discovery_without_split_file_keeps_keyboard_main_files(small_params):
    small_params["corpus"]["splits"]["file"] = None
    names = {p.name for p in piece_index(small_params).pieces}
    assert "TestC__Op1__rondo" in names and "TestC__Op1__minuet" in names
    assert not any("notes" in n for n in names)          # included files are not pieces


def test_engrave_good_piece_exact_alignment(tmp_path, small_params):
    out, status, _ = engrave(tmp_path, small_params, "TestC__Op1__rondo")
    assert status["ok"] and status["systems"] >= 1
    report = json.loads((out / "alignment.json").read_text())
    assert report["passed"] and report["noteheads_matched_ratio"] == 1.0 and report["onsets_covered_ratio"] == 1.0
    heads = pd.read_csv(out / "noteheads.csv")
    assert (heads.grace != "0").sum() == 1 and heads.loc[heads.grace != "0", "status"].item() == "matched"
    from PIL import Image
    page = Image.open(out / "pages" / "01.png")
    assert page.size == (835, 1181) and page.mode == "L"                 # A4 at 835 px wide
    unrolled = np.array(Image.open(out / "unrolled.png"))
    systems = pd.read_csv(out / "systems.csv")
    assert unrolled.shape == (200, systems.x1.iloc[-1])
    assert (heads.x >= 0).all() and (heads.x < unrolled.shape[1]).all()
    # a matched notehead is drawn where we say it is: dark pixels in its column of the strip
    for x in heads.x[heads.status == "matched"].head(10):
        assert unrolled[:, int(round(x)) - 2:int(round(x)) + 3].min() < 100
    for f in out.rglob("*"):
        if f.is_file() and f.suffix in (".ly", ".ily", ".csv", ".json", ".log"):
            assert str(FTP) not in f.read_text() and "/tmp" not in f.read_text(), f   # no absolute paths


def test_engrave_midi_follows_printed_score(tmp_path, small_params):
    out, status, _ = engrave(tmp_path, small_params, "TestC__Op1__minuet")
    assert status["ok"] and status["midi_only_removed"] == 1   # the \unfoldRepeats MIDI score is dropped
    from pipeline.data.midi import read_midi
    notes, _ = read_midi(out / "score.midi")
    heads = pd.read_csv(out / "noteheads.csv")
    assert len(notes) == (heads.status == "matched").sum()    # repeats as printed: one onset per notehead


@pytest.mark.parametrize("name,reason", [
    ("TestC__Op2__broken", "lilypond failed"),
    ("TestC__Op2__trio", "not a grand staff"),
    ("TestC__Op2__silence", "no notes"),
    ("TestC__Op2__lost", "missing include"),
])
def test_bad_pieces_are_quarantined_with_a_clear_message(tmp_path, small_params, name, reason):
    out, status, stderr = engrave(tmp_path, small_params, name)
    assert not status["ok"] and status["reason"] == reason and status["stage"] == "engrave"
    assert name in stderr and "[engrave]" in stderr and reason in stderr


def test_render_and_passages_real_fluidsynth(tmp_path, small_params):
    out, status, _ = engrave(tmp_path, small_params, "TestC__Op1__rondo")
    audio = tmp_path / "audio"
    for attempt in (audio, tmp_path / "audio2"):
        res = run_stage("data.render", "--piece", "TestC__Op1__rondo", "--split", "test", "--score", out, "--out", attempt,
                        "--params-json", as_json(small_params, "seed", "render"))
        assert res.returncode == 0, res.stderr
    perfs = pd.read_csv(audio / "performances.csv")
    assert perfs.performance.tolist() == ["rho-0500_sf_gmbank", "rho-1000_sf_gmbank"]
    s2, s1 = (np.load(audio / "spec" / f"{p}.npy") for p in perfs.performance)
    assert s1.shape[0] == 92 and s1.dtype == np.float32
    # ρ = 0.5 (half speed) lasts twice as long as ρ = 1 (the synthesizer's release tail stays the same)
    assert abs((s2.shape[1] - s1.shape[1]) / 20 - status["duration_s"]) < 0.2
    assert perfs.duration_s.iloc[0] - perfs.duration_s.iloc[1] == pytest.approx(status["duration_s"], abs=0.2)
    for p in perfs.performance:                                      # deterministic rendering + features
        assert (audio / "spec" / f"{p}.npy").read_bytes() == (tmp_path / "audio2" / "spec" / f"{p}.npy").read_bytes()
    # first onset: energy rises at the predicted frame
    first = pd.read_csv(out / "systems.csv").first_onset_s.iloc[0]
    frame = int(np.ceil(first * 20))
    assert s1[:, frame:frame + 3].sum() > 5 * s1[:, max(0, frame - 3):frame].sum() + 1e-3 or frame == 0
    pas = tmp_path / "passages"
    res = run_stage("data.passages", "--piece", "p", "--score", out, "--audio", audio, "--out", pas,
                    "--params-json", as_json(small_params, "passages"))
    assert res.returncode == 0, res.stderr
    passages = pd.read_csv(pas / "passages.csv")
    assert len(passages) == 2 * status["systems"]
    assert (passages.groupby("performance").f1.max() == perfs.set_index("performance").n_frames).all()


def test_render_missing_soundfont_is_a_clear_error(tmp_path, small_params):
    out, _, _ = engrave(tmp_path, small_params, "TestC__Op1__minuet")
    small_params["render"]["soundfonts"]["sf_gmbank"]["file"] = "/nonexistent/piano.sf2"
    res = run_stage("data.render", "--piece", "TestC__Op1__minuet", "--split", "test", "--score", out,
                    "--out", tmp_path / "audio", "--params-json", as_json(small_params, "seed", "render"))
    assert res.returncode == 2
    assert "TestC__Op1__minuet" in res.stderr and "/nonexistent/piano.sf2" in res.stderr and "[render]" in res.stderr


def test_upstream_quarantine_propagates(tmp_path, small_params):
    out, _, _ = engrave(tmp_path, small_params, "TestC__Op2__trio")
    res = run_stage("data.render", "--piece", "TestC__Op2__trio", "--split", "train", "--score", out,
                    "--out", tmp_path / "audio", "--params-json", as_json(small_params, "seed", "render"))
    status = json.loads((tmp_path / "audio" / "status.json").read_text())
    assert res.returncode == 0 and not status["ok"] and status["reason"] == "not a grand staff"


def test_piece_chain_equals_the_three_steps_and_stops_on_a_config_error(tmp_path, small_params):
    piece = next(p for p in piece_index(small_params).pieces if p.name == "TestC__Op1__minuet")
    args = ["--piece", piece.name, "--split", "train", "--source", piece.source, "--main", piece.main]
    res = run_stage("data.piece", *args, "--out-root", tmp_path / "chain", "--timings-dir", tmp_path / "t",
                    "--params-json", as_json(small_params))
    assert res.returncode == 0, res.stderr
    for step, stage in (("score", "engrave"), ("audio", "render"), ("passages", "passages")):
        assert json.loads((tmp_path / "chain" / piece.name / step / "status.json").read_text())["ok"], step
        assert (tmp_path / "t" / stage / f"{piece.name}.json").is_file()
    # the same bytes as the steps run one by one
    out, _, _ = engrave(tmp_path / "steps", small_params, piece.name)
    assert (out / "unrolled.png").read_bytes() == (tmp_path / "chain" / piece.name / "score/unrolled.png").read_bytes()
    small_params["render"]["soundfonts"]["timgm6mb"]["file"] = "/nonexistent/piano.sf2"
    res = run_stage("data.piece", *args, "--out-root", tmp_path / "bad", "--params-json", as_json(small_params))
    assert res.returncode == 2 and "configuration error" in res.stderr and "/nonexistent/piano.sf2" in res.stderr


def test_a_batch_builds_every_piece_as_alone_with_bad_pieces_among_them(tmp_path, small_params):
    from pipeline.data.corpus import batch_spec
    pieces = [p for p in piece_index(small_params).pieces
              if p.name in ("TestC__Op2__broken", "TestC__Op1__minuet", "TestC__Op2__silence", "TestC__Op1__rondo")]
    assert len(pieces) == 4
    res = run_stage("data.piece", "--batch", json.dumps([batch_spec(p) for p in pieces]), "--out-root", tmp_path / "batch",
                    "--timings-dir", tmp_path / "t", "--params-json", as_json(small_params))
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("[engrave] piece TestC__Op2__broken quarantined: lilypond failed") == 1
    for p in pieces:
        alone = run_stage("data.piece", "--piece", p.name, "--split", p.split, "--source", p.source, "--main", p.main,
                          "--out-root", tmp_path / "alone", "--params-json", as_json(small_params))
        assert alone.returncode == 0, alone.stderr
        a, b = (tree_digest(tmp_path / run / p.name) for run in ("batch", "alone"))
        assert a.keys() == b.keys() and [f for f in a if a[f] != b[f]] == [], p.name    # logs included
    ok = [json.loads((tmp_path / "batch" / p.name / "score/status.json").read_text())["ok"] for p in pieces]
    assert ok == [p.name in ("TestC__Op1__minuet", "TestC__Op1__rondo") for p in pieces]
    engraved = [json.loads((tmp_path / "t/engrave" / f"{p.name}.json").read_text()) for p in pieces]
    assert all(t["lilypond"] > 0 for t in engraved if t["piece"] != "TestC__Op2__broken")   # the batch's, shared


def test_data_jobs_longest_first(base_params):
    """Priorities rank the default corpus's batches by estimated cost: the valid batches (one rendering per
    piece, but with a compressed .sf3 soundfont that fluidsynth decodes at every start: the costliest, measured)
    first, the part-filled ones last; on two cores this order ends within one short batch of an even split
    (longest processing time first)."""
    from pipeline.data.corpus import FIXED_SECONDS_PER_PIECE, batch_priorities, piece_batches, rendering_seconds
    from pipeline.data.render import plan_performances
    r = base_params["render"]
    batches = piece_batches(piece_index(base_params).pieces, base_params["corpus"]["batch_pieces"])
    files = lambda p: [r["soundfonts"][sf]["file"] for _, sf in plan_performances(p.name, p.split, r, base_params["seed"])]  # noqa: E731
    priority = batch_priorities(batches, files)
    assert sorted(priority.values()) == list(range(len(batches)))
    sf_file = lambda name: r["soundfonts"][name]["file"]  # noqa: E731
    assert rendering_seconds(sf_file(r["valid_soundfont"])) > 6 * rendering_seconds(sf_file("timgm6mb"))
    ranked = sorted(batches, key=priority.get, reverse=True)
    full = base_params["corpus"]["batch_pieces"]
    assert {b.split("_")[0] for b in ranked[:2]} == {"valid"} and all(len(batches[b]) < full for b in ranked[-2:])
    cost = {b: sum(FIXED_SECONDS_PER_PIECE + sum(map(rendering_seconds, files(p))) for p in m) for b, m in batches.items()}
    cores = [0.0, 0.0]
    for b in ranked:                                              # what a 2-core scheduler does with them
        cores[cores.index(min(cores))] += cost[b]
    assert max(cores) - sum(cores) / 2 <= min(cost.values())
