"""The portable training pack: its format, its reader, and one interface to a split's inputs whether
they come from a built dataset folder or from a pack (written by :mod:`pipeline.data.pack`).

A pack is a folder holding ``pack.json`` (the manifest) and numbered parts ``part-0000.bin``,
``part-0001.bin``, … of at most ``part_bytes`` each. The parts are one byte stream cut into pieces:
every *entry* (a table, one piece's sheet, one performance's spectrogram) is a zlib stream at
``[offset, offset + length)`` of it, possibly across two parts. The manifest lists every part with
its size and SHA-256 and every entry with its place, dtype and shape, so the pack describes itself:

- ``<split>/<table>.csv``: the dataset's tables, byte for byte (``pieces``, ``performances``,
  ``passages``, ``snippets``; their ``unrolled`` / ``spec`` columns keep the paths of the built
  dataset, which the reader maps to the entries below);
- ``sheet/<piece>``: uint8 (STRIP_HEIGHT_PX, W) — the unrolled score as the dataset's PNG decodes
  (greyscale, white = 255): exact;
- ``spec/<piece>/<performance>``: uint8 or uint16 (N_BINS, T) codes ``q`` of the log spectrogram,
  quantised per performance on the spectrogram's own grid of 2^-16 (:data:`SPEC_GRID`):
  ``value = (offset + q * step) * 2^-16`` with integers ``offset`` (the smallest grid index) and
  ``step >= 1`` (the fewest grid steps per code that span the performance's range). Dequantising is
  exact float arithmetic (every value is a float32), so the same bytes give the same float32 array on
  every machine. The error is at most ``step / 2`` grid steps: the manifest states the bound and the
  measured maximum per split and overall (``spec.max_abs_error``, in log10(1 + magnitude) units);
- ``summary.json``: the dataset's counts.

The reader checks the SHA-256 of every part before it uses a byte of it, and names the part, the
pack and what to do when a part is missing, truncated or corrupt.
"""
from __future__ import annotations

import hashlib
import io
import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from pipeline.core.constants import N_BINS, STRIP_HEIGHT_PX

FORMAT = "scorelink-pack"
VERSION = 1
MANIFEST = "pack.json"
SPEC_GRID = 2.0 ** -16          # the spectrograms' grid (pipeline.data.spectrogram.QUANTUM) [log10 units]
SPEC_DTYPES = ("uint8", "uint16")
TABLES = ("pieces", "performances", "passages", "snippets")
SPLITS = ("train", "valid", "test")


class PackError(ValueError):
    """A pack is missing, incomplete, corrupt or of another format: the message says which file and why."""


def part_name(i: int) -> str:
    return f"part-{i:04d}.bin"


def sheet_key(piece: str) -> str:
    return f"sheet/{piece}"


def spec_key(piece: str, performance: str) -> str:
    return f"spec/{piece}/{performance}"


def table_key(split: str, table: str) -> str:
    return f"{split}/{table}.csv"


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def is_pack(folder: Path) -> bool:
    return (Path(folder) / MANIFEST).is_file()


DATA_KEYS = ("seed", "corpus", "engrave", "render", "passages")    # the parameters that built the data


def params_digest(params: dict) -> str:
    """SHA-256 of the data parameters (:data:`DATA_KEYS`) present in ``params``, as sorted JSON."""
    sub = {k: params[k] for k in DATA_KEYS if k in params}
    return hashlib.sha256(json.dumps(sub, sort_keys=True).encode()).hexdigest()


def check_params(folder: Path, params: dict) -> dict:
    """The manifest of the pack at ``folder`` after checking that it exists, is complete and was built
    with the data parameters of ``params`` (:data:`DATA_KEYS`); :class:`PackError` names what differs."""
    m = Pack(folder).manifest
    if m["params_digest"] != params_digest(params):
        differ = sorted(k for k in DATA_KEYS if m["params"].get(k) != params.get(k))
        raise PackError(f"pack {folder} was built with other data parameters ({', '.join(differ)} differ): run with "
                        "the parameter files the data was built with (e.g. params.yaml config/mutopia.yaml), "
                        "or rebuild the pack")
    return m


# --- spectrogram quantisation ----------------------------------------------------------------------

