"""Per-file checksum manifest of the built dataset, and the comparison of two manifests.

The ``dataset`` stage writes ``data/dataset/manifest.tsv``: one row per file of the build
(``data/pieces/<piece>/…`` and the split tables),
with its size and SHA-256, sorted by path. The data side is byte-identical on every x86-64
machine with the pinned environment (``constraints.txt``), so two manifests of the same commit
and parameters must be equal; ``tests/reference/default_data_manifest.tsv`` is the committed
manifest of the default corpus. To see what differs and why:

    python -m pipeline.data.manifest diff tests/reference/default_data_manifest.tsv data/dataset/manifest.tsv

prints every added, removed or changed file with the usual cause of a change for its kind.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import pandas as pd

COLUMNS = ["path", "bytes", "sha256"]
MANIFEST_NAME = "manifest.tsv"

# Where a changed file of each kind usually comes from (printed by ``diff``).
CAUSES = {
    ".ly": "the LilyPond source: the music21 -> MusicXML -> musicxml2ly conversion (music21 / LilyPond version)",
    ".midi": "LilyPond's MIDI: the source or the LilyPond version",
    ".png": "rasterised pages / strips: the PDF (LilyPond, fonts) or PyMuPDF's rasteriser version",
    ".npy": "spectrograms: the fluidsynth rendering (version, soundfont file) or the feature code",
    ".csv": "tables: upstream geometry or timing, or a pandas version that prints numbers differently",
    ".json": "stage reports: counts and statuses of the stage that wrote it",
    ".log": "a tool's own log (LilyPond version)",
}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def files_under(roots: list[Path]) -> list[Path]:
    """Every regular file under ``roots`` (files or folders), skipping hidden bookkeeping files
    (Snakemake's ``.snakemake_timestamp``) and the manifest itself; sorted."""
    out = []
    for root in roots:
        candidates = [root] if root.is_file() else root.rglob("*") if root.is_dir() else []
        out += [f for f in candidates if f.is_file() and not f.name.startswith(".") and f.name != MANIFEST_NAME]
    return sorted(set(out), key=str)


def build(roots: list[Path], base: Path = Path(".")) -> pd.DataFrame:
    """Manifest rows (path relative to ``base``, bytes, sha256) of every file under ``roots``."""
    rows = [{"path": f.relative_to(base).as_posix(), "bytes": f.stat().st_size, "sha256": sha256(f)}
            for f in files_under(roots)]
    return pd.DataFrame(rows, columns=COLUMNS)


def write(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, sep="\t", index=False)


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"path": str, "bytes": "int64", "sha256": str})


def compare(reference: pd.DataFrame, built: pd.DataFrame) -> dict[str, list[str]]:
    """Paths only in the reference (``missing``), only in the build (``added``), in both with other
    bytes (``changed``)."""
    ref, new = reference.set_index("path").sha256, built.set_index("path").sha256
    common = ref.index.intersection(new.index)
    return {"missing": sorted(ref.index.difference(new.index)), "added": sorted(new.index.difference(ref.index)),
            "changed": sorted(p for p in common if ref[p] != new[p])}


def report(diff: dict[str, list[str]], limit: int = 40) -> str:
    """Human-readable account of :func:`compare`: counts, files, and the likely cause by file kind."""
    if not any(diff.values()):
        return "identical: every file has the same bytes"
    lines = [f"{len(v)} {k}" for k, v in diff.items() if v]
    for kind, paths in diff.items():
        for p in paths[:limit]:
            lines.append(f"  {kind:8s} {p}")
        if len(paths) > limit:
            lines.append(f"  ... and {len(paths) - limit} more {kind}")
    kinds = sorted({Path(p).suffix for p in diff["changed"]})
    if kinds:
        lines.append("likely causes of the changes:")
        lines += [f"  {k or '(no suffix)'}: {CAUSES.get(k, 'see the stage that writes it')}" for k in kinds]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("diff", help="compare two manifests (reference first); exit 1 if they differ")
    d.add_argument("reference", type=Path)
    d.add_argument("built", type=Path)
    d.add_argument("--pieces", nargs="*", default=None,
                   help="compare only these pieces' files (data/pieces/<p>/)")
    b = sub.add_parser("build", help="write the manifest of files under ROOTS")
    b.add_argument("roots", nargs="+", type=Path)
    b.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.command == "build":
        write(build(args.roots), args.out)
        return 0
    ref, new = read(args.reference), read(args.built)
    if args.pieces is not None:
        ref, new = (only_pieces(df, args.pieces) for df in (ref, new))
    diff = compare(ref, new)
    print(report(diff))
    return 1 if any(diff.values()) else 0


def only_pieces(df: pd.DataFrame, pieces: list[str]) -> pd.DataFrame:
    """Rows of the files of ``pieces`` (their piece folders)."""
    prefixes = tuple(f"data/pieces/{p}/" for p in pieces)
    return df[df.path.str.startswith(prefixes)].reset_index(drop=True)


if __name__ == "__main__":
    sys.exit(main())
