"""Stage ``performed``: scenario III-sim, the test split performed expressively and recorded in a room.

Every piece of the dataset's ``test`` split is played again from its ``score.midi`` as a seeded
expressive performance (seed = params ``seed`` + the piece name, so a piece's performance never
depends on the other pieces or on the order of the run), at ρ = ``evaluation.tempo`` or at every ρ
of ``scenarios.performed.tempo_ratios``:

* **tempo curve**: the local tempo factor is ``r(s) = exp(l(s))`` at score time ``s`` [s at ρ = 1],
  ``l`` a sum of ``CURVE_COMPONENTS`` sinusoids of random phase with periods drawn around
  ``tempo_curve_period_s`` (x 0.5 ... 2, log-uniform) and an RMS of ``tempo_curve_depth``. The time map
  ``T(s) = c (s + ∫₀ˢ (1/r(u) - 1) du)`` is strictly increasing (its slope is ``c / r > 0``; integrated
  on a ``CURVE_STEP_S`` grid, linear between) and ``c`` keeps the piece's duration: the performance
  lasts as long as the metronomic rendering. Depth 0 gives ``T(s) = s`` exactly. At tempo factor ρ,
  performance time = ``T(s) / ρ`` (the same performer, faster or slower, as the render stage's ρ).
* **onsets**: every note (one draw per score onset and pitch) moves by a normal deviation of std
  ``onset_jitter_ms`` (clipped at 3 std), the same at every ρ; its offset moves with it.
* **dynamics**: velocity = ``velocity_mean`` + ``velocity_range`` x a smooth curve in [-1, 1] (sinusoids
  of twice the tempo curve's periods) + a normal jitter of std ``velocity_jitter``, clipped to 1..127.
* **sustain pedal** (``pedal``): CC64 lifted at every bar line and pressed again ``PEDAL_DOWN_DELAY_S``
  later (legato pedalling). Bar lines are the system starts (``systems.csv``) and, within a system,
  whole bars of the MIDI's time signature counted back from the next system's start (so an anacrusis
  in the first system is bar-aligned); the last system counts forward from its start.
* the performance MIDI (one track, a fixed tempo, one tick = ``TICK_S``, written under
  ``OUT/pieces/<piece>/midi/``) is rendered by fluidsynth with the scenario's soundfont (one that is
  no training soundfont), then **room reverberation** (a shoe-box room impulse response simulated by
  pyroomacoustics' image source method for ``reverb.rt60_s`` in ``reverb.room_dim_m``, normalised to
  its direct path and shifted so that the direct sound keeps the MIDI's timing; mixed with
  ``reverb.wet``; fluidsynth's output is cut after its last sample above ``TRIM_FLOOR_DB``, then
  grows by a reverberant tail of ``reverb.rt60_s``) and **background noise** (audiomentations'
  coloured noise, ``noise.colour``, at ``noise.snr_db`` dB against the reverberant signal's RMS);
  then the log spectrogram of the render stage.

The alignment follows the performance exactly: a notehead's snippet frame is the frame of its
note's performed onset as written to the MIDI file (tempo map + its own deviation, at tick
resolution). A passage's frames start where its system starts by the engrave stage's rule for
``first_onset_s`` (the earliest onset of its matched noteheads), applied to the *performed* onsets,
so no snippet of a system precedes its passage (without deviations this is ``T(first_onset_s) / ρ``
to the MIDI tick), and end at the next system's start. Both go through
:func:`pipeline.data.passages.piece_passages` (the same frames, dedupe, order and clipping as the
dataset), with the performed times in place of the score times.

Writes a dataset folder with the test split only, in the dataset's format (``load_split(OUT,
'test')`` reads it): ``OUT/test/{pieces,performances,passages,snippets}.csv`` (pieces.csv: the
dataset's rows, the same unrolled images), ``OUT/pieces/<piece>/spec/<performance>.npy``,
``OUT/pieces/<piece>/midi/<performance>.mid`` and ``OUT/pieces/<piece>/performance.json`` (the
drawn curves), ``OUT/report.csv`` (piece, outcome ok / failed, reason, detail). A piece that fails
is reported there and left out of the tables; the others go on. ``--figure`` draws one passage,
metronomic against performed, with the tempo curve.
"""
from __future__ import annotations

import argparse
import bisect
import random
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import mido
import numpy as np
import pandas as pd
from tqdm import tqdm

