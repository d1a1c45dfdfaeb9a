"""Stage ``piece_windows``: every piece as a sequence of window embeddings under one snippet model.

Piece identification (Carvalho & Widmer, EUSIPCO 2021) compares whole pieces, not passages: the
snippet model (CNN + CCA) embeds

* the **sheet** of every piece: 180 px windows (full resolution, the snippet size) centred every
  ``piece_id.sheet_hop_px`` along its unrolled score, from its first to its last column;
* the **audio** of performances: 1 s windows (20 frames) starting every ``piece_id.audio_hop_frames``.

Which performances (:func:`database_and_queries`): each piece's *database* rendering at ρ = 1 (test
pieces: the unseen test soundfont; valid: the validation soundfont; train: the first training
soundfont) and the *query* renderings of the test pieces (test soundfont at every
``render.test_tempo_ratios``).

Writes a folder: ``windows.npz`` with

* ``sheet`` float32 (W_s, dim) unit rows, ``sheet_piece`` int (W_s,) row of ``pieces.csv``,
  ``sheet_x`` float (W_s,) window centre [px, unrolled score];
* ``audio`` float32 (W_a, dim) unit rows, ``audio_perf`` int (W_a,) row of ``performances.csv``,
  ``audio_frame`` int (W_a,) window start [frames];

* with the method ``dtw_tempo`` in ``piece_id.methods``: ``tempo_factors`` float (H,) the
  ``piece_id.tempo_hypotheses.factors`` other than 1, and ``hyp_audio`` float32 (W_h, dim), ``hyp_perf``
  int (W_h,), ``hyp_factor`` int (W_h,) row of ``tempo_factors``: every performance's windows again after
  its spectrogram was retimed by each factor (:func:`pipeline.models.windows.retimed`);

``pieces.csv`` (piece, split, width_px) and ``performances.csv`` (piece, performance, soundfont,
tempo_ratio, n_frames, role: ``database`` or ``query``; a test piece's ρ = 1 rendering is both).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from pipeline.core.constants import NOMINAL_TEMPO
from pipeline.core.params import add_params_argument, from_args
from pipeline.data.packfile import has_rows, open_split
from pipeline.models.networks import SnippetModel
from pipeline.models.training import load_model, pick_device, setup_torch
from pipeline.models.windows import embed_performance, embed_piece_sheet

SPLITS = ("train", "valid", "test")


def database_and_queries(perf: pd.DataFrame, split: str, render: dict) -> pd.DataFrame:
    """The rows of one split's performances table the stage embeds, with their ``role``."""
    nominal = np.isclose(perf.tempo_ratio, NOMINAL_TEMPO)
    database_sf = {"train": render["train_soundfonts"][0], "valid": render["valid_soundfont"],
                   "test": render["test_soundfont"]}[split]
    rows = perf[nominal & (perf.soundfont == database_sf)].assign(role="database")
    if split == "test":
        queries = perf[(perf.soundfont == render["test_soundfont"])
                       & perf.tempo_ratio.apply(lambda r: any(np.isclose(r, render["test_tempo_ratios"])))]
        rows = pd.concat([rows, queries[~np.isclose(queries.tempo_ratio, NOMINAL_TEMPO)].assign(role="query")])
        rows.loc[np.isclose(rows.tempo_ratio, NOMINAL_TEMPO), "role"] = "database+query"
    return rows.drop_duplicates(["piece", "performance"])


