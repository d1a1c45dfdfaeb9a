"""Model inputs cut from a split: snippet pairs (method.md §3.1) and passage snippet sequences (§3.2).

A :class:`SplitBank` holds one split in memory as two tensors, so that every batch is cut by one
vectorised gather, on the CPU or on the GPU (no per-sample Python, no DataLoader workers):

- ``sheet``: uint8 (200, W) — every piece's unrolled score (``STRIP_HEIGHT_PX`` rows) side by side;
- ``spec``: float32 (92, T) — every selected performance's spectrogram, one after another.

Sample coordinates are global columns / frames; each sample also carries the bounds ``[lo, hi)``
outside which it sees white paper (sheet) or silence (audio): the whole piece for snippet pairs
(as MSMD), the system's own strip / audio span for passages (as lcasr slices the strip).
Sheet snippets are cut at full resolution, 160 x 180 px, then averaged 2 x 2 to 80 x 90 (cv2's
exact-halving bilinear resize); pixel values are scaled to [0, 1] with white = 1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from pipeline.core.constants import N_BINS, SHEET_CONTEXT_PX, SPEC_CONTEXT_FRAMES, STAFF_HEIGHT_PX, STRIP_HEIGHT_PX, WHITE
from pipeline.data.packfile import open_split

SHEET_GAP_PX = SHEET_CONTEXT_PX      # white columns between pieces (never visible: bounds mask them)


def performance_mask(perf: pd.DataFrame, soundfonts: list[str] | None, tempo_range) -> pd.Series:
    """Rows of a performances table rendered with one of ``soundfonts`` (None: any) at a tempo ratio
    within ``tempo_range`` = [lo, hi] (MSMD's augmentation filter, ``load_msmd_piece``)."""
    keep = perf.tempo_ratio.between(tempo_range[0] - 1e-9, tempo_range[1] + 1e-9)
    if soundfonts is not None:
        keep &= perf.soundfont.isin(soundfonts)
    return keep


@dataclass
class SplitBank:
    sheet: torch.Tensor            # uint8 (STRIP_HEIGHT_PX, W)
    spec: torch.Tensor             # float32 (N_BINS, T)
    piece_x: dict                  # piece -> (x_offset, width) in ``sheet``
    perf_f: dict                   # (piece, performance) -> (frame_offset, n_frames) in ``spec``
    passages: pd.DataFrame         # piece, performance, system, x0, x1, f0, f1 (+ global gx0, gx1, gf0, gf1)
    snippets: pd.DataFrame         # piece, performance, system, x, frame (+ global gx, gf, lo/hi bounds)

    def to(self, device) -> "SplitBank":
        self.sheet, self.spec = self.sheet.to(device), self.spec.to(device)
        return self

    @property
    def device(self):
        return self.sheet.device


def load_split(dataset_dir: Path, split: str, soundfonts=None, tempo_range=(0.0, 1e9),
               root: Path = Path("."), context_frames: int = SPEC_CONTEXT_FRAMES,
               sheet_px: int = SHEET_CONTEXT_PX) -> SplitBank:
    """Load the split's tables and arrays, keeping performances that pass :func:`performance_mask`.

    Snippet pairs whose audio window (``context_frames`` frames, 1 s by default, starting
    ``context_frames // 2`` before the onset frame) or sheet window (``sheet_px`` columns centred
    on the notehead) would leave the piece are dropped (MSMD keeps an entity only if both windows fit)."""
    src = open_split(dataset_dir, split, root)     # a built dataset folder or a training pack (same tables and arrays)
    pieces = src.table("pieces")
    perf = src.table("performances")
    perf = perf[performance_mask(perf, soundfonts, tempo_range)].reset_index(drop=True)
    images, piece_x, x = [], {}, 0
    for row in pieces.itertuples():
        img = src.sheet(row)
        assert img.shape[0] == STRIP_HEIGHT_PX, f"{row.unrolled}: height {img.shape[0]} != {STRIP_HEIGHT_PX}"
        images += [img, np.full((STRIP_HEIGHT_PX, SHEET_GAP_PX), WHITE, np.uint8)]
        piece_x[row.piece] = (x, img.shape[1])
        x += img.shape[1] + SHEET_GAP_PX
    specs, perf_f, f = [], {}, 0
    for row in perf.itertuples():
        s = src.spec(row)
        assert s.shape[0] == N_BINS, f"{row.spec}: {s.shape[0]} bins != {N_BINS}"
        specs.append(s)
        perf_f[(row.piece, row.performance)] = (f, s.shape[1])
        f += s.shape[1]
    sheet = torch.from_numpy(np.concatenate(images, axis=1) if images else np.zeros((STRIP_HEIGHT_PX, 0), np.uint8))
    spec = torch.from_numpy(np.concatenate(specs, axis=1) if specs else np.zeros((N_BINS, 0), np.float32))

    def globalise(df: pd.DataFrame) -> pd.DataFrame:
        key = list(zip(df.piece, df.performance))
        df = df[[k in perf_f for k in key]].reset_index(drop=True)
        key = list(zip(df.piece, df.performance))
        df["px"] = [piece_x[p][0] for p in df.piece]
        df["pw"] = [piece_x[p][1] for p in df.piece]
        df["pf"] = [perf_f[k][0] for k in key]
        df["pn"] = [perf_f[k][1] for k in key]
        return df

    passages = globalise(src.table("passages"))
    snippets = globalise(src.table("snippets"))
    half_w, start = sheet_px / 2, snippets.frame - context_frames // 2
    fits = ((snippets.x - half_w >= 0) & (snippets.x + half_w <= snippets.pw)
            & (start >= 0) & (start + context_frames <= snippets.pn))
    snippets = snippets[fits].reset_index(drop=True)
    return SplitBank(sheet, spec, piece_x, perf_f, passages, snippets)


# --- cutting --------------------------------------------------------------------------------------

def cut_sheet(sheet: torch.Tensor, cx: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
              dy: torch.Tensor | None = None, scale: torch.Tensor | None = None,
              width: int = SHEET_CONTEXT_PX) -> torch.Tensor:
    """Sheet snippets (B, 1, 80, ``width`` / 2) float in [0, 1] centred on global columns ``cx`` (B,) [px];
    ``width`` [px, full resolution]: 180 -> (B, 1, 80, 90).

    ``dy`` (B,) int: vertical shift [px] (system translation); ``scale`` (B,): nearest-neighbour zoom
    about the centre (MSMD's sheet scaling). Columns outside [lo, hi) and rows outside the strip are white.
    """
    dev, b = sheet.device, cx.shape[0]
    h, w = STAFF_HEIGHT_PX, width
    u = torch.arange(h, device=dev, dtype=torch.float32) - h / 2 + 0.5      # row offsets from the centre
    v = torch.arange(w, device=dev, dtype=torch.float32) - w / 2 + 0.5      # column offsets
    s = torch.ones(b, device=dev) if scale is None else scale.to(dev, torch.float32)
    rows = STRIP_HEIGHT_PX // 2 + torch.floor(u[None, :] / s[:, None]).long()
    if dy is not None:
        rows = rows + dy.to(dev).long()[:, None]
    cols = torch.round(cx.to(dev, torch.float64)).long()[:, None] + torch.floor(v[None, :] / s[:, None]).long()
    ok_r = (rows >= 0) & (rows < sheet.shape[0])
    ok_c = (cols >= lo.to(dev)[:, None]) & (cols < hi.to(dev)[:, None])
    idx = rows.clamp(0, sheet.shape[0] - 1)[:, :, None] * sheet.shape[1] + cols.clamp(0, sheet.shape[1] - 1)[:, None, :]
    pix = sheet.reshape(-1)[idx].float()
    pix = torch.where(ok_r[:, :, None] & ok_c[:, None, :], pix, float(WHITE)) / WHITE
    return F.avg_pool2d(pix.unsqueeze(1), 2)


def cut_spec(spec: torch.Tensor, start: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
             frames: int = SPEC_CONTEXT_FRAMES) -> torch.Tensor:
    """Audio snippets (B, 1, 92, ``frames``) = ``spec[:, start : start + frames]``; frames outside [lo, hi) are 0."""
    dev = spec.device
    t = start.to(dev).long()[:, None] + torch.arange(frames, device=dev)[None, :]
    ok = (t >= lo.to(dev)[:, None]) & (t < hi.to(dev)[:, None])
    x = spec[:, t.clamp(0, max(spec.shape[1] - 1, 0))]                       # (92, B, frames)
    return torch.where(ok[None], x, 0.0).permute(1, 0, 2).unsqueeze(1)


def cut_spec_retimed(spec: torch.Tensor, frame: torch.Tensor, factor: torch.Tensor, lo: torch.Tensor,
                     hi: torch.Tensor, frames: int = SPEC_CONTEXT_FRAMES) -> torch.Tensor:
    """Audio snippets (B, 1, 92, ``frames``) as a rendering at tempo ratio ρ = ``factor`` (B,) would show them:
    output frame j reads ``spec`` at ``frame + (j - frames // 2) x factor`` (linear interpolation), averaged
    over ``ceil(factor)`` evenly spaced points across its span when ``factor`` > 1 (anti-aliasing, as the
    longer analysis window of a faster rendering); frames outside [lo, hi) are 0. ``factor`` 1 equals
    :func:`cut_spec` at ``frame - frames // 2``."""
    dev = spec.device
    k = max(1, math.ceil(float(factor.max())))                    # sub-samples per output frame (read before the move)
    f = factor.to(dev, torch.float32)
    sub = (torch.arange(k, device=dev, dtype=torch.float32) - (k - 1) / 2) / k    # offsets within a frame's span
    j = torch.arange(frames, device=dev, dtype=torch.float32) - frames // 2
    pos = frame.to(dev, torch.float32)[:, None, None] + (j[None, :, None] + sub[None, None, :]
                                                          * (f[:, None, None] > 1)) * f[:, None, None]
    i0 = torch.floor(pos)
    w = pos - i0
    lo_, hi_ = lo.to(dev)[:, None, None], hi.to(dev)[:, None, None]

    def read(i):                                                   # (92, B, frames, k), 0 outside [lo, hi)
        i = i.long()
        ok = (i >= lo_) & (i < hi_)
        return torch.where(ok[None], spec[:, i.clamp(0, max(spec.shape[1] - 1, 0))], 0.0)

    x = ((1 - w)[None] * read(i0) + w[None] * read(i0 + 1)).mean(dim=3)
    return x.permute(1, 0, 2).unsqueeze(1)


# --- snippet pairs (pretraining) -------------------------------------------------------------------

def common_window(variants: dict) -> dict:
    """``load_split`` window arguments that every pair of a comparison of snippet-model variants
    (``snippet_variants`` of params.yaml) must fit: the longest audio context [frames], the widest sheet [px]."""
    return {"context_frames": max(v["audio_context_frames"] for v in variants.values()),
            "sheet_px": max(v["sheet_context_px"] for v in variants.values())}


@dataclass
class Augment:
    """MSMD / lcasr ``full_aug``: system translation ±px, sheet scale range, onset jitter ±frames; and ours,
    ``tempo``: the audio excerpt retimed as a rendering at a tempo ratio ρ drawn log-uniformly from this range
    ((1, 1) = off, the anchors)."""
    system_translation: int = 0
    scale: tuple = (1.0, 1.0)
    onset_jitter: int = 0
    tempo: tuple = (1.0, 1.0)

    @classmethod
    def from_params(cls, augment: dict, tempo=None) -> "Augment":
        """From ``train_snippet.augment`` of params.yaml and a variant's ``tempo_augment`` (None: off)."""
        return cls(augment["system_translation"], tuple(augment["scale"]), augment["onset_jitter"],
                   tuple(float(r) for r in tempo or (1.0, 1.0)))


def snippet_batch(bank: SplitBank, rows: np.ndarray, aug: Augment | None = None,
                  gen: torch.Generator | None = None, context_frames: int = SPEC_CONTEXT_FRAMES,
                  sheet_px: int = SHEET_CONTEXT_PX):
    """Sheet (B, 1, 80, ``sheet_px`` / 2) and audio (B, 1, 92, ``context_frames``) snippet pairs for
    snippet-table ``rows`` (defaults: 80 x 90 and 92 x 20); the audio window starts ``context_frames // 2``
    frames before the (jittered) onset frame."""
    t = bank.snippets.iloc[rows]
    b = len(t)
    col = lambda values: torch.from_numpy(np.array(values))
    cx = col(t.px + t.x).double()
    lo, hi = col(t.px), col(t.px + t.pw)
    frame, flo, fhi = col(t.pf + t.frame), col(t.pf), col(t.pf + t.pn)
    dy = scale = rho = None
    if aug is not None:
        dy = torch.randint(-aug.system_translation, aug.system_translation + 1, (b,), generator=gen)
        scale = aug.scale[0] + (aug.scale[1] - aug.scale[0]) * torch.rand(b, generator=gen)
        frame = frame + torch.randint(-aug.onset_jitter, aug.onset_jitter + 1, (b,), generator=gen)
        if tuple(aug.tempo) != (1.0, 1.0):      # drawn only when on: the anchors' batches stay as they were
            log_lo, log_hi = np.log(aug.tempo[0]), np.log(aug.tempo[1])
            rho = torch.exp(log_lo + (log_hi - log_lo) * torch.rand(b, generator=gen, dtype=torch.float64))
    sheet = cut_sheet(bank.sheet, cx, lo, hi, dy, scale, width=sheet_px)
    if rho is None:
        audio = cut_spec(bank.spec, frame - context_frames // 2, flo, fhi, frames=context_frames)
    else:
        audio = cut_spec_retimed(bank.spec, frame, rho, flo, fhi, frames=context_frames)
    return sheet, audio


# --- passages (sequence model) ---------------------------------------------------------------------

SHEET_PAD_HALF = 20      # lcasr pads 20 white half-resolution columns left of the strip


def sheet_starts(width_px: int, hop_half: int) -> np.ndarray:
    """Snippet centres [full-res px, relative to the strip start] of a strip ``width_px`` wide (lcasr §3.2:
    half-resolution starts ``range(0, W/2 + 20, hop)`` over the strip padded by 20 columns)."""
    w_half = -(-width_px // 2)
    t = np.arange(0, w_half + SHEET_PAD_HALF, hop_half)
    return 2 * (t - SHEET_PAD_HALF) + SHEET_CONTEXT_PX // 2


def audio_starts(n_frames: int, hop: int) -> np.ndarray:
    """Window starts [frames, relative to the span start]: ``range(0, n, hop)`` (at least one)."""
    return np.arange(0, max(n_frames, 1), hop)


def passage_sheet(bank: SplitBank, rows: np.ndarray, sheet_hop_half: int):
    """Sheet snippet sequences of passages ``rows``: (N_s, 1, 80, 90) and the lengths (B,)."""
    t = bank.passages.iloc[rows]
    cx, lo, hi = [], [], []
    for px, x0, x1 in zip(t.px.to_numpy(), t.x0.to_numpy(), t.x1.to_numpy()):
        gx0, gx1 = px + x0, px + x1
        c = gx0 + sheet_starts(x1 - x0, sheet_hop_half)
        cx.append(c), lo.append(np.full(len(c), gx0)), hi.append(np.full(len(c), gx1))
    cat = lambda xs: torch.as_tensor(np.concatenate(xs))                    # noqa: E731
    return cut_sheet(bank.sheet, cat(cx).double(), cat(lo), cat(hi)), torch.as_tensor([len(c) for c in cx])


def passage_audio(bank: SplitBank, rows: np.ndarray, audio_hop: int):
    """Audio snippet sequences of passages ``rows``: (N_a, 1, 92, 20) and the lengths (B,)."""
    t = bank.passages.iloc[rows]
    fs, flo, fhi = [], [], []
    for pf, f0, f1 in zip(t.pf.to_numpy(), t.f0.to_numpy(), t.f1.to_numpy()):
        gf0, gf1 = pf + f0, pf + f1
        s = gf0 + audio_starts(f1 - f0, audio_hop)
        fs.append(s), flo.append(np.full(len(s), gf0)), fhi.append(np.full(len(s), gf1))
    cat = lambda xs: torch.as_tensor(np.concatenate(xs))                    # noqa: E731
    return cut_spec(bank.spec, cat(fs), cat(flo), cat(fhi)), torch.as_tensor([len(s) for s in fs])


def passage_batch(bank: SplitBank, rows: np.ndarray, sheet_hop_half: int, audio_hop: int):
    """Snippet sequences of passages ``rows``: sheet (N_s, 1, 80, 90), audio (N_a, 1, 92, 20) and
    the per-passage sequence lengths (B,) of each (sheet and audio lengths differ)."""
    sheet, n_s = passage_sheet(bank, rows, sheet_hop_half)
    audio, n_a = passage_audio(bank, rows, audio_hop)
    return sheet, audio, n_s, n_a
