"""dvc.yaml is compiled from the Snakemake workflow (pipeline/dvcyaml.py): the committed file equals the
compiled one, a changed rule is caught, every stage's deps hold the code it imports, and stage modules
import no other stage (layers one way)."""
import ast
import re
import shutil
import subprocess
import sys

import yaml
from conftest import REPO

PIPELINE = REPO / "pipeline"


def check(workdir):
    return subprocess.run([sys.executable, "-m", "pipeline.dvcyaml", "--check", "--workdir", str(workdir)],
                          capture_output=True, text=True, cwd=REPO)


def imports_of(module: str) -> set[str]:
    """pipeline modules ``module`` imports directly (read with ast, independently of the rules' regex)."""
    tree = ast.parse((PIPELINE / f"{module}.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "pipeline":
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipeline."):
            out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("pipeline.")}
    return {m for m in out if (PIPELINE / f"{m}.py").is_file()}


def closure(module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += imports_of(m)
    return seen


def stage_modules() -> set[str]:
    text = "".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    return set(re.findall(r"python -m pipeline\.(\w+)", text))


def test_committed_dvc_yaml_is_the_compiled_workflow():
    res = check(REPO)
    assert res.returncode == 0, res.stderr[-3000:]


def test_a_changed_rule_fails_the_check(tmp_path):
    for name in ("Snakefile", "params.yaml", "dvc.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "workflow", tmp_path / "workflow")
    shutil.copytree(PIPELINE, tmp_path / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    rule = tmp_path / "workflow" / "rules" / "evaluate.smk"
    rule.write_text(rule.read_text().replace("--dataset data/dataset", "--dataset data/dataset --split valid"))  # broken
    res = check(tmp_path)
    assert res.returncode == 1 and "--split valid" in res.stderr and "run `python -m pipeline.dvcyaml`" in res.stderr


def test_every_stage_depends_on_the_code_it_imports():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert len(stages) > 20
    for name, stage in stages.items():
        modules = set(re.findall(r"python -m pipeline\.(\w+)", stage["cmd"]))
        if name == "data":                               # the data rules' stages, through snakemake
            modules = {"piece", "dataset", "figures"}
        assert modules, name
        needed = {f"pipeline/{m}.py" for mod in modules for m in closure(mod)}
        assert needed <= set(stage["deps"]), f"{name}: misses {sorted(needed - set(stage['deps']))}"


def test_no_stage_module_imports_another_stage():
    stages = stage_modules()
    assert {"piece", "dataset", "train_snippet", "refine_cca", "train_passage", "evaluate", "experiments"} <= stages
    for stage in stages:
        others = (closure(stage) - {stage}) & stages
        assert not others, f"pipeline.{stage} imports the stage module(s) {sorted(others)}"
