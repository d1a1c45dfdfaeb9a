"""dvc.yaml is compiled from the Snakemake workflow (pipeline/core/dvcyaml.py): the committed file equals the
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
    return subprocess.run([sys.executable, "-m", "pipeline.core.dvcyaml", "--check", "--workdir", str(workdir)],
                          capture_output=True, text=True, cwd=REPO)


def module_file(module: str):
    """``core.params`` -> pipeline/core/params.py"""
    return PIPELINE / (module.replace(".", "/") + ".py")


def imports_of(module: str) -> set[str]:
    """pipeline modules (``layer.name``) ``module`` imports directly (read with ast, independently of the rules' regex)."""
    tree = ast.parse(module_file(module).read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipeline."):
            package = node.module[len("pipeline."):]
            out |= {package} | {f"{package}.{a.name}" for a in node.names}       # a module, or modules of a package
        elif isinstance(node, ast.Import):
            out |= {a.name[len("pipeline."):] for a in node.names if a.name.startswith("pipeline.")}
    return {m for m in out if module_file(m).is_file()}


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
    return set(re.findall(r"python -m pipeline\.([\w.]+)", text))


def test_committed_dvc_yaml_is_the_compiled_workflow():
    res = check(REPO)
    assert res.returncode == 0, res.stderr[-3000:]


def test_a_changed_rule_fails_the_check(tmp_path):
    for name in ("Snakefile", "params.yaml", "dvc.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "workflow", tmp_path / "workflow")
    shutil.copytree(PIPELINE, tmp_path / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    rule = tmp_path / "workflow" / "rules" / "evaluate.smk"
    rule.write_text(rule.read_text().replace("--dataset {params.dataset}", "--dataset {params.dataset} --split valid"))  # broken
    res = check(tmp_path)
    assert res.returncode == 1 and "--split valid" in res.stderr and "run `python -m pipeline.core.dvcyaml`" in res.stderr


def test_every_stage_depends_on_the_code_it_imports():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert len(stages) > 20
    for name, stage in stages.items():
        modules = set(re.findall(r"python -m pipeline\.([\w.]+)", stage["cmd"]))
        if name == "data":                               # the data rules' stages, through snakemake
            modules = {"data.piece", "data.dataset", "data.figures"}
        assert modules, name
        needed = {str(module_file(m).relative_to(REPO)) for mod in modules for m in closure(mod)}
        assert needed <= set(stage["deps"]), f"{name}: misses {sorted(needed - set(stage['deps']))}"


def test_no_stage_module_imports_another_stage():
    stages = stage_modules()
    assert {"data.piece", "data.dataset", "models.train_snippet", "models.refine_cca", "models.train_passage",
            "evaluation.evaluate", "evaluation.experiments"} <= stages
    for stage in stages:
        others = (closure(stage) - {stage}) & stages
        assert not others, f"pipeline.{stage} imports the stage module(s) {sorted(others)}"


LAYERS = ("core", "data", "models", "evaluation")


def test_layers_import_only_the_layers_below():
    """core -> data -> models -> evaluation: a module imports from its own layer or the ones before."""
    for module in sorted(str(f.relative_to(PIPELINE).with_suffix("")).replace("/", ".") for f in PIPELINE.glob("*/*.py")):
        layer = LAYERS.index(module.split(".")[0])
        upward = {m for m in imports_of(module) if LAYERS.index(m.split(".")[0]) > layer}
        assert not upward, f"pipeline.{module} ({LAYERS[layer]}) imports {sorted(upward)} from a layer above"
    # no module outside a layer, but for the user command's entry point (a shim over evaluation.query)
    assert sorted(p.name for p in PIPELINE.iterdir() if p.suffix == ".py") == ["__init__.py", "query.py"]
