"""Stage ``scenarios``: Table 2 across the robustness scenarios of issue 16, next to the paper's drops.

Scenario I is the protocol (clean engraving, metronomic rendering: ``results/metrics``); II-sim reads the
test split with scanned-looking scores (``python -m pipeline.data.scan``), III-sim with performed,
recorded-sounding audio (``python -m pipeline.data.performed``). Every model is evaluated on each by
``python -m pipeline.evaluation.evaluate --dataset data/scenarios/<scenario>`` with the same protocol.

For each model, direction and scenario: the MRR with its 95 % interval, and the **drop from I** with a
paired 95 % bootstrap interval (the same passage, identified by piece and system, in both scenarios, so
the interval is that of the difference, not of two independent means). The paper (Carvalho & Widmer
2023, Table 2) loses about 0.2 MRR from I to II and more than 0.3 from I to III.

    python -m pipeline.evaluation.scenarios --reference results/retrieval --scenario II-sim=results/scenarios/scan/retrieval \\
        --scenario III-sim=results/scenarios/performed/retrieval --models bl rnn ... --out results/tables/table2_scenarios
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.metrics import bootstrap_interval, chance_mrr
from pipeline.evaluation.report import DISPLAY, to_markdown

PAPER_DROPS = {"II-sim": "≈ 0.2 (paper, I → II)", "III-sim": "> 0.3 (paper, I → III)"}
KEY = ["piece", "system"]


def paired_drop(reference: pd.DataFrame, scenario: pd.DataFrame, direction: str) -> dict:
    """MRR of ``scenario`` and its drop from ``reference`` over the passages both evaluated.

    ``reference``, ``scenario``: per-query tables of ``evaluate --details`` (one row per test passage at the
    evaluation tempo: piece, system, rr_a2s, rr_s2a, ...). Returns MRR, its interval, the paired drop
    (reference - scenario) with its interval, n (paired queries) and the scenario's chance MRR (its
    candidate pool: every passage it evaluated)."""
    col = f"rr_{direction}"
    both = reference[KEY + [col]].merge(scenario[KEY + [col]], on=KEY, suffixes=("_ref", "_scn"), validate="one_to_one")
    if both.empty:
        raise ValueError("no passage (piece, system) in common between the reference and the scenario")
    ref, scn = both[f"{col}_ref"].to_numpy(np.float64), both[f"{col}_scn"].to_numpy(np.float64)
    diff = ref - scn
    lo, hi = bootstrap_interval(scn)
    dlo, dhi = bootstrap_interval(diff)
    return {"MRR": float(scn.mean()), "MRR_lo95": lo, "MRR_hi95": hi, "drop": float(diff.mean()),
            "drop_lo95": dlo, "drop_hi95": dhi, "n_paired": int(len(both)), "chance_MRR": chance_mrr(len(scenario))}


def scenario_table(reference: dict[str, pd.DataFrame], scenarios: dict[str, dict[str, pd.DataFrame]]) -> pd.DataFrame:
    """``reference``: model -> per-query table of scenario I; ``scenarios``: name -> model -> table.
    One row per (direction, model): I's MRR, then each scenario's MRR and drop."""
    rows = []
    for direction in ("a2s", "s2a"):
        for model, ref in reference.items():
            rr = ref[f"rr_{direction}"].to_numpy(np.float64)
            lo, hi = bootstrap_interval(rr)
            row = {"direction": direction.upper(), "model": DISPLAY.get(model, model),
                   "I MRR": float(rr.mean()), "I MRR_lo95": lo, "I MRR_hi95": hi, "n": int(len(rr)),
                   "I chance": chance_mrr(len(rr))}
            for name, tables in scenarios.items():
                d = paired_drop(ref, tables[model], direction)
                row.update({f"{name} MRR": d["MRR"], f"{name} MRR_lo95": d["MRR_lo95"], f"{name} MRR_hi95": d["MRR_hi95"],
                            f"{name} drop": d["drop"], f"{name} drop_lo95": d["drop_lo95"], f"{name} drop_hi95": d["drop_hi95"],
                            f"{name} n": d["n_paired"], f"{name} chance": d["chance_MRR"]})
            rows.append(row)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=Path, required=True, help="folder of scenario I's per-query CSVs (<model>.csv)")
    ap.add_argument("--scenario", action="append", default=[], metavar="NAME=DIR", required=True,
                    help="a scenario's name and the folder of its per-query CSVs (repeatable, in column order)")
    ap.add_argument("--models", nargs="+", required=True, help="model keys, in row order")
    ap.add_argument("--out", type=Path, required=True, help="output path without suffix (.csv, .md)")
    args = ap.parse_args(argv)
    read = lambda folder, model: pd.read_csv(folder / f"{model}.csv")
    reference = {m: read(args.reference, m) for m in args.models}
    scenarios = {}
    for item in args.scenario:
        name, _, folder = item.partition("=")
        if not folder:
            ap.error(f"--scenario {item!r}: expected NAME=DIR")
        scenarios[name] = {m: read(Path(folder), m) for m in args.models}
    df = scenario_table(reference, scenarios)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out.with_suffix(".csv"), index=False, float_format="%.4f")
    notes = "\n".join(f"- drop {name}: MRR(I) − MRR({name}) on the same passages, paired bootstrap interval; "
                      f"{PAPER_DROPS.get(name, '')}" for name in scenarios)
    md = to_markdown(df) + "\n" + notes + "\n"
    args.out.with_suffix(".md").write_text(md)
    print(md, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
