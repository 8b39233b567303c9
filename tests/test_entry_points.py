"""The console entry points keep the plan's exit statuses (make would turn each into its 2)."""

import subprocess
import sys
import tomllib
from pathlib import Path

from tests.stacks import altered_stack, key
from tests.tools import REPO

BIN = Path(sys.executable).parent


def test_pyproject_declares_the_entry_points_and_the_venv_has_them():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["seoul-plan"] == "offline.plan:main"
    for name in scripts:
        assert (BIN / name).exists(), f"{name}: run `make venv` (pip install -e .)"


def run(*args: str) -> subprocess.CompletedProcess:
    # From another folder: the entry point must not depend on the caller's working directory.
    return subprocess.run([str(BIN / "seoul-plan"), *args], cwd="/", capture_output=True, text=True, timeout=300)


def test_seoul_plan_exit_statuses_reach_the_caller(tmp_path):
    invalid = altered_stack(tmp_path, "seoul-stage", lambda c: c[key("network")].update(apiVip="nope"))
    assert run("--stack-file", str(invalid), "--out", str(tmp_path / "a")).returncode == 2
    blocked = altered_stack(tmp_path, "seoul-prod", lambda c: c[key("hardening")].update(permitRootLogin=True))
    assert run("--stack-file", str(blocked), "--out", str(tmp_path / "b")).returncode == 1
    fine = run("--stack-file", str(REPO / "Pulumi.seoul-stage.yaml"), "--out", str(tmp_path / "c"))
    assert fine.returncode == 0, fine.stderr
