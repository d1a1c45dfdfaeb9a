"""Alignment figure of one piece: system strips above their spectrogram spans, with every
(notehead x, onset frame) snippet pair joined by a line, so alignment can be checked by eye."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import ConnectionPatch  # noqa: E402
from PIL import Image  # noqa: E402

from pipeline.core import constants as C  # noqa: E402
from pipeline.core.stage import read_status  # noqa: E402


def alignment_figure(piece_root: Path, out: Path, n_systems: int = 2) -> None:
    """Draw the first ``n_systems`` passages of the piece's first performance to ``out`` (PNG)."""
    fig = plt.figure(figsize=(12, 3.2 * n_systems))
    if not all(read_status(piece_root / k)["ok"] for k in ("score", "audio", "passages")):
        fig.text(0.5, 0.5, f"{piece_root.name}: quarantined (see data/dataset/quarantine.csv)", ha="center")
        fig.savefig(out, dpi=80)
        plt.close(fig)
        return
    unrolled = np.array(Image.open(piece_root / "score" / "unrolled.png"))
    passages = pd.read_csv(piece_root / "passages" / "passages.csv")
    snippets = pd.read_csv(piece_root / "passages" / "snippets.csv")
    perf = passages.performance.iloc[0]
    spec = np.load(piece_root / "audio" / "spec" / f"{perf}.npy")
    rows = passages[passages.performance == perf].head(n_systems)
    for i, r in enumerate(rows.itertuples()):
        ax_s = fig.add_subplot(2 * n_systems, 1, 2 * i + 1)
        ax_a = fig.add_subplot(2 * n_systems, 1, 2 * i + 2)
        ax_s.imshow(unrolled[:, r.x0:r.x1], cmap="gray", aspect="auto", extent=(r.x0, r.x1, C.STRIP_HEIGHT_PX, 0))
        ax_a.imshow(spec[:, r.f0:r.f1], origin="lower", aspect="auto", cmap="magma",
                    extent=(r.f0, max(r.f1, r.f0 + 1), 0, spec.shape[0]))
        ax_s.set_title(f"{piece_root.name}  system {r.system}  ({perf}, frames {r.f0}-{r.f1})", fontsize=9)
        ax_s.set_yticks([])
        ax_a.set_ylabel("bin")
        ax_a.set_xlabel(f"frame ({C.FPS} fps)")
        pairs = snippets[(snippets.performance == perf) & (snippets.system == r.system)]
        for p in pairs.itertuples():
            fig.add_artist(ConnectionPatch((p.x, 200), (p.frame, spec.shape[0]), "data", "data",
                                           axesA=ax_s, axesB=ax_a, color="tab:cyan", lw=0.5, alpha=0.7))
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--piece-root", required=True, type=Path, help="data/pieces/<piece>")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    alignment_figure(args.piece_root, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