from pipeline.core import constants as C
from pipeline.core.csvtable import read_csv
from pipeline.core.errors import ConfigError, PieceError
from pipeline.core.params import add_params_argument, from_args
from pipeline.core.seeds import piece_seed as stage_seed
from pipeline.core.stage import write_json
from pipeline.data.midi import TempoMap, read_midi
from pipeline.data.passages import piece_passages
from pipeline.data.render import load_mono, performance_id
from pipeline.data.spectrogram import log_spectrogram

SPLIT = "test"
TABLES = ("pieces", "performances", "passages", "snippets")
PERF_TPB = 5000                 # ticks per quarter of the performance MIDI ...
PERF_TEMPO = 500_000            # ... at one fixed tempo [µs per quarter]: one tick = 0.1 ms
TICK_S = PERF_TEMPO / 1e6 / PERF_TPB
CURVE_COMPONENTS = 3            # sinusoids of the log-tempo and dynamics curves
CURVE_STEP_S = 0.01             # [s, score time] integration grid of the time map
CURVE_MARGIN_S = 5.0            # [s] the grid runs this far past the last note
JITTER_CLIP = 3.0               # onset and velocity deviations clipped at this many std
MIN_NOTE_S = 0.02               # [s] shortest performed note
PEDAL_DOWN_DELAY_S = 0.06       # [s] the pedal goes down again this long after a bar line
SOURCE_AT = (0.35, 0.40, 0.35)  # source and microphone positions as fractions of the room's dimensions
MIC_AT = (0.65, 0.55, 0.45)
TRIM_FLOOR_DB = -60.0           # fluidsynth's output is cut after its last sample above this level (re its peak)
FLUIDSYNTH_OPTIONS = ("-o", "synth.dynamic-sample-loading=1")   # load only the samples played: the same
                                                                 # audio, 1.8 s instead of 6 s for an 86-MB sf3


def piece_seed(seed: int, piece: str) -> int:
    """The piece's seed for this stage (:func:`pipeline.core.seeds.piece_seed`)."""
    return stage_seed(seed, "performed", piece)


# --- the performance plan: curves and per-note draws of one piece ------------------------------------

@dataclass
class Curve:
    """``sum_k w_k sin(2π s / P_k + φ_k)`` scaled by ``gain``."""
    periods: np.ndarray
    phases: np.ndarray
    weights: np.ndarray
    gain: float

    def __call__(self, s) -> np.ndarray:
        s = np.asarray(s, dtype=float)[..., None]
        return self.gain * np.sum(self.weights * np.sin(2 * np.pi * s / self.periods + self.phases), axis=-1)

    @classmethod
    def draw(cls, rng: np.random.Generator, period: float) -> "Curve":
        periods = period * np.exp(rng.uniform(np.log(0.5), np.log(2.0), CURVE_COMPONENTS))
        return cls(periods, rng.uniform(0, 2 * np.pi, CURVE_COMPONENTS), rng.uniform(0.5, 1.0, CURVE_COMPONENTS), 1.0)


class TimeMap:
    """Score time [s at ρ = 1] -> performance time [s]: ``c (s + Δ(s)) / ρ``, Δ the integral of
    ``1 / r - 1`` on a grid (linear between), constant past its end; strictly increasing."""

    def __init__(self, log_tempo: Curve, duration: float, depth: float):
        self.log_tempo, self.depth = log_tempo, depth
        self.grid = np.arange(0.0, duration + CURVE_MARGIN_S + CURVE_STEP_S, CURVE_STEP_S)
        if depth == 0:
            self.delta = np.zeros_like(self.grid)
        else:
            excess = np.exp(-log_tempo(self.grid)) - 1.0                    # 1 / r - 1 > -1
            self.delta = np.concatenate([[0.0], np.cumsum((excess[1:] + excess[:-1]) / 2 * CURVE_STEP_S)])
        self.scale = duration / (duration + float(np.interp(duration, self.grid, self.delta))) if duration > 0 else 1.0

    def __call__(self, s, rho: float = 1.0) -> np.ndarray:
        s = np.asarray(s, dtype=float)
        return self.scale * (s + np.interp(s, self.grid, self.delta)) / rho

    def tempo(self, s) -> np.ndarray:
        """Local tempo factor (performance speed / score speed) at score time ``s``, ρ = 1."""
        return np.exp(self.log_tempo(s)) / self.scale


