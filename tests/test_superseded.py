"""`review.superseded`: the file puts a deployed stack still holds from before file sets
were one step, found in a `pulumi stack export` and dropped from it before `pulumi up`."""

import copy
import json
import subprocess
import sys

import pytest

from policies.shapes import bundled_files
from review.superseded import superseded_puts, without
from tests.planning import run_plan
from tests.tools import REPO

PUT = "sudo install -D -m {mode} -o root -g root /dev/stdin {path}"


@pytest.fixture(scope="module")
def plan(tmp_path_factory) -> dict:
    run = run_plan(REPO / "Pulumi.seoul-stage.yaml", tmp_path_factory.mktemp("plan") / "out")
    assert run.returncode == 0, run.stderr
    return run.json("plan.json")


def export(resources: list[dict]) -> dict:
    """A `pulumi stack export` document (version 3) holding `resources`."""
    return {"version": 3, "deployment": {"manifest": {}, "resources": copy.deepcopy(resources)}}


def deployed_before(plan: dict) -> tuple[dict, list[str]]:
    """The state a stack deployed before file sets were one step would hold: every file a
    step writes was a put of its own (`rm -f` on delete) that the step depended on. Returns
    (state, the puts' URNs)."""
    resources, puts = [], []
    for res in plan["resources"]:
        res = copy.deepcopy(res)
        stdin = res["inputs"].get("stdin")
        files = bundled_files(stdin) if res["type"] == "command:remote:Command" and isinstance(stdin, str) else ()
        for i, (put, content) in enumerate(files):
            urn = f"{res['urn']}-put-{i}"
            resources.append({"urn": urn, "type": res["type"], "parent": res["parent"], "custom": True,
                              "inputs": {"create": PUT.format(mode=put.mode, path=put.path), "stdin": content,
                                         "delete": f"sudo rm -f {put.path}"}})
            puts.append(urn)
            res.setdefault("dependencies", []).append(urn)
        resources.append(res)
    return export(resources), puts


def test_finds_every_put_a_file_set_now_writes_and_nothing_else(plan):
    state, puts = deployed_before(plan)
    assert len(puts) > 100
    assert superseded_puts(state, plan) == puts
    # A put still in the program (the join secrets), or one without a delete, is left alone.
    assert superseded_puts(export(plan["resources"]), plan) == []
    kept = copy.deepcopy(state)
    for res in kept["deployment"]["resources"]:
        if res["urn"] == puts[0]:
            del res["inputs"]["delete"]
    assert superseded_puts(kept, plan) == puts[1:]


def test_the_migrated_state_forgets_them_and_every_reference_to_them(plan):
    state, puts = deployed_before(plan)
    before = json.dumps(state)
    migrated = without(state, puts)
    assert json.dumps(state) == before  # the input is left as it was
    text = json.dumps(migrated)
    assert not [urn for urn in puts if f'"{urn}"' in text]
    assert len(migrated["deployment"]["resources"]) == len(plan["resources"])
    assert superseded_puts(migrated, plan) == []


def test_the_command_stops_a_deploy_and_writes_the_migration(plan, tmp_path):
    state, puts = deployed_before(plan)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    (tmp_path / "state.json").write_text(json.dumps(state))

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "review.superseded", "--plan", str(tmp_path / "plan.json"),
                               "--state", str(tmp_path / "state.json"), *extra],
                              capture_output=True, text=True, cwd=REPO, timeout=120)

    stopped = run()
    assert stopped.returncode == 1 and f"{len(puts)} file puts" in stopped.stderr and puts[0] in stopped.stderr
    written = run("--write", str(tmp_path / "migrated.json"))
    assert written.returncode == 0, written.stderr
    (tmp_path / "state.json").write_text((tmp_path / "migrated.json").read_text())
    assert run().returncode == 0
    (tmp_path / "state.json").write_text("{not json")
    broken = run()
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
