"""Fixed signal and layout constants shared by every stage (MSMD / lcasr values).

Everything tunable lives in ``params.yaml``; what is here defines the *format* of the
dataset (changing it changes every artifact), so it is fixed in code.
"""

# --- audio -------------------------------------------------------------------------------
SAMPLE_RATE = 22050          # [Hz] mono, as madmom's SignalProcessor in MSMD
FPS = 20                     # [frames / s] spectrogram frame rate
HOP_SIZE = SAMPLE_RATE / FPS  # [samples] 1102.5, fractional as in madmom (frame i starts at int(i*hop))
FRAME_SIZE = 2048            # [samples] STFT window (Hann), 93 ms
N_FFT_BINS = FRAME_SIZE // 2  # madmom drops the Nyquist bin: 1024 bins
BANDS_PER_OCTAVE = 16        # logarithmic filterbank resolution
FMIN = 30.0                  # [Hz] lowest filterbank frequency
FMAX = 6000.0                # [Hz] highest filterbank frequency (MSMD code, not its README's 16 kHz)
FREF = 440.0                 # [Hz] filterbank reference (A4)
N_BINS = 92                  # resulting number of unique, normalised log-frequency filters

# --- sheet -------------------------------------------------------------------------------
PAGE_WIDTH_PX = 835          # page images are resized to this width (A4 -> 835 x 1181)
STRIP_HEIGHT_PX = 200        # system strip height, centred on the system box (MSMD window 100+100)
WHITE = 255                  # uint8 background value of all score images

# --- snippets (consumed by the models) ----------------------------------------------------
SHEET_CONTEXT_PX = 180       # snippet width in the full-resolution unrolled score
STAFF_HEIGHT_PX = 160        # snippet height in the full-resolution unrolled score
SPEC_CONTEXT_FRAMES = 20     # 1 s audio snippet (92 x 20)
SHEET_SNIPPET_HW = (STAFF_HEIGHT_PX // 2, SHEET_CONTEXT_PX // 2)   # (80, 90): model input, half resolution
AUDIO_SNIPPET_HW = (N_BINS, SPEC_CONTEXT_FRAMES)                   # (92, 20): model input
NOMINAL_TEMPO = 1.0          # ρ of the validation renderings (render.plan_performances)

# --- LilyPond timing -----------------------------------------------------------------------
MIDI_RESOLUTION = 384        # ticks per quarter note in LilyPond's MIDI output


# --- names of a tempo factor ρ (one spelling for files, one for tables and figures) ---------
def rho_id(rho: float) -> str:
    """File-name spelling of ρ (x 1000, 4 digits): ``rho-0500`` is half speed, ``rho-1000`` the score's tempo."""
    return f"rho-{int(round(rho * 1000)):04d}"


def rho_label(rho: float) -> str:
    """Table and figure spelling of ρ: ``ρ=0.5``."""
    return f"ρ={rho:g}"
