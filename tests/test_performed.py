"""Scenario III-sim (pipeline.data.performed): expressive timing follows the time map exactly, the map is
monotone, zero strengths give the metronomic timing, seeded runs are byte-identical, bad strengths are
rejected, the audio is not silent and the noise sits at its SNR. A tiny two-system piece made here
(LilyPond-like MIDI, systems.csv, noteheads.csv), real fluidsynth."""
from __future__ import annotations

import copy
import hashlib
import json
import re
from fractions import Fraction
from pathlib import Path

import mido
import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from PIL import Image

from pipeline.core import constants as C
from pipeline.core.csvtable import read_csv, write_rows
from pipeline.core.errors import ConfigError
from pipeline.core.params import subset, validate
from pipeline.data import performed as P
from pipeline.data.midi import read_midi
from pipeline.data.passages import piece_passages

TPB = 384
MELODY = [72, 74, 76, 76, 77, 79, 79, 77, 76, 74, 72, 72]      # quarters; repeated pitches end where the next starts
CHORDS = [(0, [48, 55]), (3, [43, 50]), (6, [48, 52]), (9, [41, 48])]   # (quarter, pitches): a dotted half per bar
PIECE = "tiny__piece__one"


def tiny_midi(path: Path) -> None:
    """3/4, two bars at 0.6 s per quarter then two at 0.4 s (a tempo change), two channels, as LilyPond's layout."""
    mf = mido.MidiFile(type=1, ticks_per_beat=TPB)
    meta = mido.MidiTrack([mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0),
                           mido.MetaMessage("set_tempo", tempo=600000, time=0),
                           mido.MetaMessage("set_tempo", tempo=400000, time=6 * TPB)])
    mf.tracks.append(meta)
    events = {0: [], 1: []}
    for i, p in enumerate(MELODY):
        events[0] += [(i * TPB, 1, p), ((i + 1) * TPB, 0, p)]
    for q, chord in CHORDS:
        for p in chord:
            events[1] += [(q * TPB, 1, p), ((q + 3) * TPB, 0, p)]
    for ch, ev in events.items():
        track = mido.MidiTrack([mido.Message("program_change", channel=ch, program=0, time=0)])
        last = 0
        for tick, on, p in sorted(ev):
            kind = "note_on" if on else "note_off"
            track.append(mido.Message(kind, channel=ch, note=p, velocity=90 if on else 0, time=tick - last))
            last = tick
        mf.tracks.append(track)
    mf.save(str(path))


def score_seconds(tick: int) -> float:
    return tick / TPB * 0.6 if tick <= 6 * TPB else 3.6 + (tick - 6 * TPB) / TPB * 0.4


def tiny_piece(root: Path, name: str = PIECE) -> Path:
    """data/pieces/<name>/score/ of the tiny piece: score.midi, systems.csv, noteheads.csv, unrolled.png."""
    score = root / "data" / "pieces" / name / "score"
    score.mkdir(parents=True)
    tiny_midi(score / "score.midi")
    write_rows(score / "systems.csv", [
        {"system": k, "page": 1, "top": 0.0, "bottom": 100.0, "left": 0.0, "right": 400.0, "x0": 400 * k,
         "x1": 400 * (k + 1), "start_moment": str(Fraction(6 * k, 4)), "end_moment": str(Fraction(6 * k + 6, 4)),
         "start_s": score_seconds(6 * k * TPB), "first_onset_s": score_seconds(6 * k * TPB)} for k in (0, 1)],
        float_format="%.4f")
    heads = [(q, p) for q, p in enumerate(MELODY)] + [(q, p) for q, ch in CHORDS for p in ch]
    rows = []
    for q, p in heads:
        k = q // 6
        x = 400 * k + 40 + 55 * (q % 6)
        rows.append({"system": k, "moment": str(Fraction(q, 4)), "grace": "0", "pitch": p, "x_page": x - 400 * k,
                     "x": float(x), "status": "matched", "onset_s": score_seconds(q * TPB)})
    rows.append({"system": 1, "moment": "3", "grace": "0", "pitch": 60, "x_page": 390.0, "x": 790.0,
                 "status": "tie", "onset_s": float("nan")})
    rows.sort(key=lambda r: (r["system"], r["x"], r["pitch"]))
    write_rows(score / "noteheads.csv", rows, float_format="%.4f")
    Image.fromarray(np.full((C.STRIP_HEIGHT_PX, 800), 255, np.uint8)).save(score / "unrolled.png")
    return score


