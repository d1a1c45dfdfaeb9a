"""Stage ``dataset``: gather every piece into per-split tables, the quarantine table and counts.

Writes ``OUT/<split>/{pieces,performances,passages,snippets}.csv`` (arrays stay per piece:
``data/pieces/<piece>/score/unrolled.png`` and ``.../audio/spec/<performance>.npy``; the
tables give their paths relative to the project root), ``OUT/quarantine.csv`` (piece, split,
stage, reason, detail), ``OUT/index.tsv`` (the piece index as built: split, data job, source and
the SHA-256 of its files, outcome), ``OUT/summary.json`` (counts per split and per quarantine reason)
and ``OUT/manifest.tsv``: size and SHA-256 of every file of the build (:mod:`pipeline.data.manifest`).
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import pandas as pd

from pipeline.data import manifest
from pipeline.data.corpus import SPLITS, piece_batches, piece_index, source_digest
from pipeline.core.params import add_params_argument, from_args
from pipeline.core.stage import read_status, write_json

STAGES = ("score", "audio", "passages")


def gather(pieces_root: Path, index) -> dict:
    """Concatenate the per-piece outputs; returns {split: {table: DataFrame}}, quarantine, summary."""
    tables = {s: {"pieces": [], "performances": [], "passages": [], "snippets": []} for s in SPLITS}
    quarantine = [{"piece": n, "split": s, "stage": "index", "reason": "not in corpus",
                   "detail": "listed in the split file but not found"} for n, s in index.missing]
    for p in index.pieces:
        root = pieces_root / p.name
        status = {k: read_status(root / k) for k in STAGES}
        failed = next((status[k] for k in STAGES if not status[k]["ok"]), None)
        if failed is not None:
            first = next(status[k] for k in STAGES if not status[k]["ok"] and "(from stage" not in status[k].get("detail", ""))
            quarantine.append({"piece": p.name, "split": p.split, "stage": first["stage"],
                               "reason": first["reason"], "detail": first.get("detail", "")})
            continue
        t = tables[p.split]
        score = status["score"]
        t["pieces"].append(pd.DataFrame([{"piece": p.name, "systems": score["systems"], "pages": score["pages"],
                                           "noteheads": score["noteheads"], "duration_s": score["duration_s"],
                                           "unrolled": f"{root / 'score' / 'unrolled.png'}"}]))
        perf = pd.read_csv(root / "audio" / "performances.csv")
        perf.insert(0, "piece", p.name)
        perf["spec"] = [f"{root / 'audio' / 'spec' / (x + '.npy')}" for x in perf.performance]
        t["performances"].append(perf)
        for name in ("passages", "snippets"):
            df = pd.read_csv(root / "passages" / f"{name}.csv")
            df.insert(0, "piece", p.name)
            t[name].append(df)
    out = {}
    for split, tabs in tables.items():
        out[split] = {k: (pd.concat(v, ignore_index=True) if v else pd.DataFrame()) for k, v in tabs.items()}
    q = pd.DataFrame(quarantine, columns=["piece", "split", "stage", "reason", "detail"])
    return out, q


def summarize(out: dict, q: pd.DataFrame) -> dict:
    summary = {"splits": {}, "quarantined": {"total": len(q), "by_reason": dict(sorted(Counter(q.reason).items()))}}
    for split, t in out.items():
        perf = t["performances"]
        summary["splits"][split] = {
            "pieces": len(t["pieces"]),
            "systems": int(t["pieces"].systems.sum()) if len(t["pieces"]) else 0,
            "performances": len(perf),
            "passages": len(t["passages"]),
            "snippet_pairs": len(t["snippets"]),
            "audio_hours": round(float(perf.duration_s.sum()) / 3600, 4) if len(perf) else 0.0,
            "quarantined": int((q.split == split).sum()),
        }
    return summary


INDEX_NAME = "index.tsv"


def index_table(index, batch_pieces: int, quarantine: pd.DataFrame) -> pd.DataFrame:
    """The piece index as built: piece, split, data job (batch), source (corpus folder or music21
    work), main file, SHA-256 of the source files (:func:`pipeline.data.corpus.source_digest`) and the
    outcome (``ok`` or the quarantining stage)."""
    batch_of = {p.name: b for b, members in piece_batches(index.pieces, batch_pieces).items() for p in members}
    stage_of = dict(zip(quarantine.piece, quarantine.stage))
    return pd.DataFrame([{"piece": p.name, "split": p.split, "batch": batch_of[p.name],
                          "source": f"music21:{p.work}" if p.work else p.source, "main": p.main,
                          "source_sha256": source_digest(p), "outcome": stage_of.get(p.name, "ok")}
                         for p in index.pieces])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pieces-root", type=Path, default=Path("data/pieces"))
    ap.add_argument("--out", type=Path, default=Path("data/dataset"))
    add_params_argument(ap)
    args = ap.parse_args(argv)
    params = from_args(args)
    index = piece_index(params)
    out, q = gather(args.pieces_root, index)
    for split, tabs in out.items():
        (args.out / split).mkdir(parents=True, exist_ok=True)
        for name, df in tabs.items():
            df.to_csv(args.out / split / f"{name}.csv", index=False)
    q.to_csv(args.out / "quarantine.csv", index=False)
    index_table(index, params["corpus"]["batch_pieces"], q).to_csv(args.out / INDEX_NAME, sep="\t", index=False)
    summary = summarize(out, q)
    write_json(args.out / "summary.json", summary)
    roots = [args.pieces_root / p.name for p in index.pieces] + [args.out]
    files = manifest.build(roots)
    manifest.write(files, args.out / manifest.MANIFEST_NAME)
    for split, s in summary["splits"].items():
        print(f"[dataset] {split}: {s}", file=sys.stderr)
    print(f"[dataset] quarantined: {summary['quarantined']}", file=sys.stderr)
    print(f"[dataset] manifest: {len(files)} files, {files.bytes.sum()} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
