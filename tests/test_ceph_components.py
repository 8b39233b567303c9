"""Ceph and ceph-csi under the SDK's mock monitor (`pulumi up` semantics), and the rendered specs.

CephCluster and CephCsi run with the real Host components as handles, as `__main__` wires
them; every RegisterResource request is recorded in wire format (secrets still wrapped).
"""

import copy
import json
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml
from pulumi.runtime import mocks
from pulumi.runtime.settings import set_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.ceph import CephCluster
from components.csi import CephCsi, cephfs_values, rbd_values
from components.hosts import Host
from model import PROJECT, StackConfig, ceph
from offline.engine import RecordingMonitor
from policies.shapes import bundled_files
from render import ceph as render_ceph
from tests.test_k8s_components import Request, env_of, load
from tests.tools import require_shared

COMMAND = "command:remote:Command"
FAKE_KEYS = {"csi-rbd-provisioner": "AQDfakeProvisionerKey0000000000000000==",
             "csi-rbd-node": "AQDfakeNodeKey00000000000000000000000==",
             "csi-cephfs-provisioner": "AQDfakeFsProvisionerKey00000000000000==",
             "csi-cephfs-node": "AQDfakeFsNodeKey0000000000000000000000=="}
FAKE_PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIfakecephadmkey ceph-fake"


