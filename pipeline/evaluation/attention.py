"""Stage ``attention``: the context x attention table of the snippet-model variants and the attention analysis (issue 14).

``table``: from the variants' snippet-retrieval JSONs (:mod:`pipeline.evaluation.snippet_retrieval`
``--variant``) writes ``TABLES.{csv,md}`` (rows: direction x attention x audio context; R@1/5/25 [%],
MRR with its 95 % interval, median rank MR, chance MRR, n), ``TABLES_tempo.{csv,md}`` (MRR at every test
tempo ρ) and the figures ``FIGURES/mrr_vs_context.png`` and ``FIGURES/mrr_vs_tempo.png``.

``analysis``: for an attention variant, on its snippet-retrieval pool (the test split, the variants' common
pool; :func:`pipeline.models.snippets.common_window`): each audio excerpt's attention weights (T frames,
summing to one), their entropy [nats] (log T = uniform) and the number of onsets in the excerpt (distinct
onset frames of the exact alignment, ``snippets.csv`` of the split: every onset, also those of pairs whose
windows leave the piece). Writes ``OUT.json``: Spearman and Pearson correlations of onsets and entropy with
their p-values (at ``evaluation.tempo``), the attention mass on onset frames and on the central 1 s (the
frames of the pair's 1-s window, around the notehead's onset) against the uniform shares, and
the mean entropy and onsets at every test tempo ρ; and ``OUT.png``: ``attention.analysis.n_examples``
excerpts (spectrogram, onsets, attention weights x T) chosen across the onset counts, and the scatter.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy import stats  # noqa: E402

from pipeline.core.constants import FPS, SPEC_CONTEXT_FRAMES, rho_label  # noqa: E402
from pipeline.core.params import add_params_argument, from_args  # noqa: E402
from pipeline.core.stage import write_json  # noqa: E402
from pipeline.evaluation.report import to_markdown  # noqa: E402
from pipeline.models.networks import SnippetModel, attention_entropy  # noqa: E402
from pipeline.models.sampling import valid_rows  # noqa: E402
from pipeline.models.snippets import common_window, load_split, snippet_batch  # noqa: E402
from pipeline.models.training import load_model, pick_device, setup_torch  # noqa: E402

DIRECTIONS = ("a2s", "s2a")


# --- the context x attention table ---------------------------------------------------------------

def tempo_augment_label(r: dict) -> str:
    """The variant's training tempo range, e.g. ``0.5–2``; "" without tempo augmentation."""
    aug = r.get("tempo_augment")
    return f"{aug[0]:g}–{aug[1]:g}" if aug else ""


def variant_label(r: dict) -> str:
    aug = tempo_augment_label(r)
    return f"{r['audio_context_frames'] / FPS:.1f} s{' + Att' if r['attention'] else ''}{f' + tempo aug. ρ {aug}' if aug else ''}"


def ordered(results: list[dict]) -> list[dict]:
    """Without attention first, then by audio context; tempo-augmented variants after their plain twin."""
    return sorted(results, key=lambda r: (r["attention"], r["audio_context_frames"], "tempo_augment" in r, r["variant"]))


def variant_table(results: list[dict]) -> pd.DataFrame:
    """Rows: direction (A2S first) x attention x context; the tutorial's columns R@1/5/25, MRR, MR, with n and chance."""
    rows = []
    for d in DIRECTIONS:
        for r in ordered(results):
            m = r[d]
            rows.append({"direction": d.upper(), "variant": r["variant"], "context_frames": r["audio_context_frames"],
                         "context_s": r["audio_context_frames"] / FPS, "attention": r["attention"],
                         "sheet_px": r["sheet_context_px"], "R@1": m["R@1"], "R@5": m["R@5"], "R@25": m["R@25"],
                         "MRR": m["MRR"], "MRR_lo95": m["MRR_ci95"][0], "MRR_hi95": m["MRR_ci95"][1],
                         "MR": m["median_rank"], "chance_MRR": m["chance_MRR"], "n_queries": m["n_queries"],
                         "tempo": r["tempo"], "tempo_augment": tempo_augment_label(r)})
    return pd.DataFrame(rows)


