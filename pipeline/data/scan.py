"""Scenario ``scan`` (II-sim): the test split's sheet music made to look scanned, its passages kept exact.

Every page of a test piece goes through a seeded chain (seed: ``seed`` and the piece name; each page
draws its own transform, as a scanner takes pages one by one):

1. *ink bleed* (printing; augraphy ``InkBleed``), on the clean page;
2. a **known geometric transform** of our own, :class:`PageWarp`: rotation about the page centre, a scale
   change and a smooth displacement field (sum of sinusoids, at most ``warp_px``), applied with an explicit
   coordinate map, so that system boxes and notehead columns go through the same transform as the pixels
   (augraphy's geometric augmentations report no coordinates);
3. photometric scanning: uneven illumination (augraphy ``LightingGradient``), optical blur (OpenCV Gaussian,
   which augraphy has no plain form of), sensor noise (augraphy ``SubtleNoise``), optional binarisation
   (Sauvola threshold, augraphy's ``binary_threshold``) and JPEG artefacts (augraphy ``Jpeg``).

The strips are then cut again from the degraded pages (:func:`pipeline.data.layout.system_strip`) around
the mapped system boxes, and the passages' ``x0``/``x1`` and the snippets' ``x`` are recomputed from the
mapped geometry. A notehead's column is mapped at its system's vertical centre (``noteheads.csv`` has no
notehead row): under rotation a notehead ``dy`` px above or below the centre lands up to
``|dy| * sin(angle)`` px (plus the warp's shear) off. The bound over the system's staff lines is
``x_uncertainty_px`` of each system (``systems.csv``), piece (``transform.json``) and the split
(``summary.json``): about 1 px at the default strengths, below 3 px on the development corpus.

Writes ``OUT/test/{pieces,performances,passages,snippets}.csv`` in the format of ``data/dataset`` (only the
test split; spectrograms unchanged, ``unrolled`` naming ``OUT/pieces/<piece>/unrolled.png``), per piece
``OUT/pieces/<piece>/{unrolled.png, systems.csv, transform.json}`` (and ``pages/NN.png`` with ``--pages``),
``OUT/failures.csv`` (piece, reason, detail: a failed piece is left out, the others go on),
``OUT/summary.json`` and the figure ``--figure`` (clean above degraded strips, passage boundaries drawn).
"""
from __future__ import annotations

import argparse
import contextlib
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from pipeline.core import constants as C
from pipeline.core.errors import ConfigError, PieceError
from pipeline.core.params import add_params_argument, from_args
from pipeline.core.seeds import piece_seed as stage_seed
from pipeline.core.stage import write_json
from pipeline.data.engrave import png_bytes
from pipeline.data.layout import SystemBox, system_strip

SPLIT = "test"
TABLES = ("pieces", "performances", "passages", "snippets")
WARP_COMPONENTS = 3             # sinusoids per axis of the displacement field
WARP_MAX_CYCLES = 1.5           # their largest frequency [cycles per page side]: a smooth, invertible warp
GRID_STEP = 8                   # [px] grid on which the page's inverse map is solved (bilinear in between)
INVERSE_ITERATIONS = 12         # fixed-point steps of PageWarp.inverse (contraction <= 0.25 at warp_px 20)
FIGURE = Path("results/figures/scenarios/scan_examples.png")


def piece_seed(seed: int, piece: str) -> int:
    """The piece's seed for this stage (:func:`pipeline.core.seeds.piece_seed`)."""
    return stage_seed(seed, "scan", piece)


def _strength(cfg: dict, key: str) -> float:
    """A degradation's strength, 0 when off (null or 0)."""
    return float(cfg.get(key) or 0)