def quantise_spec(spec: np.ndarray, dtype: str) -> tuple[np.ndarray, int, int]:
    """Codes ``q`` (same shape, ``dtype``), ``offset`` and ``step`` [grid indices] of a spectrogram
    (N_BINS, T) of float values; ``(offset + q * step) * SPEC_GRID`` restores it within
    ``step / 2`` grid steps (plus the distance of off-grid input to the grid)."""
    if dtype not in SPEC_DTYPES:
        raise PackError(f"spectrogram dtype {dtype!r} is not one of {SPEC_DTYPES}")
    k = np.rint(np.asarray(spec, np.float64) / SPEC_GRID).astype(np.int64)
    if k.size == 0:
        return np.zeros(k.shape, dtype), 0, 1
    lo, hi = int(k.min()), int(k.max())
    levels = int(np.iinfo(dtype).max)
    step = max(1, -(-(hi - lo) // levels))                               # ceil((hi - lo) / levels)
    q = np.floor_divide(2 * (k - lo) + step, 2 * step)                  # round half up, in integers
    return q.astype(dtype), lo, step


def dequantise_spec(q: np.ndarray, offset: int, step: int) -> np.ndarray:
    """float32 (N_BINS, T) of codes ``q``: exact (every ``(offset + q * step) * 2^-16`` below 2^8 is a float32)."""
    return ((offset + q.astype(np.int64) * step) * SPEC_GRID).astype(np.float32)


# --- the reader -----------------------------------------------------------------------------------

class Pack:
    """A pack folder: its manifest, and its entries read from checksummed parts.

    Opening checks the manifest (format, version) and that every part is present with its size; a
    part's SHA-256 is checked the first time any entry needs it (``verify()`` checks all)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        path = self.folder / MANIFEST
        if not path.is_file():
            raise PackError(f"{self.folder}: not a pack ({MANIFEST} not found)")
        try:
            m = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise PackError(f"{path}: not a readable pack manifest ({e}); copy the pack again") from e
        if not isinstance(m, dict) or m.get("format") != FORMAT:
            raise PackError(f"{path}: not a {FORMAT} manifest")
        if m.get("version") != VERSION:
            raise PackError(f"{path}: pack format version {m.get('version')}, this code reads version {VERSION}: "
                            "rebuild the pack with this code (python -m pipeline.data.pack)")
        self.manifest = m
        self.part_bytes = int(m["part_bytes"])
        self.parts = m["parts"]
        self.entries = m["entries"]
        problems = []
        for p in self.parts:
            f = self.folder / p["name"]
            if not f.is_file():
                problems.append(f"{p['name']} is missing")
            elif f.stat().st_size != p["bytes"]:
                problems.append(f"{p['name']} has {f.stat().st_size} bytes, the manifest says {p['bytes']} "
                                "(truncated or replaced)")
        if problems:
            raise PackError(f"pack {self.folder} is incomplete: " + "; ".join(problems)
                            + f" ({len(self.parts)} parts listed in {MANIFEST}); copy every part of the pack again")
        self._verified: set[int] = set()

    # parts
    def _check_part(self, i: int) -> None:
        if i in self._verified:
            return
        p = self.parts[i]
        digest = sha256_file(self.folder / p["name"])
        if digest != p["sha256"]:
            raise PackError(f"pack {self.folder}: {p['name']} is corrupt (SHA-256 {digest[:16]}…, the manifest says "
                            f"{p['sha256'][:16]}…); copy this part of the pack again")
        self._verified.add(i)

    def verify(self) -> None:
        """Check the SHA-256 of every part (raises :class:`PackError` on the first bad one)."""
        for i in range(len(self.parts)):
            self._check_part(i)

    def _read_range(self, offset: int, length: int) -> bytes:
        out, end = bytearray(), offset + length
        while offset < end:
            i, at = divmod(offset, self.part_bytes)
            self._check_part(i)
            n = min(end - offset, self.part_bytes - at)
            with open(self.folder / self.parts[i]["name"], "rb") as f:
                f.seek(at)
                out += f.read(n)
            offset += n
        return bytes(out)

    # entries
    def entry(self, key: str) -> dict:
        if key not in self.entries:
            raise PackError(f"pack {self.folder}: no entry {key!r} (the pack was built from another dataset?)")
        return self.entries[key]

    def raw(self, key: str) -> bytes:
        e = self.entry(key)
        try:
            data = zlib.decompress(self._read_range(e["offset"], e["length"]))
        except zlib.error as err:     # parts passed their checksums: a manifest that does not match them
            raise PackError(f"pack {self.folder}: entry {key!r} does not decompress ({err}); rebuild the pack") from err
        if len(data) != e["raw_bytes"]:
            raise PackError(f"pack {self.folder}: entry {key!r} has {len(data)} bytes, the manifest says {e['raw_bytes']}")
        return data

    def array(self, key: str) -> np.ndarray:
        e = self.entry(key)
        return np.frombuffer(self.raw(key), dtype=e["dtype"]).reshape(e["shape"]).copy()

    def table(self, split: str, table: str) -> pd.DataFrame:
        return pd.read_csv(io.BytesIO(self.raw(table_key(split, table))))

    def sheet(self, piece: str) -> np.ndarray:
        """uint8 (STRIP_HEIGHT_PX, W): the piece's unrolled score, exactly as its PNG decodes."""
        return self.array(sheet_key(piece))

    def spec(self, piece: str, performance: str) -> np.ndarray:
        """float32 (N_BINS, T) [log10(1 + magnitude)]: the dequantised spectrogram."""
        key = spec_key(piece, performance)
        e = self.entry(key)
        return dequantise_spec(self.array(key), e["offset_k"], e["step_k"])

    @property
    def splits(self) -> list[str]:
        return list(self.manifest["splits"])


# --- one interface to a split's inputs ------------------------------------------------------------

class DatasetSplit:
    """A split of a built dataset folder (``pipeline.data.dataset``): tables there, arrays in the files
    the tables name (paths relative to ``root``)."""

    def __init__(self, dataset_dir: Path, split: str, root: Path = Path(".")):
        self.dir, self.root = Path(dataset_dir) / split, Path(root)

    def table(self, name: str) -> pd.DataFrame:
        return pd.read_csv(self.dir / f"{name}.csv")

    def empty(self, name: str) -> bool:
        """True when the table is absent or has no header (the dataset stage writes an empty split so)."""
        f = self.dir / f"{name}.csv"
        return not f.is_file() or f.stat().st_size < 2

    def sheet(self, row) -> np.ndarray:
        """uint8 (STRIP_HEIGHT_PX, W) of a ``pieces`` row."""
        return np.asarray(Image.open(self.root / row.unrolled).convert("L"))

    def spec(self, row) -> np.ndarray:
        """float32 (N_BINS, T) of a ``performances`` row."""
        return np.load(self.root / row.spec).astype(np.float32)


class PackSplit:
    """A split of a pack: the same tables (byte for byte) and arrays (sheets exact, spectrograms within
    the manifest's ``spec.max_abs_error``)."""

    def __init__(self, pack: Pack, split: str):
        if split not in pack.manifest["splits"]:
            raise PackError(f"pack {pack.folder} has no split {split!r} (it holds {pack.splits})")
        self.pack, self.split = pack, split

    def table(self, name: str) -> pd.DataFrame:
        return self.pack.table(self.split, name)

    def empty(self, name: str) -> bool:
        e = self.pack.entries.get(table_key(self.split, name))
        return e is None or e["raw_bytes"] < 2

    def sheet(self, row) -> np.ndarray:
        return self.pack.sheet(row.piece)

    def spec(self, row) -> np.ndarray:
        return self.pack.spec(row.piece, row.performance)


_OPEN_PACKS: dict[Path, tuple[Pack, tuple]] = {}   # folder -> (pack, manifest mtime and size)


def open_pack(folder: Path) -> Pack:
    """The :class:`Pack` of ``folder``, opened once per process (its parts are checksummed once)."""
    key = Path(folder).resolve()
    manifest = key / MANIFEST
    stamp = (manifest.stat().st_mtime_ns, manifest.stat().st_size) if manifest.is_file() else None
    cached = _OPEN_PACKS.get(key)
    if cached is None or cached[1] != stamp:
        _OPEN_PACKS[key] = (Pack(folder), stamp)
    return _OPEN_PACKS[key][0]


def open_split(dataset_dir: Path, split: str, root: Path = Path(".")) -> DatasetSplit | PackSplit:
    """A split's inputs from ``dataset_dir``: a pack (it holds ``pack.json``) or a built dataset folder
    (``<split>/pieces.csv``, arrays under ``root``)."""
    d = Path(dataset_dir)
    if is_pack(d):
        return PackSplit(open_pack(d), split)
    if not (d / split / "pieces.csv").is_file():
        raise FileNotFoundError(f"{d}: neither a built dataset ({d / split / 'pieces.csv'} not found) "
                                f"nor a training pack ({d / MANIFEST} not found)")
    return DatasetSplit(d, split, root)


def has_rows(dataset_dir: Path, split: str, table: str) -> bool:
    """True when ``split`` of a dataset folder or a pack has ``table`` with a header (an empty split has none)."""
    d = Path(dataset_dir)
    if is_pack(d):
        return split in open_pack(d).manifest["splits"] and not PackSplit(open_pack(d), split).empty(table)
    return not DatasetSplit(d, split).empty(table)


def input_files(dataset_dir: Path, splits, tables) -> list[Path]:
    """The files that identify a stage's inputs (for resume fingerprints): the split tables of a dataset
    folder, or the manifest of a pack (it holds the SHA-256 of every part)."""
    d = Path(dataset_dir)
    if is_pack(d):
        return [d / MANIFEST]
    return [d / s / f for s in splits for f in tables]


def check_shapes(sheet: np.ndarray | None = None, spec: np.ndarray | None = None, what: str = "") -> None:
    """Raise :class:`PackError` (naming ``what``) unless sheet is (STRIP_HEIGHT_PX, W) and spec (N_BINS, T)."""
    if sheet is not None and (sheet.ndim != 2 or sheet.shape[0] != STRIP_HEIGHT_PX):
        raise PackError(f"{what}: sheet of shape {sheet.shape}, expected ({STRIP_HEIGHT_PX}, W)")
    if spec is not None and (spec.ndim != 2 or spec.shape[0] != N_BINS):
        raise PackError(f"{what}: spectrogram of shape {spec.shape}, expected ({N_BINS}, T)")
