"""How many SLURM jobs a full build submits, with the cluster profile's grouping and without it.

A dry run of the whole workflow in an empty work folder (so every job is needed) through
``profiles/slurm``; a submitted job is either a group job (a bundle of small jobs) or an ungrouped
job of a rule with a command (target rules such as ``all`` run inside Snakemake itself).

    .venv/bin/python benchmarks/cluster_jobs.py                                  # default corpus
    .venv/bin/python benchmarks/cluster_jobs.py --configfile params.yaml config/mutopia.yaml
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TARGET_RULES = {"all", "data", "models", "evaluation", "experiments"}
# groups declared in the rules themselves (rules defined in a loop, one per batch, cannot be listed in
# the profile): rule name prefix -> group
RULE_GROUPS = {"piece_": "piece"}


def dry_run(profile: Path, configfiles: list[str], workdir: Path) -> str:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--workflow-profile", str(profile), "--dry-run", "--configfile", *configfiles]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if res.returncode != 0:
        sys.exit(f"dry run failed:\n{res.stderr[-3000:]}")
    return res.stdout + res.stderr


def count_jobs(log: str, groups: dict[str, str]) -> tuple[Counter, Counter]:
    """(jobs per rule, group jobs per group) of a dry-run log."""
    stats = log.split("Job stats:", 1)[1].split("total", 1)[0]
    per_rule = Counter({m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", stats, re.M)})
    per_group = Counter(re.findall(r"Group job (\w+) \(jobs", log))
    unknown = set(per_group) - set(groups.values())
    if unknown:
        sys.exit(f"dry run shows groups {unknown} that the profile does not define")
    return per_rule, per_group


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", type=Path, default=REPO / "profiles" / "slurm")
    ap.add_argument("--configfile", nargs="+", default=[str(REPO / "params.yaml")])
    args = ap.parse_args(argv)
    groups = yaml.safe_load((args.profile / "profile.yaml").read_text()).get("groups", {})
    configfiles = [str(Path(c).resolve()) for c in args.configfile]
    with tempfile.TemporaryDirectory() as tmp:
        per_rule, per_group = count_jobs(dry_run(args.profile, configfiles, Path(tmp)), {**groups, **RULE_GROUPS})
    groups |= {r: g for r in per_rule for prefix, g in RULE_GROUPS.items() if r.startswith(prefix)}
    jobs = {r: n for r, n in per_rule.items() if r not in TARGET_RULES}
    ungrouped = {r: n for r, n in jobs.items() if r not in groups}
    grouped = sum(n for r, n in jobs.items() if r in groups)
    print(f"config: {' '.join(args.configfile)}")
    print(f"{'jobs without grouping':<34}{sum(jobs.values()):>6}")
    for group, n in sorted(per_group.items()):
        members = sorted(r for r in jobs if groups.get(r) == group)
        names = sorted({next((f"{p}<batch>" for p in RULE_GROUPS if r.startswith(p)), r) for r in members})
        print(f"  group {group:<26}{n:>6}  (bundling {sum(jobs[r] for r in members)} jobs of {', '.join(names)})")
    for rule, n in sorted(ungrouped.items()):
        print(f"  {rule:<32}{n:>6}")
    total = sum(per_group.values()) + sum(ungrouped.values())
    print(f"{'SLURM jobs submitted':<34}{total:>6}  ({grouped} small jobs in {sum(per_group.values())} group jobs)")


if __name__ == "__main__":
    main()
