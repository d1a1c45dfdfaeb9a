"""MIDI reading, tempo maps and performance MIDI files (tempo ratio, preset, velocity).

Score time is measured in *moments* (whole notes, exact rationals from LilyPond); performance
time in seconds. LilyPond writes its own MIDI at 384 ticks per quarter, so a moment ``m``
is tick ``m * 4 * 384`` and its time follows the file's tempo map.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import mido
import numpy as np


@dataclass(frozen=True)
class Note:
    onset_tick: int
    offset_tick: int
    pitch: int
    channel: int


class TempoMap:
    """Tick -> seconds for a MIDI file (tempo changes from every track, as LilyPond writes them)."""

    def __init__(self, ticks_per_beat: int, tempo_changes: list[tuple[int, int]]):
        self.tpb = ticks_per_beat
        changes = sorted(tempo_changes) or [(0, 500000)]
        if changes[0][0] != 0:
            changes.insert(0, (0, 500000))
        self.ticks = [t for t, _ in changes]
        self.tempos = [tempo for _, tempo in changes]
        self.seconds = [0.0]
        for i in range(1, len(changes)):
            dt = self.ticks[i] - self.ticks[i - 1]
            self.seconds.append(self.seconds[-1] + dt * self.tempos[i - 1] / 1e6 / self.tpb)

    def time(self, tick: float) -> float:
        i = bisect.bisect_right(self.ticks, tick) - 1
        return self.seconds[i] + (tick - self.ticks[i]) * self.tempos[i] / 1e6 / self.tpb

    def moment_to_tick(self, moment: Fraction) -> float:
        return float(moment) * 4 * self.tpb


def read_midi(path: Path) -> tuple[list[Note], TempoMap]:
    """Notes (sorted by onset, pitch) and tempo map of a MIDI file."""
    mf = mido.MidiFile(str(path))
    tempos, notes = [], []
    for track in mf.tracks:
        tick, active = 0, {}
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                tempos.append((tick, msg.tempo))
            elif msg.type == "note_on" and msg.velocity > 0:
                active.setdefault((msg.channel, msg.note), []).append(tick)
            elif msg.type in ("note_off", "note_on"):
                starts = active.get((msg.channel, msg.note))
                if starts:
                    notes.append(Note(starts.pop(0), tick, msg.note, msg.channel))
    notes.sort(key=lambda n: (n.onset_tick, n.pitch))
    return notes, TempoMap(mf.ticks_per_beat, tempos)


def write_performance_midi(src: Path, dst: Path, rho: float, program: int | None,
                           velocity: int | None) -> None:
    """Copy ``src`` played at tempo factor ``rho`` (the paper's ρ: performance time = score time / ρ,
    so ρ = 0.5 is half speed and lasts twice as long), optionally forcing one GM ``program`` on all
    melodic channels and one ``velocity`` on all notes (MSMD v1.1: 64)."""
    mf = mido.MidiFile(str(src))
    for track in mf.tracks:
        for i, msg in enumerate(track):
            if msg.type == "set_tempo":
                track[i] = msg.copy(tempo=max(1, int(round(msg.tempo / rho))))
            elif msg.type == "program_change" and program is not None and msg.channel != 9:
                track[i] = msg.copy(program=program)
            elif msg.type == "note_on" and msg.velocity > 0 and velocity is not None:
                track[i] = msg.copy(velocity=velocity)
    if not any(m.type == "set_tempo" for t in mf.tracks for m in t):
        mf.tracks[0].insert(0, mido.MetaMessage("set_tempo", tempo=int(round(500000 / rho)), time=0))
    if program is not None:  # LilyPond sets the program per channel; add one where it did not
        channels = sorted({m.channel for t in mf.tracks for m in t if m.type == "note_on"} - {9})
        for ch in channels:
            mf.tracks[-1].insert(0, mido.Message("program_change", channel=ch, program=program, time=0))
    mf.save(str(dst))


def onset_array(notes: list[Note], tempo: TempoMap) -> np.ndarray:
    """(n_notes, 2) float array of [onset seconds, pitch]."""
    return np.array([[tempo.time(n.onset_tick), n.pitch] for n in notes], dtype=float).reshape(-1, 2)
