"""What `make plan` writes for the network work is what the cluster would accept.

Every Helm release's values (artifacts/helm/<release>.yaml) use only keys of the pinned
chart's values.yaml and pass its values.schema.json; every Kubernetes object
(artifacts/k8s/**) passes kubernetes-validate (strict, 1.29) or, for a custom resource,
the upstream CRD's openAPIV3Schema. Each checker has a negative control.
"""

import copy
import subprocess
import sys

import pytest
import yaml

from model import ConfigError, load_config
from model.schema import StackConfig
from offline.stackfile import read_stack_file
from render import addons, apps, network
from tests.network_checks import crd_schemas, object_problems, values_problems
from tests.planning import run_plan
from tests.stacks import altered_stack
from tests.tools import REPO, require_shared

STACKS = ("seoul-prod", "seoul-stage")


@pytest.fixture(scope="module", params=STACKS)
def plan(request, tmp_path_factory):
    run = run_plan(REPO / f"Pulumi.{request.param}.yaml", tmp_path_factory.mktemp(request.param))
    assert run.returncode == 0, run.stderr
    return run


@pytest.fixture(scope="module")
def crds():
    return crd_schemas()


def releases_of(plan) -> dict[str, dict]:
    return {r["inputs"]["name"]: r["inputs"] for r in plan.json("plan.json")["resources"]
            if r["type"] == "kubernetes:helm.sh/v3:Release"}


def test_every_release_pins_chart_version_and_repository(plan):
    releases = releases_of(plan)
    assert sorted(releases) == ["ceph-csi-cephfs", "ceph-csi-rbd", "eck-operator", "fluent-bit", "ingress-nginx",
                                "kube-prometheus-stack", "metallb", "metrics-server", "pg-operator", "tigera-operator"]
    for inputs in releases.values():
        assert inputs["chart"] and inputs["version"].lstrip("v")[0].isdigit()
        assert inputs["repositoryOpts"]["repo"].startswith("https://")
        assert inputs["atomic"] is True


def test_every_release_values_artifact_uses_only_chart_keys(plan):
    for name, inputs in releases_of(plan).items():
        written = yaml.safe_load((plan.out / "artifacts/helm" / f"{name}.yaml").read_text())
        assert written == inputs["values"]  # the artifact is exactly what the release carries
        # Alertmanager's own config is judged by amtool (tests/test_observability.py); the
        # grafana subchart reads persistence.storageClassName but only comments it in values.yaml.
        whole = ("alertmanager.config", "grafana.persistence.storageClassName")
        assert values_problems(inputs["chart"], inputs["version"], written, whole) == [], name


def test_a_values_key_typo_fails_the_check():
    values = {"controller": {"hostNetwork": True, "replicaCont": 3}}
    assert values_problems("ingress-nginx", "4.11.8", values) == ["unknown key controller.replicaCont"]
    # values.schema.json (metallb has one) catches a wrong type under a known key.
    assert any(p.startswith("schema:") for p in values_problems("metallb", "0.14.9",
                                                                {"speaker": {"enabled": "no"}}))


def test_every_kubernetes_object_artifact_validates(plan, crds):
    files = sorted((plan.out / "artifacts/k8s").rglob("*.yaml"))
    kinds = set()
    for path in files:
        obj = yaml.safe_load(path.read_text())
        kinds.add(obj["kind"])
        assert object_problems(obj, crds) == [], path.relative_to(plan.out)
    assert {"Installation", "BGPPeer", "BGPConfiguration", "IPAddressPool", "Deployment", "Service", "Ingress",
            "HorizontalPodAutoscaler", "PodDisruptionBudget", "ClusterRole"} <= kinds


def test_validators_notice_a_mistake(crds, plan):
    cfg_objects = {p.name: yaml.safe_load(p.read_text()) for p in (plan.out / "artifacts/k8s").rglob("*.yaml")}
    peer = copy.deepcopy(next(o for n, o in cfg_objects.items() if n.startswith("BGPPeer-")))
    peer["spec"]["peerIp"] = peer["spec"].pop("peerIP")
    assert object_problems(peer, crds) != []
    pool = copy.deepcopy(cfg_objects["IPAddressPool-load-balancers.yaml"])
    pool["spec"]["addresses"] = "10.10.0.0/24"
    assert object_problems(pool, crds) != []
    hpa = copy.deepcopy(next(o for n, o in cfg_objects.items() if n.startswith("HorizontalPodAutoscaler-")))
    hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindow"] = 300
    assert object_problems(hpa, crds) != []


def test_calico_bgp_follows_the_network_keys(plan):
    k8s = plan.out / "artifacts/k8s/_cluster"
    bgp = yaml.safe_load((k8s / "BGPConfiguration-default.yaml").read_text())["spec"]
    installation = yaml.safe_load((k8s / "Installation-default.yaml").read_text())["spec"]
    assert bgp["nodeToNodeMeshEnabled"] is False and bgp["asNumber"] == 64512
    assert installation["calicoNetwork"]["bgp"] == "Enabled"
    assert installation["calicoNetwork"]["ipPools"][0]["encapsulation"] == "VXLANCrossSubnet"
    peers = sorted(p.name for p in k8s.glob("BGPPeer-*.yaml"))
    assert len(peers) == 2


