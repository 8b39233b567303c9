"""The Host component under the engine-less monitor: what it registers, in which order."""

import re
import shlex

import pulumi
import pytest
from google.protobuf import json_format

from components.hosts import Host
from model import SECRET_PLACEHOLDER, load_config
from offline.engine import PreviewMocks, run_program
from offline.stackfile import read_stack_file
from offline.wire import is_secret, plain
from policies.shapes import bundled_files
from render import hosts
from tests.planning import inputs_by_urn, registrations
from tests.stacks import altered_stack, key, stack_config
from tests.tools import REPO


@pytest.fixture(scope="module")
def prod():
    return registrations(REPO / "Pulumi.seoul-prod.yaml")


def commands_of(regs, host: str):
    return [r for r in regs if r.type == "command:remote:Command" and r.parent.endswith(f"seoul:hosts:Host::{host}")]


def env_of(create: str) -> dict[str, str]:
    words = shlex.split(create)
    assert words[:2] == ["sudo", "env"] and words[-2:] == ["bash", "-s"], create
    return dict(w.split("=", 1) for w in words[2:-2])


def step(regs, host: str, suffix: str) -> dict:
    [reg] = [r for r in commands_of(regs, host) if r.name == f"{host}-{suffix}"]
    return plain(reg.inputs)


def paths_of(regs, host: str, suffix: str) -> set[str]:
    """The files a file set's step writes on `host`."""
    return {put.path for put, _ in bundled_files(step(regs, host, suffix)["stdin"])}


def test_one_component_per_host_with_its_inventory_facts(prod):
    components = {r.name: plain(r.inputs) for r in prod if r.type == "seoul:hosts:Host"}
    cfg = load_config(read_stack_file(REPO / "Pulumi.seoul-prod.yaml").lookup)
    assert set(components) == {h.name for h in cfg.hosts}
    assert components["osd-1"] == {"address": "10.0.2.11", "roles": ["storage"], "cisLevel": 1}


def test_resource_names_derive_from_host_names(prod):
    for host in ("cp-1", "etcd-2", "osd-6"):
        names = [r.name for r in commands_of(prod, host)]
        assert names and all(n.startswith(f"{host}-") for n in names)


@pytest.mark.parametrize(
    ("host", "present", "absent"),
    [
        ("cp-1", {"22", "6443", "8443", "10250", "179"}, {"2379-2380", "80", "3300"}),
        ("etcd-1", {"22", "2379-2380"}, {"6443", "10250", "179"}),
        ("ingress-1", {"22", "80", "443", "10250", "179"}, {"6443", "2379-2380"}),
        ("osd-1", {"22", "3300", "6789", "6800-7300"}, {"10250", "6443", "80"}),
    ],
)
def test_firewall_opens_only_what_the_role_needs(prod, host, present, absent):
    env = env_of(step(prod, host, "firewalld")["create"])
    ports = set(env["TCP_PORTS"].split())
    assert env["DEFAULT_ZONE"] == "drop"
    assert present <= ports
    assert not ports & absent


def test_vrrp_only_between_control_planes(prod):
    assert env_of(step(prod, "cp-2", "firewalld")["create"])["PROTOCOLS"] == "vrrp"
    assert env_of(step(prod, "worker-1", "firewalld")["create"])["PROTOCOLS"] == ""


def test_kubernetes_packages_only_on_kubelet_hosts(prod):
    cp = env_of(step(prod, "cp-1", "packages")["create"])
    assert cp == {"KUBERNETES_VERSION": "1.29.6", "KUBERNETES_MINOR": "1.29"}
    assert step(prod, "osd-1", "packages")["create"] == "sudo bash -s"


def test_apply_steps_write_their_files_after_packages(prod):
    urns = {r.name: r.urn for r in prod}
    deps = {r.name: r.dependencies for r in prod}
    assert deps["cp-1-sshd-apply"] == [urns["cp-1-packages"]]
    assert paths_of(prod, "cp-1", "sshd-apply") == {hosts.SSHD_DROPIN}
    assert paths_of(prod, "cp-1", "kernel-apply") == {
        hosts.SYSCTL_HARDENING, hosts.MODPROBE_CIS, hosts.SYSCTL_KUBERNETES, hosts.MODULES_KUBERNETES}
    assert paths_of(prod, "osd-1", "kernel-apply") == {hosts.SYSCTL_HARDENING, hosts.MODPROBE_CIS}
    assert paths_of(prod, "osd-1", "audit-apply") == {hosts.AUDITD_CONF, hosts.AUDIT_RULES}


def test_apply_steps_remove_the_paths_of_earlier_releases(prod):
    """Renamed drop-ins: the old file would outrank nothing now, but must not linger."""
    assert env_of(step(prod, "cp-1", "sshd-apply")["create"])["REMOVE"] == "/etc/ssh/sshd_config.d/50-hardening.conf"
    assert env_of(step(prod, "cp-1", "kernel-apply")["create"])["REMOVE"].split() == [
        "/etc/sysctl.d/90-hardening.conf", "/etc/sysctl.d/91-kubernetes.conf"]
    assert env_of(step(prod, "cp-1", "journald-apply")["create"])["REMOVE"] == (
        "/etc/systemd/journald.conf.d/50-seoul.conf")
    # At level 1 the immutable audit rule of level 2 is removed too (it lifts at the next reboot).
    audit = env_of(step(prod, "cp-1", "audit-apply")["create"])
    assert audit["REMOVE"] == "/etc/audit/rules.d/99-zz-seoul-immutable.rules"


