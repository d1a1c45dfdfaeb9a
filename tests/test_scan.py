"""Scenario II-sim (pipeline.data.scan): known geometry through the degradation, seeded and exact.

A tiny synthetic piece (two pages, two systems each, noteheads drawn as dots on the systems' centre
lines) stands in for an engraved one, so that every mapped coordinate can be checked against the pixels."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.core import constants as C
from pipeline.core.errors import ConfigError
from pipeline.core.params import validate
from pipeline.data import scan
from pipeline.data.layout import SystemBox, system_strip

W, H = C.PAGE_WIDTH_PX, 1181
FULL = {"rotation_deg": 1.0, "scale": 0.02, "warp_px": 6, "ink_bleed": 0.3, "illumination": 0.25, "blur_sigma": 0.7,
        "noise": 12, "binarize": False, "white_point": 0.9, "jpeg_quality": 50, "figure_examples": 2}
GEOMETRY = {**{k: 0 for k in FULL}, "rotation_deg": 2.0, "scale": 0.04, "warp_px": 12, "binarize": False, "figure_examples": 1}
OFF = {**{k: 0 for k in FULL}, "jpeg_quality": None, "binarize": False, "figure_examples": 1}
HEADS_X = [90.3, 170.8, 255.5, 340.2, 430.7, 515.1, 600.6, 690.4, 760.9]    # notehead x on the page [px]


def dot(img: np.ndarray, x: float, y: float, r: float = 3.0) -> None:
    """A filled disc centred on the continuous point (x, y) (pixel i spans [i, i + 1))."""
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]] + 0.5
    img[(xx - x) ** 2 + (yy - y) ** 2 <= r * r] = 0


def centroid(img: np.ndarray, x: float, y: float, half: int = 8) -> tuple[float, float]:
    """Ink-weighted centre (continuous coordinates) of the window of ``img`` around (x, y)."""
    x0, y0 = int(x) - half, int(y) - half
    win = 255.0 - img[y0:y0 + 2 * half + 1, x0:x0 + 2 * half + 1].astype(float)
    yy, xx = np.mgrid[0:win.shape[0], 0:win.shape[1]] + 0.5
    return x0 + (win * xx).sum() / win.sum(), y0 + (win * yy).sum() / win.sum()


def synthetic_piece():
    """Pages with staff-like lines and notehead dots, systems.csv, and the clean passages / snippets."""
    pages, systems, heads, offset = [], [], [], 0
    for p in range(2):
        page = np.full((H, W), C.WHITE, np.uint8)
        for top in (260.0, 700.0):
            k = len(systems)
            box = SystemBox(p, top, top + 110.0, 55.0, 780.0)
            for y in [*np.linspace(box.top, box.top + 40, 5), *np.linspace(box.bottom - 40, box.bottom, 5)]:
                page[int(y), int(box.left):int(box.right)] = 40      # a grand staff; the dots lie between the staves
            yc = (box.top + box.bottom) / 2
            for x in HEADS_X:
                dot(page, x, yc)
            width = int(round(box.right)) - int(round(box.left))
            systems.append({"system": k, "page": p + 1, "top": box.top, "bottom": box.bottom, "left": box.left,
                            "right": box.right, "x0": offset, "x1": offset + width})
            heads += [(k, offset + x - round(box.left)) for x in HEADS_X]
            offset += width
        pages.append(page)
    systems = pd.DataFrame(systems)
    perfs = ["rho-0500_sf_test", "rho-1000_sf_test"]
    passages = pd.DataFrame([{"piece": "synth", "performance": f, "system": s.system, "x0": s.x0, "x1": s.x1,
                              "f0": 100 * s.system, "f1": 100 * s.system + 100} for f in perfs for s in systems.itertuples()])
    snippets = pd.DataFrame([{"piece": "synth", "performance": f, "system": k, "x": round(x, 2), "frame": 100 * k + 20 + i,
                              "pitch": 60 + i} for f in perfs for k in range(len(systems))
                             for i, (kk, x) in enumerate(h for h in heads if h[0] == k)])
    return pages, systems, passages, snippets


def clean_unrolled(pages, systems) -> np.ndarray:
    return np.concatenate([system_strip(pages[s.page - 1], SystemBox(s.page - 1, s.top, s.bottom, s.left, s.right))
                           for s in systems.itertuples()], axis=1)


@pytest.fixture
def dataset(tmp_path) -> Path:
    """A built-dataset-like folder (test split only) of the synthetic piece, paths relative to ``tmp_path``."""
    pages, systems, passages, snippets = synthetic_piece()
    score = tmp_path / "data/pieces/synth/score"
    for i, page in enumerate(pages, 1):
        scan.save_png(score / "pages" / f"{i:02d}.png", page)
    scan.save_png(score / "unrolled.png", clean_unrolled(pages, systems))
    systems.to_csv(score / "systems.csv", index=False)
    spec_dir = tmp_path / "data/pieces/synth/audio/spec"
    spec_dir.mkdir(parents=True)
    perfs = []
    for f, rho in (("rho-0500_sf_test", 0.5), ("rho-1000_sf_test", 1.0)):
        np.save(spec_dir / f"{f}.npy", np.zeros((C.N_BINS, 500), np.float32))
        perfs.append({"piece": "synth", "performance": f, "tempo_ratio": rho, "soundfont": "sf_test", "n_frames": 500,
                      "duration_s": 25.0, "spec": f"data/pieces/synth/audio/spec/{f}.npy"})
    d = tmp_path / "data/dataset/test"
    d.mkdir(parents=True)
    pd.DataFrame([{"piece": "synth", "systems": len(systems), "pages": 2, "noteheads": 36, "duration_s": 25.0,
                   "unrolled": "data/pieces/synth/score/unrolled.png"}]).to_csv(d / "pieces.csv", index=False)
    pd.DataFrame(perfs).to_csv(d / "performances.csv", index=False)
    passages.to_csv(d / "passages.csv", index=False)
    snippets.to_csv(d / "snippets.csv", index=False)
    return tmp_path


def run_cli(root: Path, cfg: dict, out: str = "data/scenarios/scan", seed: int = 1234, monkeypatch=None) -> int:
    monkeypatch.chdir(root)
    return scan.main(["--dataset", "data/dataset", "--out", out, "--figure", f"{out}_fig.png",
                      "--params-json", json.dumps({"seed": seed, "scenarios": {"scan": cfg}})])


# --- geometry ----------------------------------------------------------------------------------------

def test_known_points_land_where_the_map_says():
    """Dots drawn on a page are found, after the transform, within 1 px of where PageWarp.forward sends them."""
    page = np.full((H, W), C.WHITE, np.uint8)
    pts = [(x, y) for x in (60.5, 300.2, 540.7, 780.1) for y in (80.3, 450.6, 820.9, 1110.4)]
    for x, y in pts:
        dot(page, x, y)
    warp = scan.PageWarp.draw(np.random.default_rng(7), W, H, GEOMETRY)
    assert abs(warp.angle_deg) > 0.1 and warp.field
    out = warp.apply(page)
    assert np.median([np.hypot(*np.subtract(warp.forward(x, y), (x, y))) for x, y in pts]) > 5   # they moved
    for x, y in pts:
        u, v = warp.forward(x, y)
        cu, cv = centroid(out, u, v)
        assert abs(cu - u) < 1 and abs(cv - v) < 1, ((x, y), (u, v), (cu, cv))
    xb, yb = warp.inverse(*warp.forward(np.array([10.0, 400, 820]), np.array([5.0, 600, 1170])))
    assert np.allclose(xb, [10, 400, 820], atol=1e-6) and np.allclose(yb, [5, 600, 1170], atol=1e-6)


def test_noteheads_land_on_their_mapped_columns_in_the_unrolled_score():
    """The whole chain (geometry only): every snippet's new x is the column of its dot in the new unrolled score."""
    pages, systems, passages, snippets = synthetic_piece()
    res = scan.scan_piece(pages, systems, passages, snippets, GEOMETRY, seed=3)
    img, sysn = res["unrolled"], res["systems"]
    assert img.shape[0] == C.STRIP_HEIGHT_PX and img.shape[1] == sysn.x1.iloc[-1]
    for s in sysn.itertuples():
        strip = img[:, s.x0:s.x1]
        for x in res["snippets"].query("system == @s.system and performance == 'rho-1000_sf_test'").x:
            col = x - s.x0
            rows = np.nonzero((255 - strip[:, max(int(col) - 2, 0):int(col) + 3].astype(int)).sum(axis=1) > 300)[0]
            cy = rows[np.argmin(np.abs(rows - C.STRIP_HEIGHT_PX / 2))]   # the dot: the ink closest to the centre row
            cu, _ = centroid(strip, col, cy + 0.5, half=5)
            assert abs(cu - col) < 1.5, (s.system, col, cu)


