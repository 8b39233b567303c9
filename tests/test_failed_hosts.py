"""A server dies (issue 13, fault 2): `state: failed` on its entry, then its removal.

Under the offline engine: nothing new is registered on a dead host, every resource it had
stays registered but inert (retainOnDelete, every input's changes ignored), so the engine
runs nothing against it; the cleanup runs on survivors only; the survivors' content forgets
it; and once the entry is removed, nothing of it is left and no cleanup would run again.
"""

import json

import pytest

from model import ConfigError, load_config
from offline.artifacts import connection_host
from offline.stackfile import stack_from_config
from offline.wire import plain
from policies.shapes import bundled_files
from render.apivip import HAPROXY_CFG
from tests.planning import registrations
from tests.stacks import altered_stack, key, stack_config

FAILED = {"worker-6": "10.0.1.46", "etcd-3": "10.0.1.33"}
# Every input of command:remote:Command in the pinned provider's schema.
COMMAND_INPUTS = {"addPreviousOutputInEnv", "connection", "create", "delete", "environment", "logging", "stdin",
                  "triggers", "update"}


def mark_failed(names):
    def change(config):
        for host in config[key("hosts")]:
            if host["name"] in names:
                host["state"] = "failed"
    return change


def remove(names):
    def change(config):
        config[key("hosts")] = [h for h in config[key("hosts")] if h["name"] not in names]
        config[key("hosts")].append({"name": "etcd-4", "address": "10.0.1.34", "roles": ["etcd"]})
    return change


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    folder = tmp_path_factory.mktemp("failed")
    healthy = registrations(altered_stack(folder, "seoul-prod", lambda c: None, name="healthy"))
    failed = registrations(altered_stack(folder, "seoul-prod", mark_failed(FAILED), name="failed"))
    return {r.urn: r for r in healthy}, {r.urn: r for r in failed}


def commands(regs):
    return {u: r for u, r in regs.items() if r.type == "command:remote:Command"}


def test_nothing_new_is_registered_on_a_dead_host(plans):
    healthy, failed = plans
    # URNs differ by stack name; resource names are unique in this program.
    on_dead = {r.name for r in commands(failed).values() if connection_host(r) in FAILED.values()}
    before = {r.name for r in commands(healthy).values() if connection_host(r) in FAILED.values()}
    assert on_dead and on_dead == before


def test_every_resource_of_a_dead_host_is_inert(plans):
    """On the dead host, or for it elsewhere (its join token and Node, on cp-1): inert."""
    _, failed = plans
    cleanup = ("-etcd-gone", "-node-gone")
    for_dead = [r for r in commands(failed).values()
                if any(r.name.startswith(f"{n}-") for n in FAILED) and not r.name.endswith(cleanup)]
    assert {u for u, r in commands(failed).items() if connection_host(r) in FAILED.values()} <= {
        r.urn for r in for_dead}
    assert len(for_dead) > 20
    for reg in for_dead:
        assert reg.retain_on_delete, reg.name
        assert set(reg.ignore_changes) == COMMAND_INPUTS, reg.name
    live = [r for r in commands(failed).values() if r not in for_dead]
    assert live and not any(r.retain_on_delete or r.ignore_changes for r in live)


def test_cleanup_runs_on_survivors_only(plans):
    _, failed = plans
    by_name = {r.name: r for r in commands(failed).values()}
    etcd_gone, node_gone = by_name["etcd-3-etcd-gone"], by_name["worker-6-node-gone"]
    assert connection_host(etcd_gone) == "10.0.1.31"  # etcd-1, the CA member
    assert connection_host(node_gone) == "10.0.1.21"  # cp-1, the init node
    assert "PEER_URL=https://10.0.1.33:2380" in plain(etcd_gone.inputs)["create"]
    assert "NODE_NAME=worker-6" in plain(node_gone.inputs)["create"]
    for reg in (etcd_gone, node_gone):
        assert "delete" not in plain(reg.inputs) and not reg.retain_on_delete  # runs once, never on removal
    assert not [n for n in by_name if n.endswith(("-etcd-gone", "-node-gone"))
                and n not in ("etcd-3-etcd-gone", "worker-6-node-gone")]


def test_live_members_start_after_the_dead_one_is_removed(plans):
    _, failed = plans
    by_name = {r.name: r for r in failed.values()}
    gone = by_name["etcd-3-etcd-gone"].urn
    for member in ("etcd-1", "etcd-2"):
        assert gone in by_name[f"{member}-etcd-start"].dependencies


