"""Small CSV tables of the data side without pandas (a piece job spends 0.3 s importing pandas).

:func:`write_csv` writes the bytes ``pandas.DataFrame(rows).to_csv(path, index=False,
float_format=...)`` writes (the dataset's reference manifest checks it): a column of ints stays
integral, a column mixing ints and floats (or holding NaN) is a float column, floats print as their
shortest repr or with ``float_format``, NaN as an empty field. :func:`read_csv` reads such a file
back into one NumPy array per column (int64, float64 or str; an empty field is NaN).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np


def _column_kind(values: list) -> str:
    kinds = set()
    for v in values:
        if isinstance(v, (bool, np.bool_)):
            kinds.add("bool")
        elif isinstance(v, (int, np.integer)):
            kinds.add("int")
        elif isinstance(v, (float, np.floating)):
            kinds.add("float")
        else:
            kinds.add("str")
    if kinds <= {"int"}:
        return "int"
    if kinds <= {"int", "float"}:
        return "float"
    return "bool" if kinds == {"bool"} else "str"


def _formatter(kind: str, float_format: str | None):
    if kind == "int":
        return lambda v: str(int(v))
    if kind == "float":
        return lambda v: "" if math.isnan(v) else (float_format % v if float_format else repr(float(v)))
    return str


def _column_kind_of(col) -> str:
    if isinstance(col, np.ndarray) and col.dtype.kind in "iuf":
        return "int" if col.dtype.kind in "iu" else "float"
    return _column_kind(list(col))


def write_csv(path: Path, columns: dict, float_format: str | None = None) -> None:
    """Write ``columns`` (``{name: values}``, equal lengths, in column order) as a CSV file with a header."""
    names = list(columns)
    fmt = [_formatter(_column_kind_of(columns[c]), float_format) for c in names]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(zip(*([f(v) for v in columns[c]] for f, c in zip(fmt, names))))


def write_rows(path: Path, rows: list[dict], float_format: str | None = None) -> None:
    """Write ``rows`` (dicts with the same keys, in column order) as a CSV file with a header."""
    if not rows:
        raise ValueError(f"{path}: no rows to write")
    write_csv(path, {c: [r[c] for r in rows] for c in rows[0]}, float_format)


def _parse_column(values: list[str]) -> np.ndarray:
    try:
        return np.array([int(v) for v in values], dtype=np.int64)
    except ValueError:
        pass
    try:
        return np.array([float(v) if v != "" else np.nan for v in values], dtype=np.float64)
    except ValueError:
        return np.array(values, dtype=object)


def read_csv(path: Path) -> dict[str, np.ndarray]:
    """Columns of a CSV file with a header: ``{name: array}`` (int64 if every field is an integer,
    else float64 if every field is a number or empty, else str objects)."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        fields = list(reader)
    return {name: _parse_column([row[i] for row in fields]) for i, name in enumerate(header)}