def tiny_dataset(root: Path, names=(PIECE,)) -> Path:
    """data/dataset/test/pieces.csv listing the tiny pieces (the only table the stage reads)."""
    ds = root / "data" / "dataset"
    (ds / "test").mkdir(parents=True)
    pd.DataFrame([{"piece": n, "systems": 2, "pages": 1, "noteheads": 21, "duration_s": 6.0,
                   "unrolled": str(root / "data" / "pieces" / n / "score" / "unrolled.png")} for n in names]
                 ).to_csv(ds / "test" / "pieces.csv", index=False)
    return ds


@pytest.fixture
def cfg_params(base_params) -> dict:
    """params with a small, fast scenario: the test soundfont (small sf2), a small room, pink noise at 20 dB."""
    p = copy.deepcopy(base_params)
    p["scenarios"]["performed"].update({
        "soundfont": "sf_gmbank", "tempo_ratios": [0.5, 1.0], "tempo_curve_depth": 0.2, "tempo_curve_period_s": 3.0,
        "onset_jitter_ms": 20, "reverb": {"rt60_s": 0.3, "room_dim_m": [5.0, 4.0, 3.0], "wet": 0.5},
        "noise": {"snr_db": 20.0, "colour": "pink"}})
    return p


def file_digests(folder: Path) -> dict:
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file()}


def notes_plan(params, score: Path):
    notes, tempo = read_midi(score / "score.midi")
    duration = tempo.time(max(n.offset_tick for n in notes))
    return P.plan_performance(params["scenarios"]["performed"], params["seed"], PIECE,
                              [(n.onset_tick, n.pitch) for n in notes], duration), notes, tempo


@pytest.mark.parametrize("rho", [1.0, 0.5, 1.33])
def test_performed_onsets_are_the_warped_score_times(cfg_params, tmp_path, rho):
    """Every note-on of the written performance MIDI is at T(score onset) / ρ + its deviation, to the tick."""
    score = tiny_piece(tmp_path)
    plan, notes, tempo = notes_plan(cfg_params, score)
    assert np.std(list(plan.deviation_s.values())) > 0.005             # the deviations are really there
    perf = P.perform_midi(score / "score.midi", plan, rho, 0, None)
    perf.midi.save(str(tmp_path / "perf.mid"))
    back, back_tempo = read_midi(tmp_path / "perf.mid")
    assert back_tempo.tpb == P.PERF_TPB and len(back) == len(notes)
    got = sorted((back_tempo.time(n.onset_tick), n.pitch) for n in back)
    want = sorted((max(0.0, float(plan.time_map(tempo.time(n.onset_tick), rho)) + plan.deviation_s[(n.onset_tick, n.pitch)]),
                   n.pitch) for n in notes)
    assert [p for _, p in got] == [p for _, p in want]
    np.testing.assert_allclose([t for t, _ in got], [t for t, _ in want], rtol=0, atol=P.TICK_S / 2 + 1e-9)
    # the onsets the alignment uses are the written ones, exactly
    np.testing.assert_allclose(np.sort(perf.onset_s), [t for t, _ in got], rtol=0, atol=1e-12)
    # velocities follow the dynamics curve, not one constant
    assert len(set(perf.velocity.tolist())) > 3 and perf.velocity.min() >= 1 and perf.velocity.max() <= 127


@pytest.mark.parametrize("depth,period", [(0.05, 1.0), (0.2, 3.0), (0.5, 1.0), (0.5, 30.0)])
def test_time_map_is_monotone_and_keeps_the_duration(base_params, depth, period):
    cfg = dict(base_params["scenarios"]["performed"], tempo_curve_depth=depth, tempo_curve_period_s=period)
    for piece in ("a", "b", "c"):
        plan = P.plan_performance(cfg, 7, piece, [(0, 60)], 60.0)
        s = np.linspace(0, 80, 200_001)                                  # past the grid's end too
        t = plan.time_map(s)
        assert np.all(np.diff(t) > 0)
        assert plan.time_map(60.0) == pytest.approx(60.0, abs=1e-9)
        assert plan.time_map(60.0, 0.5) == pytest.approx(120.0, abs=1e-9)
        log_tempo = np.log(plan.time_map.tempo(np.linspace(0, 60, 6001)))
        assert np.std(log_tempo) == pytest.approx(depth, rel=0.6)        # the depth is the curve's RMS (roughly)


