"""The real Snakemake workflow on the tiny Mutopia-layout corpus: quarantine, no-op rerun, determinism."""
import hashlib
import json
from pathlib import Path

import pandas as pd
from conftest import snakemake, write_params


def tree_digest(root: Path) -> dict:
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(root.rglob("*")) if f.is_file()}


def data_digest(workdir: Path) -> dict:
    """:func:`tree_digest` of what the ``data`` target builds (data/pieces, data/dataset): a run of more
    targets also writes other stages' folders under data/ (e.g. data/unfolded of ``identification``)."""
    return {k: v for k, v in tree_digest(workdir / "data").items() if k.startswith(("pieces/", "dataset/"))}


def test_workflow_builds_dataset_and_quarantines_bad_pieces(two_runs):
    wd = two_runs[0]
    summary = json.loads((wd / "data/dataset/summary.json").read_text())
    assert [summary["splits"][s]["pieces"] for s in ("train", "valid", "test")] == [1, 1, 1]
    q = pd.read_csv(wd / "data/dataset/quarantine.csv").set_index("piece")
    assert q.loc["TestC__Op2__broken", "reason"] == "lilypond failed"
    assert q.loc["TestC__Op2__trio", "reason"] == "not a grand staff"
    assert q.loc["TestC__Op2__silence", "reason"] == "no notes"
    assert q.loc["TestC__Op2__lost", "reason"] == "missing include"
    assert q.loc["TestC__Op9__ghost", "stage"] == "index"
    index = pd.read_csv(wd / "data/dataset/index.tsv", sep="\t").set_index("piece")      # the index as built
    assert index.loc["TestC__Op2__broken", "outcome"] == "engrave" and index.loc["TestC__Op1__rondo", "outcome"] == "ok"
    assert index.loc["TestC__Op1__rondo", "batch"] == "test_000" and index.source_sha256.str.len().eq(64).all()
    passages = pd.read_csv(wd / "data/dataset/test/passages.csv")
    assert set(passages.performance) == {"rho-0500_sf_gmbank", "rho-1000_sf_gmbank"}
    train = pd.read_csv(wd / "data/dataset/train/performances.csv")
    assert len(train) == 3 and not train.soundfont.eq("sf_gmbank").any()
    valid = pd.read_csv(wd / "data/dataset/valid/performances.csv")
    assert valid.soundfont.tolist() == ["musescore"]                 # validation never hears the test soundfont
    assert sorted(p.name for p in (wd / "results/figures/alignment").glob("*.png")) == \
        ["TestC__Op1__gavotte.png", "TestC__Op1__rondo.png"]
    # one job per batch of a split's pieces (corpus.batch_pieces): the five train pieces share one
    log = (wd / "logs/piece/train_000.log").read_text()
    assert log.count("[engrave] piece TestC__Op2__broken quarantined: lilypond failed") == 1
    assert "[render] piece TestC__Op2__broken quarantined: lilypond failed: (from stage engrave)" in log
    assert sorted(f.stem for f in (wd / "logs/benchmarks/piece").glob("*.tsv")) == ["test_000", "train_000", "valid_000"]
    assert (wd / "logs/timings/render/TestC__Op1__rondo.json").is_file()          # per-step timings of the chain


def test_second_run_has_nothing_to_do(two_runs):
    res = snakemake(two_runs[0])
    assert res.returncode == 0 and "Nothing to be done" in res.stdout + res.stderr


def test_two_clean_runs_are_byte_identical(two_runs):
    a, b = (data_digest(wd) for wd in two_runs)
    assert a.keys() == b.keys() and len(a) > 30
    assert [k for k in a if a[k] != b[k]] == []


def test_param_change_reruns_only_affected_stages(two_runs):
    import yaml
    wd = two_runs[0]
    original = (wd / "params.yaml").read_text()
    p = yaml.safe_load(original)
    try:
        p["experiments"]["sanity"]["top_k"] = 2              # a figure's parameter: that figure only
        write_params(wd, p)
        out = snakemake(wd, "-n").stdout
        assert "sanity_figure" in out and "rule piece" not in out and "train_snippet" not in out
        p["passages"]["dedupe_onset_frames"] = False         # a data parameter: the piece chains (one job each)
        write_params(wd, p)
        out = snakemake(wd, "-n", "data").stdout
        assert "rule piece" in out and "dataset" in out
    finally:
        (wd / "params.yaml").write_text(original)


def test_invalid_params_stop_before_any_work(two_runs):
    wd = two_runs[1]
    import yaml
    p = yaml.safe_load((wd / "params.yaml").read_text())
    p["render"]["soundfonts"]["sf_gmbank"]["file"] = "/nowhere/x.sf2"
    write_params(wd, p)
    before = tree_digest(wd / "data")
    res = snakemake(wd)
    assert res.returncode != 0 and "render.soundfonts.sf_gmbank.file" in res.stderr + res.stdout
    assert tree_digest(wd / "data") == before          # nothing already built is lost
