"""Stage ``pack``: the built dataset as a portable training pack (format: :mod:`pipeline.data.packfile`).

Reads ``DATASET/<split>/{pieces,performances,passages,snippets}.csv`` of every split and the arrays
they name (``data/pieces/<piece>/score/unrolled.png``, ``.../audio/spec/<performance>.npy``); writes
``OUT/pack.json`` and ``OUT/part-NNNN.bin`` (each at most ``pack.part_mib`` MiB): the tables byte
for byte, every unrolled score as uint8 (exact), every spectrogram quantised to ``pack.spec_dtype``
per performance (the manifest states the error bound and the measured maximum), each entry
zlib-compressed. Training and evaluation read the pack instead of the dataset when given
``--dataset OUT`` (:func:`pipeline.models.snippets.load_split`); a GPU node needs nothing else but
the Python environment (README "Paper scale on a GPU node").

    python -m pipeline.data.pack --dataset data/dataset --out pack     # build (params: pack.*)
    python -m pipeline.data.pack --verify pack                          # check every part's SHA-256

Nothing is overwritten until the new pack is complete: it is written next to ``OUT`` and moved into
place at the end; ``OUT`` is refused if it exists and is not a pack.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.constants import N_BINS, STRIP_HEIGHT_PX
from pipeline.core.params import add_params_argument, from_args
from pipeline.core.stage import write_json
from pipeline.data import packfile as pf
from pipeline.data.packfile import MANIFEST, SPLITS, TABLES, DatasetSplit, Pack, PackError, is_pack

ZLIB_LEVEL = 6
MIB = 1 << 20


class PartWriter:
    """One byte stream written as numbered parts of ``part_bytes`` each (the last one shorter)."""

    def __init__(self, folder: Path, part_bytes: int):
        self.folder, self.part_bytes = folder, part_bytes
        self.parts: list[dict] = []
        self.offset = 0
        self._f = self._h = None
        self._n = 0

    def _open(self):
        name = pf.part_name(len(self.parts))
        self._f, self._h, self._n = open(self.folder / name, "wb"), hashlib.sha256(), 0
        self.parts.append({"name": name})

    def _close(self):
        self._f.close()
        self.parts[-1].update(bytes=self._n, sha256=self._h.hexdigest())
        self._f = None

    def write(self, data: bytes) -> tuple[int, int]:
        """Append ``data``; return its (offset, length) in the stream."""
        start, view = self.offset, memoryview(data)
        while view:
            if self._f is None:
                self._open()
            n = min(len(view), self.part_bytes - self._n)
            self._f.write(view[:n])
            self._h.update(view[:n])
            self._n += n
            view = view[n:]
            if self._n == self.part_bytes:
                self._close()
        self.offset += len(data)
        return start, len(data)

    def finish(self) -> list[dict]:
        if self._f is not None:
            self._close()
        return self.parts


def _check_inputs(dataset: Path, root: Path) -> dict:
    """Every split's tables, and every array file they name exists: {split: DatasetSplit}. Raises
    :class:`FileNotFoundError` naming the first missing file (before anything is written)."""
    out = {}
    for split in SPLITS:
        for t in TABLES:
            f = dataset / split / f"{t}.csv"
            if not f.is_file():
                raise FileNotFoundError(f"{f} not found: is {dataset} a built dataset (python -m pipeline.data.dataset)?")
        src = DatasetSplit(dataset, split, root)
        for col, table in (("unrolled", "pieces"), ("spec", "performances")):
            for rel in [] if src.empty(table) else src.table(table)[col]:
                if not (root / rel).is_file():
                    raise FileNotFoundError(f"{root / rel} (named by {dataset / split / table}.csv) not found")
        out[split] = src
    return out


def build_pack(dataset: Path, out: Path, part_mib: float, spec_dtype: str, params: dict,
               root: Path = Path("."), log=print) -> dict:
    """Write the pack of ``dataset`` to ``out`` (see the module docstring); return its manifest."""
    dataset, out = Path(dataset), Path(out)
    if spec_dtype not in pf.SPEC_DTYPES:
        raise PackError(f"pack.spec_dtype {spec_dtype!r} is not one of {pf.SPEC_DTYPES}")
    if part_mib <= 0:
        raise PackError(f"pack.part_mib must be positive, not {part_mib}")
    if out.exists() and not is_pack(out) and (not out.is_dir() or any(out.iterdir())):
        raise PackError(f"{out} exists and is not a pack: refusing to replace it")
    sources = _check_inputs(dataset, Path(root))
    part_bytes = max(1, int(part_mib * MIB))
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        writer, entries, splits = PartWriter(tmp, part_bytes), {}, {}

        def put(key: str, raw: bytes, **meta) -> int:
            offset, length = writer.write(zlib.compress(raw, ZLIB_LEVEL))
            entries[key] = {"offset": offset, "length": length, "raw_bytes": len(raw), **meta}
            return length

        for split, src in sources.items():
            start = writer.offset
            tabs = {t: (dataset / split / f"{t}.csv").read_bytes() for t in TABLES}
            for t, raw in tabs.items():
                put(pf.table_key(split, t), raw)
            pieces, perfs = (pd.DataFrame() if src.empty(t) else src.table(t) for t in ("pieces", "performances"))
            width = frames = 0
            for row in pieces.itertuples():
                img = np.ascontiguousarray(src.sheet(row), dtype=np.uint8)
                pf.check_shapes(sheet=img, what=row.unrolled)
                put(pf.sheet_key(row.piece), img.tobytes(), kind="sheet", dtype="uint8", shape=list(img.shape))
                width += img.shape[1]
            err = 0.0
            for row in perfs.itertuples():
                spec = src.spec(row)                                             # float32, as load_split reads it
                pf.check_shapes(spec=spec, what=row.spec)
                q, offset, step = pf.quantise_spec(spec, spec_dtype)
                back = pf.dequantise_spec(q, offset, step)
                if spec.size:
                    err = max(err, float(np.max(np.abs(back.astype(np.float64) - spec.astype(np.float64)))))
                put(pf.spec_key(row.piece, row.performance), np.ascontiguousarray(q).tobytes(), kind="spec",
                    dtype=spec_dtype, shape=list(q.shape), offset_k=offset, step_k=step)
                frames += spec.shape[1]
            counts = {t: 0 if src.empty(t) else len(src.table(t)) for t in ("passages", "snippets")}
            splits[split] = {"pieces": len(pieces), "performances": len(perfs), **counts,
                             "sheet_columns": width, "spec_frames": frames,
                             "in_memory_bytes": width * STRIP_HEIGHT_PX + frames * N_BINS * 4,   # uint8 sheets + float32 specs
                             "packed_bytes": writer.offset - start, "spec_max_abs_error": err}
            log(f"{split}: {splits[split]}")
        summary = dataset / "summary.json"
        if summary.is_file():
            put("summary.json", summary.read_bytes())
        parts = writer.finish()
        steps = [e["step_k"] for e in entries.values() if e.get("kind") == "spec"]
        source_manifest = dataset / "manifest.tsv"
        manifest = {
            "format": pf.FORMAT, "version": pf.VERSION, "created_by": "python -m pipeline.data.pack",
            "params": {k: params[k] for k in pf.DATA_KEYS if k in params}, "params_digest": pf.params_digest(params),
            "source": {"dataset": str(dataset),
                       "dataset_manifest_sha256": (hashlib.sha256(source_manifest.read_bytes()).hexdigest()
                                                   if source_manifest.is_file() else None)},
            "compression": f"zlib level {ZLIB_LEVEL}, one stream per entry",
            "sheet": {"dtype": "uint8", "layout": "(STRIP_HEIGHT_PX=200, W) per piece, white = 255", "exact": True},
            "spec": {"dtype": spec_dtype, "grid": pf.SPEC_GRID, "unit": "log10(1 + magnitude)",
                     "layout": "(N_BINS=92, T) per performance at 20 fps",
                     "dequantise": "float32((offset_k + q * step_k) * grid), per entry",
                     "max_step_k": max(steps, default=1),
                     "error_bound": max(steps, default=1) / 2 * pf.SPEC_GRID,
                     "max_abs_error": max((s["spec_max_abs_error"] for s in splits.values()), default=0.0)},
            "splits": splits,
            "part_bytes": part_bytes, "parts": parts,
            "total_bytes": sum(p["bytes"] for p in parts),
            "entries": entries,
        }
        write_json(tmp / MANIFEST, manifest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(out)
    return manifest


def verify_pack(folder: Path) -> dict:
    """Check every part of the pack at ``folder`` (presence, size, SHA-256); return its manifest."""
    pack = Pack(folder)
    pack.verify()
    return pack.manifest


def describe(m: dict) -> str:
    s = m["spec"]
    return (f"{len(m['parts'])} parts, {m['total_bytes'] / MIB:.1f} MiB; spectrograms {s['dtype']}, "
            f"max abs error {s['max_abs_error']:.3g} (bound {s['error_bound']:.3g}) log10 units; "
            + "; ".join(f"{k}: {v['pieces']} pieces, {v['performances']} performances, {v['passages']} passages, "
                        f"{v['snippets']} snippet pairs" for k, v in m["splits"].items()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    ap.add_argument("--out", type=Path, default=Path("pack"))
    ap.add_argument("--root", type=Path, default=Path("."), help="folder the tables' array paths are relative to")
    ap.add_argument("--verify", type=Path, default=None, metavar="PACK", help="only check the parts of PACK")
    add_params_argument(ap)
    args = ap.parse_args(argv)
    log = lambda msg: print(f"[pack] {msg}", file=sys.stderr, flush=True)
    try:
        if args.verify is not None:
            log(f"{args.verify}: ok: {describe(verify_pack(args.verify))}")
            return 0
        params = from_args(args)
        p = params["pack"]
        m = build_pack(args.dataset, args.out, p["part_mib"], p["spec_dtype"], params, args.root, log)
    except (PackError, FileNotFoundError) as e:
        log(f"error: {e}")
        return 2
    log(f"wrote {args.out}: {describe(m)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