def test_zero_strengths_reproduce_the_metronomic_timing(cfg_params, tmp_path):
    """Depth 0 and jitter 0: the performed onsets are the score's (to the tick) and the passages and snippet
    pairs are the dataset's at ρ = 1 and ρ = 0.5 (pipeline.data.passages on the score times)."""
    cfg_params["scenarios"]["performed"].update({"tempo_curve_depth": 0.0, "onset_jitter_ms": 0.0})
    score = tiny_piece(tmp_path)
    plan, notes, tempo = notes_plan(cfg_params, score)
    perf = P.perform_midi(score / "score.midi", plan, 1.0, 0, None)
    np.testing.assert_allclose(perf.onset_s, perf.score_onset_s, rtol=0, atol=P.TICK_S / 2)
    out = tmp_path / "out"
    P.perform_split(cfg_params, tiny_dataset(tmp_path), out, log=lambda m: None)
    ours = {k: pd.read_csv(out / "test" / f"{k}.csv") for k in ("performances", "passages", "snippets")}
    perfs = ours["performances"]
    want_p, want_s = piece_passages(read_csv(score / "systems.csv"), read_csv(score / "noteheads.csv"),
                                    {"performance": perfs.performance.to_numpy(dtype=object),
                                     "tempo_ratio": perfs.tempo_ratio.to_numpy(), "n_frames": perfs.n_frames.to_numpy()},
                                    cfg_params["passages"]["dedupe_onset_frames"])
    for got, want in ((ours["passages"], want_p), (ours["snippets"], want_s)):
        want = pd.DataFrame({"piece": PIECE, **want})
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want[got.columns].reset_index(drop=True),
                                      check_dtype=False)


def test_seeded_runs_are_byte_identical_and_load_split_reads_them(cfg_params, tmp_path):
    tiny_piece(tmp_path)
    ds = tiny_dataset(tmp_path)
    out = tmp_path / "out"
    report = P.perform_split(cfg_params, ds, out, log=lambda m: None)
    assert report.outcome.tolist() == ["ok"]
    first = file_digests(out)
    assert {"test/pieces.csv", "test/performances.csv", "test/passages.csv", "test/snippets.csv", "report.csv",
            f"pieces/{PIECE}/spec/rho-1000_sf_gmbank.npy", f"pieces/{PIECE}/midi/rho-0500_sf_gmbank.mid",
            f"pieces/{PIECE}/performance.json"} <= set(first)
    import shutil
    shutil.rmtree(out)
    P.perform_split(cfg_params, ds, out, log=lambda m: None)
    assert file_digests(out) == first
    other = copy.deepcopy(cfg_params)
    other["seed"] += 1
    P.perform_split(other, ds, tmp_path / "other", log=lambda m: None)
    key = f"pieces/{PIECE}/midi/rho-1000_sf_gmbank.mid"
    assert file_digests(tmp_path / "other")[key] != first[key]

    from pipeline.models.snippets import load_split
    bank = load_split(out, "test")
    assert len(bank.passages) == 2 * 2                                  # 2 systems x 2 tempo ratios
    assert set(bank.passages.performance) == {"rho-0500_sf_gmbank", "rho-1000_sf_gmbank"}
    perf = pd.read_csv(out / "test" / "performances.csv")
    assert (perf.tempo_ratio.tolist(), perf.soundfont.unique().tolist()) == ([0.5, 1.0], ["sf_gmbank"])
    assert bank.spec.shape[1] == perf.n_frames.sum()
    # half speed lasts about twice as long; the passages tile each performance
    n = dict(zip(perf.performance, perf.n_frames))
    assert n["rho-0500_sf_gmbank"] > 1.5 * n["rho-1000_sf_gmbank"]
    pas = pd.read_csv(out / "test" / "passages.csv")
    snip = pd.read_csv(out / "test" / "snippets.csv")
    for pid, g in pas.groupby("performance"):
        assert g.f1.iloc[-1] == n[pid] and (g.f0.iloc[1:].to_numpy() == g.f1.iloc[:-1].to_numpy()).all()
        s = snip[snip.performance == pid]
        for r in g.itertuples():                                      # no snippet precedes its passage
            assert (s[s.system == r.system].frame >= r.f0).all()


def test_snippet_frames_are_the_performed_midi_onsets(cfg_params, tmp_path):
    """Without dedupe, each notehead's snippet frame is ceil(20 x its note's note-on time in the written MIDI)."""
    cfg_params["passages"]["dedupe_onset_frames"] = False
    cfg_params["scenarios"]["performed"]["tempo_ratios"] = [1.0]
    tiny_piece(tmp_path)
    out = tmp_path / "out"
    P.perform_split(cfg_params, tiny_dataset(tmp_path), out, log=lambda m: None)
    back, tempo = read_midi(out / "pieces" / PIECE / "midi" / "rho-1000_sf_gmbank.mid")
    snip = pd.read_csv(out / "test" / "snippets.csv")
    assert len(snip) == len(MELODY) + sum(len(c) for _, c in CHORDS)
    frames = sorted((int(np.ceil(tempo.time(n.onset_tick) * C.FPS - 1e-6)), n.pitch) for n in back)
    assert sorted(zip(snip.frame, snip.pitch)) == frames


