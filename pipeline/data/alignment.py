"""Notehead <-> MIDI onset alignment from LilyPond's own timing (no DTW).

A notehead is *matched* when LilyPond's MIDI has a note-on of the same pitch at the notehead's
moment (grace notes: within the time LilyPond steals before the main note). A notehead inside a
sounding note of the same pitch is a *tie continuation* and has no onset of its own.
"""
from __future__ import annotations

import bisect
from collections import defaultdict
from fractions import Fraction

import numpy as np

from pipeline.data.midi import Note, TempoMap
from pipeline.data.probe import HeadInfo

TICK_TOLERANCE = 1.0          # [ticks] rounding of tuplet moments to integer MIDI ticks
GRACE_WINDOW = Fraction(1, 4)  # [whole notes] how far before its main moment a grace note may sound


def midi_origin_shift(heads: list[HeadInfo], notes: list[Note], tempo: TempoMap) -> float:
    """[ticks] added to every moment before looking it up in LilyPond's MIDI.

    With grace notes before the first beat, the MIDI file starts with them and the main notes
    sound later by however long LilyPond plays the graces. The shift is the MIDI onset among the
    first quarter of a whole note that makes the most of the first 64 main noteheads match exactly.
    """
    if not any(h.moment == 0 and h.grace < 0 for h in heads):
        return 0.0
    main = sorted((h for h in heads if h.grace == 0), key=lambda h: h.moment)[:64]
    onsets = {(n.pitch, n.onset_tick) for n in notes}
    limit = tempo.moment_to_tick(GRACE_WINDOW)
    candidates = sorted({n.onset_tick for n in notes if n.onset_tick <= limit})

    def hits(shift):
        return sum((h.pitch, round(tempo.moment_to_tick(h.moment) + shift)) in onsets for h in main)
    return float(max(candidates, key=lambda c: (hits(c), -c), default=0))


def match_heads(heads: list[HeadInfo], notes: list[Note], tempo: TempoMap, shift: float = 0.0) -> list[dict]:
    """One dict per notehead: ``status`` in {matched, tie, unmatched} and the matched ``onset_tick``.

    ``shift`` [ticks] is added to every moment (see :func:`midi_origin_shift`)."""
    onsets: dict[int, list[int]] = defaultdict(list)
    spans: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for n in notes:
        onsets[n.pitch].append(n.onset_tick)
        spans[n.pitch].append((n.onset_tick, n.offset_tick))
    for v in onsets.values():
        v.sort()
    rows = []
    for h in heads:
        tick = tempo.moment_to_tick(h.moment) + shift
        cand = onsets.get(h.pitch, [])
        found = None
        if h.grace != 0:
            lo = tick - tempo.moment_to_tick(GRACE_WINDOW)
            i, j = bisect.bisect_left(cand, lo - TICK_TOLERANCE), bisect.bisect_right(cand, tick + TICK_TOLERANCE)
            target = tick + tempo.moment_to_tick(h.grace)
            found = min(cand[i:j], key=lambda t: abs(t - target), default=None)
        else:
            i = bisect.bisect_left(cand, tick - TICK_TOLERANCE)
            if i < len(cand) and cand[i] <= tick + TICK_TOLERANCE:
                found = cand[i]
        if found is not None:
            rows.append({"status": "matched", "onset_tick": found, "pitch": h.pitch})
        elif any(on < tick - TICK_TOLERANCE and tick < off for on, off in spans.get(h.pitch, [])):
            rows.append({"status": "tie", "onset_tick": None, "pitch": h.pitch})
        else:
            rows.append({"status": "unmatched", "onset_tick": None, "pitch": h.pitch})
    return rows


def monotonic_violations(systems: np.ndarray, moments: np.ndarray, x: np.ndarray) -> int:
    """Count adjacent score columns (per system, sorted by moment) whose mean x does not increase."""
    bad = 0
    for s in np.unique(systems):
        sel = systems == s
        cols = defaultdict(list)
        for m, xx in zip(moments[sel], x[sel]):
            cols[m].append(xx)
        xs = [np.mean(cols[m]) for m in sorted(cols)]
        bad += int(np.sum(np.diff(xs) <= 0))
    return bad


def alignment_report(rows: list[dict], notes: list[Note], violations: int, system_starts_s: list[float],
                     min_heads_matched: float, min_onsets_covered: float) -> dict:
    """Counts and the pass/fail verdict of a piece's alignment."""
    n_heads = len(rows)
    n_tie = sum(r["status"] == "tie" for r in rows)
    n_matched = sum(r["status"] == "matched" for r in rows)
    matched_onsets = {(r["pitch"], r["onset_tick"]) for r in rows if r["status"] == "matched"}
    all_onsets = {(n.pitch, n.onset_tick) for n in notes}
    heads_ratio = n_matched / max(1, n_heads - n_tie)
    onsets_ratio = len(matched_onsets & all_onsets) / max(1, len(all_onsets))
    systems_increasing = bool(np.all(np.diff(system_starts_s) > 0))
    failures = []
    if heads_ratio < min_heads_matched:
        failures.append(f"noteheads matched {heads_ratio:.3f} < {min_heads_matched}")
    if onsets_ratio < min_onsets_covered:
        failures.append(f"onsets covered {onsets_ratio:.3f} < {min_onsets_covered}")
    if violations:
        failures.append(f"{violations} non-monotonic columns")
    if not systems_increasing:
        failures.append("system start times not increasing")
    return {
        "noteheads": n_heads, "tie_continuations": n_tie, "matched": n_matched,
        "unmatched": n_heads - n_tie - n_matched, "noteheads_matched_ratio": round(heads_ratio, 6),
        "midi_onsets": len(all_onsets), "onsets_covered_ratio": round(onsets_ratio, 6),
        "monotonic_violations": violations, "systems_increasing": systems_increasing,
        "passed": not failures, "failures": failures,
    }
