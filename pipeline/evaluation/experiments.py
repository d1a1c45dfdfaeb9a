"""Stage ``experiments``: the paper's experiments from evaluation outputs (tables and figures).

Subcommands (each reads ``pipeline.evaluation.evaluate`` outputs, writes to ``--out`` without suffix). Inputs
may be files or folders (all ``*.json`` below); only the evaluations params.yaml asks for are used
(``experiments.dim_sweep``: variant and dimensions; ``experiments.tempo.models`` x
``render.test_tempo_ratios``, BL and ``experiments.tempo.variants``), so stale files of an earlier
configuration never enter a figure.

* ``dim-sweep JSON...`` — Experiment 1: MRR both ways vs embedding dimension → ``OUT.csv``,
  ``OUT.png``. Each JSON is the evaluation of one sweep model (its ``emb_dim`` is recorded there).
* ``tempo JSON...`` — Experiment 3: MRR both ways of each model at each test tempo ratio →
  ``OUT.csv``, ``OUT.md`` (rows: model x direction, columns: tempo ratio).
* ``distance DETAILS.csv`` — Experiment 4: cosine distance of every matching pair vs its audio
  duration [s], point area ∝ 1/rank (S2A) → ``OUT.png`` and the plotted points ``OUT.csv``.
* ``curves LIVE_DIR...`` — training curves of every model (dvclive folders ``results/training/<m>``):
  train loss and validation MRR per epoch → ``OUT.png``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline.core.constants import rho_label  # noqa: E402
from pipeline.core.params import add_params_argument, from_args  # noqa: E402
from pipeline.evaluation.report import DISPLAY, to_markdown  # noqa: E402

DIRECTIONS = ("a2s", "s2a")
DISPLAY_KEY = {"bl": "BL"}   # the evaluate JSON names the baseline "BL", passage models by variant key


def load(paths: list[Path]) -> list[dict]:
    files = [f for p in map(Path, paths) for f in (sorted(p.rglob("*.json")) if p.is_dir() else [p])]
    return [json.loads(f.read_text()) for f in files]


def select(results: list[dict], experiment: str, params: dict) -> list[dict]:
    """The evaluations ``params`` asks for (see the module docstring); raises if one is missing."""
    ex = params["experiments"]
    if experiment == "dim-sweep":
        want = [(ex["dim_sweep"]["variant"], d, params["evaluation"]["tempo"]) for d in ex["dim_sweep"]["emb_dims"]]
        key = lambda r: (r["model"], r["emb_dim"], r["tempo"])
    else:
        want = [(DISPLAY_KEY.get(m, m), t) for m in ["bl", *ex["tempo"]["variants"]]
                for t in params["render"]["test_tempo_ratios"]]
        key = lambda r: (r["model"], r["tempo"])
    by_key = {key(r): r for r in results}
    missing = [w for w in want if w not in by_key]
    if missing:
        raise ValueError(f"{experiment}: no evaluation for {missing}")
    return [by_key[w] for w in want]


def dim_sweep_table(results: list[dict]) -> pd.DataFrame:
    """One row per embedding dimension (ascending): MRR (95 % interval) and R@1 both ways, n and chance."""
    rows = []
    for r in results:
        row = {"emb_dim": r["emb_dim"], "model": r["model"]}
        for d in DIRECTIONS:
            row.update({f"MRR_{d}": r[d]["MRR"], f"MRR_{d}_lo95": r[d]["MRR_ci95"][0],
                        f"MRR_{d}_hi95": r[d]["MRR_ci95"][1]})
        row.update({f"R@1_{d}": r[d]["R@1"] for d in DIRECTIONS})
        row.update({"chance_MRR": r["a2s"]["chance_MRR"], "n_queries": r["a2s"]["n_queries"]})
        rows.append(row)
    return pd.DataFrame(rows).sort_values("emb_dim").reset_index(drop=True)


def dim_sweep_figure(df: pd.DataFrame, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for d, marker in zip(DIRECTIONS, "os"):
        err = [df[f"MRR_{d}"] - df[f"MRR_{d}_lo95"], df[f"MRR_{d}_hi95"] - df[f"MRR_{d}"]]
        ax.errorbar(df.emb_dim, df[f"MRR_{d}"], yerr=err, marker=marker, capsize=3, label=f"{d.upper()} (95 % CI)")
    ax.axhline(df.chance_MRR.iloc[0], color="grey", ls="--", lw=1, label="chance")
    ax.set_xscale("log", base=2)
    ax.set_xticks(df.emb_dim, [str(v) for v in df.emb_dim])
    ax.set_xlabel("embedding dimension")
    ax.set_ylabel("MRR")
    ax.set_title(f"Experiment 1: {DISPLAY.get(df.model.iloc[0], df.model.iloc[0])}, "
                 f"{df.n_queries.iloc[0]} test passages")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def tempo_table(results: list[dict]) -> pd.DataFrame:
    """Rows: (direction, model) in input order; columns: MRR (with 95 % interval) at each tempo factor ρ
    (ascending: slowest first), then the chance MRR and n of the candidate pool (the same at every ρ)."""
    ratios = sorted({r["tempo"] for r in results})
    models = list(dict.fromkeys(r["model"] for r in results))
    by_key = {(r["model"], r["tempo"]): r for r in results}
    rows = []
    for d in DIRECTIONS:
        for m in models:
            row = {"direction": d.upper(), "model": DISPLAY.get(m, m)}
            for t in ratios:
                r = by_key[(m, t)][d]
                row.update({rho_label(t): r["MRR"], f"{rho_label(t)}_lo95": r["MRR_ci95"][0],
                            f"{rho_label(t)}_hi95": r["MRR_ci95"][1]})
            first = by_key[(m, ratios[0])][d]
            row.update({"chance_MRR": first["chance_MRR"], "n_queries": first["n_queries"]})
            rows.append(row)
    return pd.DataFrame(rows)


def distance_figure(details: pd.DataFrame, title: str, out: Path) -> pd.DataFrame:
    """Scatter of matching-pair distance vs audio duration; area ∝ 1/rank (S2A). Returns the points."""
    pts = details[["piece", "system", "audio_s", "distance", "rank_s2a"]].copy()
    pts["size"] = 120.0 / pts.rank_s2a
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(pts.audio_s, pts.distance, s=pts["size"], alpha=0.6, edgecolors="k", linewidths=0.3)
    ax.set_xlabel("audio duration of the passage [s]")
    ax.set_ylabel("cosine distance of the matching pair")
    ax.set_title(f"Experiment 4: {title} (point area ∝ 1/rank, S2A)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return pts


def curves_figure(live_dirs: list[Path], out: Path) -> pd.DataFrame:
    """Train loss and validation MRR per epoch of each model (one line per dvclive folder). Returns the points."""
    rows = []
    for d in live_dirs:
        loss = pd.read_csv(d / "plots/metrics/train/loss.tsv", sep="\t")
        mrr = pd.read_csv(d / "plots/metrics/valid/mrr.tsv", sep="\t")
        rows.append(pd.DataFrame({"model": d.name, "epoch": loss.step + 1, "train_loss": loss.loss, "valid_mrr": mrr.mrr}))
    df = pd.concat(rows, ignore_index=True)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, g in df.groupby("model", sort=False):
        label = DISPLAY.get(name, name)
        a.plot(g.epoch, g.train_loss, marker=".", label=label)
        b.plot(g.epoch, g.valid_mrr, marker=".", label=label)
    a.set(xlabel="epoch", ylabel="train loss (triplet)", yscale="log", title="training loss")
    b.set(xlabel="epoch", ylabel="validation MRR (A2S)", title="validation (valid split, ρ = 1)")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return df


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("experiment", choices=["dim-sweep", "tempo", "distance", "curves"])
    ap.add_argument("inputs", nargs="+", type=Path,
                    help="evaluation JSONs (dim-sweep, tempo), one details CSV (distance) or dvclive folders (curves)")
    ap.add_argument("--out", type=Path, required=True, help="output path without suffix")
    add_params_argument(ap)
    args = ap.parse_args(argv)
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.experiment == "dim-sweep":
        df = dim_sweep_table(select(load(args.inputs), args.experiment, from_args(args)))
        df.to_csv(out.with_suffix(".csv"), index=False, float_format="%.4f")
        dim_sweep_figure(df, out.with_suffix(".png"))
    elif args.experiment == "curves":
        df = curves_figure(args.inputs, out.with_suffix(".png"))
        df.to_csv(out.with_suffix(".csv"), index=False, float_format="%.5g")
    elif args.experiment == "tempo":
        df = tempo_table(select(load(args.inputs), args.experiment, from_args(args)))
        df.to_csv(out.with_suffix(".csv"), index=False, float_format="%.4f")
        out.with_suffix(".md").write_text(to_markdown(df))
    else:
        if len(args.inputs) != 1:
            ap.error("distance takes one details CSV")
        details = pd.read_csv(args.inputs[0])
        if details.distance.isna().all():
            ap.error(f"{args.inputs[0]}: no distances (a voting baseline has none); use a passage model")
        name = args.inputs[0].stem
        pts = distance_figure(details, DISPLAY.get(name, name), out.with_suffix(".png"))
        pts.to_csv(out.with_suffix(".csv"), index=False, float_format="%.5g")
        df = pts
    print(df.to_string(index=False), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
