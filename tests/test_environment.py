"""environment.yml (conda-forge, for cluster users) declares every dependency the package declares."""
import re
import tomllib

import yaml
from conftest import REPO

CONDA_NAME = {"soundfile": "pysoundfile"}   # PyPI name -> conda-forge name where they differ


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower()


def test_every_declared_python_dependency_is_in_environment_yml():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [r for extra in project.get("optional-dependencies", {}).values() for r in extra]
    env = yaml.safe_load((REPO / "environment.yml").read_text())["dependencies"]
    conda = {_name(d) for d in env if isinstance(d, str)}
    pip = {_name(d) for d in env if isinstance(d, dict) for d in d.get("pip", [])}
    missing = [r for r in declared if CONDA_NAME.get(_name(r), _name(r)) not in conda | pip]
    assert not missing, f"environment.yml lacks {missing}"
    # torch must be the same pin in both (an unpinned torch pulls GBs of CUDA packages)
    assert "torch==2.13.0" in [d.replace(" ", "") for e in env if isinstance(e, dict) for d in e.get("pip", [])]
    assert "torch==2.13.0" in declared