def piece_windows(params: dict, model_path: Path, dataset: Path, out: Path, root: Path = Path("."), log=print,
                  scenario: Path | None = None) -> dict:
    """Embed every piece's sheet and the selected performances; write ``out``; return counts.

    ``scenario``: a scenario's dataset folder (``data/scenarios/performed``, issue 16): the test split is read
    from it instead (its performances are the test pieces' database rendering at ρ = 1 and the queries at
    every test tempo), the other splits from ``dataset``: piece identification on III-sim."""
    p = params["piece_id"]
    device = pick_device(params["training"]["device"])
    setup_torch(params["seed"], params["training"]["threads"])
    model = SnippetModel.from_artifact(load_model(model_path)).to(device).eval()
    pieces, perfs, sources = [], [], {}
    for split in SPLITS:
        if not has_rows(dataset, split, "pieces"):
            continue
        from_scenario = scenario is not None and split == "test"
        src = sources[split] = open_split(scenario if from_scenario else dataset, split, root)   # dataset or pack
        table = src.table("performances")
        render = params["render"]
        if from_scenario:              # the scenario's own (unseen) soundfont plays the test soundfont's part
            render = {**render, "test_soundfont": str(table.soundfont.iloc[0])}
        pieces.append(src.table("pieces").assign(split=split))
        perfs.append(database_and_queries(table, split, render).assign(split=split))
    pieces = pd.concat(pieces, ignore_index=True)
    perfs = pd.concat(perfs, ignore_index=True)
    perfs = perfs[perfs.piece.isin(pieces.piece)].reset_index(drop=True)
    sheet, sheet_piece, sheet_x, widths = [], [], [], []
    for i, row in enumerate(tqdm(pieces.itertuples(), total=len(pieces), desc="sheet", file=sys.stderr, mininterval=5)):
        image = np.array(sources[row.split].sheet(row))     # a writable copy: torch shares its memory
        x, e = embed_piece_sheet(model, image, p["sheet_hop_px"], device)
        sheet.append(e), sheet_piece.append(np.full(len(x), i)), sheet_x.append(x), widths.append(image.shape[1])
    factors = [f for f in p["tempo_hypotheses"]["factors"] if f != 1.0] if "dtw_tempo" in p["methods"] else []
    audio, audio_perf, audio_frame = [], [], []
    hyp = {"hyp_audio": [], "hyp_perf": [], "hyp_factor": []}
    for i, row in enumerate(tqdm(perfs.itertuples(), total=len(perfs), desc="audio", file=sys.stderr, mininterval=5)):
        spec = sources[row.split].spec(row)
        f, e = embed_performance(model, spec, p["audio_hop_frames"], device)
        audio.append(e), audio_perf.append(np.full(len(f), i)), audio_frame.append(f)
        for k, factor in enumerate(factors):
            _, e = embed_performance(model, spec, p["audio_hop_frames"], device, time_factor=factor)
            hyp["hyp_audio"].append(e), hyp["hyp_perf"].append(np.full(len(e), i)), hyp["hyp_factor"].append(np.full(len(e), k))
    extra = {}
    if factors:
        extra = {k: np.concatenate(v) for k, v in hyp.items()}
        extra.update(tempo_factors=np.array(factors, float), hyp_audio=extra["hyp_audio"].astype(np.float32))
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "windows.npz", sheet=np.concatenate(sheet).astype(np.float32), sheet_piece=np.concatenate(sheet_piece),
             sheet_x=np.concatenate(sheet_x), audio=np.concatenate(audio).astype(np.float32),
             audio_perf=np.concatenate(audio_perf), audio_frame=np.concatenate(audio_frame), **extra)
    pieces.assign(width_px=widths)[["piece", "split", "width_px"]].to_csv(out / "pieces.csv", index=False)
    perfs[["piece", "performance", "soundfont", "tempo_ratio", "n_frames", "role"]].to_csv(
        out / "performances.csv", index=False)
    counts = {"pieces": len(pieces), "performances": len(perfs), "sheet_windows": int(sum(map(len, sheet))),
              "audio_windows": int(sum(map(len, audio))), "retimed_audio_windows": int(sum(map(len, hyp["hyp_audio"])))}
    log(f"{counts}")
    return counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="snippet model artifact (models/<snippet model>/model.pt)")
    ap.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    ap.add_argument("--out", type=Path, required=True, help="output folder (windows.npz, pieces.csv, performances.csv)")
    ap.add_argument("--scenario", type=Path, default=None, help="read the test split from this scenario folder (III-sim)")
    add_params_argument(ap)
    args = ap.parse_args(argv)
    params = from_args(args)
    piece_windows(params, args.model, args.dataset, args.out, scenario=args.scenario,
                  log=lambda msg: print(f"[piece_windows] {msg}", file=sys.stderr, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