def test_bad_strengths_are_rejected(base_params):
    validate(copy.deepcopy(base_params))
    bad = [("tempo_curve_depth", -0.1), ("tempo_curve_depth", 2.0), ("tempo_curve_period_s", 0),
           ("onset_jitter_ms", -5), ("onset_jitter_ms", 500), ("velocity_mean", 0), ("velocity_mean", 128),
           ("velocity_range", 100), ("velocity_jitter", -1), ("pedal", "yes"), ("tempo_ratios", [0.0]),
           ("tempo_ratios", []), ("reverb.wet", 1.5), ("reverb.rt60_s", -0.1), ("reverb.rt60_s", 10),
           ("reverb.room_dim_m", [9, 7]), ("reverb.room_dim_m", [0.5, 7, 3]), ("noise.snr_db", 200),
           ("noise.colour", "purple"), ("unknown_key", 1)]
    for key, value in bad:
        p = copy.deepcopy(base_params)
        *parents, leaf = key.split(".")
        node = p["scenarios"]["performed"]
        for k in parents:
            node = node[k]
        node[leaf] = value
        with pytest.raises(ConfigError, match="scenarios.performed"):
            validate(p)
    for name, msg in (("nope", "not defined"), (base_params["render"]["train_soundfonts"][0], "training soundfont")):
        p = copy.deepcopy(base_params)
        p["scenarios"]["performed"]["soundfont"] = name
        with pytest.raises(ConfigError, match=msg):
            P.scenario_config(p)


def test_rendered_audio_is_not_silent(cfg_params, tmp_path):
    score = tiny_piece(tmp_path)
    plan, _, _ = notes_plan(cfg_params, score)
    bars = P.bar_lines([0.0, 3.6], 6.0, read_midi(score / "score.midi")[1],
                       P.time_signatures(mido.MidiFile(str(score / "score.midi"))))
    np.testing.assert_allclose(bars, [0.0, 1.8, 3.6, 4.8])              # 3/4 bars, the tempo change at 3.6 s
    perf = P.perform_midi(score / "score.midi", plan, 1.0, 0, bars)
    pedal = [m for m in perf.midi.tracks[0] if m.type == "control_change" and m.control == 64]
    assert len(pedal) == 2 * (4 * 2 + 1)                                 # per channel: up + down per bar, up at the end
    perf.midi.save(str(tmp_path / "perf.mid"))
    fonts = cfg_params["render"]["soundfonts"]
    full = fonts.get("musescore_full", {}).get("file", "")
    for sf in [fonts["sf_gmbank"]["file"]] + ([full] if Path(full).is_file() else []):
        P.synthesize(tmp_path / "perf.mid", Path(sf), tmp_path / "perf.wav", cfg_params["render"]["gain"])
        audio = P.load_mono(tmp_path / "perf.wav")
        assert len(audio) > 5.5 * C.SAMPLE_RATE and np.sqrt(np.mean(audio ** 2)) > 1e-3, sf
        scene = P.acoustic_scene(audio, P.room_impulse_response(cfg_params["scenarios"]["performed"]["reverb"]),
                                 cfg_params["scenarios"]["performed"], 1)
        spec = P.log_spectrogram(scene)
        assert spec.shape[0] == C.N_BINS and spec.max() > 0.5


@pytest.mark.parametrize("snr,colour,reverb", [(20.0, "pink", True), (0.0, "white", False), (45.0, "brown", True)])
def test_noise_is_at_its_snr(cfg_params, snr, colour, reverb):
    cfg = copy.deepcopy(cfg_params["scenarios"]["performed"])
    cfg["noise"] = {"snr_db": snr, "colour": colour}
    rir = P.room_impulse_response(cfg["reverb"]) if reverb else None
    t = np.arange(3 * C.SAMPLE_RATE) / C.SAMPLE_RATE
    audio = (0.3 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 0.5 * t))).astype(np.float32)
    clean = P.acoustic_scene(audio, rir, dict(cfg, noise={"snr_db": None, "colour": colour}), 3)
    noisy = P.acoustic_scene(audio, rir, cfg, 3)
    noise = noisy.astype(np.float64) - clean
    measured = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise ** 2))
    assert abs(measured - snr) < 0.5
    np.testing.assert_array_equal(noisy, P.acoustic_scene(audio, rir, cfg, 3))     # seeded
    state = np.random.get_state()[1].copy()
    P.acoustic_scene(audio, rir, cfg, 4)
    assert (np.random.get_state()[1] == state).all()                 # the global RNG is left as it was


