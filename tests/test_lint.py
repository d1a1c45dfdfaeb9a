"""Gates of the test command (and so of .ci/run): the code is ruff-clean and the workflow is
snakemake-lint-clean (the dvc.yaml drift gate is tests/test_dvcyaml.py)."""
import subprocess
import sys
from pathlib import Path

from conftest import REPO

BIN = Path(sys.executable).parent


def test_ruff_is_clean():
    res = subprocess.run([str(BIN / "ruff"), "check", "."], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:]


def test_snakemake_lint_is_clean():
    res = subprocess.run([str(BIN / "snakemake"), "--lint"], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0 and "good condition" in res.stdout + res.stderr, (res.stdout + res.stderr)[-3000:]
