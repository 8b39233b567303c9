"""`seoul-diff`: what `pulumi preview` would show between a git ref and the working tree."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from render.files import FileSet, HostFile, ScriptRun, file_set_script
from review.diff import REPLACE_ON_CHANGES, changed_paths, compare, render, summary
from tests.tools import REPO, require_shared

STACK = "urn:pulumi:s::seoul-cluster::pulumi:pulumi:Stack::seoul-cluster-s"


def resource(name: str, rtype: str = "command:remote:Command", parent: str = STACK, **inputs) -> dict:
    return {"urn": f"urn:pulumi:s::seoul-cluster::{rtype}::{name}", "type": rtype, "name": name, "parent": parent,
            "custom": not rtype.startswith("seoul:"), "inputs": inputs}


def plan(*resources: dict, hosts: tuple[str, ...] = ("cp-1", "worker-1")) -> dict:
    stack = {"urn": STACK, "type": "pulumi:pulumi:Stack", "name": "seoul-cluster-s", "parent": "",
             "custom": False, "inputs": {}}
    return {"stack": "s", "resources": [stack, *resources],
            "outputs": {"inventory": {h: {"address": "10.0.0.1", "roles": []} for h in hosts}}}


def test_changed_paths_descend_into_objects_and_ignore_what_cannot_be_seen():
    assert changed_paths({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}}) == ["a.c"]
    assert changed_paths({"l": [1, 2]}, {"l": [1, 3]}) == ["l"]
    assert changed_paths({"k": "[secret]"}, {"k": "[secret]"}) == []
    assert changed_paths({}, {"new": 1}) == ["new"]


def test_each_kind_of_step():
    base = plan(resource("cp-1-packages", create="install 1.29.6"),
                resource("cp-1-chrony-apply", create="apply", triggers=["d1"]),
                resource("worker-1-gone", create="x"),
                resource("cp-1-same", create="same"))
    head = plan(resource("cp-1-packages", create="install 1.29.7"),
                resource("cp-1-chrony-apply", create="apply", triggers=["d2"]),
                resource("cp-1-same", create="same"),
                resource("worker-2-new", create="y"), hosts=("cp-1", "worker-1", "worker-2"))
    steps = {s["name"]: s for s in compare(base, head)}
    assert {n: s["op"] for n, s in steps.items()} == {
        "cp-1-packages": "update", "cp-1-chrony-apply": "replace", "worker-1-gone": "delete", "worker-2-new": "create"}
    assert steps["cp-1-packages"]["keys"] == ["create"]
    assert steps["cp-1-packages"]["values"]["create"] == {"old": "install 1.29.6", "new": "install 1.29.7"}
    assert steps["cp-1-chrony-apply"]["replaceKeys"] == ["triggers"]
    assert steps["worker-2-new"]["host"] == "worker-2" and steps["worker-1-gone"]["host"] == "worker-1"
    assert summary(list(steps.values()), head) == {"create": 1, "update": 1, "replace": 1, "delete": 1,
                                                   "stateOnly": 0, "same": 2}


def test_a_retained_resource_is_deleted_from_state_only():
    # A dead host's steps are retainOnDelete: removing its entry runs no delete command.
    dead = {**resource("worker-6-packages", create="x", delete="dnf remove"), "retainOnDelete": True}
    base = plan(dead, resource("worker-5-packages", create="x", delete="dnf remove"))
    steps = {s["name"]: s for s in compare(base, plan())}
    assert steps["worker-6-packages"]["stateOnly"] and not steps["worker-5-packages"]["stateOnly"]
    assert summary(list(steps.values()), plan())["stateOnly"] == 1
    text = render({"stack": "s", "base": {"ref": "HEAD", "commit": "0" * 40}, "steps": list(steps.values()),
                   "summary": summary(list(steps.values()), plan())})
    assert "worker-6-packages  [state only" in text and "worker-5-packages  [state only" not in text
    assert "(1 of the deletes state only)" in text


def test_secret_values_never_appear():
    base = plan(resource("cp-1-join", stdin="token-abc", create="join"))
    head = plan(resource("cp-1-join", stdin="[secret]", create="join --v2"))
    text = json.dumps(compare(base, head))
    assert "token-abc" not in text
    step = compare(base, head)[0]
    assert step["values"]["stdin"] == {"old": "[secret]", "new": "[secret]"}


def test_a_file_set_step_names_the_files_its_change_touches(tmp_path):
    def step(*files: HostFile) -> dict:
        file_set = FileSet(files, ScriptRun("chrony-apply", "restart-service.sh", {"SERVICE": "chronyd"}))
        return resource("cp-1-chrony-apply", create="sudo env SERVICE=chronyd bash -s", stdin=file_set_script(file_set))
    conf, keys = HostFile("c", "/etc/chrony.conf", "pool a\n"), HostFile("k", "/etc/chrony.keys", "1 x\n")
    base = plan(step(conf, keys))
    head = plan(step(HostFile("c", "/etc/chrony.conf", "pool b\n"), HostFile("d", "/etc/chrony.d/x.conf", "y\n")))
    [changed] = compare(base, head)
    assert changed["files"] == {"/etc/chrony.conf": "changed", "/etc/chrony.d/x.conf": "added",
                                "/etc/chrony.keys": "removed"}
    text = render({"stack": "s", "base": {"ref": "HEAD", "commit": "0" * 40}, "steps": [changed],
                   "summary": summary([changed], head)})
    assert "stdin: /etc/chrony.conf changed, /etc/chrony.d/x.conf added, /etc/chrony.keys removed" in text
    assert compare(base, plan(step(conf, HostFile("k", "/etc/chrony.keys", "1 x\n", "0600"))))[0]["files"] == {
        "/etc/chrony.keys": "changed"}
    other_script = FileSet((conf, keys), ScriptRun("chrony-apply", "enable-units.sh", {"SERVICE": "chronyd"}))
    changed_script = plan(resource("cp-1-chrony-apply", create="sudo env SERVICE=chronyd bash -s",
                                   stdin=file_set_script(other_script)))
    assert compare(base, changed_script)[0]["files"] == {"<script>": "changed"}


def test_replace_on_changes_follows_the_provider_schema():
    """The table equals the `replaceOnChanges` inputs of the pinned pulumi-command schema."""
    schema = json.loads(require_shared("schemas/pulumi-providers/command-1.2.1.schema.json").read_text())
    for token, spec in schema["resources"].items():
        flagged = {k for k, v in spec["inputProperties"].items() if v.get("replaceOnChanges")}
        assert REPLACE_ON_CHANGES.get(token, frozenset()) == flagged, token


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A git repository holding this working tree's files, committed once."""
    repo = tmp_path_factory.mktemp("clone")
    for name in git(REPO, "ls-files", "-co", "--exclude-standard").splitlines():
        source = REPO / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "base")
    return repo