def test_passages_and_snippets_stay_in_their_strips_and_keep_their_order():
    pages, systems, passages, snippets = synthetic_piece()
    res = scan.scan_piece(pages, systems, passages, snippets, FULL, seed=11)
    sysn, pas, snip = res["systems"], res["passages"], res["snippets"]
    assert (sysn.x0.to_numpy()[1:] == sysn.x1.to_numpy()[:-1]).all() and sysn.x0.iloc[0] == 0
    assert list(pas.columns) == list(passages.columns) and list(snip.columns) == list(snippets.columns)
    assert (pas.drop(columns=["x0", "x1"]).to_numpy() == passages.drop(columns=["x0", "x1"]).to_numpy()).all()
    assert (snip.drop(columns=["x"]).to_numpy() == snippets.drop(columns=["x"]).to_numpy()).all()
    bounds = sysn.set_index("system")
    assert (snip.x >= bounds.loc[snip.system, "x0"].to_numpy()).all()
    assert (snip.x < bounds.loc[snip.system, "x1"].to_numpy()).all()
    for (perf, k), g in snip.groupby(["performance", "system"]):
        clean = snippets[(snippets.performance == perf) & (snippets.system == k)].x
        assert (np.argsort(g.x.to_numpy(), kind="stable") == np.argsort(clean.to_numpy(), kind="stable")).all()
        assert (np.diff(g.x.to_numpy()) > 0).all()                      # strictly monotone within a system
    assert 0 < res["x_uncertainty_px"] < 2
    warp = scan.PageWarp.draw(np.random.default_rng(0), W, H, FULL)
    xs = np.linspace(0, W, 2000)
    assert (np.diff(warp.forward(xs, np.full_like(xs, 300.0))[0]) > 0).all()


