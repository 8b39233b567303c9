"""Run the program under the offline engine in-process, or the offline plan as a user does."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offline.engine import run_program
from offline.registry import Registration
from offline.stackfile import read_stack_file
from offline.wire import plain
from tests.provider_schemas import check_if_available, plan_resources
from tests.tools import REPO


def registrations(stack_file: Path) -> list[Registration]:
    regs, _ = run_program(REPO / "__main__.py", read_stack_file(stack_file))
    check_if_available(plan_resources(regs), stack_file.name)  # every plan the tests make meets the schemas
    return regs


def inputs_by_urn(regs: list[Registration]) -> dict[str, dict[str, Any]]:
    return {r.urn: plain(r.inputs) for r in regs}


@dataclass
class PlanRun:
    returncode: int
    stdout: str
    stderr: str
    out: Path

    def json(self, name: str) -> Any:
        return json.loads((self.out / name).read_text())


def run_plan(stack_file: Path, out: Path) -> PlanRun:
    """`python -m offline.plan` in a child process, exactly as `make plan` runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "offline.plan", "--stack-file", str(stack_file), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    run = PlanRun(proc.returncode, proc.stdout, proc.stderr, out)
    if (out / "plan.json").is_file():
        check_if_available(run.json("plan.json")["resources"], f"{stack_file.name} ({out}/plan.json)")
    return run