def test_reverb_keeps_the_direct_sound_in_place(cfg_params):
    """The room's direct path arrives at the dry signal's time: an impulse stays where it was."""
    cfg = dict(cfg_params["scenarios"]["performed"], noise={"snr_db": None, "colour": "pink"})
    rir = P.room_impulse_response(cfg["reverb"])
    assert rir[0] == 1.0 and np.argmax(np.abs(rir)) == 0
    x = np.zeros(C.SAMPLE_RATE, np.float32)
    x[5000] = 1.0
    y = P.acoustic_scene(x, rir, cfg, 0)
    assert np.argmax(np.abs(y)) == 5000 and np.abs(y[:5000]).max() < 1e-6
    assert len(y) == len(x) + round(cfg["reverb"]["rt60_s"] * C.SAMPLE_RATE)      # the reverberant tail
    np.testing.assert_array_equal(P.trim_silence(np.array([0, 1, 0, 2, 1e-5, 0], np.float32)), [0, 1, 0, 2])
    np.testing.assert_array_equal(P.trim_silence(np.zeros(3, np.float32)), np.zeros(3))
    assert np.abs(y[5100:]).max() > 1e-3                                 # and it reverberates
    off = dict(cfg, reverb=dict(cfg["reverb"], wet=0.0))
    assert P.room_impulse_response(off["reverb"]) is None


def test_a_failing_piece_is_reported_and_the_others_go_on(cfg_params, tmp_path):
    cfg_params["scenarios"]["performed"]["tempo_ratios"] = [1.0]
    tiny_piece(tmp_path)
    bad = tiny_piece(tmp_path, "tiny__piece__bad")
    (bad / "score.midi").unlink()
    messages = []
    out = tmp_path / "out"
    report = P.perform_split(cfg_params, tiny_dataset(tmp_path, ("tiny__piece__bad", PIECE)), out, log=messages.append)
    assert report.set_index("piece").outcome.to_dict() == {"tiny__piece__bad": "failed", PIECE: "ok"}
    assert any("tiny__piece__bad" in m and "no score" in m for m in messages)
    assert pd.read_csv(out / "test" / "pieces.csv").piece.tolist() == [PIECE]
    assert set(pd.read_csv(out / "test" / "snippets.csv").piece) == {PIECE}


def test_cli_with_the_rules_keys_writes_the_scenario_and_the_figure(cfg_params, tmp_path):
    """``python -m pipeline.data.performed`` given only the keys rule ``performed`` passes; the figure compares
    with the dataset's metronomic rendering (here: the stage itself with every effect off); a bad --set is
    a configuration error (exit 2)."""
    rule = (REPO / "workflow" / "rules" / "performed.smk").read_text()
    keys = re.findall(r'"([\w.]+)"', re.search(r"stage_params\(([^)]*)\)", rule).group(1))
    tiny_piece(tmp_path)
    ds = tiny_dataset(tmp_path)
    flat = copy.deepcopy(cfg_params)
    flat["scenarios"]["performed"].update({"tempo_ratios": [1.0], "tempo_curve_depth": 0.0, "onset_jitter_ms": 0.0,
                                           "velocity_range": 0, "velocity_jitter": 0, "pedal": False,
                                           "reverb": dict(cfg_params["scenarios"]["performed"]["reverb"], wet=0.0),
                                           "noise": {"snr_db": None, "colour": "pink"}})
    P.perform_split(flat, ds, tmp_path / "metronomic", log=lambda m: None)
    for name in P.TABLES[1:]:
        (ds / "test" / f"{name}.csv").write_bytes((tmp_path / "metronomic" / "test" / f"{name}.csv").read_bytes())
    out, fig = tmp_path / "out", tmp_path / "fig" / "performed_examples.png"
    args = ["--dataset", str(ds), "--out", str(out), "--figure", str(fig), "--params-json", json.dumps(subset(cfg_params, keys))]
    assert P.main(args) == 0
    assert fig.stat().st_size > 10_000 and (out / "test" / "snippets.csv").is_file()
    assert P.main(args + ["--set", "scenarios.performed.reverb.wet=1.5"]) == 2
