"""The Kubernetes core under the SDK's mock monitor: order, secrecy, scale, removal.

`build_kubernetes` runs with the real Host components as handles, the way `__main__`
calls it, and every RegisterResource request is recorded as the engine would get it
(wire format: secrets still wrapped, dependencies as URNs).
"""

import copy
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
from google.protobuf import json_format
from pulumi.runtime import mocks, rpc
from pulumi.runtime.settings import set_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.hosts import Host
from components.kubernetes import KubernetesCluster, build_kubernetes
from model import PROJECT, StackConfig, load_config
from offline.engine import RecordingMonitor, run_program
from offline.graph import longest_chain
from offline.registry import Registration
from offline.stackfile import read_stack_file
from offline.wire import SECRET, plain
from tests.tools import REPO

COMMAND = "command:remote:Command"
# Distinctive join material the mocked token steps "print", to follow where it goes.
FAKE_TOKEN = "abcdef.0123456789abcdef"
FAKE_HASH = "sha256:" + "7" * 64
FAKE_CERT_KEY = "c0ffee" * 10 + "c0de"
FAKE_KUBECONFIG = "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user: {token: fake-admin-credential}\n"
FAKE_CA = (
    "-----BEGIN CERTIFICATE-----\nMIIBfakecert\n-----END CERTIFICATE-----\n"
    "-----BEGIN PRIVATE KEY-----\nMIIEfakeetcdcakey\n-----END PRIVATE KEY-----\n"
)
SECRET_NAME = re.compile(r"(?i)(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_?KEY|CERT(IFICATE)?_KEY|API_?KEY|CREDENTIAL)")
NAMES_A_PLACE = re.compile(r"(?i)_(HASH|TTL|FILE|PATH|DIR|NAME|ID)$")
SECRETS = (FAKE_TOKEN, FAKE_CERT_KEY, "fake-admin-credential", "MIIEfakeetcdcakey")


@dataclass
class Request:
    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    additional_secret_outputs: list[str]
    wire: dict[str, Any] = field(repr=False)

    @property
    def waits_on(self) -> set[str]:
        out = set(self.dependencies)
        for urns in self.property_dependencies.values():
            out |= set(urns)
        return out

    @classmethod
    def of(cls, reg: Registration) -> "Request":
        return cls(
            urn=reg.urn,
            type=reg.type,
            name=reg.name,
            parent=reg.parent,
            custom=reg.custom,
            dependencies=reg.dependencies,
            property_dependencies=reg.property_dependencies,
            additional_secret_outputs=reg.additional_secret_outputs,
            wire=json_format.MessageToDict(reg.inputs),
        )

    def plain(self, key: str) -> Any:
        value = self.wire.get(key)
        if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return value["value"]
        return value