def tempo_table(results: list[dict]) -> pd.DataFrame:
    """Rows: direction x variant; MRR (95 % interval) at every test ρ (slowest first), n of each pool."""
    rows = []
    for d in DIRECTIONS:
        for r in ordered(results):
            row = {"direction": d.upper(), "variant": r["variant"], "model": variant_label(r)}
            for t in sorted(r["by_tempo"], key=lambda t: t["tempo"]):
                m, lab = t[d], rho_label(t["tempo"])
                row.update({lab: m["MRR"], f"{lab}_lo95": m["MRR_ci95"][0], f"{lab}_hi95": m["MRR_ci95"][1]})
            row["n_queries"] = "/".join(str(t[d]["n_queries"]) for t in sorted(r["by_tempo"], key=lambda t: t["tempo"]))
            row["chance_MRR"] = max(t[d]["chance_MRR"] for t in r["by_tempo"])
            rows.append(row)
    return pd.DataFrame(rows)


def context_figure(df: pd.DataFrame, out: Path) -> None:
    """MRR (95 % interval) vs audio context, with and without attention, one panel per direction."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, d in zip(axes, ("A2S", "S2A")):
        sub = df[df.direction == d]
        for att, style in ((False, "o-"), (True, "s--")):
            s = sub[(sub.attention == att) & (sub.tempo_augment == "")].sort_values("context_s")   # the grid only
            if len(s):
                ax.errorbar(s.context_s, s.MRR, yerr=[s.MRR - s.MRR_lo95, s.MRR_hi95 - s.MRR], fmt=style, capsize=3,
                            label="with attention" if att else "without attention")
        ax.axhline(sub.chance_MRR.max(), color="grey", ls=":", lw=1, label="chance")
        ax.set_xscale("log", base=2)
        ticks = sorted(sub.context_s.unique())
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_xlabel("audio context [s]")
        ax.set_title(f"{d}: snippet retrieval, {int(sub.n_queries.max())} test pairs")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("MRR")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def tempo_figure(results: list[dict], out: Path) -> None:
    """MRR vs tempo factor ρ for every variant (attention dashed), one panel per direction."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, d in zip(axes, DIRECTIONS):
        for r in ordered(results):
            ts = sorted(r["by_tempo"], key=lambda t: t["tempo"])
            style = ("s--" if r["attention"] else "o-") if "tempo_augment" not in r else "D-"
            ax.plot([t["tempo"] for t in ts], [t[d]["MRR"] for t in ts], style, label=variant_label(r),
                    **({"lw": 2.5, "color": "black"} if "tempo_augment" in r else {}))
        ax.set_xscale("log", base=2)
        ticks = sorted({t["tempo"] for r in results for t in r["by_tempo"]})
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_xlabel("tempo factor ρ")
        ax.set_title(f"{d.upper()}: snippet retrieval vs tempo")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("MRR")
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def write_tables(results: list[dict], tables: Path, figures: Path) -> pd.DataFrame:
    df = variant_table(results)
    tables.parent.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    df.to_csv(tables.with_suffix(".csv"), index=False, float_format="%.4f")
    shown = df.drop(columns=["variant", "context_frames", "tempo"]).rename(columns={"context_s": "context [s]"})
    shown["context [s]"] = [f"{v:g}" for v in shown["context [s]"]]
    shown["attention"] = ["yes" if a else "no" for a in shown.attention]
    shown = shown.rename(columns={"tempo_augment": "tempo aug. ρ"})
    tables.with_suffix(".md").write_text(to_markdown(shown))
    tt = tempo_table(results)
    tempo_out = tables.with_name(tables.name + "_tempo")
    tt.to_csv(tempo_out.with_suffix(".csv"), index=False, float_format="%.4f")
    tempo_out.with_suffix(".md").write_text(to_markdown(tt.drop(columns=["variant"])))
    context_figure(df, figures / "mrr_vs_context.png")
    tempo_figure(results, figures / "mrr_vs_tempo.png")
    return df


# --- attention analysis ----------------------------------------------------------------------------

def onset_frames(dataset: Path, split: str) -> dict:
    """(piece, performance) -> sorted distinct onset frames of the split's exact alignment (every snippet row)."""
    t = pd.read_csv(Path(dataset) / split / "snippets.csv", usecols=["piece", "performance", "frame"])
    return {k: np.unique(g.frame.to_numpy()) for k, g in t.groupby(["piece", "performance"])}


