"""Stage ``sanity``: a figure a person can check — queries and their top-k retrieved passages.

For ``--n-queries`` evenly spaced test passages per direction: A2S rows show the query
spectrogram then the top-k sheet strips; S2A rows the query strip then the top-k spectrograms.
The true match is framed green, others grey; each panel is titled with piece, system and rank.
Reads the ``--details`` CSV of ``pipeline.evaluation.evaluate`` (its rows = the passages of that split and
tempo, in the same order as :func:`pipeline.models.snippets.load_split`) and draws ``--out`` (PNG).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline.core.constants import rho_label  # noqa: E402
from pipeline.core.params import add_params_argument, from_args  # noqa: E402
from pipeline.models.snippets import SplitBank, load_split  # noqa: E402


def passage_views(bank: SplitBank, row: int) -> tuple[np.ndarray, np.ndarray]:
    """(200, w) uint8 sheet strip and (92, t) spectrogram of passage ``row``."""
    p = bank.passages.iloc[row]
    sheet = bank.sheet[:, p.px + p.x0: p.px + p.x1].numpy()
    spec = bank.spec[:, p.pf + p.f0: p.pf + p.f1].numpy()
    return sheet, spec


def query_rows(n_passages: int, n_queries: int) -> np.ndarray:
    return np.unique(np.linspace(0, n_passages - 1, min(n_queries, n_passages)).round().astype(int))


def sanity_figure(bank: SplitBank, details: pd.DataFrame, n_queries: int, top_k: int, title: str, out: Path) -> None:
    if len(details) != len(bank.passages):
        raise ValueError(f"details has {len(details)} rows but the split has {len(bank.passages)} passages")
    queries = query_rows(len(details), n_queries)
    n_rows = 2 * len(queries)
    fig, axes = plt.subplots(n_rows, top_k + 1, figsize=(2.4 * (top_k + 1), 1.5 * n_rows), squeeze=False)
    label = lambda r: f"{details.piece[r].split('__')[-1][:18]} #{details.system[r]}"
    for i, (direction, q) in enumerate([(d, q) for d in ("a2s", "s2a") for q in queries]):
        row_axes = axes[i]
        sheet, spec = passage_views(bank, q)
        show_query_audio = direction == "a2s"
        draw(row_axes[0], spec if show_query_audio else sheet, show_query_audio)
        row_axes[0].set_title(f"{direction.upper()} query\n{label(q)}", fontsize=7)
        top = [int(t) for t in str(details[f"top_{direction}"][q]).split()][:top_k]
        for j, c in enumerate(top, start=1):
            c_sheet, c_spec = passage_views(bank, c)
            draw(row_axes[j], c_sheet if show_query_audio else c_spec, not show_query_audio,
                 edge="tab:green" if c == q else "0.7")
            row_axes[j].set_title(f"{j}. {label(c)}", fontsize=7, color="tab:green" if c == q else "k")
        for ax in row_axes[len(top) + 1:]:
            ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def draw(ax, image: np.ndarray, is_spec: bool, edge: str | None = None) -> None:
    if is_spec:
        ax.imshow(image, origin="lower", aspect="auto", cmap="magma")
    else:
        ax.imshow(image, cmap="gray", aspect="auto", vmin=0, vmax=255)
    ax.set_xticks([]), ax.set_yticks([])
    if edge:
        for s in ax.spines.values():
            s.set_edgecolor(edge), s.set_linewidth(3)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--details", type=Path, required=True, help="pipeline.evaluation.evaluate --details CSV")
    ap.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    ap.add_argument("--out", type=Path, required=True, help="PNG")
    add_params_argument(ap)
    args = ap.parse_args(argv)
    params = from_args(args)
    split, tempo = params["evaluation"]["split"], params["evaluation"]["tempo"]   # the details' protocol
    n_queries, top_k = params["experiments"]["sanity"]["n_queries"], params["experiments"]["sanity"]["top_k"]
    details = pd.read_csv(args.details)
    bank = load_split(args.dataset, split, tempo_range=(tempo, tempo))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    title = f"{args.details.stem}: top-{top_k} retrieved passages ({split}, {rho_label(tempo)})"
    sanity_figure(bank, details, n_queries, top_k, title, args.out)
    print(f"[sanity] wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