def diff(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "review.diff", *args], cwd=repo, capture_output=True, text=True,
                          timeout=600, env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"})


def test_adding_a_worker_creates_exactly_its_resources(clone):
    stack_file = clone / "Pulumi.seoul-stage.yaml"
    doc = yaml.safe_load(stack_file.read_text())
    doc["config"]["seoul-cluster:hosts"].append({"name": "worker-9", "address": "10.20.1.49", "roles": ["worker"]})
    original = stack_file.read_text()
    stack_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    try:
        run = diff(clone, "--stack", "seoul-stage", "--base", "HEAD")
    finally:
        stack_file.write_text(original)
    assert run.returncode == 1, run.stdout + run.stderr
    document = json.loads((clone / "build/seoul-stage/diff.json").read_text())
    ops = {s["op"] for s in document["steps"]}
    assert ops == {"create"}
    assert {s["host"] for s in document["steps"]} == {"worker-9"}
    assert all("worker-9" in s["name"] for s in document["steps"])
    worker = [r for r in json.loads((clone / "build/seoul-stage/plan.json").read_text())["resources"]
              if r["name"] == "worker-1" or r["name"].startswith("worker-1-")]
    assert document["summary"]["create"] == len(document["steps"]) == len(worker) > 10
    assert "\nworker-9\n" in run.stdout and f"+ {len(document['steps'])} to create" in run.stdout


def test_no_change_is_exit_0_and_a_bad_ref_exit_2(clone):
    same = diff(clone, "--stack", "seoul-prod", "--base", "HEAD")
    assert same.returncode == 0, same.stdout + same.stderr
    assert json.loads((clone / "build/seoul-prod/diff.json").read_text())["steps"] == []
    bad = diff(clone, "--stack", "seoul-prod", "--base", "no-such-ref")
    assert bad.returncode == 2 and "BASE=no-such-ref" in bad.stderr and "Traceback" not in bad.stderr
