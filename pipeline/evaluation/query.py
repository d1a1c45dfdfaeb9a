"""Query the piece database with a recording or with a piece (or systems) of the database.

    python -m pipeline.query my_recording.mp3 [--top 5] [--png match.png]      # audio -> score (A2S)
    python -m pipeline.query --piece NAME [--systems 2:4] [--top 5]            # score -> audio (S2A)

Audio: wav, flac, ogg or mp3 (anything libsndfile reads), any sample rate, mono or stereo; it is
mixed to mono, resampled to 22.05 kHz and turned into the pipeline's spectrogram. Its 1 s windows are
embedded by the snippet model ``piece_id.model`` and searched by subsequence DTW — in every piece
(:func:`pipeline.evaluation.dtw.subsequence_best`), or, in a database of more than
``piece_id.fragments.shortlist.query_above`` windows or with ``--search shortlist``, only in the regions its
nearest windows hit (:mod:`pipeline.evaluation.region_shortlist`) — in the sheet windows of a built pipeline
(``embeddings/<model>/windows.npz``, from ``snakemake --cores all identification``). Prints the top-k pieces with their
cost and where the match lies (pages and systems; x-range in the unrolled score), and writes a PNG of
the query beside the best match. A ``--piece`` query searches the piece's (or the systems') sheet
windows in every piece's database audio and reports time spans.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import soundfile as sf  # noqa: E402
from PIL import Image  # noqa: E402

from pipeline.core.constants import FPS, SAMPLE_RATE, SHEET_CONTEXT_PX, SPEC_CONTEXT_FRAMES  # noqa: E402
from pipeline.core.errors import ConfigError  # noqa: E402
from pipeline.core.params import load  # noqa: E402
from pipeline.core.variants import piece_id_model_dir  # noqa: E402
from pipeline.data.spectrogram import log_spectrogram  # noqa: E402
from pipeline.evaluation.piecedb import Windows  # noqa: E402
from pipeline.evaluation.region_shortlist import subsequence_searcher  # noqa: E402
from pipeline.models.networks import SnippetModel  # noqa: E402
from pipeline.models.training import load_model, pick_device  # noqa: E402
from pipeline.models.windows import embed_performance  # noqa: E402

MIN_SECONDS = 2.0        # shorter audio has too few windows to place
SILENCE_PEAK = 1e-4      # [full scale] quieter audio counts as silent
PIECES_ROOT = Path("data/pieces")


class QueryError(Exception):
    """A query that cannot be answered (unreadable, silent or too short audio; missing inputs)."""


def read_audio(path: Path) -> np.ndarray:
    """Mono float32 samples at :data:`SAMPLE_RATE` from any file libsndfile reads."""
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:                        # libsndfile's own message says what is wrong
        raise QueryError(f"{path}: cannot read it as audio ({err}); wav, flac, ogg and mp3 are supported") from err
    mono = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        from scipy.signal import resample_poly  # here: scipy.signal takes seconds to import, needed only now
        g = math.gcd(int(rate), SAMPLE_RATE)
        mono = resample_poly(mono, SAMPLE_RATE // g, int(rate) // g).astype(np.float32)
    seconds = len(mono) / SAMPLE_RATE
    if seconds < MIN_SECONDS:
        raise QueryError(f"{path}: {seconds:.2f} s of audio; a query needs at least {MIN_SECONDS:g} s")
    if not np.isfinite(mono).all() or np.abs(mono).max() < SILENCE_PEAK:
        raise QueryError(f"{path}: the audio is silent (peak below {SILENCE_PEAK:g} of full scale)")
    return mono


def systems_of(piece: str) -> pd.DataFrame | None:
    f = PIECES_ROOT / piece / "score" / "systems.csv"
    return pd.read_csv(f) if f.is_file() else None


def describe_region(piece: str, x0: float, x1: float) -> str:
    """Pages and systems of the unrolled-score x-range [x0, x1]."""
    s = systems_of(piece)
    if s is None:
        return f"x {x0:.0f}-{x1:.0f} px (no score folder)"
    hit = s[(s.x1 > x0) & (s.x0 < x1)]
    if hit.empty:
        return f"x {x0:.0f}-{x1:.0f} px"
    a, b = hit.iloc[0], hit.iloc[-1]
    return f"page {a.page} system {a.system} to page {b.page} system {b.system} (x {x0:.0f}-{x1:.0f} px)"


def audio_query(path: Path, windows: Windows, model: SnippetModel, params: dict, top: int, device,
                shortlist: dict | None = None) -> tuple[list, dict]:
    spec = log_spectrogram(read_audio(path))
    _, emb = embed_performance(model, spec, params["piece_id"]["audio_hop_frames"], device)
    best, end, start = subsequence_searcher(list(windows.sheet), shortlist, params["piece_id"]["index"])(emb)
    hits = []
    for p in np.argsort(best, kind="stable")[:top]:
        piece = windows.pieces.piece[p]
        if end[p] < 0:
            hits.append({"piece": piece, "split": windows.pieces.split[p], "cost": float(best[p]),
                         "where": "not aligned (outside the shortlist)"})
            continue
        x0 = float(windows.sheet_x[p][start[p]]) - SHEET_CONTEXT_PX / 2
        x1 = float(windows.sheet_x[p][end[p]]) + SHEET_CONTEXT_PX / 2
        hits.append({"piece": piece, "split": windows.pieces.split[p], "cost": float(best[p]), "x0": max(x0, 0.0), "x1": x1,
                     "where": describe_region(piece, max(x0, 0.0), x1)})
    return hits, {"spec": spec}


def sheet_query(piece: str, systems: str | None, windows: Windows, top: int, shortlist: dict | None = None,
                index: dict | None = None) -> tuple[list, dict]:
    if piece not in windows.piece_row:
        raise QueryError(f"piece '{piece}' is not in the database ({len(windows.piece_row)} pieces; see "
                         f"{PIECES_ROOT}/ or embeddings/*/pieces.csv)")
    i = windows.piece_row[piece]
    x = windows.sheet_x[i]
    keep = np.ones(len(x), bool)
    if systems:
        s = systems_of(piece)
        a, _, b = systems.partition(":")
        sel = s[s.system.between(int(a), int(b or a))] if s is not None else pd.DataFrame()
        if sel.empty:
            raise QueryError(f"{piece}: no systems {systems}")
        keep = (x >= sel.x0.min()) & (x <= sel.x1.max())
    db = windows.database_audio(1.0)
    best, end, start = subsequence_searcher(db, shortlist, index)(windows.sheet[i][keep])
    hits = []
    for p in np.argsort(best, kind="stable")[:top]:
        row = windows.database_row(windows.pieces.piece[p], 1.0)
        if end[p] < 0:
            hits.append({"piece": windows.pieces.piece[p], "split": windows.pieces.split[p], "cost": float(best[p]),
                         "where": "not aligned (outside the shortlist)"})
            continue
        f = windows.audio_frame[row]
        t0, t1 = f[start[p]] / FPS, (f[end[p]] + SPEC_CONTEXT_FRAMES) / FPS
        hits.append({"piece": windows.pieces.piece[p], "split": windows.pieces.split[p], "cost": float(best[p]),
                     "where": f"{t0:.1f}-{t1:.1f} s of {windows.perfs.performance[row]}"})
    return hits, {"piece": piece, "x": (float(x[keep].min()), float(x[keep].max()))}


def unrolled_crop(piece: str, x0: float, x1: float) -> np.ndarray | None:
    rows = [pd.read_csv(f) for f in Path("data/dataset").glob("*/pieces.csv") if f.stat().st_size > 1]
    table = pd.concat(rows) if rows else pd.DataFrame(columns=["piece", "unrolled"])
    hit = table[table.piece == piece]
    if hit.empty or not Path(hit.unrolled.iloc[0]).is_file():
        return None
    img = np.asarray(Image.open(hit.unrolled.iloc[0]).convert("L"))
    return img[:, int(max(x0, 0)):int(min(x1, img.shape[1]))]


def figure(hits: list, extra: dict, out: Path) -> None:
    fig, axes = plt.subplots(2, 1, figsize=(10, 5), constrained_layout=True)
    if "spec" in extra:
        axes[0].imshow(extra["spec"], origin="lower", aspect="auto", cmap="magma")
        axes[0].set_title("query: log spectrogram")
        crop = unrolled_crop(hits[0]["piece"], hits[0]["x0"], hits[0]["x1"])
        title = f"best match: {hits[0]['piece']} — {hits[0]['where']} (cost {hits[0]['cost']:.3f})"
    else:
        q = unrolled_crop(extra["piece"], *extra["x"])
        if q is not None:
            axes[0].imshow(q, cmap="gray", aspect="auto")
        axes[0].set_title(f"query: {extra['piece']}")
        crop, title = None, f"best match: {hits[0]['piece']} — {hits[0]['where']} (cost {hits[0]['cost']:.3f})"
    if crop is not None and crop.size:
        axes[1].imshow(crop, cmap="gray", aspect="auto")
    axes[1].set_title(title, fontsize=9)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.query", description=__doc__.splitlines()[0])
    ap.add_argument("audio", nargs="?", type=Path, help="audio file (wav, flac, ogg, mp3; any rate, mono or stereo)")
    ap.add_argument("--piece", help="query with this database piece's score instead (S2A)")
    ap.add_argument("--systems", help="with --piece: systems A:B (0-based, inclusive) or one system A")
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--png", type=Path, default=Path("query_match.png"), help="figure of the query and the best match")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--windows", type=Path, default=None, help="default: embeddings/<piece_id.model's folder>/windows.npz")
    ap.add_argument("--model", type=Path, default=None, help="default: models/<piece_id.model's folder>/model.pt")
    ap.add_argument("--search", choices=["auto", "shortlist", "exhaustive"], default="auto",
                    help="filter and refine (piece_id.fragments.shortlist) or subsequence DTW in every piece; auto: the "
                         "shortlist when the database holds more than its query_above windows")
    args = ap.parse_args(argv)
    if (args.audio is None) == (args.piece is None):
        ap.error("give an audio file or --piece, not both")
    try:
        params = load(args.params)
        name = piece_id_model_dir(params)
        npz = args.windows or Path(f"embeddings/{name}/windows.npz")
        if not npz.is_file():
            raise QueryError(f"{npz} not found: build the piece database first (snakemake --cores all identification)")
        t0 = time.perf_counter()
        windows = Windows(npz)
        t_load = time.perf_counter() - t0
        shortlist = params["piece_id"]["fragments"].get("shortlist") if args.search != "exhaustive" else None
        if args.search == "shortlist" and not shortlist:
            raise QueryError("--search shortlist needs piece_id.fragments.shortlist in the parameters")
        n_windows = sum(map(len, windows.sheet if args.audio is not None else windows.database_audio(1.0)))
        if args.search == "auto" and shortlist and n_windows <= shortlist["query_above"]:
            shortlist = None
        t0 = time.perf_counter()
        if args.audio is not None:
            device = pick_device(params["training"]["device"])
            model = SnippetModel.from_artifact(load_model(args.model or Path(f"models/{name}/model.pt"))).to(device).eval()
            hits, extra = audio_query(args.audio, windows, model, params, args.top, device, shortlist)
        else:
            hits, extra = sheet_query(args.piece, args.systems, windows, args.top, shortlist, params["piece_id"]["index"])
        t_query = time.perf_counter() - t0
    except (QueryError, ConfigError, FileNotFoundError) as err:
        print(f"query: {err}", file=sys.stderr)
        return 2
    for rank, h in enumerate(hits, 1):
        print(f"{rank:>2}. {h['piece']}  [{h['split']}]  cost {h['cost']:.4f}  {h['where']}")
    figure(hits, extra, args.png)
    print(f"({len(windows.pieces)} pieces; database loaded in {t_load:.2f} s, query answered in {t_query:.2f} s; "
          f"figure: {args.png})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