class UpMocks(mocks.Mocks):
    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict]:
        state = dict(args.inputs)
        if args.typ == COMMAND:
            state["stdout"] = (json.dumps(FAKE_KEYS) if args.name.endswith("-ceph-csi-keys")
                               else FAKE_PUBKEY if args.name.endswith("-ceph-pubkey") else "")
            state["stderr"] = ""
        return f"{args.name}-id", state

    def call(self, args: mocks.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        return {}, None


def plan(cfg: StackConfig) -> list[Request]:
    monitor = RecordingMonitor(UpMocks())
    set_root_resource(None)
    mocks.set_mocks(monitor.mocks, project=PROJECT, stack="ceph-test", preview=False, monitor=monitor)

    async def program() -> None:
        key = pulumi.Output.secret("test-ssh-key")
        hosts = {spec.name: Host(cfg, spec, key) for spec in cfg.hosts}
        cluster = CephCluster("ceph", cfg, hosts)
        CephCsi("ceph-csi", cfg, cluster, k8s.Provider("k8s-test"))

    _sync_await(run_pulumi_func(program))
    return [Request.of(r) for r in monitor.registrations]


def with_storage_host(cfg: StackConfig, name: str, address: str) -> StackConfig:
    data = copy.deepcopy(cfg.model_dump(mode="json", by_alias=True))
    data["hosts"].append({"name": name, "address": address, "roles": ["storage"],
                          "disks": ["/dev/nvme0n1", "/dev/nvme1n1"]})
    return StackConfig.model_validate(data)


def named(requests: list[Request], name: str) -> Request:
    found = [r for r in requests if r.name == name]
    assert len(found) == 1, f"{name}: {len(found)}"
    return found[0]


def ceph_requests(requests: list[Request]) -> list[Request]:
    return [r for r in requests if "seoul:ceph:" in r.urn or "seoul:csi:" in r.urn]


@pytest.fixture(scope="module")
def prod_cfg() -> StackConfig:
    return load("seoul-prod")


@pytest.fixture(scope="module")
def prod(prod_cfg) -> list[Request]:
    return plan(prod_cfg)


def test_bootstrap_runs_once_on_the_pinned_host(prod, prod_cfg):
    boots = [r for r in prod if r.name.endswith("-ceph-bootstrap")]
    assert [r.name for r in boots] == ["osd-1-ceph-bootstrap"]
    env = env_of(boots[0].plain("create"))
    assert env["MON_IP"] == "10.0.2.11" and env["IMAGE"] == "quay.io/ceph/ceph:v18.2.2"
    assert env["FSID"] == str(ceph.fsid(prod_cfg)) and env["SSH_USER"] == "deploy"
    assert "CLUSTER_NETWORK" not in env


def test_a_new_host_that_sorts_first_does_not_move_the_bootstrap(prod_cfg):
    cfg = with_storage_host(prod_cfg, "osd-0", "10.0.2.10")
    assert ceph.bootstrap_host(cfg).name == "osd-1"
    assert render_ceph.bootstrap(cfg) == render_ceph.bootstrap(prod_cfg)


def test_cluster_network_when_configured(prod_cfg):
    data = prod_cfg.model_dump(mode="json", by_alias=True)
    data["ceph"]["clusterNetwork"] = "10.50.0.0/24"
    assert render_ceph.bootstrap(StackConfig.model_validate(data)).env["CLUSTER_NETWORK"] == "10.50.0.0/24"


def test_one_osd_spec_per_host_listing_its_disks(prod, prod_cfg):
    for host in prod_cfg.storage_hosts:
        file = named(prod, f"{host.name}-ceph-osd-spec-file")
        assert file.plain("create").endswith(f"/etc/ceph/seoul-specs/osd-{host.name}.yaml")
        spec = yaml.safe_load(file.plain("stdin"))
        assert spec["placement"] == {"hosts": [host.name]}
        assert spec["spec"]["data_devices"] == {"paths": list(host.disks)}
        assert "all" not in json.dumps(spec)
        assert env_of(named(prod, f"{host.name}-ceph-osd-spec").plain("create"))["SPEC"].endswith(
            f"osd-{host.name}.yaml")


def test_hosts_are_added_with_labels_and_mon_mgr_by_label(prod, prod_cfg):
    labels = {h.name: env_of(named(prod, f"{h.name}-ceph-host").plain("create"))["LABELS"].split()
              for h in prod_cfg.storage_hosts}
    assert sum("mon" in v for v in labels.values()) == 5  # 6 hosts: 5 monitors
    assert sum("mgr" in v for v in labels.values()) == 2
    assert all("osd" in v for v in labels.values())
    assert "_admin" in labels["osd-1"]
    [(put, text)] = bundled_files(named(prod, "osd-1-ceph-mon-spec").plain("stdin"))
    assert put.path == render_ceph.spec_path("mon")
    mon = yaml.safe_load(text)
    assert mon == {"service_type": "mon", "placement": {"label": "mon"}}
    assert ceph.mon_count(3) == 3 and ceph.mon_count(4) == 3 and ceph.mon_count(5) == 5


def test_removing_a_host_drains_it(prod):
    entry = named(prod, "osd-4-ceph-host")
    delete = entry.plain("delete")
    assert "ceph orch host drain" in delete and "refusing to remove" in delete
    assert env_of(entry.plain("create"))["HOST"] == "osd-4"


def test_cephadm_key_is_authorized_on_every_storage_host(prod, prod_cfg):
    for host in prod_cfg.storage_hosts:
        file = named(prod, f"{host.name}-ceph-pubkey-file")
        assert file.plain("stdin") == FAKE_PUBKEY
        assert file.plain("connection")["host"] == str(host.address)
        step = named(prod, f"{host.name}-ceph-ssh-key")
        assert file.urn in step.waits_on and env_of(step.plain("create"))["SSH_USER"] == "deploy"


def test_adding_a_storage_host_changes_nothing_existing(prod, prod_cfg):
    grown = plan(with_storage_host(prod_cfg, "osd-7", "10.0.2.17"))
    # Custom resources only: the CephCluster component's inputs are its capacity facts, which grow.
    before = {r.urn: r.wire for r in ceph_requests(prod) if r.custom}
    after = {r.urn: r.wire for r in ceph_requests(grown) if r.custom}
    assert set(before) <= set(after)
    changed = [urn for urn in before if before[urn] != after[urn]]
    assert changed == []
    added = sorted(urn.rsplit("::", 1)[1] for urn in set(after) - set(before))
    assert added and all(name.startswith("osd-7-") for name in added), added


def test_pools_wait_for_every_hosts_osds_and_keep_their_name_when_size_changes(prod, prod_cfg):
    pool = named(prod, "osd-1-ceph-pool-rbd")
    for host in prod_cfg.storage_hosts:
        assert named(prod, f"{host.name}-ceph-osds-up").urn in pool.waits_on
    assert pool.plain("delete") is None  # Pulumi never deletes a pool
    data = prod_cfg.model_dump(mode="json", by_alias=True)
    data["ceph"]["pools"][0]["size"] = 4
    resized = render_ceph.pools(StackConfig.model_validate(data))[0]
    assert resized.step == render_ceph.pools(prod_cfg)[0].step and resized.env["SIZE"] == "4"


def test_csi_keys_stay_secret(prod):
    keys = named(prod, "osd-1-ceph-csi-keys")
    assert set(keys.additional_secret_outputs) >= {"stdout", "stderr"}
    secrets = [r for r in prod if r.type == "kubernetes:core/v1:Secret"]
    assert {r.name for r in secrets} == set(FAKE_KEYS)
    for r in secrets:
        assert r.wire["stringData"]["4dabf18193072939515e22adb298388d"] == "1b47061264138c4ac30d75fd1eb44270"
    for fake in FAKE_KEYS.values():
        for r in prod:
            plain_text = json.dumps({k: v for k, v in r.wire.items() if k != "stringData"})
            assert fake not in plain_text, r.name
    # the secret really carries the key the cluster printed
    node = json.loads(json.dumps(named(prod, "csi-rbd-node").wire["stringData"]["value"]))
    assert node == {"userID": "csi-rbd-node", "userKey": FAKE_KEYS["csi-rbd-node"]}


def test_storage_classes(prod):
    classes = {r.name: r for r in prod if r.type == "kubernetes:storage.k8s.io/v1:StorageClass"}
    assert set(classes) == {"ceph-rbd", "ceph-rbd-logs-data", "cephfs"}
    defaults = [n for n, r in classes.items()
                if r.wire["metadata"]["annotations"].get("storageclass.kubernetes.io/is-default-class") == "true"]
    assert defaults == ["ceph-rbd"]
    assert all(r.wire["allowVolumeExpansion"] is True for r in classes.values())
    ec = classes["ceph-rbd-logs-data"].wire["parameters"]
    assert (ec["pool"], ec["dataPool"]) == ("rbd", "logs-data")
    assert classes["cephfs"].wire["parameters"]["fsName"] == "cephfs"


def test_storage_classes_and_secrets_validate_against_kubernetes_1_29(tmp_path):
    import kubernetes_validate

    from tests.planning import run_plan
    from tests.tools import REPO

    run = run_plan(REPO / "Pulumi.seoul-stage.yaml", tmp_path / "out")
    assert run.returncode == 0, run.stderr
    k8s = tmp_path / "out" / "artifacts" / "k8s"
    # What this component adds (every object is validated in tests/test_network_render.py too).
    files = sorted([*(k8s / "ceph-csi").rglob("*.yaml"), *(k8s / "_cluster").glob("StorageClass-*.yaml"),
                    k8s / "_cluster" / "Namespace-ceph-csi.yaml"])
    kinds = set()
    for path in files:
        obj = yaml.safe_load(path.read_text())
        if obj["kind"] == "Secret":
            obj["stringData"] = {"userID": "x"}  # withheld by the plan
        kubernetes_validate.validate(obj, "1.29", strict=True)
        kinds.add(obj["kind"])
    assert {"StorageClass", "Secret", "Namespace"} <= kinds
    broken = yaml.safe_load((tmp_path / "out/artifacts/k8s/_cluster/StorageClass-ceph-rbd.yaml").read_text())
    broken["allowVolumeExpansion"] = "yes"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.29", strict=True)


def leaf_keys(values: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        out += leaf_keys(value, path + ".") if isinstance(value, dict) and value else [path]
    return out


def chart_has(chart_values: dict, dotted: str) -> bool:
    node = chart_values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


@pytest.mark.parametrize(("chart", "values"), [("ceph-csi-rbd", rbd_values("f", ["10.0.2.11:6789"])),
                                               ("ceph-csi-cephfs", cephfs_values("f", ["10.0.2.11:6789"]))])
def test_chart_values_exist_in_the_pinned_chart(chart, values):
    pinned: Path = require_shared(f"charts/{chart}-3.11.0/values.yaml")
    chart_values = yaml.safe_load(pinned.read_text())
    missing = [k for k in leaf_keys(values) if not chart_has(chart_values, k)]
    assert missing == []
    assert not chart_has(chart_values, "storageClass.noSuchKey")  # the check can fail
