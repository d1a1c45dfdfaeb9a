import numpy as np

from pipeline.core import constants as C
from pipeline.data.spectrogram import filter_center_frequencies, frame_signal, log_filterbank, log_frequencies, log_spectrogram


def test_filterbank_matches_msmd_madmom_chain():
    assert len(log_frequencies()) == 122          # 16 bands/octave, 30-6000 Hz
    fb = log_filterbank()
    assert fb.shape == (C.N_FFT_BINS, C.N_BINS) == (1024, 92)
    np.testing.assert_allclose(fb.sum(axis=0), 1.0, rtol=1e-12)   # area-normalised filters
    centres = filter_center_frequencies()
    assert len(np.unique(centres)) == 92                            # unique filters
    np.testing.assert_allclose(centres[[0, 1, 2, 45, -1]], [43.0664, 53.8330, 64.5996, 775.1953, 5673.9990], atol=1e-3)


def test_framing_origin_future_and_frame_count():
    x = np.arange(22050, dtype=np.float32)                    # 1 s
    frames = frame_signal(x)
    assert frames.shape == (20, 2048)                        # ceil(22050 / 1102.5)
    assert frames[1, 0] == 1102 and frames[2, 0] == 2205      # frame i starts at int(i * hop)
    assert frames[-1, -1] == 0                               # zero padding past the end


def test_sine_peaks_in_its_band_and_is_log_scaled():
    t = np.arange(2 * C.SAMPLE_RATE) / C.SAMPLE_RATE
    spec = log_spectrogram(0.5 * np.sin(2 * np.pi * 440.0 * t).astype(np.float32))
    assert spec.shape == (92, 40) and spec.dtype == np.float32
    peak = filter_center_frequencies()[np.argmax(spec[:, 10])]
    assert abs(peak - 440.0) < 15
    assert spec.min() >= 0.0                                  # log10(1 + x) of magnitudes


def test_values_lie_on_the_quantum_grid_and_match_the_plain_formula():
    from pipeline.data.spectrogram import QUANTUM, hann_window
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(C.SAMPLE_RATE)).astype(np.float32)
    spec = log_spectrogram(x)
    assert np.array_equal(np.round(spec.astype(np.float64) / QUANTUM) * QUANTUM, spec)
    np.testing.assert_array_equal(hann_window(), np.hanning(C.FRAME_SIZE).astype(np.float32))
    # the deterministic route equals numpy's vectorised one up to the grid
    frames = frame_signal(x)
    plain = np.log10(1 + np.abs(np.fft.rfft(frames * np.hanning(C.FRAME_SIZE), axis=1)[:, :1024]) @ log_filterbank()).T
    assert np.abs(spec - plain).max() < QUANTUM


def test_blockwise_magnitudes_equal_the_whole_signal_bit_for_bit():
    """Frames are transformed in cache-sized blocks (speed); the bytes must equal one whole-signal STFT."""
    from pipeline.data.spectrogram import hann_window, magnitudes
    rng = np.random.default_rng(1)
    x = (0.3 * rng.standard_normal(3 * C.SAMPLE_RATE + 777)).astype(np.float32)   # 61 frames: blocks end unevenly
    spectrum = np.fft.rfft(frame_signal(x) * hann_window(), axis=1)[:, :1024].T
    re, im = np.ascontiguousarray(spectrum.real), np.ascontiguousarray(spectrum.imag)
    whole = np.sqrt(re * re + im * im)
    for block in (1, 7, 64, 1000):
        part = magnitudes(x, block=block)
        assert part.shape == (550, 61) and part.dtype == np.float32
        assert np.array_equal(part, whole[:550])
    assert not log_filterbank()[550:].any()          # the bins left out carry no filter weight


def test_mono_downmix_is_the_channel_mean(tmp_path):
    import soundfile as sf

    from pipeline.data.render import load_mono
    stereo = np.random.default_rng(2).integers(-32768, 32767, size=(5000, 2)).astype(np.int16)
    sf.write(tmp_path / "x.wav", stereo, C.SAMPLE_RATE, subtype="PCM_16")
    assert np.array_equal(load_mono(tmp_path / "x.wav"), stereo.astype(np.float32).mean(axis=1) / 32767)
