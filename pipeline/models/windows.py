"""Window sequences of whole pieces and recordings under a snippet model (piece identification, queries).

Sheet: 180 px windows (full resolution) centred every ``hop_px`` along an unrolled score; audio: 1 s
windows (20 frames) starting every ``hop`` frames. Embeddings are unit rows (the snippet model's
CCA-projected, L2-normalised outputs).

A snippet-model variant (issue 14: longer audio context, wider sheet, attention) reads windows of its own geometry
at the same positions: a T-frame audio window shares the centre of the 1-s window starting there (it starts
``T // 2 - 10`` frames earlier; silence beyond the recording), a wider sheet window the centre. The default model's
windows are cut exactly as before.
"""
from __future__ import annotations

import numpy as np
import torch

from pipeline.core.constants import SHEET_CONTEXT_PX, SPEC_CONTEXT_FRAMES
from pipeline.models.networks import SnippetModel
from pipeline.models.snippets import cut_sheet, cut_spec


def sheet_centres(width_px: int, hop_px: int) -> np.ndarray:
    """Window centres [px] along a score ``width_px`` wide: every ``hop_px`` from the first full window
    to the last one (one window, centred, when the score is narrower than a window)."""
    first, last = SHEET_CONTEXT_PX / 2, width_px - SHEET_CONTEXT_PX / 2
    if last <= first:
        return np.array([width_px / 2])
    return np.append(np.arange(first, last, hop_px), last)


def audio_window_starts(n_frames: int, hop: int) -> np.ndarray:
    """Window starts [frames] along a performance: every ``hop`` up to the last full window (at least one)."""
    return np.arange(0, max(n_frames - SPEC_CONTEXT_FRAMES, 0) + 1, hop)



@torch.no_grad()
def _embed_windows(embed, cut, source: torch.Tensor, positions: np.ndarray, batch: int) -> np.ndarray:
    """(W, dim) float32 embeddings of the windows at ``positions`` of ``source`` (its last axis), cut
    ``batch`` at a time by ``cut(source, positions, lo, hi)`` with the whole source as bounds."""
    out = []
    for i in range(0, len(positions), batch):
        at = torch.from_numpy(positions[i:i + batch])
        lo, hi = torch.zeros(len(at), dtype=torch.long), torch.full((len(at),), source.shape[-1], dtype=torch.long)
        out.append(embed(cut(source, at, lo, hi)).float().cpu())
    return torch.cat(out).numpy()


def embed_piece_sheet(model: SnippetModel, image: np.ndarray, hop_px: int, device, batch: int = 256):
    """(centres (W,), embeddings (W, dim)) of one unrolled score (uint8, 200 x width)."""
    centres = sheet_centres(image.shape[1], hop_px)
    width = getattr(model, "sheet_px", SHEET_CONTEXT_PX)
    cut = cut_sheet if width == SHEET_CONTEXT_PX else (lambda src, at, lo, hi: cut_sheet(src, at, lo, hi, width=width))
    return centres, _embed_windows(model.embed_sheet, cut, torch.from_numpy(image).to(device), centres, batch)


def retimed(spec: np.ndarray, factor: float) -> np.ndarray:
    """(bins, round(n_frames * factor)) float32: a spectrogram (bins, n_frames) stretched in time by ``factor``
    (0.5: twice as fast, what a rendering at tempo ratio 0.5 needs to look like one at 1), bilinear with
    anti-aliasing when it shrinks; at least one 1-s window long. ``factor`` 1 returns ``spec`` itself."""
    if factor == 1.0:
        return spec
    n = max(int(round(spec.shape[1] * factor)), SPEC_CONTEXT_FRAMES)
    x = torch.from_numpy(np.ascontiguousarray(spec, dtype=np.float32))[None, None]
    return torch.nn.functional.interpolate(x, size=(spec.shape[0], n), mode="bilinear", antialias=True,
                                           align_corners=False)[0, 0].numpy()


def embed_performance(model: SnippetModel, spec: np.ndarray, hop: int, device, batch: int = 512, time_factor: float = 1.0):
    """(starts (W,), embeddings (W, dim)) of one spectrogram (92, n_frames); ``starts``: of the 1-s windows
    (in the frames of the spectrogram retimed by ``time_factor``, :func:`retimed`)."""
    spec = retimed(spec, time_factor)
    starts = audio_window_starts(spec.shape[1], hop)
    frames = getattr(model, "context_frames", SPEC_CONTEXT_FRAMES)
    shift = frames // 2 - SPEC_CONTEXT_FRAMES // 2
    if frames == SPEC_CONTEXT_FRAMES:
        cut = cut_spec
    else:
        cut = lambda src, at, lo, hi: cut_spec(src, at - shift, lo, hi, frames=frames)
    return starts, _embed_windows(model.embed_audio, cut, torch.from_numpy(spec).to(device), starts, batch)