def test_strength_zero_is_the_clean_geometry():
    pages, systems, passages, snippets = synthetic_piece()
    warp = scan.PageWarp.draw(np.random.default_rng(5), W, H, OFF)
    assert warp.identity
    assert np.allclose(warp.forward([1.5, 700.25], [3.0, 1000.75]), [[1.5, 700.25], [3.0, 1000.75]])
    res = scan.scan_piece(pages, systems, passages, snippets, OFF, seed=5)
    assert (res["unrolled"] == clean_unrolled(pages, systems)).all()
    assert all((a == b).all() for a, b in zip(res["pages"], pages))
    pd.testing.assert_frame_equal(res["passages"], passages)
    pd.testing.assert_frame_equal(res["snippets"], snippets)
    assert res["x_uncertainty_px"] == 0


# --- the stage ---------------------------------------------------------------------------------------

def test_seeded_runs_are_byte_identical_and_read_by_load_split(dataset, monkeypatch):
    from pipeline.models.snippets import load_split

    assert run_cli(dataset, FULL, "data/scenarios/a", monkeypatch=monkeypatch) == 0
    assert run_cli(dataset, FULL, "data/scenarios/b", monkeypatch=monkeypatch) == 0
    assert run_cli(dataset, FULL, "data/scenarios/c", seed=99, monkeypatch=monkeypatch) == 0
    a, b, c = (dataset / "data/scenarios" / n for n in "abc")
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert {"test/pieces.csv", "test/snippets.csv", "pieces/synth/unrolled.png", "summary.json"} <= set(map(str, files))
    for f in files:
        if f.parts[0] != "test" or f.name != "pieces.csv":            # pieces.csv names its own folder
            assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert (a / "pieces/synth/unrolled.png").read_bytes() != (c / "pieces/synth/unrolled.png").read_bytes()
    assert (dataset / "data/scenarios/a_fig.png").stat().st_size > 0
    pieces = pd.read_csv(a / "test/pieces.csv")
    assert pieces.unrolled.tolist() == ["data/scenarios/a/pieces/synth/unrolled.png"]
    assert pd.read_csv(a / "test/performances.csv").equals(pd.read_csv(dataset / "data/dataset/test/performances.csv"))
    bank = load_split(Path("data/scenarios/a"), "test")
    clean = load_split(Path("data/dataset"), "test")
    assert len(bank.passages) == len(clean.passages) == 8
    assert bank.sheet.shape[0] == C.STRIP_HEIGHT_PX and bank.spec.shape == clean.spec.shape
    assert (pd.read_csv(a / "failures.csv").shape[0]) == 0


