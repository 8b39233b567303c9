"""The policy pack inside the offline plan: graded by environment, end to end."""

import pytest

from tests.planning import run_plan
from tests.stacks import altered_stack, key


def hardening(**values):
    return lambda c: c[key("hardening")].update(values)


def single_ingress(c):
    for host in c[key("hosts")]:
        if host["name"] != "ingress-1" and "ingress" in host["roles"]:
            host["roles"].remove("ingress")


NON_COMPLIANT = {
    "password SSH": (hardening(sshPasswordAuthentication=True), "hosts-ssh-password-auth-off"),
    "root login": (hardening(permitRootLogin=True), "hosts-ssh-root-login-off"),
    "permissive SELinux": (hardening(selinux="permissive"), "hosts-selinux-enforcing"),
    "one ingress node": (single_ingress, "f5-pool-min-members"),
    "backups outside Korea": (lambda c: c.update({"aws:region": "us-east-1"}), "residency-aws-region-seoul"),
}


@pytest.mark.parametrize("case", NON_COMPLIANT, ids=list(NON_COMPLIANT))
@pytest.mark.parametrize(("stack", "exit_code", "level"), [("seoul-prod", 1, "mandatory"),
                                                            ("seoul-stage", 0, "advisory")])
def test_one_non_compliant_change_is_graded_by_environment(tmp_path, case, stack, exit_code, level):
    change, policy = NON_COMPLIANT[case]
    run = run_plan(altered_stack(tmp_path, stack, change), tmp_path / "out")
    assert run.returncode == exit_code, run.stdout + run.stderr
    found = [v for v in run.json("policy.json")["violations"] if v["policy"] == policy]
    assert found and all(v["level"] == level for v in found)
    assert f"[{level}] {policy}" in run.stdout
    assert {v["policy"] for v in run.json("policy.json")["violations"]} == {policy}


def test_environment_not_stack_name_picks_the_grade(tmp_path):
    """A stage-named copy of prod is still prod: mandatory, exit 1."""
    run = run_plan(altered_stack(tmp_path, "seoul-prod", hardening(permitRootLogin=True), name="seoul-stage-2"),
                   tmp_path / "out")
    assert run.returncode == 1
    assert {v["level"] for v in run.json("policy.json")["violations"]} == {"mandatory"}
