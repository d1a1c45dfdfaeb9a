"""Log-frequency spectrogram equal to MSMD's madmom chain, in plain numpy.

madmom 0.16: ``SignalProcessor(num_channels=1, sample_rate=22050)`` ->
``FramedSignalProcessor(frame_size=2048, fps=20, origin='future')`` ->
``FilteredSpectrogramProcessor(LogarithmicFilterbank, num_bands=16, fmin=30, fmax=6000)``
(unique, area-normalised triangular filters) -> ``LogarithmicSpectrogramProcessor`` (log10(1+x)).

**The same bytes on every x86-64 machine.** NumPy picks SIMD kernels per CPU for transcendental
functions (cos, log10, complex abs) and OpenBLAS picks matrix kernels per CPU, so their float
results may differ in the last bit from one machine to the next. Here only exactly rounded IEEE
operations (multiply, add, sqrt; the FFT is compiled without runtime dispatch) touch the signal:
the window comes from libm's ``math.cos``, magnitudes are ``sqrt(re² + im²)`` and the filterbank is
an explicit sum in a fixed order. The one remaining vectorised function, ``log10``, runs in float64
and its result is rounded to a grid of 2^-16 (``QUANTUM``, 1.5e-5 log10 units, far below what any
model resolves), so a last-bit difference of float64 changes the stored float32 value with a
probability of about 1e-11 per value.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from pipeline.core import constants as C

QUANTUM = 2.0 ** -16   # [log10(1 + x) units] grid of the stored spectrogram values (see the module doc)


def log_frequencies(bands_per_octave: int = C.BANDS_PER_OCTAVE, fmin: float = C.FMIN,
                    fmax: float = C.FMAX, fref: float = C.FREF) -> np.ndarray:
    """Frequencies [Hz] spaced ``bands_per_octave`` per octave around ``fref``, within [fmin, fmax]."""
    left = np.floor(np.log2(fmin / fref) * bands_per_octave)
    right = np.ceil(np.log2(fmax / fref) * bands_per_octave)
    freqs = fref * 2.0 ** (np.arange(left, right) / bands_per_octave)
    freqs = freqs[np.searchsorted(freqs, fmin):]
    return freqs[:np.searchsorted(freqs, fmax, "right")]


def fft_frequencies(frame_size: int = C.FRAME_SIZE, sample_rate: int = C.SAMPLE_RATE) -> np.ndarray:
    """Centre frequency [Hz] of each of the ``frame_size // 2`` STFT bins."""
    return np.fft.fftfreq(frame_size, 1.0 / sample_rate)[: frame_size // 2]


def _nearest_bins(freqs: np.ndarray, bin_freqs: np.ndarray) -> np.ndarray:
    idx = np.clip(bin_freqs.searchsorted(freqs), 1, len(bin_freqs) - 1)
    left, right = bin_freqs[idx - 1], bin_freqs[idx]
    idx -= (freqs - left < right - freqs).astype(idx.dtype)
    return np.unique(idx)


@lru_cache(maxsize=4)
def log_filterbank(frame_size: int = C.FRAME_SIZE, sample_rate: int = C.SAMPLE_RATE) -> np.ndarray:
    """Triangular log filterbank, shape (n_fft_bins, n_filters) = (1024, 92), each filter sums to 1."""
    bins = _nearest_bins(log_frequencies(), fft_frequencies(frame_size, sample_rate))
    n_fft = frame_size // 2
    filters = []
    for start, center, stop in zip(bins[:-2], bins[1:-1], bins[2:]):
        if stop - start < 2:  # too narrow for a triangle: a single-bin filter
            center, stop = start, start + 1
        f = np.zeros(n_fft)
        f[start:center] = np.linspace(0, 1, center - start, endpoint=False)
        f[center:stop] = np.linspace(1, 0, stop - center, endpoint=False)
        filters.append(f / f.sum())
    fb = np.stack(filters, axis=1)
    fb.flags.writeable = False
    return fb


def filter_center_frequencies() -> np.ndarray:
    """Centre frequency [Hz] of every filter of :func:`log_filterbank` (92 values, ~43 Hz ... 5674 Hz)."""
    fb = log_filterbank()
    return fft_frequencies()[np.argmax(fb, axis=0)]


def frame_signal(signal: np.ndarray, frame_size: int = C.FRAME_SIZE,
                 hop_size: float = C.HOP_SIZE) -> np.ndarray:
    """Frames (n_frames, frame_size); frame i starts at sample int(i * hop_size) (madmom origin='future').

    n_frames = ceil(len(signal) / hop_size); frames running past the end are zero-padded.
    """
    starts, padded = _frame_starts(signal, frame_size, hop_size)
    return padded[starts[:, None] + np.arange(frame_size)[None, :]]


def _frame_starts(signal: np.ndarray, frame_size: int, hop_size: float) -> tuple[np.ndarray, np.ndarray]:
    """(start sample of every frame of :func:`frame_signal`, the signal zero-padded by one frame)."""
    n_frames = int(np.ceil(len(signal) / hop_size))
    starts = (np.arange(n_frames) * hop_size).astype(np.int64)
    return starts, np.concatenate([signal, np.zeros(frame_size, dtype=signal.dtype)])


@lru_cache(maxsize=1)
def hann_window(size: int = C.FRAME_SIZE) -> np.ndarray:
    """np.hanning(size) as float32, computed with libm's cos (not NumPy's per-CPU SIMD kernels)."""
    w = np.array([0.5 - 0.5 * math.cos(2.0 * math.pi * n / (size - 1)) for n in range(size)])
    w.flags.writeable = False
    return w.astype(np.float32)


@lru_cache(maxsize=1)
def _filter_taps() -> list[tuple[np.ndarray, np.ndarray]]:
    """Per filter: its non-zero FFT bins and float32 weights (the filterbank is sparse: ~10 bins a filter)."""
    fb = log_filterbank().astype(np.float32)
    return [(np.flatnonzero(fb[:, j]), fb[np.flatnonzero(fb[:, j]), j]) for j in range(fb.shape[1])]


def apply_filterbank(magnitude: np.ndarray) -> np.ndarray:
    """(n_fft_bins, T) float32 magnitudes -> (n_filters, T) float32, summed bin by bin in a fixed order
    (a BLAS product would sum in a CPU-dependent order)."""
    out = np.empty((len(_filter_taps()), magnitude.shape[1]), np.float32)
    for j, (bins, weights) in enumerate(_filter_taps()):
        acc = magnitude[bins[0]] * weights[0]
        for b, w in zip(bins[1:], weights[1:]):
            acc = acc + magnitude[b] * w
        out[j] = acc
    return out


@lru_cache(maxsize=1)
def _n_used_bins() -> int:
    """FFT bins below the highest filter tap (550 of 1024 at 22 050 Hz): the magnitudes above are never used."""
    return max(int(bins.max()) for bins, _ in _filter_taps()) + 1


def magnitudes(signal: np.ndarray, block: int = 64) -> np.ndarray:
    """STFT magnitudes of the frames of :func:`frame_signal`, shape (n_used_bins, n_frames), float32.

    Computed ``block`` frames at a time so that frames, window and spectrum stay in the CPU cache (the
    whole-signal version moved ~0.5 GB through memory per minute of audio and was 2-3x slower); each value
    is the same elementwise float32 arithmetic as over the whole signal, so the bytes do not change."""
    starts, padded = _frame_starts(signal, C.FRAME_SIZE, C.HOP_SIZE)
    offsets, window, n_bins = np.arange(C.FRAME_SIZE), hann_window(), _n_used_bins()
    out = np.empty((len(starts), n_bins), np.float32)
    for b0 in range(0, len(starts), block):
        frames = padded[starts[b0:b0 + block, None] + offsets]
        frames *= window
        spectrum = np.fft.rfft(frames, axis=1)[:, :n_bins]          # complex64
        re, im = spectrum.real, spectrum.imag
        np.sqrt(re * re + im * im, out=out[b0:b0 + block])
    return np.ascontiguousarray(out.T)


def log_spectrogram(signal: np.ndarray, sample_rate: int = C.SAMPLE_RATE) -> np.ndarray:
    """Log-filtered magnitude spectrogram, shape (92, n_frames), float32, log10(1 + x) on the
    ``QUANTUM`` grid (identical bytes on every x86-64 machine; see the module doc).

    ``signal``: mono float samples in [-1, 1] at ``sample_rate`` (must be 22 050 Hz).
    """
    if sample_rate != C.SAMPLE_RATE:
        raise ValueError(f"expected {C.SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
    magnitude = magnitudes(np.asarray(signal, dtype=np.float32))
    logs = np.log10(1.0 + apply_filterbank(magnitude).astype(np.float64))
    return (np.round(logs / QUANTUM) * QUANTUM).astype(np.float32)