def test_a_bad_piece_is_reported_and_the_others_go_on(dataset, monkeypatch):
    d = dataset / "data/dataset/test"
    pieces = pd.read_csv(d / "pieces.csv")
    bad = pieces.assign(piece="broken", unrolled="data/pieces/broken/score/unrolled.png")
    pd.concat([bad, pieces]).to_csv(d / "pieces.csv", index=False)
    assert run_cli(dataset, FULL, monkeypatch=monkeypatch) == 0
    out = dataset / "data/scenarios/scan"
    failures = pd.read_csv(out / "failures.csv")
    assert failures.piece.tolist() == ["broken"] and "FileNotFoundError" in failures.reason[0]
    assert pd.read_csv(out / "test/pieces.csv").piece.tolist() == ["synth"]
    assert json.loads((out / "summary.json").read_text())["failed"] == 1


@pytest.mark.parametrize("key, value", [("rotation_deg", -1), ("rotation_deg", 30), ("scale", 0.5), ("warp_px", 50),
                                        ("ink_bleed", 1.5), ("illumination", 0.95), ("blur_sigma", -0.1),
                                        ("noise", 3.5), ("noise", 300), ("jpeg_quality", 101), ("binarize", "yes")])
def test_bad_strengths_are_rejected(base_params, key, value):
    p = copy.deepcopy(base_params)
    p["scenarios"]["scan"][key] = value
    with pytest.raises(ConfigError, match=f"scenarios.scan.{key}"):
        validate(p)


def test_params_define_the_scan_scenario(base_params):
    cfg = base_params["scenarios"]["scan"]
    assert set(cfg) == set(FULL)
    p = copy.deepcopy(base_params)
    p["scenarios"]["scan"] = {**OFF}
    validate(p)                                                        # every degradation off is valid
    p["scenarios"]["scan"]["unknown"] = 1
    with pytest.raises(ConfigError):
        validate(p)


def test_binarisation_gives_a_bilevel_scan():
    pages, systems, passages, snippets = synthetic_piece()
    cfg = {**FULL, "binarize": True, "jpeg_quality": None}
    res = scan.scan_piece(pages[:1], systems[systems.page == 1], passages[passages.system < 2],
                          snippets[snippets.system < 2], cfg, seed=2)
    assert set(np.unique(res["pages"][0])) <= {0, 255} and (res["pages"][0] == 0).mean() > 0.001


def test_white_point_brings_the_paper_back_to_white():
    """A page scanned darker (grey paper) comes back white with its ink dark: the scanner's automatic levels."""
    from pipeline.data.scan import scan_photometric
    page = np.full((400, 300), 200, np.uint8)                              # grey paper ...
    page[100:110, 20:280] = 20                                             # ... and a little ink
    assert np.array_equal(scan_photometric(page, OFF, seed=3), page)
    levelled = scan_photometric(page, {**OFF, "white_point": 0.9}, seed=3)
    assert np.median(levelled) == 255 and levelled[100:110, 20:280].max() < 40