def test_mesh_stays_on_without_peers_and_rack_peers_select_their_rack(cfg_prod):
    racked = cfg_prod.model_copy(update={"network": cfg_prod.network.model_copy(update={
        "tor_peers": [cfg_prod.network.tor_peers[0].model_copy(update={"rack": "r1"}),
                      cfg_prod.network.tor_peers[1]]})})
    peers = network.bgp_peers(racked)
    assert peers[0]["spec"]["nodeSelector"] == f"{network.RACK_LABEL} == 'r1'"
    assert "nodeSelector" not in peers[1]["spec"]
    no_peers = cfg_prod.model_copy(update={"network": cfg_prod.network.model_copy(update={"tor_peers": []})})
    assert network.bgp_configuration(no_peers)["spec"]["nodeToNodeMeshEnabled"] is True


def test_firewall_ports_follow_the_encapsulation(cfg_prod):
    assert network.node_firewall(cfg_prod) == (["179", "5473"], ["4789"], [])
    ipip = cfg_prod.model_copy(update={"network": cfg_prod.network.model_copy(update={
        "encapsulation": "IPIPCrossSubnet"})})
    assert network.node_firewall(ipip) == (["179", "5473"], [], ["4"])


def test_apps_have_autoscaler_on_cpu_and_memory_and_spread(cfg_prod):
    app = cfg_prod.apps[0]
    hpa = apps.autoscaler(app)["spec"]
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu", "memory"]
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    deployment = apps.deployment(app)["spec"]
    assert "replicas" not in deployment  # the HPA owns the replica count
    spread = deployment["template"]["spec"]["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert apps.ingress(app)["spec"]["ingressClassName"] == "nginx"


@pytest.fixture(scope="module")
def cfg_prod() -> StackConfig:
    return load_config(read_stack_file(REPO / "Pulumi.seoul-prod.yaml").lookup)


def test_ingress_runs_only_on_ingress_hosts_with_one_per_host(cfg_prod):
    controller = addons.ingress_release(cfg_prod).values["controller"]
    assert controller["hostNetwork"] is True
    assert controller["nodeSelector"][addons.INGRESS_NODE_LABEL] == ""
    assert controller["tolerations"][0]["key"] == addons.INGRESS_TAINT["key"]
    assert controller["replicaCount"] == len(cfg_prod.ingress_nodes) == 3
    assert controller["minAvailable"] == 2 and controller["metrics"]["enabled"] is True


def test_metrics_server_never_skips_kubelet_tls(plan):
    values = yaml.safe_load((plan.out / "artifacts/helm/metrics-server.yaml").read_text())
    assert not any("insecure" in a for a in values.get("args", []) + values.get("defaultArgs", []))


def test_an_ingress_stack_without_apps_still_plans(tmp_path):
    path = altered_stack(tmp_path, "seoul-stage", lambda c: c.pop("seoul-cluster:apps"), name="no-apps")
    run = run_plan(path, tmp_path / "out")
    assert run.returncode == 0, run.stderr
    assert not (run.out / "artifacts/k8s/shop").exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c["seoul-cluster:apps"][0].update(image="registry.seoul-shop.internal/shop/storefront:latest"),
         "apps[0].image: 'registry.seoul-shop.internal/shop/storefront:latest': the tag latest moves"),
        (lambda c: c["seoul-cluster:apps"][0].update(image="storefront"), "apps[0].image: 'storefront': expected"),
        (lambda c: c["seoul-cluster:apps"][1].update(replicas={"min": 5, "max": 2}),
         "apps[1].replicas: min 5 is above max 2"),
        (lambda c: c["seoul-cluster:apps"][1].update(name="storefront"), "apps[1].name: storefront is used by 2"),
        (lambda c: c["seoul-cluster:network"]["torPeers"][0].update(rack="r9"),
         "network.torPeers[0].rack: r9: no Kubernetes node is in this rack"),
        (lambda c: c["seoul-cluster:apps"][0]["cpu"].update(request="half"), "apps[0].cpu.request: 'half': expected"),
    ],
)
def test_bad_network_and_app_keys_are_config_errors(tmp_path, change, expected):
    path = altered_stack(tmp_path, "seoul-stage", change)
    with pytest.raises(ConfigError) as err:
        load_config(read_stack_file(path).lookup)
    assert any(line.startswith(expected) for line in err.value.lines), err.value.lines


def test_provider_inputs_pass_the_shared_schema_checker(plan):
    checker = require_shared("schemas/pulumi-providers/check_inputs.py")
    proc = subprocess.run([sys.executable, str(checker), str(plan.out / "plan.json")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "fortios" in proc.stdout and "kubernetes" in proc.stdout  # both were checked, not skipped