@dataclass
class Plan:
    """One piece's performer: the time map, the dynamics curve and the per-note draws, keyed by the
    note's (score onset tick, pitch); the same at every ρ."""
    time_map: TimeMap
    dynamics: Curve
    deviation_s: dict
    velocity_jitter: dict
    cfg: dict

    def velocity(self, key, onset_s: float) -> int:
        v = self.cfg["velocity_mean"] + self.cfg["velocity_range"] * float(self.dynamics(onset_s)) \
            + self.velocity_jitter[key]
        return int(np.clip(round(v), 1, 127))

    def summary(self) -> dict:
        lt, dyn = self.time_map.log_tempo, self.dynamics
        return {"tempo_curve": {"depth": self.cfg["tempo_curve_depth"], "gain": lt.gain,
                                "periods_s": lt.periods.round(4).tolist(),
                                "phases": lt.phases.round(4).tolist(), "weights": lt.weights.round(4).tolist(),
                                "duration_scale": round(self.time_map.scale, 6)},
                "dynamics_curve": {"periods_s": dyn.periods.round(4).tolist(), "phases": dyn.phases.round(4).tolist(),
                                   "weights": dyn.weights.round(4).tolist()},
                "notes": len(self.deviation_s),
                "onset_deviation_ms": {"mean": round(1000 * float(np.mean(list(self.deviation_s.values()) or [0])), 3),
                                       "std": round(1000 * float(np.std(list(self.deviation_s.values()) or [0])), 3)}}


def plan_performance(cfg: dict, seed: int, piece: str, note_keys, duration: float) -> Plan:
    """Draw one piece's performer from (seed, piece): curves first, then one onset deviation and one
    velocity jitter per note key in sorted order (so a strength changes the values, not the draws)."""
    rng = np.random.default_rng(piece_seed(seed, piece))
    depth = float(cfg["tempo_curve_depth"])
    log_tempo = Curve.draw(rng, float(cfg["tempo_curve_period_s"]))
    log_tempo.gain = depth / np.sqrt(np.sum(log_tempo.weights ** 2) / 2)     # RMS of the sum = depth
    dynamics = Curve.draw(rng, 2 * float(cfg["tempo_curve_period_s"]))
    dynamics.gain = 1.0 / float(np.sum(dynamics.weights))                    # within [-1, 1]
    keys = sorted(set(note_keys))
    draws = rng.standard_normal((len(keys), 2)).clip(-JITTER_CLIP, JITTER_CLIP)
    jitter_s = float(cfg["onset_jitter_ms"]) / 1000
    deviation = {k: float(d) * jitter_s for k, d in zip(keys, draws[:, 0])}
    vel_jitter = {k: float(d) * float(cfg["velocity_jitter"]) for k, d in zip(keys, draws[:, 1])}
    return Plan(TimeMap(log_tempo, duration, depth), dynamics, deviation, vel_jitter, cfg)


# --- the performance MIDI -------------------------------------------------------------------------

def seconds_to_tick(tempo: TempoMap, t: float) -> float:
    """Inverse of :meth:`TempoMap.time`."""
    i = max(0, bisect.bisect_right(tempo.seconds, t) - 1)
    return tempo.ticks[i] + (t - tempo.seconds[i]) * 1e6 * tempo.tpb / tempo.tempos[i]


def time_signatures(mf: mido.MidiFile) -> list[tuple[int, Fraction]]:
    """(tick, bar length in whole notes) of every time signature of a MIDI file, 4/4 from tick 0 if none."""
    out = []
    for track in mf.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "time_signature":
                out.append((tick, Fraction(msg.numerator, msg.denominator)))
    out.sort()
    if not out or out[0][0] > 0:
        out.insert(0, (0, Fraction(1)))
    return out


def bar_lines(system_starts_s, end_s: float, tempo: TempoMap, signatures) -> np.ndarray:
    """[s, score time] bar lines: every system start, and whole bars of the time signature counted back
    from the next system's start (forward from the start in the last system)."""
    def bar_ticks(tick):
        i = bisect.bisect_right([t for t, _ in signatures], tick) - 1
        return float(signatures[max(i, 0)][1]) * 4 * tempo.tpb

    starts = [seconds_to_tick(tempo, s) for s in system_starts_s]
    end = seconds_to_tick(tempo, end_s)
    bars = set()
    for k, start in enumerate(starts):
        bars.add(start)
        if k + 1 < len(starts):
            t = starts[k + 1]
            while True:
                t -= bar_ticks(t - 1)
                if t <= start + 1:
                    break
                bars.add(t)
        else:
            t = start + bar_ticks(start)
            while t < end:
                bars.add(t)
                t += bar_ticks(t)
    return np.array(sorted(tempo.time(t) for t in bars))


@dataclass
class Performed:
    midi: mido.MidiFile
    score_key: list          # per note: (score onset tick, pitch)
    score_onset_s: np.ndarray
    pitch: np.ndarray
    onset_s: np.ndarray      # performed onsets as written [s] (tick x TICK_S)
    velocity: np.ndarray