class UpMocks(mocks.Mocks):
    """`pulumi up` semantics: outputs known; the secret-printing steps print fake secrets."""

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict]:
        state = dict(args.inputs)
        if args.typ == COMMAND:
            if args.name.endswith("-join-token"):
                key = f"CERTIFICATE_KEY={FAKE_CERT_KEY}\n" if "CONTROL_PLANE=true" in args.inputs["create"] else ""
                state["stdout"] = f"TOKEN={FAKE_TOKEN}\nCA_CERT_HASH={FAKE_HASH}\n{key}"
            elif args.name.endswith("-admin-kubeconfig"):
                state["stdout"] = FAKE_KUBECONFIG
            elif args.name.endswith("-etcd-ca-export"):
                state["stdout"] = FAKE_CA
            else:
                state["stdout"] = ""
            state["stderr"] = ""
        return f"{args.name}-id", state

    def call(self, args: mocks.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        return {}, None


@dataclass
class Plan:
    requests: list[Request]
    cluster: KubernetesCluster

    def named(self, name: str) -> Request:
        found = [r for r in self.requests if r.name == name]
        assert len(found) == 1, f"{name}: {len(found)} registrations"
        return found[0]

    def commands(self) -> list[Request]:
        return [r for r in self.requests if r.type == COMMAND]

    def graph(self) -> dict[str, set[str]]:
        return {r.urn: r.waits_on for r in self.requests if r.custom}

    def closure(self, name: str) -> set[str]:
        """Names of every step `name` waits on, directly or not."""
        graph = self.graph()
        by_urn = {r.urn: r.name for r in self.requests}
        seen: set[str] = set()
        todo = [self.named(name).urn]
        while todo:
            for dep in graph.get(todo.pop(), ()):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return {by_urn[u] for u in seen if u in by_urn}

    def waits_directly(self, name: str, on: str) -> bool:
        return self.named(on).urn in self.named(name).waits_on


def load(stack: str) -> StackConfig:
    return load_config(read_stack_file(REPO / f"Pulumi.{stack}.yaml").lookup)


def plan(cfg: StackConfig) -> Plan:
    monitor = RecordingMonitor(UpMocks())
    set_root_resource(None)
    mocks.set_mocks(monitor.mocks, project=PROJECT, stack="k8s-test", preview=False, monitor=monitor)
    built: list[KubernetesCluster] = []

    async def program() -> None:
        key = pulumi.Output.secret("test-ssh-key")
        hosts = {spec.name: Host(cfg, spec, key) for spec in cfg.hosts}
        built.append(build_kubernetes(cfg, hosts))

    _sync_await(run_pulumi_func(program))
    assert built, "build_kubernetes did not run"
    return Plan([Request.of(r) for r in monitor.registrations], built[0])


def with_extra_workers(cfg: StackConfig, count: int) -> StackConfig:
    data = copy.deepcopy(cfg.model_dump(mode="json", by_alias=True))
    for i in range(count):
        data["hosts"].append({"name": f"worker-x{i:02d}", "address": f"10.0.3.{10 + i}", "roles": ["worker"]})
    return StackConfig.model_validate(data)


def without_host(cfg: StackConfig, name: str) -> StackConfig:
    data = copy.deepcopy(cfg.model_dump(mode="json", by_alias=True))
    data["hosts"] = [h for h in data["hosts"] if h["name"] != name]
    return StackConfig.model_validate(data)


def env_of(create: str) -> dict[str, str]:
    words = shlex.split(create)
    assert words[:2] == ["sudo", "env"] and words[-2:] == ["bash", "-s"], create
    return dict(w.split("=", 1) for w in words[2:-2])


def metrics_sources_change(before: dict[str, Any], after: dict[str, Any]) -> tuple[set[str], set[str]]:
    """A firewalld step's (sources dropped, sources added) in METRICS_SOURCES; AssertionError if
    anything else in its inputs changed."""
    old, new = env_of(before["create"]), env_of(after["create"])
    was, now = set(old.pop("METRICS_SOURCES").split()), set(new.pop("METRICS_SOURCES").split())
    assert old == new and {k: v for k, v in before.items() if k != "create"} == \
        {k: v for k, v in after.items() if k != "create"}
    return was - now, now - was


@pytest.fixture(scope="module")
def prod() -> Plan:
    return plan(load("seoul-prod"))


# -- shape ---------------------------------------------------------------------------


def test_components_have_their_type_tokens(prod):
    types = {r.type for r in prod.requests}
    assert {
        "seoul:etcd:EtcdCluster",
        "seoul:apivip:ApiVip",
        "seoul:kubernetes:ControlPlane",
        "seoul:kubernetes:WorkerPool",
        "seoul:kubernetes:ContainerRuntime",
        "pulumi:providers:kubernetes",
    } <= types


def test_every_step_of_a_host_is_named_after_it(prod):
    cfg = load("seoul-prod")
    names = {h.name for h in cfg.hosts}
    for req in prod.commands():
        assert req.name.split("-")[0] in {n.split("-")[0] for n in names}, req.name
        assert any(req.name.startswith(f"{n}-") for n in names), req.name


def test_every_host_step_uses_one_of_the_two_shapes(prod):
    put = re.compile(r"^sudo install -D -m 0[0-7]{3} -o root -g root /dev/stdin /[\w./-]+$")
    for req in prod.commands():
        create = req.plain("create")
        if put.match(create):
            continue
        words = shlex.split(create)
        assert words[0] == "sudo" and words[-2:] == ["bash", "-s"], create
        if len(words) > 3:
            assert words[1] == "env" and all(re.match(r"^[A-Z][A-Z0-9_]*=", w) for w in words[2:-2]), create
            for word in words[2:-2]:
                name = word.split("=", 1)[0]
                # a name that says "secret" is read as carrying one (the policy pack does too)
                if SECRET_NAME.search(name):
                    assert NAMES_A_PLACE.search(name), f"{req.name}: {name}"


# -- order ---------------------------------------------------------------------------


def test_etcd_is_healthy_before_kubeadm_init(prod):
    assert prod.waits_directly("cp-1-kubeadm-init", "etcd-1-etcd-health")
    before_init = prod.closure("cp-1-kubeadm-init")
    assert {"etcd-1-etcd-start", "etcd-2-etcd-start", "etcd-3-etcd-start"} <= before_init


def test_init_waits_for_the_api_vip_and_runtime_on_the_first_control_plane(prod):
    before_init = prod.closure("cp-1-kubeadm-init")
    assert {"cp-1-apivip-start", "cp-1-runtime-install", "cp-1-etcd-client-cert", "cp-1-kubeadm-config"} <= before_init
    assert "cp-2-apivip-start" not in before_init


def test_control_planes_join_one_after_another(prod):
    assert prod.waits_directly("cp-2-kubeadm-join", "cp-1-kubeadm-init")
    assert prod.waits_directly("cp-3-kubeadm-join", "cp-2-kubeadm-join")
    # each control plane gets a fresh token and certificate key, minted right before its turn
    assert prod.waits_directly("cp-3-join-token", "cp-2-kubeadm-join")
    assert "cp-3-kubeadm-join" not in prod.closure("cp-2-kubeadm-join")


def test_workers_wait_for_init_only_and_never_for_each_other(prod):
    cfg = load("seoul-prod")
    nodes = [h.name for h in cfg.kubernetes_nodes if not h.has("control-plane")]
    assert len(nodes) == 9
    for node in nodes:
        before = prod.closure(f"{node}-kubeadm-join")
        assert "cp-1-kubeadm-init" in before
        assert not {"cp-2-kubeadm-join", "cp-3-kubeadm-join"} & before
        others = {n for n in nodes if n != node}
        assert not any(name.startswith(f"{other}-") for name in before for other in others), node


def test_etcd_members_restart_one_at_a_time(prod):
    assert prod.waits_directly("etcd-2-etcd-start", "etcd-1-etcd-start")
    assert prod.waits_directly("etcd-3-etcd-start", "etcd-2-etcd-start")
    # but installation and certificates happen on all members at once
    assert "etcd-1-etcd-install" not in prod.closure("etcd-2-etcd-install")


def test_adding_60_workers_does_not_lengthen_the_longest_chain(prod):
    base = longest_chain(prod.graph())
    bigger = plan(with_extra_workers(load("seoul-prod"), 60))
    grown = longest_chain(bigger.graph())
    assert len([r for r in bigger.commands() if r.name.endswith("-kubeadm-join")]) == 2 + 9 + 60
    assert len(grown) == len(base), (len(base), len(grown))


def test_adding_a_worker_touches_only_that_worker():
    cfg = load("seoul-prod")
    before = {r.urn: r.wire for r in plan(cfg).requests}
    after = {r.urn: r.wire for r in plan(with_extra_workers(cfg, 1)).requests}
    changed = {u for u in before if u in after and before[u] != after[u]}
    added = set(after) - set(before)
    # Every host's firewall accepts the metrics ports from the new node too, nothing else changes.
    firewalls = {u for u in changed if u.endswith("-firewalld")}
    assert all(metrics_sources_change(before[u], after[u]) == (set(), {"10.0.3.10/32"}) for u in firewalls)
    assert not changed - firewalls, sorted(changed - firewalls)
    assert not set(before) - set(after)
    assert added and all("worker-x00" in u for u in added), sorted(u for u in added if "worker-x00" not in u)


# -- secrets -------------------------------------------------------------------------


def _secret_free_paths(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, text) of every string not wrapped as a secret."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return []
        return [p for k, v in value.items() for p in _secret_free_paths(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _secret_free_paths(v, f"{path}[{i}]")]
    return [(path, value)] if isinstance(value, str) else []


def test_join_material_and_kubeconfig_steps_have_secret_outputs_and_log_nothing(prod):
    steps = [r for r in prod.commands() if r.name.endswith(("-join-token", "-admin-kubeconfig", "-etcd-ca-export"))]
    assert len(steps) == 1 + 1 + 2 + 9  # kubeconfig, CA export, 2 control planes, 9 workers
    for req in steps:
        assert "stdout" in req.additional_secret_outputs, req.name
        assert req.plain("logging") == "none", req.name


def test_no_secret_appears_outside_a_secret_envelope(prod):
    assert any(FAKE_TOKEN in json.dumps(r.wire) for r in prod.requests), "the fake token never reached a joiner"
    for req in prod.requests:
        for path, text in _secret_free_paths(req.wire):
            for secret in SECRETS:
                assert secret not in text, f"{req.name}{path} carries a secret in the clear"


def test_join_secrets_travel_on_stdin_into_a_root_only_file(prod):
    for node in ("cp-2", "worker-1", "ingress-3"):
        put = prod.named(f"{node}-join-secrets")
        path = "/etc/kubernetes/seoul-join.env"
        assert put.plain("create") == f"sudo install -D -m 0600 -o root -g root /dev/stdin {path}"
        assert put.wire["stdin"][rpc._special_sig_key] == rpc._special_secret_sig
        assert FAKE_TOKEN in put.plain("stdin")
        assert put.plain("logging") == "none"
    assert FAKE_CERT_KEY in prod.named("cp-2-join-secrets").plain("stdin")
    assert FAKE_CERT_KEY not in prod.named("worker-1-join-secrets").plain("stdin")


def test_kubeconfig_output_and_provider_are_secret(prod):
    provider = [r for r in prod.requests if r.type == "pulumi:providers:kubernetes"]
    assert len(provider) == 1
    assert provider[0].wire["kubeconfig"][rpc._special_sig_key] == rpc._special_secret_sig
    assert prod.named("cp-1-admin-kubeconfig").urn in provider[0].waits_on
    assert _sync_await(prod.cluster.kubeconfig.is_secret()) is True
    assert _sync_await(prod.cluster.kubeconfig.future()) == FAKE_KUBECONFIG


# -- removal -------------------------------------------------------------------------


def test_node_removal_drains_then_resets(prod):
    register = prod.named("worker-1-node")
    join = prod.named("worker-1-kubeadm-join")
    # delete order is the reverse of create order: the drain step goes first
    assert join.urn in register.waits_on
    assert "node-drain" in register.plain("delete") or "kubectl drain" in register.plain("delete")
    assert "kubeadm reset" in join.plain("delete")
    assert env_of(register.plain("create"))["NODE_NAME"] == "worker-1"


def test_etcd_member_removal_is_a_membership_change(prod):
    start = prod.named("etcd-2-etcd-start")
    delete = start.plain("delete")
    assert "member remove" in delete and "endpoint health" in delete


def test_removing_a_worker_leaves_every_other_step_alone():
    cfg = load("seoul-prod")
    before = {r.urn: r.wire for r in plan(cfg).requests}
    after = {r.urn: r.wire for r in plan(without_host(cfg, "worker-3")).requests}
    gone = set(before) - set(after)
    assert gone and all("worker-3" in u for u in gone)
    changed = {u for u in after if before.get(u) != after[u]}
    # Only every firewall changes: worker-3 is no metrics source any more.
    address = f"{next(h.address for h in cfg.hosts if h.name == 'worker-3')}/32"
    assert changed and all(u.endswith("-firewalld") for u in changed), sorted(changed)
    assert all(metrics_sources_change(before[u], after[u]) == ({address}, set()) for u in changed)


def test_stage_builds_too():
    staged = plan(load("seoul-stage"))
    assert staged.named("cp-1-kubeadm-init")
    assert len([r for r in staged.commands() if r.name.endswith("-kubeadm-join")]) == 2 + 3


def test_outputs_name_the_endpoint_and_the_expiry_metrics(prod):
    outputs = prod.cluster.outputs
    assert outputs["controlPlaneEndpoint"] == "https://10.0.1.10:8443"
    assert outputs["certExpiryMetrics"] == "/var/lib/node_exporter/textfile/cert_expiry.prom"
    assert Path(outputs["certExpiryScript"]).name == "seoul-cert-expiry"


# -- the composed program, as `pulumi preview` would run it --------------------------


@pytest.mark.parametrize("stack", ["seoul-prod", "seoul-stage"])
def test_composed_program_previews_with_secret_kubeconfig(stack):
    regs, outputs = run_program(REPO / "__main__.py", read_stack_file(REPO / f"Pulumi.{stack}.yaml"))
    exported = plain(outputs)
    assert exported["kubeconfig"] == SECRET
    assert exported["controlPlaneEndpoint"].endswith(":8443")
    types = {r.type for r in regs}
    assert {"seoul:hosts:Host", "seoul:etcd:EtcdCluster", "pulumi:providers:kubernetes"} <= types