# --- geometry -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PageWarp:
    """The forward map T of a page, clean [px] -> degraded [px], in the continuous page coordinates of
    ``systems.csv`` / ``noteheads.csv`` (pixel column i spans [i, i + 1), its centre at i + 0.5):

    ``T(p) = c + scale * R(angle) (p - c) + d(p)``, c the page centre, ``d`` a displacement field
    ``d_a(x, y) = sum_k amp[a, k] sin(2 pi (fx[a, k] x / W + fy[a, k] y / H) + phase[a, k])`` (a = x, y).
    The image is resampled through the inverse map (:meth:`inverse`), so a clean point p is drawn at T(p)."""
    width: int
    height: int
    angle_deg: float = 0.0
    scale: float = 1.0
    field: tuple = ()             # ((amp, fx, fy, phase) of each component) for axis x, then axis y

    @classmethod
    def draw(cls, rng: np.random.Generator, width: int, height: int, cfg: dict) -> "PageWarp":
        """A random transform within ``cfg``'s strengths (``rotation_deg``, ``scale``, ``warp_px``); all 0: identity.
        The draws are made whatever the strengths, so that turning one degradation off keeps the others."""
        angle = rng.uniform(-1, 1) * _strength(cfg, "rotation_deg")
        scale = 1 + rng.uniform(-1, 1) * _strength(cfg, "scale")
        weights = rng.uniform(0.2, 1, (2, WARP_COMPONENTS))
        amp = _strength(cfg, "warp_px") * weights / weights.sum(axis=1, keepdims=True) * rng.choice([-1, 1], weights.shape)
        freq = rng.uniform(-WARP_MAX_CYCLES, WARP_MAX_CYCLES, (2, 2, WARP_COMPONENTS))
        phase = rng.uniform(0, 2 * np.pi, (2, WARP_COMPONENTS))
        field = tuple(tuple((float(amp[a, k]), float(freq[a, 0, k]), float(freq[a, 1, k]), float(phase[a, k]))
                            for k in range(WARP_COMPONENTS) if amp[a, k] != 0) for a in range(2))
        return cls(width, height, float(angle), float(scale), field if any(field) else ())

    @property
    def centre(self) -> tuple[float, float]:
        return self.width / 2, self.height / 2

    def _affine(self) -> np.ndarray:
        t = np.deg2rad(self.angle_deg)
        return self.scale * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])

    def displacement(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = [np.zeros(np.broadcast(x, y).shape), np.zeros(np.broadcast(x, y).shape)]
        for a, comps in enumerate(self.field):
            for amp, fx, fy, phase in comps:
                d[a] = d[a] + amp * np.sin(2 * np.pi * (fx * x / self.width + fy * y / self.height) + phase)
        return d[0], d[1]

    def forward(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """T(x, y): where the clean point lands on the degraded page [px]."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        (a, b), (c, d) = self._affine()
        cx, cy = self.centre
        dx, dy = self.displacement(x, y)
        return cx + a * (x - cx) + b * (y - cy) + dx, cy + c * (x - cx) + d * (y - cy) + dy

    def inverse(self, u, v) -> tuple[np.ndarray, np.ndarray]:
        """T^-1(u, v) by fixed-point iteration p <- A^-1 (q - c - d(p)) + c (d is a contraction here)."""
        u, v = np.asarray(u, float), np.asarray(v, float)
        (a, b), (c, d) = np.linalg.inv(self._affine())
        cx, cy = self.centre
        x, y = cx + a * (u - cx) + b * (v - cy), cy + c * (u - cx) + d * (v - cy)
        for _ in range(INVERSE_ITERATIONS if self.field else 0):
            dx, dy = self.displacement(x, y)
            x, y = cx + a * (u - dx - cx) + b * (v - dy - cy), cy + c * (u - dx - cx) + d * (v - dy - cy)
        return x, y

    @property
    def identity(self) -> bool:
        return self.angle_deg == 0 and self.scale == 1 and not self.field

    def apply(self, page: np.ndarray) -> np.ndarray:
        """The page resampled through the transform (bilinear; outside the clean page: white paper)."""
        import cv2

        if self.identity:
            return page.copy()
        # the inverse map at the pixel centres: exact on a coarse grid, bilinear in between (it is smooth:
        # affine, which the interpolation keeps exactly, plus sinusoids of at most 1.5 cycles per page)
        ly, lx = _lerp_matrix(self.height, GRID_STEP), _lerp_matrix(self.width, GRID_STEP)
        v, u = np.mgrid[0:ly.shape[1], 0:lx.shape[1]].astype(float) * GRID_STEP + 0.5
        x, y = (ly @ m @ lx.T for m in self.inverse(u, v))
        return cv2.remap(page, (x - 0.5).astype(np.float32), (y - 0.5).astype(np.float32), cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=C.WHITE)

    def describe(self) -> dict:
        return {"angle_deg": round(self.angle_deg, 6), "scale": round(self.scale, 6),
                "field": [[list(map(lambda v: round(v, 6), comp)) for comp in axis] for axis in self.field]}


def _lerp_matrix(n: int, step: int) -> np.ndarray:
    """(n, m) weights of linear interpolation from nodes 0, step, 2 step, ... to 0 .. n - 1 (m nodes cover n)."""
    m = -(-(n - 1) // step) + 1
    pos = np.arange(n) / step
    j = np.minimum(np.floor(pos).astype(int), m - 2)
    w = pos - j
    out = np.zeros((n, m))
    out[np.arange(n), j] = 1 - w
    out[np.arange(n), j + 1] = w
    return out


def map_box(warp: PageWarp, box: SystemBox) -> SystemBox:
    """The system box on the degraded page: its ends mapped along its vertical centre line, its centre mapped,
    its height scaled; clamped to the page (``system_strip`` cuts inside the page's columns)."""
    yc, xc = (box.top + box.bottom) / 2, (box.left + box.right) / 2
    (left, right), _ = warp.forward([box.left, box.right], [yc, yc])
    cx, cy = warp.forward(xc, yc)
    half = warp.scale * (box.bottom - box.top) / 2
    return SystemBox(box.page, float(cy - half), float(cy + half), float(max(left, 0.0)), float(min(right, warp.width)))


def map_columns(warp: PageWarp, box: SystemBox, x_page: np.ndarray) -> np.ndarray:
    """Page columns of points on the system's vertical centre line, after the transform (monotone in x)."""
    yc = (box.top + box.bottom) / 2
    return warp.forward(x_page, np.full(np.shape(x_page), yc))[0]


def column_uncertainty(warp: PageWarp, box: SystemBox, x_page: np.ndarray) -> float:
    """Largest shift [px] between a column mapped at the system's centre line and at its top or bottom line:
    the bound on a notehead's mapped x error (its row is unknown)."""
    if len(x_page) == 0:
        return 0.0
    centre = map_columns(warp, box, x_page)
    ends = [warp.forward(x_page, np.full(len(x_page), y))[0] for y in (box.top, box.bottom)]
    return float(max(np.abs(e - centre).max() for e in ends))


# --- photometric chain (augraphy) -----------------------------------------------------------------

@contextlib.contextmanager
def seeded(seed: int):
    """Seed the global generators augraphy draws from (``random``, ``numpy.random``, OpenCV), restoring them after."""
    import cv2

    state_py, state_np = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    cv2.setRNGSeed(seed % 2**31)
    try:
        yield
    finally:
        random.setstate(state_py)
        np.random.set_state(state_np)


def _gray(img: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img


def ink_bleed(page: np.ndarray, strength: float, seed: int) -> np.ndarray:
    """Ink spread along the strokes' edges (augraphy ``InkBleed``): ``strength`` in [0, 1] is both the share of
    edge pixels darkened and the blend weight."""
    if strength <= 0:
        return page
    from augraphy.augmentations.inkbleed import InkBleed

    with seeded(seed):
        return _gray(InkBleed(intensity_range=(strength, strength), kernel_size=(3, 3),
                              severity=(strength, strength), p=1)(page, force=True))


def scan_photometric(page: np.ndarray, cfg: dict, seed: int) -> np.ndarray:
    """Illumination, blur, noise, binarisation, the scanner's white point, JPEG (each off at strength 0 / null / false)."""
    import cv2

    out = page
    with seeded(seed):
        if (ill := _strength(cfg, "illumination")) > 0:
            from augraphy.augmentations.lightinggradient import LightingGradient

            # V' = V (1 - ill) + mask ill, the mask 0..255 (a light strip of random position and direction)
            out = _gray(LightingGradient(max_brightness=255, min_brightness=0, mode="gaussian",
                                         transparency=1 - ill, p=1)(out, force=True))
        if (sigma := _strength(cfg, "blur_sigma")) > 0:
            out = cv2.GaussianBlur(out, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)
        if (noise := int(_strength(cfg, "noise"))) > 0:
            from augraphy.augmentations.subtlenoise import SubtleNoise

            out = _gray(SubtleNoise(subtle_range=noise, p=1)(out, force=True))
        if cfg.get("binarize"):
            from augraphy.augmentations.lib import binary_threshold

            out = _gray(binary_threshold(out, "threshold_sauvola", {"window_size": 25}))
        if (level := cfg.get("white_point")) and not cfg.get("binarize"):
            # the scanner's automatic levels: the paper's grey (this percentile of the page) becomes white, so
            # the lighting varies across the page but the page as a whole is not darker than a white one
            paper = max(float(np.percentile(out, 100 * level)), 1.0)
            out = np.clip(out.astype(np.float32) * (255.0 / paper), 0, 255).round().astype(np.uint8)
        if (quality := int(_strength(cfg, "jpeg_quality"))) > 0:
            from augraphy.augmentations.jpeg import Jpeg

            out = _gray(Jpeg(quality_range=(quality, quality), p=1)(out, force=True))
    return np.ascontiguousarray(out, dtype=np.uint8)


def degrade_page(page: np.ndarray, cfg: dict, rng: np.random.Generator) -> tuple[np.ndarray, PageWarp, dict]:
    """One page through the chain: (degraded page, its transform, what was drawn)."""
    warp = PageWarp.draw(rng, page.shape[1], page.shape[0], cfg)
    seed_bleed, seed_scan = (int(s) for s in rng.integers(0, 2**62, 2))
    out = ink_bleed(page, _strength(cfg, "ink_bleed"), seed_bleed)
    out = warp.apply(out)
    out = scan_photometric(out, cfg, seed_scan)
    return out, warp, {**warp.describe(), "augraphy_seeds": [seed_bleed, seed_scan]}


# --- one piece ------------------------------------------------------------------------------------

def scan_piece(pages: list[np.ndarray], systems: pd.DataFrame, passages: pd.DataFrame, snippets: pd.DataFrame,
               cfg: dict, seed: int) -> dict:
    """The core: a piece's clean pages, ``systems.csv`` and its passage / snippet rows (any performances) ->
    ``{"unrolled", "pages", "systems", "passages", "snippets", "transform", "x_uncertainty_px"}`` degraded.

    Rows keep their order; only ``x0``, ``x1`` (passages) and ``x`` (snippets) change."""
    rng = np.random.default_rng(seed)
    degraded, warps, drawn = [], [], []
    for page in pages:
        out, warp, info = degrade_page(page, cfg, rng)
        degraded.append(out)
        warps.append(warp)
        drawn.append(info)
    strips, rows, offset, uncertainty = [], [], 0, 0.0
    new_x = pd.Series(np.nan, index=snippets.index)
    for s in systems.itertuples():
        if not 1 <= s.page <= len(pages):
            raise PieceError("scan: bad system page", f"system {s.system} on page {s.page}, the piece has {len(pages)}")
        box = SystemBox(s.page - 1, s.top, s.bottom, s.left, s.right)
        warp = warps[box.page]
        mapped = map_box(warp, box)
        if mapped.right - mapped.left < 1:
            raise PieceError("scan: system left the page",
                             f"system {s.system}: mapped columns {mapped.left:.1f}..{mapped.right:.1f}")
        strip = system_strip(degraded[box.page], mapped)
        sel = snippets.index[snippets.system == s.system]
        x_page = snippets.loc[sel, "x"].to_numpy(float) - s.x0 + round(s.left)      # engrave: x = x0 + x_page - round(left)
        new_x[sel] = offset + map_columns(warp, box, x_page) - round(mapped.left)
        unc = column_uncertainty(warp, box, x_page)
        uncertainty = max(uncertainty, unc)
        rows.append({"system": s.system, "page": s.page, "top": mapped.top, "bottom": mapped.bottom,
                     "left": mapped.left, "right": mapped.right, "x0": offset, "x1": offset + strip.shape[1],
                     "clean_x0": s.x0, "clean_x1": s.x1, "x_uncertainty_px": unc})
        strips.append(strip)
        offset += strip.shape[1]
    new_sys = pd.DataFrame(rows)
    lookup = new_sys.set_index("system")
    unknown = sorted(set(passages.system) - set(lookup.index))
    if unknown:
        raise PieceError("scan: passages without a system", f"systems {unknown} not in systems.csv")
    passages = passages.copy()
    passages["x0"] = lookup.loc[passages.system, "x0"].to_numpy()
    passages["x1"] = lookup.loc[passages.system, "x1"].to_numpy()
    if new_x.isna().any():
        bad = sorted(set(snippets.system[new_x.isna()]))
        raise PieceError("scan: snippets without a system", f"systems {bad} not in systems.csv")
    snippets = snippets.copy()
    snippets["x"] = np.round(new_x.to_numpy(float), 2)
    return {"unrolled": np.concatenate(strips, axis=1), "pages": degraded, "systems": new_sys,
            "passages": passages, "snippets": snippets, "transform": drawn, "x_uncertainty_px": uncertainty}


def read_gray(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


def save_png(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(np.ascontiguousarray(img, dtype=np.uint8)))


# --- the split ------------------------------------------------------------------------------------

def read_split(dataset: Path) -> dict[str, pd.DataFrame]:
    d = Path(dataset) / SPLIT
    missing = [t for t in TABLES if not (d / f"{t}.csv").is_file()]
    if missing:
        raise FileNotFoundError(f"{d}: no {', '.join(t + '.csv' for t in missing)} (build the dataset first)")
    tables = {}
    for t in TABLES:
        tables[t] = pd.read_csv(d / f"{t}.csv") if (d / f"{t}.csv").stat().st_size > 1 else pd.DataFrame()
    return tables


def scan_split(dataset: Path, out: Path, cfg: dict, seed: int, root: Path = Path("."), write_pages: bool = False,
               log=lambda msg: None) -> dict:
    """Degrade every test piece of ``dataset``; write ``out`` (see the module docstring). Returns the summary."""
    from tqdm import tqdm

    tables = read_split(dataset)
    pieces = tables["pieces"]
    done = {t: [] for t in TABLES}
    failures, uncertainty = [], {}
    for row in tqdm(list(pieces.itertuples()), desc="scan", file=sys.stderr, disable=None):
        try:
            score = Path(row.unrolled).parent
            systems = pd.read_csv(root / score / "systems.csv")
            pages = [read_gray(root / score / "pages" / f"{k:02d}.png") for k in range(1, int(row.pages) + 1)]
            part = {t: tables[t][tables[t].piece == row.piece] for t in ("passages", "snippets")}
            res = scan_piece(pages, systems, part["passages"], part["snippets"], cfg, piece_seed(seed, row.piece))
        except (PieceError, OSError, ValueError, KeyError) as e:
            reason = e.reason if isinstance(e, PieceError) else f"scan: {type(e).__name__}"
            detail = e.detail if isinstance(e, PieceError) else str(e)
            failures.append({"piece": row.piece, "reason": reason, "detail": detail})
            log(f"{row.piece}: FAILED ({reason}): {detail}")
            continue
        folder = out / "pieces" / row.piece
        save_png(folder / "unrolled.png", res["unrolled"])
        if write_pages:
            for k, page in enumerate(res["pages"], 1):
                save_png(folder / "pages" / f"{k:02d}.png", page)
        res["systems"].to_csv(folder / "systems.csv", index=False, float_format="%.4f")
        write_json(folder / "transform.json", {"piece": row.piece, "pages": res["transform"],
                                               "x_uncertainty_px": round(res["x_uncertainty_px"], 4)})
        uncertainty[row.piece] = round(res["x_uncertainty_px"], 4)
        done["pieces"].append(pieces[pieces.piece == row.piece].assign(unrolled=str(folder / "unrolled.png")))
        done["performances"].append(tables["performances"][tables["performances"].piece == row.piece])
        done["passages"].append(res["passages"])
        done["snippets"].append(res["snippets"])
    (out / SPLIT).mkdir(parents=True, exist_ok=True)
    for t in TABLES:
        frames = [f for f in done[t] if len(f)]
        df = pd.concat(frames, ignore_index=True) if frames else tables[t].iloc[:0]
        df.to_csv(out / SPLIT / f"{t}.csv", index=False)
    pd.DataFrame(failures, columns=["piece", "reason", "detail"]).to_csv(out / "failures.csv", index=False)
    summary = {"split": SPLIT, "pieces": len(pieces), "scanned": len(done["pieces"]), "failed": len(failures),
               "scan": cfg, "seed": seed, "x_uncertainty_px_max": max(uncertainty.values(), default=0.0),
               "library": library_versions()}
    write_json(out / "summary.json", summary)
    return summary


def library_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("augraphy", "opencv-python"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


# --- figure ---------------------------------------------------------------------------------------

def examples_figure(dataset: Path, out: Path, figure: Path, n_examples: int, root: Path = Path(".")) -> None:
    """Clean (above) and scanned (below) strips of the same two consecutive systems of ``n_examples`` pieces
    (spread over the scanned pieces in name order): passage boundaries in red, the first performance's snippet
    columns as blue ticks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clean, scanned = read_split(dataset), read_split(out)
    names = sorted(scanned["pieces"].piece) if len(scanned["pieces"]) else []
    picks = list(dict.fromkeys(names[round(i * (len(names) - 1) / max(n_examples - 1, 1))]
                               for i in range(min(n_examples, len(names)))))
    figure.parent.mkdir(parents=True, exist_ok=True)
    rows = 2 * max(len(picks), 1)
    fig, axes = plt.subplots(rows, 1, figsize=(16, 2.1 * rows), squeeze=False)
    if not picks:
        fig.text(0.5, 0.5, "no test piece was scanned (see failures.csv)", ha="center")
    for i, piece in enumerate(picks):
        for j, (tabs, what) in enumerate(((clean, "clean"), (scanned, "scanned"))):
            ax = axes[2 * i + j, 0]
            img = read_gray(root / tabs["pieces"].set_index("piece").loc[piece, "unrolled"])
            pas = tabs["passages"][tabs["passages"].piece == piece]
            perf = pas.performance.iloc[0]
            pas = pas[pas.performance == perf].sort_values("system")
            shown = pas.iloc[min(1, len(pas) - 1):][:2]             # the 2nd and 3rd systems: a boundary inside
            x0, x1 = int(shown.x0.min()), int(shown.x1.max())
            ax.imshow(img[:, x0:x1], cmap="gray", vmin=0, vmax=255, aspect="auto",
                      extent=(x0, x1, C.STRIP_HEIGHT_PX, 0), interpolation="antialiased")
            for b in sorted(set(shown.x0) | set(shown.x1)):
                ax.axvline(b, color="tab:red", lw=1.5)
            snip = tabs["snippets"]
            snip = snip[(snip.piece == piece) & (snip.performance == perf) & snip.system.isin(shown.system)]
            ax.plot(snip.x, np.full(len(snip), C.STRIP_HEIGHT_PX - 5), "|", color="tab:blue", ms=9, mew=1.2)
            ax.set_xlim(x0 - 2, x1 + 2)
            ax.set_yticks([])
            spans = ", ".join(f"system {r.system}: x {r.x0}-{r.x1}" for r in shown.itertuples())
            ax.set_title(f"{piece} ({what})   {spans}   (blue: snippet x of {perf})", fontsize=9, loc="left")
    fig.tight_layout()
    fig.savefig(figure, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    ap.add_argument("--out", type=Path, default=Path("data/scenarios/scan"))
    ap.add_argument("--figure", type=Path, default=FIGURE)
    ap.add_argument("--root", type=Path, default=Path("."), help="folder the tables' array paths are relative to")
    ap.add_argument("--pages", action="store_true", help="also write the degraded pages (OUT/pieces/<piece>/pages)")
    add_params_argument(ap)
    args = ap.parse_args(argv)
    log = lambda msg: print(f"[scan] {msg}", file=sys.stderr, flush=True)
    try:
        params = from_args(args)
        if "scan" not in params.get("scenarios", {}):
            raise ConfigError(f"{args.params}: no scenarios.scan section")
        cfg = params["scenarios"]["scan"]
        summary = scan_split(args.dataset, args.out, cfg, params["seed"], args.root, args.pages, log)
    except (ConfigError, FileNotFoundError) as e:
        log(f"error: {e}")
        return 2
    examples_figure(args.dataset, args.out, args.figure, cfg["figure_examples"], args.root)
    log(f"wrote {args.out}: {summary['scanned']}/{summary['pieces']} test pieces scanned, {summary['failed']} failed "
        f"(failures.csv); notehead x within {summary['x_uncertainty_px_max']:.2f} px; figure {args.figure}")
    return 0 if summary["scanned"] or not summary["pieces"] else 1


if __name__ == "__main__":
    sys.exit(main())