# order of events at the same tick: programs and controllers, note-offs, pedal up, note-ons, pedal down
_RANK = {"program_change": 0, "control_change": 1, "note_off": 2, "pedal_up": 3, "note_on": 4, "pedal_down": 5}


def perform_midi(score_midi: Path, plan: Plan, rho: float, program: int | None, bars_s=None) -> Performed:
    """The performance MIDI of ``score_midi`` at tempo factor ``rho`` (one track, one tempo, tick =
    ``TICK_S``): notes, velocities and pedal from ``plan``; programs and controllers of the score
    moved with the time map (``program`` forced on every melodic channel, as the render stage)."""
    notes, tempo = read_midi(score_midi)
    if not notes:
        raise PieceError("no notes", f"{score_midi} has no note events")
    src = mido.MidiFile(str(score_midi))
    tm = plan.time_map

    def tick_of(t):
        return int(round(max(0.0, float(t)) / TICK_S))

    events = []              # (tick, rank, sequence, message)
    for track in src.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "program_change" and msg.channel != 9 and program is not None:
                msg = msg.copy(program=program)
            if msg.type in ("program_change", "control_change", "pitchwheel"):
                if msg.type == "control_change" and msg.control == 64:
                    continue                 # the score's own pedal (if any) gives way to the plan's
                events.append((tick_of(tm(tempo.time(tick), rho)), _RANK.get(msg.type, 1), len(events), msg.copy(time=0)))
    channels = sorted({n.channel for n in notes})
    if program is not None:
        for ch in channels:
            if ch != 9:
                events.append((0, 0, -1 - ch, mido.Message("program_change", channel=ch, program=program)))

    keys, on_s, score_on, pitch, vel, ticks = [], [], [], [], [], []
    for n in notes:
        key = (n.onset_tick, n.pitch)
        s_on, s_off = tempo.time(n.onset_tick), tempo.time(n.offset_tick)
        dev = plan.deviation_s[key]
        t_on = float(tm(s_on, rho)) + dev
        t_off = max(float(tm(s_off, rho)) + dev, t_on + MIN_NOTE_S)
        on, off = tick_of(t_on), tick_of(t_off)
        keys.append(key)
        score_on.append(s_on)
        pitch.append(n.pitch)
        vel.append(plan.velocity(key, s_on))
        ticks.append([n.channel, n.pitch, on, max(off, on + 1)])
    ticks = np.array(ticks, dtype=np.int64).reshape(-1, 4)
    # a note ends before the next note of its key (channel, pitch) starts: fluidsynth's note-off would
    # otherwise end the next one too
    order = np.lexsort((ticks[:, 2], ticks[:, 1], ticks[:, 0]))
    for a, b in zip(order[:-1], order[1:]):
        if tuple(ticks[a, :2]) == tuple(ticks[b, :2]) and ticks[b, 2] > ticks[a, 2]:
            ticks[a, 3] = min(ticks[a, 3], ticks[b, 2])
    for i, (ch, p, on, off) in enumerate(ticks.tolist()):
        events.append((on, _RANK["note_on"], i, mido.Message("note_on", channel=ch, note=p, velocity=vel[i])))
        events.append((off, _RANK["note_off"], i, mido.Message("note_off", channel=ch, note=p, velocity=0)))
        on_s.append(on * TICK_S)
    if bars_s is not None and len(bars_s):
        end = int(ticks[:, 3].max())
        down = int(round(PEDAL_DOWN_DELAY_S / TICK_S))
        for b in np.asarray(bars_s):
            t = tick_of(float(tm(b, rho)))
            if t + down >= end:                   # no pedal pressed after the last note ends
                continue
            for ch in channels:
                events.append((t, _RANK["pedal_up"], ch, mido.Message("control_change", channel=ch, control=64, value=0)))
                events.append((t + down, _RANK["pedal_down"], ch,
                               mido.Message("control_change", channel=ch, control=64, value=127)))
        for ch in channels:
            events.append((end, _RANK["pedal_up"], ch, mido.Message("control_change", channel=ch, control=64, value=0)))
    events.sort(key=lambda e: e[:3])
    out = mido.MidiFile(type=0, ticks_per_beat=PERF_TPB)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=PERF_TEMPO, time=0)])
    last = 0
    for tick, _, _, msg in events:
        track.append(msg.copy(time=tick - last))
        last = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    out.tracks.append(track)
    return Performed(out, keys, np.array(score_on), np.array(pitch), np.array(on_s), np.array(vel))


