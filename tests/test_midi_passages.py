from fractions import Fraction

import mido
import numpy as np
import pandas as pd

from pipeline.data.midi import TempoMap, read_midi, write_performance_midi
from pipeline.data.passages import onset_frames, piece_passages
from pipeline.data.render import performance_id, plan_performances


def _midi(path, tempo=1_000_000):
    mf = mido.MidiFile(ticks_per_beat=384)
    t0, t1 = mido.MidiTrack(), mido.MidiTrack()
    t0.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    t1 += [mido.Message("program_change", program=6, time=0),
           mido.Message("note_on", note=60, velocity=90, time=0), mido.Message("note_on", note=60, velocity=0, time=384),
           mido.Message("note_on", note=64, velocity=80, time=0), mido.Message("note_off", note=64, time=768)]
    mf.tracks += [t0, t1]
    mf.save(str(path))


def test_tempo_map_and_moments():
    tm = TempoMap(384, [(0, 1_000_000), (768, 500_000)])
    assert tm.time(384) == 1.0 and tm.time(768) == 2.0 and tm.time(1152) == 2.5
    assert tm.moment_to_tick(Fraction(1, 4)) == 384


def test_performance_midi_scales_time_and_forces_program_velocity(tmp_path):
    _midi(tmp_path / "a.midi")
    write_performance_midi(tmp_path / "a.midi", tmp_path / "b.midi", 0.5, program=0, velocity=64)
    notes, tm = read_midi(tmp_path / "b.midi")
    assert [n.pitch for n in notes] == [60, 64]
    assert abs(tm.time(notes[1].onset_tick) - 2.0) < 1e-6       # ρ = 0.5 is half speed: score 1.0 s -> 2.0 s
    msgs = [m for t in mido.MidiFile(str(tmp_path / "b.midi")).tracks for m in t]
    assert {m.program for m in msgs if m.type == "program_change"} == {0}
    assert {m.velocity for m in msgs if m.type == "note_on" and m.velocity} == {64}


def test_performance_plan_is_deterministic_and_split_specific():
    cfg = {"train_soundfonts": ["a", "b"], "valid_soundfont": "v", "test_soundfont": "t", "train_tempo_ratios": [0.9, 1.0, 1.1],
           "n_random_performances": 2, "test_tempo_ratios": [0.5, 1.0, 2.0]}
    train = plan_performances("p", "train", cfg, 1)
    assert train[:2] == [(1.0, "a"), (1.0, "b")] and len(set(train)) == 4
    assert train == plan_performances("p", "train", cfg, 1)
    assert all(sf != "t" for _, sf in train)
    assert plan_performances("p", "valid", cfg, 1) == [(1.0, "v")]         # never the test soundfont
    assert plan_performances("p", "test", cfg, 1) == [(0.5, "t"), (1.0, "t"), (2.0, "t")]
    assert performance_id(0.9, "a") == "rho-0900_a" and performance_id(0.5, "t") == "rho-0500_t"


def test_passage_spans_and_snippet_frames():
    systems = pd.DataFrame({"system": [0, 1, 2], "x0": [0, 700, 1400], "x1": [700, 1400, 2000],
                            "first_onset_s": [0.0, 4.0, 8.2]})
    heads = pd.DataFrame({"system": [0, 0, 0, 1, 2, 2], "x": [50.0, 50.0, 120.0, 800.0, 1500.0, 1600.0],
                          "pitch": [60, 64, 62, 60, 67, 69],
                          "status": ["matched", "matched", "matched", "matched", "tie", "matched"],
                          "onset_s": [0.0, 0.0, 1.0, 4.0, np.nan, 9.0]})
    # ρ = 2: twice as fast
    perfs = pd.DataFrame({"performance": ["p1", "p2"], "tempo_ratio": [1.0, 2.0], "n_frames": [200, 100]})
    columns = lambda df: {k: df[k].to_numpy() for k in df}                           # noqa: E731
    passages, snippets = map(pd.DataFrame, piece_passages(columns(systems), columns(heads), columns(perfs), dedupe=True))
    p1 = passages[passages.performance == "p1"]
    assert p1.f0.tolist() == [0, 80, 164] and p1.f1.tolist() == [80, 164, 200]   # ceil(t * 20), last to the end
    p2 = passages[passages.performance == "p2"]
    assert p2.f0.tolist() == [0, 40, 82] and p2.f1.tolist()[-1] == 100
    s1 = snippets[snippets.performance == "p1"]
    assert s1.frame.tolist() == [0, 20, 80, 180] and s1.x.tolist() == [50.0, 120.0, 800.0, 1600.0]
    assert onset_frames(np.array([0.05]), 1.0).tolist() == [1]                       # no float ceil overshoot
