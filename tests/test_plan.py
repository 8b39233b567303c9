"""The offline plan end to end, run as `make plan` runs it."""

import re

import pytest

from offline.stackfile import read_stack_file
from render.files import file_delimiter
from tests.planning import run_plan
from tests.stacks import altered_stack, key, stack_config, write_stack
from tests.tools import REPO

PLAINTEXT_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUtZXN0LWtleQ==\n"


@pytest.fixture(scope="module", params=["seoul-stage", "seoul-prod"])
def planned(request, tmp_path_factory):
    stack = request.param
    return stack, run_plan(REPO / f"Pulumi.{stack}.yaml", tmp_path_factory.mktemp(stack))


def test_plan_succeeds_and_writes_its_files(planned):
    stack, run = planned
    assert run.returncode == 0, run.stderr
    plan = run.json("plan.json")
    assert (plan["project"], plan["stack"]) == ("seoul-cluster", stack)
    violations = run.json("policy.json")["violations"]
    assert not [v for v in violations if v["level"] == "mandatory"], violations
    resource = next(r for r in plan["resources"] if r["type"] == "command:remote:Command")
    assert set(resource) == {"urn", "type", "name", "parent", "custom", "protect", "dependencies",
                             "propertyDependencies", "inputs"}
    assert plan["outputs"]["environment"] == stack.removeprefix("seoul-")


def test_summary_counts_what_plan_json_lists(planned):
    _, run = planned
    match = re.search(r"^\+ (\d+) to create · (\d+) policy violations", run.stdout, re.MULTILINE)
    assert match, run.stdout
    assert int(match.group(1)) == len(run.json("plan.json")["resources"])
    assert int(match.group(2)) == len(run.json("policy.json")["violations"])
    assert "seoul:hosts:Host" in run.stdout


def test_every_host_gets_its_hardening_files(planned):
    stack, run = planned
    for name in (h["name"] for h in stack_config(stack)[key("hosts")]):
        dropin = run.out / "artifacts/hosts" / name / "etc/ssh/sshd_config.d/00-seoul-hardening.conf"
        assert "PasswordAuthentication no" in dropin.read_text()
        assert (run.out / "artifacts/hosts" / name / "etc/audit/rules.d/50-seoul.rules").is_file()


def test_artifacts_are_byte_for_byte_what_is_sent(planned):
    _, run = planned
    plan = run.json("plan.json")
    sent = next(r["inputs"]["stdin"] for r in plan["resources"] if r["name"] == "cp-1-chrony-apply")
    artifact = (run.out / "artifacts/hosts/cp-1/etc/chrony.conf").read_text()
    delimiter = file_delimiter(artifact)  # the here-document that writes it (render/files.py)
    assert f" /etc/chrony.conf <<'{delimiter}'\n{artifact}{delimiter}\n" in sent


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c[key("hosts")][4].update(address="10.9.0.5"),
         "hosts[4].address: 10.9.0.5 is outside network.nodeCidr"),
        (lambda c: c[key("hosts")].pop(3), "etcd members"),
        (lambda c: c.update({key("environment"): "qa"}), "environment: 'qa'"),
    ],
)
def test_bad_config_exits_2_naming_the_key_and_writes_nothing(tmp_path, change, expected):
    out = tmp_path / "out"
    run = run_plan(altered_stack(tmp_path, "seoul-prod", change), out)
    assert run.returncode == 2
    assert expected in run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert not out.exists()


def test_unreadable_stack_file_exits_2(tmp_path):
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text("config: [unclosed\n")
    run = run_plan(path, tmp_path / "out")
    assert run.returncode == 2 and "Traceback" not in run.stderr


def test_plaintext_ssh_key_appears_nowhere(tmp_path):
    def plaintext_key(c):
        c[key("ssh")]["privateKey"] = PLAINTEXT_KEY

    run = run_plan(altered_stack(tmp_path, "seoul-stage", plaintext_key), tmp_path / "out")
    assert run.returncode == 0, run.stderr
    needle = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUtZXN0LWtleQ"
    assert needle not in run.stdout + run.stderr
    for path in run.out.rglob("*"):
        if path.is_file():
            assert needle not in path.read_text(), path
    assert "stored in plain text" in run.stderr


def test_secure_values_are_placeholders_marked_secret(tmp_path):
    config = stack_config("seoul-stage")
    config[key("ssh")]["privateKey"] = {"secure": "v1:AAAABBBBCCCC"}
    stack = read_stack_file(write_stack(tmp_path, "sec", config))
    assert key("ssh") in stack.secret_keys
    assert "v1:AAAABBBBCCCC" not in str(stack.config)


def test_behaviour_follows_environment_not_stack_name(tmp_path):
    copy = write_stack(tmp_path, "seoul-prod-2", stack_config("seoul-prod"))
    original = run_plan(REPO / "Pulumi.seoul-prod.yaml", tmp_path / "a")
    renamed = run_plan(copy, tmp_path / "b")
    assert renamed.returncode == original.returncode == 0

    def shape(run):
        plan = run.json("plan.json")
        return [(r["type"], r["name"], r["inputs"]) for r in plan["resources"] if r["type"] != "pulumi:pulumi:Stack"]

    assert shape(renamed) == shape(original)
    assert renamed.json("policy.json") == original.json("policy.json")


def test_hosts_without_a_pinned_host_key_are_warned_about(tmp_path):
    key_text = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"

    def pin_all_but_one(c):
        for host in c[key("hosts")][1:]:
            host["hostKey"] = key_text

    run = run_plan(altered_stack(tmp_path, "seoul-stage", pin_all_but_one), tmp_path / "out")
    assert run.returncode == 0, run.stderr
    assert "1 of 14 hosts have no hostKey" in run.stderr and "(cp-1)" in run.stderr