@torch.no_grad()
def excerpt_attention(model: SnippetModel, bank, rows: np.ndarray, onsets: dict, batch: int = 256) -> dict:
    """For snippet-table ``rows``: attention weights (N, T), their entropy (N,) [nats], onset count (N,)
    and a (N, T) 0/1 mask of the excerpt's frames that hold an onset (excerpts as the model sees them)."""
    t_frames = model.context_frames
    ws = []
    for i in range(0, len(rows), batch):
        _, audio = snippet_batch(bank, rows[i:i + batch], context_frames=t_frames, sheet_px=model.sheet_px)
        ws.append(model.attention_weights(audio).float().cpu())
    w = torch.cat(ws)
    table = bank.snippets.iloc[rows]
    mask = np.zeros((len(rows), t_frames), np.float32)
    for j, (piece, perf, frame) in enumerate(zip(table.piece, table.performance, table.frame)):
        start = frame - t_frames // 2
        f = onsets[(piece, perf)]
        inside = f[(f >= start) & (f < start + t_frames)] - start
        mask[j, inside] = 1.0
    return {"weights": w.numpy(), "entropy": attention_entropy(w).numpy(), "onsets": mask.sum(1), "mask": mask}


def correlation(x: np.ndarray, y: np.ndarray) -> dict:
    sp, pe = stats.spearmanr(x, y), stats.pearsonr(x, y)
    return {"spearman_rho": float(sp.statistic), "spearman_p": float(sp.pvalue),
            "pearson_r": float(pe.statistic), "pearson_p": float(pe.pvalue), "n": int(len(x))}