def test_level_2_changes_only_audit_kernel_and_the_host_facts(tmp_path, prod):
    def level_2(c):
        c[key("hardening")]["level"] = 2

    before = inputs_by_urn(prod)
    after = inputs_by_urn(registrations(altered_stack(tmp_path, "seoul-prod", level_2, name="seoul-prod")))
    added = {urn.rsplit("::", 1)[1] for urn in set(after) - set(before)}
    changed = {urn.rsplit("::", 1)[1] for urn in set(before) & set(after) if before[urn] != after[urn]}
    names = [h["name"] for h in stack_config("seoul-prod")[key("hosts")]]
    assert added == set()
    assert changed == set(names) | {f"{n}-{s}" for n in names for s in ("audit-apply", "kernel-apply")}
    leveled = registrations(altered_stack(tmp_path, "seoul-prod", level_2, name="seoul-prod"))
    assert paths_of(leveled, "osd-1", "audit-apply") == {hosts.AUDITD_CONF, hosts.AUDIT_RULES, hosts.AUDIT_IMMUTABLE}
    assert {r.name: plain(r.inputs)["cisLevel"] for r in registrations(
        altered_stack(tmp_path, "seoul-prod", level_2, name="seoul-prod")) if r.type == "seoul:hosts:Host"}["cp-1"] == 2


def test_hosts_never_wait_on_each_other(prod):
    """OS preparation of one host never waits on another host's."""
    host_of = {r.urn: r.parent for r in prod if "seoul:hosts:Host::" in r.parent}
    for reg in prod:
        if reg.urn not in host_of:
            continue
        for dep in reg.dependencies:
            if dep in host_of:
                assert host_of[dep] == reg.parent, f"{reg.name} waits on {dep}"


def test_apply_reruns_when_its_file_changes(tmp_path):
    def permissive_root_login(c):
        c[key("hardening")]["permitRootLogin"] = True

    before = inputs_by_urn(registrations(REPO / "Pulumi.seoul-stage.yaml"))
    after = inputs_by_urn(registrations(altered_stack(tmp_path, "seoul-stage", permissive_root_login,
                                                      name="seoul-stage")))
    assert set(before) == set(after)
    changed = {urn.rsplit("::", 1)[1] for urn in before if before[urn] != after[urn]}
    names = [h["name"] for h in stack_config("seoul-stage")[key("hosts")]]
    assert changed == {f"{name}-sshd-apply" for name in names}


def test_selinux_mode_comes_from_config(tmp_path):
    def permissive(c):
        c[key("hardening")]["selinux"] = "permissive"

    regs = registrations(altered_stack(tmp_path, "seoul-stage", permissive))
    assert env_of(step(regs, "cp-1", "selinux")["create"]) == {"SELINUX_MODE": "permissive"}


def test_adding_a_worker_touches_only_that_worker(tmp_path, prod):
    def add_worker(c):
        c[key("hosts")].append({"name": "worker-7", "address": "10.0.1.47", "roles": ["worker"]})

    bigger = inputs_by_urn(registrations(altered_stack(tmp_path, "seoul-prod", add_worker, name="seoul-prod")))
    before = inputs_by_urn(prod)
    added = set(bigger) - set(before)
    assert set(before) <= set(bigger)
    assert added and all(re.search(r"::worker-7(-[a-z-]+)?$", urn) for urn in added), added
    assert all(bigger[urn] == before[urn] for urn in before)


def test_secrets_travel_only_inside_secret_values(prod):
    """Command strings are plain text without the key; the key only inside the secret connection."""
    for reg in prod:
        if reg.type != "command:remote:Command":
            continue
        wire = json_format.MessageToDict(reg.inputs)
        assert is_secret(wire["connection"]) and wire["connection"]["value"]["privateKey"] == SECRET_PLACEHOLDER
        for field in ("create", "delete", "update"):
            command = wire.get(field, "")
            assert isinstance(command, str), f"{reg.name}.{field} is not a plain string"
            assert SECRET_PLACEHOLDER not in command


@pytest.fixture
def mocks():
    pulumi.runtime.set_mocks(PreviewMocks(), project="seoul-cluster", stack="unit", preview=True)


@pulumi.runtime.test
def test_connection_key_is_a_secret_output(mocks):
    stack = read_stack_file(REPO / "Pulumi.seoul-stage.yaml")
    cfg = load_config(stack.lookup)
    host = Host(cfg, cfg.hosts[0], "not-a-real-key")
    key_output = pulumi.Output.from_input(host.target.connection.private_key)

    async def check():
        assert await key_output.is_secret()
        assert await key_output.future() == "not-a-real-key"
        assert host.target.connection.host == str(cfg.hosts[0].address)
        return True

    return pulumi.Output.from_input(check())


def test_program_refuses_bad_config_itself_before_registering(tmp_path):
    """Under the real CLI there is no offline check in front: the program stops cleanly."""

    def outside(c):
        c[key("hosts")][4]["address"] = "10.9.0.5"

    stack = read_stack_file(altered_stack(tmp_path, "seoul-prod", outside))
    with pytest.raises(pulumi.RunError, match=r"hosts\[4\]\.address: 10\.9\.0\.5 is outside"):
        run_program(REPO / "__main__.py", stack)
