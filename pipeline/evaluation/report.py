"""Result tables for people: display names of the models, the MRR columns with their interval, and
Markdown with ``MRR [95 % CI]`` cells (shared by the ``tables`` and ``experiments`` stages)."""
from __future__ import annotations

import pandas as pd

DISPLAY = {"bl": "BL", "snippet": "snippet (pretraining)", "snippet_cca": "snippet + CCA refit",
           "rnn": "RNN", "rnn_ft": "RNN-FT", "rnn_fz": "RNN-FZ",
           "rnn_ft_cca": "RNN-FT-CCA", "rnn_fz_cca": "RNN-FZ-CCA"}
COLUMNS = ["R@1", "R@5", "R@10", "R@25", "MRR", "median_rank", "mean_rank"]


def mrr_columns(m: dict) -> dict:
    """The MRR of one direction's metrics with its interval, chance level, n and tie rule (flat columns)."""
    lo, hi = m["MRR_ci95"]
    return {"MRR": m["MRR"], "MRR_lo95": lo, "MRR_hi95": hi, "chance_MRR": m["chance_MRR"],
            "n_queries": m["n_queries"], "ties": m["ties"]}


ONE_DECIMAL = ("R@", "MR", "mean rank", "mean_rank", "median_rank")   # percentages and ranks


def _cell(column: str, v) -> str:
    if isinstance(v, float):
        return f"{v:.1f}" if column.startswith(ONE_DECIMAL) else f"{v:.3f}"
    return str(v)


def to_markdown(df: pd.DataFrame) -> str:
    """Markdown table; ``MRR`` + ``MRR_lo95`` + ``MRR_hi95`` columns become one ``MRR [95 % CI]`` cell
    (and ``X`` + ``X_lo95`` + ``X_hi95`` likewise for any other interval)."""
    cols, merged = [], set()
    for c in df.columns:
        if c.endswith(("_lo95", "_hi95")):
            continue
        if f"{c}_lo95" in df.columns:
            cols.append((f"{c} [95 % CI]", c))
            merged.add(c)
        else:
            cols.append((c, c))
    head = "| " + " | ".join(name for name, _ in cols) + " |\n|" + "---|" * len(cols) + "\n"
    lines = []
    for _, row in df.iterrows():
        cells = [f"{row[c]:.3f} [{row[c + '_lo95']:.3f}, {row[c + '_hi95']:.3f}]" if c in merged else _cell(c, row[c])
                 for _, c in cols]
        lines.append("| " + " | ".join(cells) + " |\n")
    return head + "".join(lines)