def performed_onsets(perf: Performed, onset_s: np.ndarray, pitch: np.ndarray, tol: float = 2e-3) -> tuple[np.ndarray, int]:
    """Performed onset [s] of each notehead (its score onset [s, as in noteheads.csv] and pitch): the
    performed note of that pitch whose score onset is nearest, within ``tol``; NaN where none. Returns
    (times, number without a note)."""
    out = np.full(len(onset_s), np.nan)
    missing = 0
    for p in np.unique(pitch):
        sel = np.flatnonzero(perf.pitch == p)
        srt = sel[np.argsort(perf.score_onset_s[sel], kind="stable")]
        ref = perf.score_onset_s[srt]
        for i in np.flatnonzero(pitch == p):
            if np.isnan(onset_s[i]):
                continue
            j = np.searchsorted(ref, onset_s[i])
            cand = [c for c in (j - 1, j) if 0 <= c < len(ref)]
            best = min(cand, key=lambda c: abs(ref[c] - onset_s[i])) if cand else None
            if best is not None and abs(ref[best] - onset_s[i]) <= tol:
                out[i] = perf.onset_s[srt[best]]
            else:
                missing += 1
    return out, missing


# --- the acoustic scene ---------------------------------------------------------------------------

def room_impulse_response(reverb: dict, sample_rate: int = C.SAMPLE_RATE) -> np.ndarray | None:
    """The shoe-box room's impulse response (pyroomacoustics, image source method: deterministic) from
    the direct path on, scaled so that the direct path is 1; None when the reverb is off."""
    if not reverb["rt60_s"] or not reverb["wet"]:
        return None
    import pyroomacoustics as pra

    dim = np.asarray(reverb["room_dim_m"], dtype=float)
    try:
        absorption, max_order = pra.inverse_sabine(float(reverb["rt60_s"]), dim)
    except ValueError as e:
        raise ConfigError(f"scenarios.performed.reverb: rt60_s {reverb['rt60_s']} cannot be reached in a room of "
                          f"{dim.tolist()} m: {e}") from e
    room = pra.ShoeBox(dim, fs=sample_rate, materials=pra.Material(absorption), max_order=max_order,
                       air_absorption=False)
    src, mic = dim * np.array(SOURCE_AT), dim * np.array(MIC_AT)
    room.add_source(src)
    room.add_microphone(mic[:, None])
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    direct = int(round(np.linalg.norm(src - mic) / pra.constants.get("c") * sample_rate
                       + pra.constants.get("frac_delay_length") // 2))
    return (rir[direct:] / rir[direct]).astype(np.float32)


@contextmanager
def seeded_global_rng(seed: int):
    """audiomentations draws from ``random`` and ``np.random``: seed both, restore them after."""
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def trim_silence(audio: np.ndarray, floor_db: float = TRIM_FLOOR_DB) -> np.ndarray:
    """``audio`` up to its last sample above ``floor_db`` dB below its peak (and above 1.5 LSB of 16 bits):
    with some soundfonts (MuseScore General's full version) fluidsynth keeps near-silent voices (+-1 LSB)
    alive for up to 25 s after the last sound."""
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak == 0:
        return audio
    loud = np.flatnonzero(np.abs(audio) > max(peak * 10 ** (floor_db / 20), 1.5 / np.iinfo(np.int16).max))
    return audio[: loud[-1] + 1]


def acoustic_scene(audio: np.ndarray, rir: np.ndarray | None, cfg: dict, seed: int) -> np.ndarray:
    """Reverberation (``rir`` mixed at ``reverb.wet``; the signal grows by ``reverb.rt60_s``, its reverberant
    tail) then coloured noise at ``noise.snr_db`` (None: none) against the reverberant signal's RMS."""
    out = np.asarray(audio, dtype=np.float32)
    if rir is not None:
        from scipy.signal import fftconvolve

        wet = float(cfg["reverb"]["wet"])
        n = len(out) + int(round(float(cfg["reverb"]["rt60_s"]) * C.SAMPLE_RATE))
        dry = np.concatenate([out, np.zeros(n - len(out), np.float32)])
        out = ((1 - wet) * dry + wet * fftconvolve(out, rir)[:n]).astype(np.float32)
    if cfg["noise"]["snr_db"] is not None:
        from audiomentations import AddColorNoise
        from audiomentations.augmentations.add_color_noise import NOISE_COLOR_DECAYS

        snr, decay = float(cfg["noise"]["snr_db"]), NOISE_COLOR_DECAYS[cfg["noise"]["colour"]]
        noise = AddColorNoise(min_snr_db=snr, max_snr_db=snr, min_f_decay=decay, max_f_decay=decay, p=1.0)
        with seeded_global_rng(seed):
            out = noise(samples=out, sample_rate=C.SAMPLE_RATE).astype(np.float32)
    return out


def synthesize(midi: Path, soundfont: Path, wav: Path, gain: float) -> None:
    """fluidsynth as the render stage runs it, loading only the samples the MIDI plays."""
    cmd = ["fluidsynth", "-ni", "-q", *FLUIDSYNTH_OPTIONS, "-g", str(gain), "-r", str(C.SAMPLE_RATE), "-O", "s16",
           "-T", "wav", "-F", str(wav), str(soundfont), str(midi)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0 or not wav.exists():
        raise PieceError("fluidsynth failed", res.stderr.strip()[-300:])


# --- one piece ----------------------------------------------------------------------------------------

def scenario_config(params: dict) -> tuple[dict, list[float], str, dict]:
    """(scenarios.performed, tempo ratios, soundfont name, its render.soundfonts entry); ConfigError when
    the soundfont is undefined, missing or a training soundfont."""
    cfg = params["scenarios"]["performed"]
    ratios = [float(r) for r in (cfg["tempo_ratios"] or [params["evaluation"]["tempo"]])]
    name = cfg["soundfont"]
    fonts = params["render"]["soundfonts"]
    if name not in fonts:
        raise ConfigError(f"scenarios.performed.soundfont '{name}' is not defined under render.soundfonts")
    if name in params["render"]["train_soundfonts"]:
        raise ConfigError(f"scenarios.performed.soundfont '{name}' is a training soundfont (the scenario's is unseen)")
    if not Path(fonts[name]["file"]).is_file():
        raise ConfigError(f"render.soundfonts.{name}.file: soundfont not found: {fonts[name]['file']}")
    return cfg, ratios, name, fonts[name]


def system_starts(systems: dict, heads: dict, time_map: TimeMap, rho: float) -> np.ndarray:
    """[s] performed start of every system, by the engrave stage's rule for ``first_onset_s``: the earliest
    (performed) onset of its matched noteheads; a system without one starts at ``T(start_s) / ρ``."""
    out = np.asarray(time_map(systems["start_s"], rho), dtype=float).copy()
    matched = heads["status"] == "matched"
    for i, k in enumerate(systems["system"]):
        sel = matched & (heads["system"] == k)
        if sel.any():
            out[i] = float(np.min(heads["onset_s"][sel]))
    return out


def perform_piece(piece: str, score_dir: Path, out: Path, params: dict, rir, workdir: Path):
    """Render one piece's performances; returns (performances rows, passages, snippets, plan)."""
    cfg, ratios, sf_name, sf_cfg = scenario_config(params)
    midi_path = score_dir / "score.midi"
    if not midi_path.is_file():
        raise PieceError("no score", f"{midi_path} not found")
    systems, heads = read_csv(score_dir / "systems.csv"), read_csv(score_dir / "noteheads.csv")
    notes, tempo = read_midi(midi_path)
    if not notes:
        raise PieceError("no notes", f"{midi_path} has no note events")
    duration = tempo.time(max(n.offset_tick for n in notes))
    seed = piece_seed(params["seed"], piece)
    plan = plan_performance(cfg, params["seed"], piece, [(n.onset_tick, n.pitch) for n in notes], duration)
    bars = (bar_lines(systems["start_s"], duration, tempo, time_signatures(mido.MidiFile(str(midi_path))))
            if cfg["pedal"] else None)
    for sub in ("spec", "midi"):
        (out / "pieces" / piece / sub).mkdir(parents=True, exist_ok=True)
    rows, passages, snippets = [], [], []
    for rho in ratios:
        pid = performance_id(rho, sf_name)
        perf = perform_midi(midi_path, plan, rho, sf_cfg.get("program"), bars)
        midi_out = out / "pieces" / piece / "midi" / f"{pid}.mid"
        perf.midi.save(str(midi_out))
        synthesize(midi_out, Path(sf_cfg["file"]), workdir / "perf.wav", params["render"]["gain"])
        audio = trim_silence(load_mono(workdir / "perf.wav"))
        if not np.any(audio):
            raise PieceError("silent rendering", f"{sf_name} ({sf_cfg['file']}) rendered silence")
        audio = acoustic_scene(audio, rir, cfg, seed + int(round(rho * 1000)))
        spec = log_spectrogram(audio)
        spec_path = out / "pieces" / piece / "spec" / f"{pid}.npy"
        np.save(spec_path, spec)
        rows.append({"piece": piece, "performance": pid, "tempo_ratio": rho, "soundfont": sf_name,
                     "n_frames": spec.shape[1], "duration_s": round(len(audio) / C.SAMPLE_RATE, 4),
                     "spec": str(spec_path)})
        # the alignment: performed times in place of score times, ρ = 1 for piece_passages
        head_on, missing = performed_onsets(perf, heads["onset_s"], heads["pitch"])
        matched = heads["status"] == "matched"
        if missing or np.isnan(head_on[matched]).any():
            raise PieceError("alignment", f"{missing} matched noteheads have no note in {midi_path.name}")
        heads_p = dict(heads, onset_s=head_on)
        sys_p = dict(systems, first_onset_s=system_starts(systems, heads_p, plan.time_map, rho))
        perf_t = {"performance": np.array([pid], dtype=object), "tempo_ratio": np.array([1.0]),
                  "n_frames": np.array([spec.shape[1]])}
        pas, snip = piece_passages(sys_p, heads_p, perf_t, params["passages"]["dedupe_onset_frames"])
        passages.append(pd.DataFrame({"piece": piece, **pas}))
        snippets.append(pd.DataFrame({"piece": piece, **snip}))
    write_json(out / "pieces" / piece / "performance.json",
               {"piece": piece, "seed": seed, "soundfont": sf_name, "tempo_ratios": ratios,
                "pedal_bars": 0 if bars is None else len(bars), **plan.summary()})
    return rows, pd.concat(passages, ignore_index=True), pd.concat(snippets, ignore_index=True), plan


def perform_split(params: dict, dataset: Path, out: Path, log=print) -> pd.DataFrame:
    """Core of the stage (module docstring); returns the report table (piece, outcome, reason, detail)."""
    cfg, ratios, sf_name, _ = scenario_config(params)
    rir = room_impulse_response(cfg["reverb"])
    pieces = pd.read_csv(dataset / SPLIT / "pieces.csv")
    tables = {k: [] for k in TABLES}
    report = []
    (out / SPLIT).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="scorelink-performed-") as tmp:
        for row in tqdm(list(pieces.itertuples(index=False)), desc="performed", disable=None):
            try:
                perfs, pas, snip, plan = perform_piece(row.piece, Path(row.unrolled).parent, out, params, rir, Path(tmp))
            except PieceError as e:
                report.append({"piece": row.piece, "outcome": "failed", "reason": e.reason, "detail": e.detail})
                log(f"{row.piece}: {e} (left out; the other pieces go on)")
                continue
            tables["pieces"].append(pd.DataFrame([row._asdict()]))
            tables["performances"].append(pd.DataFrame(perfs))
            tables["passages"].append(pas)
            tables["snippets"].append(snip)
            report.append({"piece": row.piece, "outcome": "ok", "reason": "", "detail":
                           f"tempo x{plan.time_map.tempo(0.0):.3f} at the start, {len(plan.deviation_s)} notes"})
    columns = {"pieces": list(pieces.columns),
               "performances": ["piece", "performance", "tempo_ratio", "soundfont", "n_frames", "duration_s", "spec"],
               "passages": ["piece", "performance", "system", "x0", "x1", "f0", "f1"],
               "snippets": ["piece", "performance", "system", "x", "frame", "pitch"]}
    for name in TABLES:
        df = pd.concat(tables[name], ignore_index=True) if tables[name] else pd.DataFrame(columns=columns[name])
        df[columns[name]].to_csv(out / SPLIT / f"{name}.csv", index=False)
    table = pd.DataFrame(report, columns=["piece", "outcome", "reason", "detail"])
    table.to_csv(out / "report.csv", index=False)
    n_ok = int((table.outcome == "ok").sum())
    log(f"{n_ok} of {len(table)} {SPLIT} pieces performed ({sf_name}, ρ {ratios}); "
        f"{len(table) - n_ok} failed (report.csv)")
    return table


# --- the figure ---------------------------------------------------------------------------------------

def example_figure(params: dict, dataset: Path, out: Path, figure: Path, piece: str | None = None,
                   system: int | None = None) -> tuple[str, int]:
    """One passage: the dataset's metronomic test rendering at evaluation.tempo against its performance,
    with the snippet pairs' onset frames, and the piece's tempo curve. Returns (piece, system)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rho = float(params["evaluation"]["tempo"])
    cfg, _, sf_name, _ = scenario_config(params)
    ours = {k: pd.read_csv(out / SPLIT / f"{k}.csv") for k in ("performances", "passages", "snippets")}
    base = {k: pd.read_csv(dataset / SPLIT / f"{k}.csv") for k in ("performances", "passages", "snippets")}
    perf_id = performance_id(rho, sf_name)
    base_id = performance_id(rho, params["render"]["test_soundfont"])
    if piece is None:
        piece = ours["performances"].piece.iloc[0]
    if system is None:
        n_sys = int((ours["passages"].piece == piece).sum() / max(1, (ours["performances"].piece == piece).sum()))
        system = min(1, n_sys - 1)

    def passage(t, pid):
        p = t["passages"]
        r = p[(p.piece == piece) & (p.performance == pid) & (p.system == system)].iloc[0]
        s = t["snippets"]
        frames = s[(s.piece == piece) & (s.performance == pid) & (s.system == system)].frame.to_numpy()
        spec_path = t["performances"].set_index(["piece", "performance"]).loc[(piece, pid), "spec"]
        return np.load(spec_path)[:, r.f0:r.f1], int(r.f0), int(r.f1), frames

    fig, axes = plt.subplots(3, 1, figsize=(11, 8.5), gridspec_kw={"height_ratios": [1, 1, 0.8]})
    for ax, (t, pid, title) in zip(axes[:2], ((base, base_id, "metronomic test rendering"),
                                               (ours, perf_id, "performed (III-sim)"))):
        spec, f0, f1, frames = passage(t, pid)
        ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", extent=(f0 / C.FPS, f1 / C.FPS, 0, spec.shape[0]))
        ax.vlines(frames / C.FPS, 0, spec.shape[0] * 0.06, color="tab:cyan", lw=1)
        ax.set_title(f"{piece}, system {system}: {title}, {pid}, frames {f0}-{f1} "
                     f"({(f1 - f0) / C.FPS:.1f} s; ticks: snippet onset frames)", fontsize=9)
        ax.set_ylabel("bin")
    axes[1].set_xlabel("performance time [s]")
    axes[0].set_xlabel("time [s] (= score time at ρ = 1)")
    plan_json = out / "pieces" / piece / "performance.json"
    import json

    info = json.loads(plan_json.read_text())["tempo_curve"]
    curve = Curve(np.array(info["periods_s"]), np.array(info["phases"]), np.array(info["weights"]), info["gain"])
    sysdf = pd.read_csv(Path(pd.read_csv(dataset / SPLIT / "pieces.csv").set_index("piece").loc[piece, "unrolled"]).parent
                        / "systems.csv")
    duration = float(sysdf.first_onset_s.max()) + 10
    s = np.linspace(0, duration, 2000)
    tempo = np.exp(curve(s)) / info["duration_scale"]
    ax = axes[2]
    ax.plot(s, tempo, color="tab:blue", label="local tempo factor (performance speed / score speed)")
    lo = sysdf.first_onset_s.iloc[system]
    hi = sysdf.first_onset_s.iloc[system + 1] if system + 1 < len(sysdf) else duration
    ax.axvspan(lo, hi, color="tab:orange", alpha=0.25, label=f"system {system}")
    ax.axhline(1.0, color="gray", lw=0.8, ls="--")
    ax.set_xlabel("score time [s at ρ = 1]")
    ax.set_ylabel("tempo factor")
    ax.set_title(f"tempo curve: depth {cfg['tempo_curve_depth']}, period ~{cfg['tempo_curve_period_s']} s; "
                 f"onset jitter {cfg['onset_jitter_ms']} ms, reverb rt60 {cfg['reverb']['rt60_s']} s "
                 f"(wet {cfg['reverb']['wet']}), noise {cfg['noise']['colour']} at {cfg['noise']['snr_db']} dB SNR",
                 fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=90)
    plt.close(fig)
    return piece, system


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, required=True, help="the dataset stage's folder (data/dataset)")
    ap.add_argument("--out", type=Path, required=True, help="output dataset folder (data/scenarios/performed)")
    ap.add_argument("--figure", type=Path, default=None, help="also draw one passage, metronomic vs performed (PNG)")
    add_params_argument(ap)
    args = ap.parse_args(argv)

    def log(m):
        print(f"[performed] {m}", file=sys.stderr, flush=True)

    try:
        params = from_args(args)
        table = perform_split(params, args.dataset, args.out, log=log)
    except ConfigError as e:
        log(f"configuration error: {e}")
        return 2
    if args.figure is not None:
        if (table.outcome == "ok").any():
            piece, system = example_figure(params, args.dataset, args.out, args.figure)
            log(f"figure {args.figure}: {piece}, system {system}")
        else:
            log("no piece performed: no figure")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