def test_survivors_forget_the_dead_host(plans):
    healthy, failed = plans
    by_name = {r.name: plain(r.inputs) for r in failed.values()}
    for member in ("etcd-1", "etcd-2"):
        assert "10.0.1.33" not in by_name[f"{member}-etcd-start"]["create"]
    assert "10.0.1.33" not in by_name["etcd-1-etcd-health"]["create"]
    before = {r.name: plain(r.inputs) for r in healthy.values()}
    assert "10.0.1.33" in before["etcd-1-etcd-health"]["create"]  # the check above could fail


def test_after_removal_nothing_of_the_dead_hosts_is_left(tmp_path):
    stack = altered_stack(tmp_path, "seoul-prod", remove(FAILED), name="removed")
    regs = registrations(stack)
    names = [r.name for r in regs]
    assert not [n for n in names if any(n.startswith(f"{dead}-") or n == dead for dead in FAILED)]
    assert not [r for r in regs if r.retain_on_delete or r.ignore_changes]


@pytest.mark.parametrize(
    ("failed", "expected"),
    [
        ({"etcd-1"}, "etcd.caMember: etcd-1 is marked failed"),
        ({"cp-1"}, "kubernetes.initNode: cp-1 is marked failed"),
        ({"etcd-2", "etcd-3"}, "hosts: etcd-2, etcd-3 failed: 1 of 3 etcd members left, quorum is lost"),
    ],
)
def test_failures_the_program_cannot_repair_are_refused(failed, expected):
    config = stack_config("seoul-prod")
    mark_failed(failed)(config)
    with pytest.raises(ConfigError) as err:
        load_config(stack_from_config("seoul-prod", config).lookup)
    assert any(line.startswith(expected) for line in err.value.lines), err.value.lines


def test_the_plan_json_shows_which_resources_are_inert(tmp_path):
    from tests.planning import run_plan

    run = run_plan(altered_stack(tmp_path, "seoul-prod", mark_failed({"worker-6"}), name="w6"), tmp_path / "out")
    assert run.returncode == 0, run.stderr
    resources = json.loads((tmp_path / "out" / "plan.json").read_text())["resources"]
    inert = {r["name"] for r in resources if r.get("retainOnDelete")}
    assert "worker-6-packages" in inert and "worker-6-join-token" in inert
    assert not [n for n in inert if not n.startswith("worker-6-")]


def test_a_failed_control_plane_and_ingress_host_leave_the_vip_and_the_pool(tmp_path):
    regs = registrations(altered_stack(tmp_path, "seoul-prod", mark_failed({"cp-3", "ingress-3"}), name="cp3"))
    by_name = {r.name: r for r in regs}
    assert connection_host(by_name["cp-3-node-gone"]) == "10.0.1.21"
    assert connection_host(by_name["ingress-3-node-gone"]) == "10.0.1.21"
    files = {put.path: text for put, text in bundled_files(plain(by_name["cp-1-apivip-start"].inputs)["stdin"])}
    haproxy = files[HAPROXY_CFG]
    assert "10.0.1.22:6443" in haproxy and "10.0.1.23" not in haproxy
    pool_members = [plain(r.inputs) for r in regs if r.type == "f5bigip:ltm/poolAttachment:PoolAttachment"]
    assert pool_members and not [m for m in pool_members if "10.0.1.13" in json.dumps(m)]
    assert by_name["cp-3-apivip-start"].retain_on_delete and by_name["cp-3-kubeadm-join"].retain_on_delete


def test_a_failed_storage_host_is_purged_from_the_bootstrap_host(tmp_path):
    regs = registrations(altered_stack(tmp_path, "seoul-prod", mark_failed({"osd-6"}), name="osd6"))
    by_name = {r.name: r for r in regs if r.type == "command:remote:Command"}
    gone = by_name["osd-6-ceph-gone"]
    assert connection_host(gone) == "10.0.2.11" and "HOST=osd-6" in plain(gone.inputs)["create"]
    for step in ("osd-6-ceph-host", "osd-6-ceph-osds-up", "osd-6-packages"):
        assert by_name[step].retain_on_delete, step  # on osd-1 for osd-6, or on osd-6 itself: inert
    assert not by_name["osd-5-ceph-host"].retain_on_delete
    pools = [r for n, r in by_name.items() if n.startswith("ceph-pool-") or "-ceph-pool-" in n]
    assert pools and all(gone.urn in r.dependencies for r in pools)  # pools wait for the purge


def test_a_failed_ceph_bootstrap_host_is_refused():
    config = stack_config("seoul-prod")
    mark_failed({"osd-1"})(config)
    with pytest.raises(ConfigError) as err:
        load_config(stack_from_config("seoul-prod", config).lookup)
    assert any(line.startswith("ceph.bootstrapHost: osd-1 is marked failed") for line in err.value.lines)
