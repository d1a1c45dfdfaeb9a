"""The portable training pack (pipeline.data.pack): round trip against the built dataset, parts and
checksums, clear errors, and the training and evaluation stages run from a pack on a node without
LilyPond, fluidsynth, soundfonts or corpus (PATH reduced to the Python environment)."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import REPO, write_params

from pipeline.data import packfile
from pipeline.data.pack import build_pack
from pipeline.data.pack import main as pack_main
from pipeline.data.packfile import Pack, PackError, dequantise_spec, quantise_spec
from pipeline.models.snippets import load_split

SPLITS = ("train", "valid", "test")
TARGETS = ("results/metrics/bl.json", "results/metrics/rnn_fz_cca.json", "results/snippet_retrieval/snippet_cca.json")
HIDDEN = re.compile(r"lily|fluidsynth|2ly$|convert-ly|timidity")      # what a GPU node lacks (and soundfonts)


def assert_same_bank(a, b, tol):
    """Two SplitBanks: the same tables, offsets and sheets exactly; spectrograms within ``tol``."""
    assert a.sheet.dtype == b.sheet.dtype == torch.uint8 and torch.equal(a.sheet, b.sheet)
    assert a.spec.dtype == b.spec.dtype == torch.float32 and a.spec.shape == b.spec.shape
    err = float((a.spec.double() - b.spec.double()).abs().max()) if a.spec.numel() else 0.0
    assert err <= tol
    assert a.piece_x == b.piece_x and a.perf_f == b.perf_f
    pd.testing.assert_frame_equal(a.passages, b.passages)
    pd.testing.assert_frame_equal(a.snippets, b.snippets)
    return err


def test_quantisation_error_is_bounded_and_exact_on_the_grid():
    rng = np.random.default_rng(0)
    spec = (np.round(rng.uniform(0, 2.7, (92, 500)) / packfile.SPEC_GRID) * packfile.SPEC_GRID).astype(np.float32)
    for dtype, levels in (("uint8", 255), ("uint16", 65535)):
        q, offset, step = quantise_spec(spec, dtype)
        assert q.dtype == np.dtype(dtype) and q.shape == spec.shape and int(q.max()) <= levels
        back = dequantise_spec(q, offset, step)
        assert back.dtype == np.float32
        err = np.abs(back.astype(np.float64) - spec).max()
        assert 0 < err <= step / 2 * packfile.SPEC_GRID
        assert step == -(-(int(np.rint(spec.max() / packfile.SPEC_GRID)) - offset) // levels)
    narrow = (np.round(spec * 0.1 / packfile.SPEC_GRID) * packfile.SPEC_GRID).astype(np.float32)  # < 65 536 grid steps: exact
    q, offset, step = quantise_spec(narrow, "uint16")
    assert step == 1 and np.array_equal(dequantise_spec(q, offset, step), narrow)
    with pytest.raises(PackError, match="float16"):
        quantise_spec(spec, "float16")


def test_the_workflow_pack_reads_back_as_the_dataset(project):
    """Every split, filtered as training and evaluation filter it: the same SplitBank from the pack
    (sheets, tables, offsets exact; spectrograms within the manifest's stated error, which is measured)."""
    m = json.loads((project / "pack/pack.json").read_text())
    assert m["format"] == "scorelink-pack" and m["spec"]["dtype"] == "uint16"
    assert 0 < m["spec"]["max_abs_error"] <= m["spec"]["error_bound"] < 1e-4
    assert all(p["bytes"] <= m["part_bytes"] == 60 * 2 ** 20 for p in m["parts"])
    seen = 0.0
    for split in SPLITS:
        for kw in ({}, {"tempo_range": (1.0, 1.0)}, {"soundfonts": ["opl3"]}):
            a, b = load_split(Path("data/dataset"), split, **kw), load_split(Path("pack"), split, **kw)
            assert len(a.passages) > 0 or kw
            seen = max(seen, assert_same_bank(a, b, m["spec"]["max_abs_error"]))
        pack = Pack(Path("pack"))
        for table in packfile.TABLES:                  # the tables byte for byte
            assert pack.raw(packfile.table_key(split, table)) == (project / f"data/dataset/{split}/{table}.csv").read_bytes()
    assert seen == m["spec"]["max_abs_error"]          # the stated maximum is the one a reader sees


def test_small_parts_uint8_and_a_rebuild_writes_the_same_bytes(project, params, tmp_path):
    params["pack"].update({"part_mib": 0.01, "spec_dtype": "uint8"})
    m = build_pack(Path("data/dataset"), tmp_path / "p", 0.01, "uint8", params, log=lambda s: None)
    assert len(m["parts"]) > 3 and all(p["bytes"] <= int(0.01 * 2 ** 20) for p in m["parts"])
    assert 1e-4 < m["spec"]["max_abs_error"] <= m["spec"]["error_bound"] < 0.02
    for split in SPLITS:
        assert_same_bank(load_split(Path("data/dataset"), split), load_split(tmp_path / "p", split),
                         m["spec"]["max_abs_error"])
    # the CLI with the same parameters: the same parts and manifest, replacing the old pack in place
    (tmp_path / "p2").mkdir()
    assert pack_main(["--dataset", "data/dataset", "--out", str(tmp_path / "p2"), "--params-json", json.dumps(params)]) == 0
    assert pack_main(["--dataset", "data/dataset", "--out", str(tmp_path / "p2"), "--params-json", json.dumps(params)]) == 0
    files = sorted(f.name for f in (tmp_path / "p").iterdir())
    assert files == sorted(f.name for f in (tmp_path / "p2").iterdir())
    assert all((tmp_path / "p" / f).read_bytes() == (tmp_path / "p2" / f).read_bytes() for f in files)
    assert pack_main(["--verify", str(tmp_path / "p2")]) == 0


def test_missing_truncated_or_corrupt_parts_are_named(project, params, tmp_path):
    build_pack(Path("data/dataset"), tmp_path / "p", 0.01, "uint8", params, log=lambda s: None)
    for damage, message in (("delete", "part-0002.bin is missing"), ("truncate", "part-0002.bin has"),
                            ("flip", "part-0002.bin is corrupt")):
        bad = tmp_path / damage
        shutil.copytree(tmp_path / "p", bad)
        part = bad / "part-0002.bin"
        data = bytearray(part.read_bytes())
        if damage == "delete":
            part.unlink()
        elif damage == "truncate":
            part.write_bytes(data[:-1])
        else:
            data[len(data) // 2] ^= 0xFF
            part.write_bytes(data)
        with pytest.raises(PackError, match=message):
            for split in SPLITS:
                load_split(bad, split)
        assert pack_main(["--verify", str(bad)]) == 2
    (tmp_path / "p" / "pack.json").write_text("{not json")
    with pytest.raises(PackError, match="not a readable pack manifest"):
        load_split(tmp_path / "p", "train")
    with pytest.raises(FileNotFoundError, match="neither a built dataset"):
        load_split(tmp_path, "train")


def test_bad_input_is_refused_and_destroys_nothing(project, params, tmp_path):
    keep = tmp_path / "not_a_pack"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    with pytest.raises(PackError, match="is not a pack: refusing"):
        build_pack(Path("data/dataset"), keep, 60, "uint8", params)
    assert (keep / "notes.txt").read_text() == "mine"
    good = tmp_path / "good"
    build_pack(Path("data/dataset"), good, 60, "uint8", params, log=lambda s: None)
    before = {f.name: f.read_bytes() for f in good.iterdir()}
    broken = tmp_path / "dataset"                       # a dataset whose first test performance has lost its array
    shutil.copytree("data/dataset", broken)
    perf = pd.read_csv(broken / "test/performances.csv")
    perf.loc[0, "spec"] = "data/pieces/missing.npy"
    perf.to_csv(broken / "test/performances.csv", index=False)
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        build_pack(broken, good, 60, "uint8", params)
    assert {f.name: f.read_bytes() for f in good.iterdir()} == before
    assert not (tmp_path / "good.tmp").exists()


def test_the_same_model_scores_the_same_from_pack_and_dataset(project, params):
    """Table 2's evaluation of every trained model of run a, once from the dataset and once from the pack."""
    from pipeline.evaluation.evaluate import evaluate
    quiet = lambda m: None                                                              # noqa: E731
    models = [Path("models/snippet_cca/model.pt")] + sorted(Path("models/passage").glob("*/model.pt"))
    for model in models:
        a = evaluate(params, model, Path("data/dataset"), "test", 1.0, quiet)
        b = evaluate(params, model, Path("pack"), "test", 1.0, quiet)
        for d in ("a2s", "s2a"):
            assert a[d]["n_queries"] == b[d]["n_queries"]
            assert abs(a[d]["MRR"] - b[d]["MRR"]) <= 0.005, (model, d, a[d]["MRR"], b[d]["MRR"])


def test_workflow_from_a_pack_without_lilypond_fluidsynth_soundfonts_or_corpus(project, params, tmp_path):
    """A bare folder with params.yaml and a pack built where the corpus and the soundfonts lie at paths this
    node lacks, PATH without LilyPond or fluidsynth: the workflow trains the snippet model, refines its CCA,
    trains RNN-FZ-CCA and evaluates BL and RNN-FZ-CCA (Table 2's protocol) and the snippet retrieval from the
    pack, and never runs a data rule."""
    node = tmp_path / "node"
    shutil.copytree(project / "pack", node / "pack")
    manifest = json.loads((node / "pack/pack.json").read_text())
    data = manifest["params"]
    data["corpus"].update({"mutopia_root": "/nonexistent/mutopia", "splits": {**data["corpus"]["splits"],
                                                                              "file": "/nonexistent/splits.yaml"}})
    for sf in data["render"]["soundfonts"].values():
        sf["file"] = "/nonexistent/" + Path(sf["file"]).name
    manifest["params_digest"] = packfile.params_digest(data)
    (node / "pack/pack.json").write_text(json.dumps(manifest))
    p = {**params, **data, "pack": {**params["pack"], "read_from": "pack"}}
    write_params(node, p)
    # the node's system tools: every program on PATH but LilyPond's and fluidsynth
    system = tmp_path / "bin"
    system.mkdir()
    venv = Path(sys.executable).parent
    for folder in os.environ["PATH"].split(os.pathsep):
        if not Path(folder).is_dir() or Path(folder).resolve() == venv.resolve():
            continue
        for tool in Path(folder).iterdir():
            if not HIDDEN.search(tool.name) and not (system / tool.name).exists() and os.access(tool, os.X_OK):
                (system / tool.name).symlink_to(tool)
    env = {**os.environ, "PATH": os.pathsep.join([str(venv), str(system)])}
    for tool in ("lilypond", "fluidsynth", "musicxml2ly", "convert-ly"):
        assert shutil.which(tool) and shutil.which(tool, path=env["PATH"]) is None
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(node), "--cores", "2",
           *TARGETS, "--configfile", str(node / "params.yaml")]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert not (node / "data").exists() and "rule dataset" not in res.stderr and "rule piece_" not in res.stderr
    for name in ("bl", "rnn_fz_cca"):
        m, ref = (json.loads((d / f"results/metrics/{name}.json").read_text()) for d in (node, project))
        assert m["n_passages"] == ref["n_passages"] >= 2 and 0 < m["a2s"]["MRR"] <= 1 and 0 < m["s2a"]["MRR"] <= 1
    again = subprocess.run(cmd + ["-n"], capture_output=True, text=True, env=env)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    # parameters other than the pack's data parameters: refused before any job, naming the section
    p["render"] = {**p["render"], "gain": 0.7}
    write_params(node, p)
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert res.returncode != 0 and "other data parameters (render differ)" in res.stderr
    # a part gone: named before any job
    write_params(node, {**p, "render": data["render"]})
    (node / "pack" / manifest["parts"][0]["name"]).unlink()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert res.returncode != 0 and "part-0000.bin is missing" in res.stderr
