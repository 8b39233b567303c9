"""The pack's Ceph rules on the pools the program registers, end to end through `python -m offline.plan`."""

import pytest

from tests.planning import run_plan
from tests.stacks import altered_stack, key


def pool(name: str, **values):
    def change(c):
        next(p for p in c[key("ceph")]["pools"] if p["name"] == name).update(**values)
    return change


def ec_without_reheal(c):
    # k+m equal to the storage host count: placeable, but not after losing one (6 hosts prod, 5 stage).
    hosts = sum("storage" in h["roles"] for h in c[key("hosts")])
    pool("logs-data", k=hosts - 2, m=2)(c)


NON_COMPLIANT = {
    "two copies": (pool("rbd", size=2, minSize=1), {"ceph-replicated-pool-size"}),
    "minSize equal to size": (pool("cephfs-data", size=3, minSize=3), {"ceph-pool-survives-host-loss"}),
    "EC that cannot re-heal": (ec_without_reheal, {"ceph-ec-pool-profile", "ceph-workload-retention"}),
    "EC with one parity chunk": (pool("logs-data", k=3, m=1), {"ceph-ec-pool-profile"}),
    "retention not held after a host loss": (lambda c: c[key("workload")].update(retentionDays=60),
                                             {"ceph-workload-retention"}),
}


@pytest.mark.parametrize("case", NON_COMPLIANT, ids=list(NON_COMPLIANT))
@pytest.mark.parametrize(("stack", "exit_code", "level"), [("seoul-prod", 1, "mandatory"),
                                                            ("seoul-stage", 0, "advisory")])
def test_non_compliant_pool_is_graded_by_environment(tmp_path, case, stack, exit_code, level):
    change, policies = NON_COMPLIANT[case]
    run = run_plan(altered_stack(tmp_path, stack, change), tmp_path / "out")
    assert run.returncode == exit_code, run.stdout + run.stderr
    violations = run.json("policy.json")["violations"]
    assert {v["policy"] for v in violations} == policies
    assert all(v["level"] == level for v in violations)
    # each names a real pool step the program registered
    assert all("ceph-pool-" in v["urn"] for v in violations), violations
    for policy in policies:
        assert f"[{level}] {policy}" in run.stdout


@pytest.mark.parametrize("stack", ["seoul-prod", "seoul-stage"])
def test_shipped_stacks_are_clean_and_print_the_verdict(tmp_path, stack):
    run = run_plan(altered_stack(tmp_path, stack, lambda c: None), tmp_path / "out")
    assert run.returncode == 0, run.stderr
    assert run.json("policy.json")["violations"] == []
    assert "Ceph capacity: raw" in run.stdout and "holds workload.retentionDays" in run.stdout
    outputs = run.json("plan.json")["outputs"]
    assert outputs["cephCapacity"]["holdsRetention"] is True
    assert outputs["storageClasses"] == ["ceph-rbd", "ceph-rbd-logs-data", "cephfs"]


def test_k_plus_m_above_the_storage_hosts_is_invalid_config(tmp_path):
    run = run_plan(altered_stack(tmp_path, "seoul-prod", pool("logs-data", k=4, m=3)), tmp_path / "out")
    assert run.returncode == 2
    assert "ceph.pools[1]: k=4 m=3: pool logs-data needs 7 storage hosts" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "out").exists()