def examples_figure(a: dict, spec: np.ndarray, picks: np.ndarray, labels: list[str], summary: dict, out: Path) -> None:
    """``spec`` (len(picks), 92, T): the picked excerpts' spectrograms; ``a``: :func:`excerpt_attention` of the pool."""
    n = len(picks)
    fig = plt.figure(figsize=(10, 2.1 * n + 3.2))
    gs = fig.add_gridspec(n + 1, 1, height_ratios=[1.0] * n + [1.4])
    t_frames = a["weights"].shape[1]
    for k, (j, label) in enumerate(zip(picks, labels)):
        ax = fig.add_subplot(gs[k])
        ax.imshow(spec[k], origin="lower", aspect="auto", cmap="magma", extent=(-0.5, t_frames - 0.5, 0, spec.shape[1]))
        for f in np.flatnonzero(a["mask"][j]):
            ax.axvline(f, color="cyan", lw=0.8, alpha=0.7)
        ax.set_ylabel("bin")
        tw = ax.twinx()
        tw.plot(np.arange(t_frames), a["weights"][j] * t_frames, color="lime", lw=1.8)
        tw.axhline(1.0, color="white", ls=":", lw=1)
        tw.set_ylabel("weight x T")
        ax.set_title(f"{label}: {int(a['onsets'][j])} onsets (cyan), attention entropy {a['entropy'][j]:.2f} "
                     f"nats (uniform {np.log(t_frames):.2f})", fontsize=9)
        if k == n - 1:
            ax.set_xlabel("frame of the excerpt (20 fps)")
    ax = fig.add_subplot(gs[n])
    jitter = np.random.default_rng(0).uniform(-0.2, 0.2, len(a["onsets"]))
    ax.scatter(a["onsets"] + jitter, a["entropy"], s=6, alpha=0.4)
    c = summary["correlation"]
    ax.set_xlabel("onsets in the excerpt")
    ax.set_ylabel("attention entropy [nats]")
    ax.set_title(f"{summary['variant']}: Spearman ρ = {c['spearman_rho']:.3f} (p = {c['spearman_p']:.2g}), "
                 f"Pearson r = {c['pearson_r']:.3f} (p = {c['pearson_p']:.2g}), n = {c['n']}", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


@torch.no_grad()
def analysis(params: dict, model_path: Path, dataset: Path, out: Path, log=print) -> dict:
    e, t = params["evaluation"], params["training"]
    device = pick_device(t["device"])
    setup_torch(params["seed"], t["threads"])
    model = SnippetModel.from_artifact(load_model(model_path)).to(device).eval()
    if not model.attention:
        raise ValueError(f"{model_path}: a model without attention (attention.analysis.variant must have attention)")
    window = common_window(params["snippet_variants"])
    onsets = onset_frames(dataset, e["split"])
    summary = {"variant": params["attention"]["analysis"]["variant"], "model": str(model_path),
               "context_frames": model.context_frames, "uniform_entropy": float(np.log(model.context_frames)),
               "split": e["split"], "tempo": e["tempo"], "pool_window": window}
    by_tempo, main = [], None
    for rho in sorted(set(params["render"]["test_tempo_ratios"]) | {e["tempo"]}):
        bank = load_split(dataset, e["split"], tempo_range=(rho, rho), **window).to(device)
        rows = valid_rows(len(bank.snippets), params["snippet_retrieval"]["pool"])
        a = excerpt_attention(model, bank, rows, onsets)
        onset_mass = float((a["weights"] * a["mask"]).sum() / len(rows))
        uniform_mass = float(a["mask"].mean())
        c0 = model.context_frames // 2 - SPEC_CONTEXT_FRAMES // 2         # the 1-s window around the pair's onset
        central = float(a["weights"][:, c0:c0 + SPEC_CONTEXT_FRAMES].sum(1).mean())
        by_tempo.append({"tempo": rho, "n": int(len(rows)), "mean_entropy": float(a["entropy"].mean()),
                         "mean_onsets": float(a["onsets"].mean()), "attention_mass_on_onset_frames": onset_mass,
                         "uniform_mass_on_onset_frames": uniform_mass, "attention_mass_central_1s": central,
                         "uniform_mass_central_1s": SPEC_CONTEXT_FRAMES / model.context_frames,
                         "correlation": correlation(a["onsets"], a["entropy"])})
        log(f"ρ {rho}: {len(rows)} excerpts, mean entropy {a['entropy'].mean():.3f} nats, mean onsets "
            f"{a['onsets'].mean():.2f}, mass on onset frames {onset_mass:.3f} (uniform {uniform_mass:.3f}), "
            f"on the central 1 s {central:.3f} (uniform {SPEC_CONTEXT_FRAMES / model.context_frames:.3f})")
        if rho == e["tempo"]:
            main, main_bank, main_rows = a, bank, rows
    summary.update({k: v for k, v in next(b for b in by_tempo if b["tempo"] == e["tempo"]).items() if k != "tempo"})
    summary["by_tempo"] = by_tempo
    order = np.argsort(main["onsets"], kind="stable")
    n_ex = min(params["attention"]["analysis"]["n_examples"], len(order))
    picks = order[np.linspace(0, len(order) - 1, n_ex).round().astype(int)]
    table = main_bank.snippets.iloc[main_rows[picks]]
    spec = snippet_batch(main_bank, main_rows[picks], context_frames=model.context_frames, sheet_px=model.sheet_px)[1]
    labels = [f"{p} ({perf}, frame {f})" for p, perf, f in zip(table.piece, table.performance, table.frame)]
    summary["examples"] = [{"piece": p, "performance": perf, "onset_frame": int(f), "onsets": int(main["onsets"][j]),
                            "entropy": float(main["entropy"][j]), "weights": [round(float(x), 5) for x in main["weights"][j]]}
                           for p, perf, f, j in zip(table.piece, table.performance, table.frame, picks)]
    out.parent.mkdir(parents=True, exist_ok=True)
    examples_figure(main, spec[:, 0].float().cpu().numpy(), picks, labels, summary, out.with_suffix(".png"))
    write_json(out.with_suffix(".json"), summary)
    c = summary["correlation"]
    log(f"onsets vs attention entropy at ρ {e['tempo']}: Spearman {c['spearman_rho']:.3f} (p {c['spearman_p']:.2g}), "
        f"Pearson {c['pearson_r']:.3f} (p {c['pearson_p']:.2g}), n {c['n']}")
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    tab = sub.add_parser("table", help="context x attention table, tempo table and figures")
    tab.add_argument("metrics", nargs="+", type=Path, help="results/snippet_variants/<variant>.json")
    tab.add_argument("--tables", type=Path, required=True, help="table path without suffix")
    tab.add_argument("--figures", type=Path, required=True, help="folder of the figures")
    ana = sub.add_parser("analysis", help="attention weights, entropy and onsets of an attention variant")
    ana.add_argument("--model", type=Path, required=True)
    ana.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    ana.add_argument("--out", type=Path, required=True, help="output path without suffix (.json, .png)")
    add_params_argument(ana)
    args = ap.parse_args(argv)
    log = lambda msg: print(f"[attention] {msg}", file=sys.stderr, flush=True)
    if args.command == "table":
        df = write_tables([json.loads(p.read_text()) for p in args.metrics], args.tables, args.figures)
        log("\n" + to_markdown(df))
    else:
        analysis(from_args(args), args.model, args.dataset, args.out, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
