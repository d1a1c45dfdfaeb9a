"""Byte-identical data across machines: the spectrogram under emulated CPUs, PNG bytes, stable music21
sources, the dataset manifest, and the default corpus against its committed reference manifest."""
import hashlib
import io
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, snakemake, write_params
from PIL import Image

REFERENCE = REPO / "tests" / "reference" / "default_data_manifest.tsv"

# Other x86-64 machines, emulated on this one: NumPy without its AVX-512 / AVX2 kernels and OpenBLAS
# with older cores' kernels. The plain numpy formula of the spectrogram changes under each of them.
MACHINES = {
    "native": {},
    "avx2": {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL", "OPENBLAS_CORETYPE": "Haswell"},
    "sse": {"NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL", "OPENBLAS_CORETYPE": "Nehalem"},
}
SPEC_DIGEST = """
import hashlib, sys, numpy as np
sys.path.insert(0, {repo!r})
from pipeline.data.spectrogram import log_spectrogram, frame_signal, log_filterbank
x = (0.3 * np.random.default_rng(0).standard_normal(3 * 22050)).astype(np.float32)
plain = np.log10(1 + np.abs(np.fft.rfft(frame_signal(x) * np.hanning(2048).astype(np.float32), axis=1)[:, :1024])
                 .astype(np.float32) @ log_filterbank().astype(np.float32))
print(hashlib.sha256(log_spectrogram(x).tobytes()).hexdigest(), hashlib.sha256(plain.tobytes()).hexdigest())
"""


def test_spectrogram_bytes_do_not_depend_on_the_cpu_kernels():
    digests = {}
    for name, env in MACHINES.items():
        res = subprocess.run([sys.executable, "-c", SPEC_DIGEST.format(repo=str(REPO))], capture_output=True,
                             text=True, env={**os.environ, **env})
        assert res.returncode == 0, res.stderr
        digests[name] = res.stdout.split()
    ours, plain = zip(*digests.values())
    assert len(set(ours)) == 1, digests
    assert len(set(plain)) > 1, "the emulation no longer changes NumPy's kernels: this test checks nothing"


def test_png_writer_round_trips_and_is_stable():
    from pipeline.data.engrave import png_bytes
    img = (np.random.default_rng(1).random((41, 67)) * 255).astype(np.uint8)
    data = png_bytes(img)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), img)
    # the system zlib at level 6: these bytes are what any machine writes for this image
    assert hashlib.sha256(png_bytes(np.full((3, 4), 255, np.uint8))).hexdigest()[:16] == "47349c6e62d0c26f"


def test_music21_sources_are_identical_across_conversions(tmp_path):
    for run in ("a", "b"):
        res = subprocess.run([sys.executable, "-m", "pipeline.data.corpus_music21", "--work", "bach/bwv16.6",
                              "--out", str(tmp_path / run)], capture_output=True, text=True, cwd=REPO)
        assert res.returncode == 0, res.stderr
    a, b = ((tmp_path / run / "bach__chorales__bwv16-6.ly").read_text() for run in ("a", "b"))
    assert a == b and "PartPOneVoiceOne" in a           # part ids no longer random


def test_manifest_compare_names_every_difference(tmp_path):
    from pipeline.data import manifest
    (tmp_path / "d").mkdir()
    for name, text in (("a.csv", "1"), ("b.npy", "2"), (".snakemake_timestamp", "")):
        (tmp_path / "d" / name).write_text(text)
    ref = manifest.build([tmp_path / "d"], tmp_path)
    assert list(ref.path) == ["d/a.csv", "d/b.npy"]                   # bookkeeping files are not data
    (tmp_path / "d" / "b.npy").write_text("3")
    (tmp_path / "d" / "c.png").write_text("4")
    (tmp_path / "d" / "a.csv").unlink()
    diff = manifest.compare(ref, manifest.build([tmp_path / "d"], tmp_path))
    assert diff == {"missing": ["d/a.csv"], "added": ["d/c.png"], "changed": ["d/b.npy"]}
    text = manifest.report(diff)
    assert "1 changed" in text and "d/b.npy" in text and "spectrograms" in text
    assert manifest.report(manifest.compare(ref, ref)).startswith("identical")


# Three pieces of the default corpus, one per split and per conversion route (a MusicXML work, two
# reduced chorales): built here with the real workflow, their files must equal the committed reference.
SAMPLE = ["schoenberg__opus19__movement2", "bach__chorales__bwv3-6", "bach__chorales__bwv16-6"]


@pytest.mark.slow
def test_default_corpus_sample_matches_the_committed_manifest(tmp_path, base_params):
    from pipeline.data import manifest
    p = dict(base_params)
    p["corpus"] = {**base_params["corpus"], "pieces": SAMPLE}
    p["figures"] = {"n_pieces": 0}
    write_params(tmp_path, p)
    res = snakemake(tmp_path, "data/dataset/manifest.tsv")
    assert res.returncode == 0, res.stderr[-3000:]
    built = manifest.only_pieces(manifest.read(tmp_path / "data/dataset/manifest.tsv"), SAMPLE)
    ref = manifest.only_pieces(manifest.read(REFERENCE), SAMPLE)
    assert len(ref) > 40 and set(ref.path.str.split("/").str[2]) == set(SAMPLE)
    diff = manifest.compare(ref, built)
    assert not any(diff.values()), manifest.report(diff)


def test_reference_manifest_covers_the_default_corpus(base_params):
    from pipeline.data import manifest
    from pipeline.data.corpus import piece_index
    ref = manifest.read(REFERENCE)
    pieces = {p.name for p in piece_index(base_params).pieces}
    assert set(ref.path[ref.path.str.startswith("data/pieces/")].str.split("/").str[2]) == pieces
    assert {"data/dataset/summary.json", "data/dataset/test/passages.csv"} <= set(ref.path)
    assert pd.api.types.is_integer_dtype(ref.bytes)
