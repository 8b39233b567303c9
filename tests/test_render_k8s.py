"""Rendered Kubernetes-core files, checked by the real programs that read them.

haproxy -c, keepalived --config-test, a three-member TLS etcd cluster on loopback started
from the rendered member configs, and the kubeadm v1beta3 field set.
"""

import copy
import os
import re
import shutil
import signal
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
import yaml

from model import StackConfig, load_config
from offline.stackfile import read_stack_file
from render import apivip, etcd, kubeadm, runtime
from tests.tools import REPO, require_loopback_ports, require_tool, unavailable

STACKS = ["seoul-prod", "seoul-stage"]


def load(stack: str) -> StackConfig:
    return load_config(read_stack_file(REPO / f"Pulumi.{stack}.yaml").lookup)


def altered(cfg: StackConfig, change) -> StackConfig:
    data = copy.deepcopy(cfg.model_dump(mode="json", by_alias=True))
    change(data)
    return StackConfig.model_validate(data)


@pytest.fixture(params=STACKS)
def cfg(request) -> StackConfig:
    return load(request.param)


# -- HAProxy -------------------------------------------------------------------------


def haproxy_check(path: Path) -> subprocess.CompletedProcess:
    haproxy = require_tool("haproxy")
    return subprocess.run([haproxy, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)


def test_haproxy_accepts_the_rendered_config(cfg, tmp_path):
    path = tmp_path / "haproxy.cfg"
    path.write_text(apivip.haproxy_cfg(cfg))
    proc = haproxy_check(path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Configuration file is valid" in proc.stdout + proc.stderr


def test_haproxy_check_catches_a_broken_config(cfg, tmp_path):
    """Negative control: the checker above would notice a mistake."""
    path = tmp_path / "haproxy.cfg"
    path.write_text(apivip.haproxy_cfg(cfg).replace("balance roundrobin", "balance roundrobbin"))
    assert haproxy_check(path).returncode != 0


def test_haproxy_balances_every_apiserver_with_an_https_healthz_check(cfg):
    text = apivip.haproxy_cfg(cfg)
    cps = cfg.control_planes
    servers = [line.split() for line in text.splitlines() if line.strip().startswith("server ")]
    assert [(s[1], s[2]) for s in servers] == [(h.name, f"{h.address}:6443") for h in cps]
    assert all("check" in s and "check-ssl" in s for s in servers)
    assert f"bind {cfg.network.api_vip}:{cfg.network.api_vip_port}" in text
    assert "http-check send meth GET uri /healthz" in text and "http-check connect ssl" in text
    frontend = text.split("frontend apiserver")[1].split("backend")[0]
    assert "mode tcp" in frontend


# -- Keepalived ----------------------------------------------------------------------


def keepalived_check(tmp_path: Path, conf: str) -> str:
    """keepalived --config-test: its findings go to the log file; an empty log is a pass.

    (Its exit status is not usable in containers, where it ends by SIGTERM either way.)
    """
    keepalived = require_tool("keepalived")
    nics = sorted(n.name for n in Path("/sys/class/net").iterdir() if n.name != "lo")
    if not nics:
        unavailable("no non-loopback network interface to bind VRRP to")
    iface = tmp_path / "interface.conf"
    iface.write_text(f"$VIP_INTERFACE={nics[0]}\n")
    path = tmp_path / "keepalived.conf"
    path.write_text(conf.replace(f"include {apivip.KEEPALIVED_IFACE_CONF}", f"include {iface}"))
    log = tmp_path / "keepalived-test.log"
    subprocess.run(
        [keepalived, f"--config-test={log}", "--use-file", str(path)], capture_output=True, text=True, timeout=30
    )
    return log.read_text() if log.exists() else ""


def test_keepalived_accepts_the_rendered_config_of_every_control_plane(cfg, tmp_path):
    for host in cfg.control_planes:
        folder = tmp_path / host.name
        folder.mkdir()
        findings = keepalived_check(folder, apivip.keepalived_conf(cfg, host))
        assert findings == "", f"{host.name}: {findings}"


def test_keepalived_check_catches_a_broken_config(tmp_path):
    cfg = load("seoul-prod")
    conf = apivip.keepalived_conf(cfg, cfg.control_planes[0]).replace("advert_int 1", "advert_intervall 1")
    assert "advert_intervall" in keepalived_check(tmp_path, conf)


def test_keepalived_vrrp_is_unicast_with_distinct_priorities_and_no_password(cfg):
    cps = cfg.control_planes
    confs = {h.name: apivip.keepalived_conf(cfg, h) for h in cps}
    priorities = {apivip.priority(cfg, h) for h in cps}
    assert len(priorities) == len(cps)
    # a failing check drops a host below every healthy one
    assert max(priorities) - min(priorities) < -apivip.CHECK_WEIGHT
    for host in cps:
        conf = confs[host.name]
        assert "auth_pass" not in conf and "authentication" not in conf
        assert f"unicast_src_ip {host.address}" in conf
        peers = conf.split("unicast_peer {")[1].split("}")[0].split()
        assert sorted(peers) == sorted(str(h.address) for h in cps if h.name != host.name)
        assert f"{cfg.network.api_vip}/32" in conf
        assert f'script "{apivip.CHECK_SCRIPT} 6443"' in conf


# -- etcd ----------------------------------------------------------------------------


def etcd_flags() -> set[str]:
    """Every setting the installed etcd knows (config-file keys are its flag names)."""
    binary = require_tool("etcd")
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    text = out.stdout + out.stderr
    return {line.split()[0].lstrip("-") for line in text.splitlines() if line.strip().startswith("--")}


def test_every_etcd_setting_is_known_to_etcd(cfg):
    known = etcd_flags()
    assert {"initial-cluster", "data-dir", "cert-file"} <= known
    for member in cfg.etcd_members:
        settings = yaml.safe_load(etcd.config_yaml(cfg, member))
        for key, value in settings.items():
            if key.endswith("-transport-security"):
                assert set(value) <= known, (key, set(value) - known)
            else:
                assert key in known, key


def test_etcd_initial_cluster_names_every_member_once(cfg):
    members = cfg.etcd_members
    for member in members:
        text = etcd.config_yaml(cfg, member)
        line = next(line for line in text.splitlines() if line.startswith("initial-cluster:"))
        assert line.startswith('initial-cluster: "') and line.endswith('"')
        entries = line.split('"')[1].split(",")
        assert entries == [f"{m.name}=https://{m.address}:2380" for m in members]
        assert len(entries) % 2 == 1 and len(entries) >= 3
        settings = yaml.safe_load(text)
        assert settings["data-dir"] == "/var/lib/etcd"
        assert settings["client-transport-security"]["client-cert-auth"] is True
        assert settings["peer-transport-security"]["client-cert-auth"] is True
        assert settings["listen-peer-urls"] == f"https://{member.address}:2380"


def test_etcd_unit_restarts_always():
    unit = etcd.unit(load("seoul-prod"))
    assert "Restart=always" in unit and f"ExecStart={etcd.BIN_DIR}/etcd --config-file {etcd.CONF_PATH}" in unit
    assert "OnCalendar=hourly" in etcd.snapshot_timer()


def test_membership_change_alone_does_not_restart_members():
    cfg = load("seoul-prod")
    member = cfg.etcd_members[0]

    def add_two(data):
        data["hosts"] += [
            {"name": "etcd-4", "address": "10.0.1.34", "roles": ["etcd"]},
            {"name": "etcd-5", "address": "10.0.1.35", "roles": ["etcd"]},
        ]

    grown = altered(cfg, add_two)
    assert etcd.config_yaml(cfg, member) != etcd.config_yaml(grown, member)
    assert etcd.restart_fingerprint(cfg, member) == etcd.restart_fingerprint(grown, member)


def _loopback_cluster(cfg: StackConfig) -> StackConfig:
    """The prod topology with the three members on 127.0.0.1-3 (Linux routes all of 127/8 to lo)."""

    def to_loopback(data):
        data["network"]["nodeCidr"] = "127.0.0.0/8"
        data["network"]["apiVip"] = "127.0.1.10"
        for i, host in enumerate(h for h in data["hosts"] if "etcd" in h["roles"]):
            host["address"] = f"127.0.0.{i + 1}"
        for i, host in enumerate(h for h in data["hosts"] if "etcd" not in h["roles"]):
            host["address"] = f"127.0.2.{i + 1}"

    return altered(cfg, to_loopback)


def test_three_etcd_members_form_a_tls_cluster_from_the_rendered_configs(tmp_path):
    """Start the rendered member configs (paths pointed into a temp dir) with certificates
    from scripts/etcd-ca.sh and scripts/etcd-certs.sh; the cluster must become healthy and
    refuse a client without a certificate. Loopback only; every process is stopped."""
    binary = require_tool("etcd")
    require_tool("openssl")
    curl = require_tool("curl")
    require_loopback_ports(3, (2379, 2380, 2381))
    cfg = _loopback_cluster(load("seoul-prod"))
    env = {**os.environ, "CA_CERT": str(tmp_path / "ca.crt"), "CA_KEY": str(tmp_path / "ca.key")}
    subprocess.run(
        ["bash", str(REPO / "scripts/etcd-ca.sh")],
        env={**env, "CA_DAYS": "2", "CA_CN": "test-ca"},
        check=True,
        capture_output=True,
        timeout=60,
    )
    procs = []
    try:
        for member in cfg.etcd_members:
            home = tmp_path / member.name
            home.mkdir()
            paths = {"CERT": str(home / "member.crt"), "KEY": str(home / "member.key"), "OWNER": "root"}
            cert_env = {**env, **etcd.cert_env(member), **paths, "CA_CERT": env["CA_CERT"], "CA_KEY": env["CA_KEY"]}
            if os.geteuid() != 0:
                cert_env["OWNER"] = str(os.geteuid())
            subprocess.run(
                ["bash", str(REPO / "scripts/etcd-certs.sh")], env=cert_env, check=True, capture_output=True, timeout=60
            )
            text = (
                etcd.config_yaml(cfg, member)
                .replace(etcd.MEMBER_CERT, paths["CERT"])
                .replace(etcd.MEMBER_KEY, paths["KEY"])
                .replace(etcd.CA_CERT, env["CA_CERT"])
                .replace(etcd.DATA_DIR, str(home / "data"))
            )
            settings = yaml.safe_load(text)
            # Three members share one loopback host here: each listens on its own address only.
            settings["listen-client-urls"] = etcd.client_url(member)
            settings["listen-metrics-urls"] = f"http://{member.address}:{etcd.METRICS_PORT}"
            (home / "etcd.conf.yml").write_text(yaml.safe_dump(settings))
            log = (home / "etcd.log").open("w")
            procs.append(
                subprocess.Popen([binary, "--config-file", str(home / "etcd.conf.yml")], stdout=log, stderr=log)
            )

        first = tmp_path / cfg.etcd_members[0].name
        tls = ["--cacert", env["CA_CERT"], "--cert", str(first / "member.crt"), "--key", str(first / "member.key")]
        healthy = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(healthy) < 3:
            healthy = [
                m.name
                for m in cfg.etcd_members
                if '"health":"true"'
                in subprocess.run(
                    [curl, "-s", "--max-time", "2", *tls, f"{etcd.client_url(m)}/health"],
                    capture_output=True,
                    text=True,
                ).stdout
            ]
            time.sleep(0.5)
        assert len(healthy) == 3, [(tmp_path / m.name / "etcd.log").read_text()[-2000:] for m in cfg.etcd_members]

        anonymous = subprocess.run(
            [
                curl,
                "-s",
                "--max-time",
                "2",
                "--cacert",
                env["CA_CERT"],
                f"{etcd.client_url(cfg.etcd_members[0])}/health",
            ],
            capture_output=True,
            text=True,
        )
        assert '"health":"true"' not in anonymous.stdout
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_ca_bundle_splits_into_certificate_and_key():
    cert = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n"
    key = "-----BEGIN PRIVATE KEY-----\nBBB\n-----END PRIVATE KEY-----\n"
    assert etcd.split_ca_bundle(cert + key) == (cert, key)
    assert etcd.split_ca_bundle("garbage") == ("", "")


# -- kubeadm -------------------------------------------------------------------------

# Field set of kubeadm.k8s.io/v1beta3 (cmd/kubeadm/app/apis/kubeadm/v1beta3/types.go) and
# of bootstraptoken/v1 BootstrapToken, as JSON names. A dict is a struct, ("list", x) a
# list of x, MAP a free-form map (extraArgs ...), None a scalar.
MAP = "map"
API_ENDPOINT = {"advertiseAddress": None, "bindPort": None}
HOST_PATH_MOUNT = {"name": None, "hostPath": None, "mountPath": None, "readOnly": None, "pathType": None}
COMPONENT = {"extraArgs": MAP, "extraVolumes": ("list", HOST_PATH_MOUNT)}
TAINT = {"key": None, "value": None, "effect": None, "timeAdded": None}
NODE_REGISTRATION = {
    "name": None,
    "criSocket": None,
    "taints": ("list", TAINT),
    "kubeletExtraArgs": MAP,
    "ignorePreflightErrors": None,
    "imagePullPolicy": None,
}
BOOTSTRAP_TOKEN = {"token": None, "description": None, "ttl": None, "expires": None, "usages": None, "groups": None}
TYPE_META = {"apiVersion": None, "kind": None}
V1BETA3 = {
    "InitConfiguration": {
        **TYPE_META,
        "bootstrapTokens": ("list", BOOTSTRAP_TOKEN),
        "nodeRegistration": NODE_REGISTRATION,
        "localAPIEndpoint": API_ENDPOINT,
        "certificateKey": None,
        "skipPhases": None,
        "patches": {"directory": None},
    },
    "ClusterConfiguration": {
        **TYPE_META,
        "etcd": {
            "local": {
                "imageRepository": None,
                "imageTag": None,
                "dataDir": None,
                "extraArgs": MAP,
                "serverCertSANs": None,
                "peerCertSANs": None,
            },
            "external": {"endpoints": None, "caFile": None, "certFile": None, "keyFile": None},
        },
        "networking": {"serviceSubnet": None, "podSubnet": None, "dnsDomain": None},
        "kubernetesVersion": None,
        "controlPlaneEndpoint": None,
        "apiServer": {**COMPONENT, "certSANs": None, "timeoutForControlPlane": None},
        "controllerManager": COMPONENT,
        "scheduler": COMPONENT,
        "dns": {"imageRepository": None, "imageTag": None},
        "certificatesDir": None,
        "imageRepository": None,
        "featureGates": MAP,
        "clusterName": None,
    },
    "JoinConfiguration": {
        **TYPE_META,
        "nodeRegistration": NODE_REGISTRATION,
        "caCertPath": None,
        "discovery": {
            "bootstrapToken": {
                "token": None,
                "apiServerEndpoint": None,
                "caCertHashes": None,
                "unsafeSkipCAVerification": None,
            },
            "file": {"kubeConfigPath": None},
            "tlsBootstrapToken": None,
            "timeout": None,
        },
        "controlPlane": {"localAPIEndpoint": API_ENDPOINT, "certificateKey": None},
        "skipPhases": None,
        "patches": {"directory": None},
    },
}
# The few kubelet.config.k8s.io/v1beta1 fields rendered, checked against the same source.
KUBELET = {**TYPE_META, "cgroupDriver": None, "rotateCertificates": None, "serverTLSBootstrap": None}


def unknown_fields(value, schema, path: str) -> list[str]:
    if schema is MAP or schema is None:
        return []
    if isinstance(schema, tuple):
        assert isinstance(value, list), path
        return [p for i, v in enumerate(value) for p in unknown_fields(v, schema[1], f"{path}[{i}]")]
    assert isinstance(value, dict), path
    found = [f"{path}.{k}" for k in value if k not in schema]
    return found + [p for k, v in value.items() if k in schema for p in unknown_fields(v, schema[k], f"{path}.{k}")]


def kubeadm_docs(cfg: StackConfig, host) -> list[dict]:
    return [d for d in yaml.safe_load_all(kubeadm.config_yaml(cfg, host)) if d]


def test_every_rendered_kubeadm_field_is_a_v1beta3_field(cfg):
    checked = set()
    for host in cfg.kubernetes_nodes:
        for doc in kubeadm_docs(cfg, host):
            if doc["apiVersion"] == kubeadm.API_VERSION:
                schema = V1BETA3[doc["kind"]]
            else:
                assert (doc["apiVersion"], doc["kind"]) == ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration")
                schema = KUBELET
            assert unknown_fields(doc, schema, doc["kind"]) == []
            checked.add(doc["kind"])
    assert checked == {"InitConfiguration", "ClusterConfiguration", "JoinConfiguration", "KubeletConfiguration"}


def test_field_check_catches_a_misspelt_field():
    doc = {"apiVersion": kubeadm.API_VERSION, "kind": "ClusterConfiguration", "apiServer": {"certSans": []}}
    assert unknown_fields(doc, V1BETA3["ClusterConfiguration"], "c") == ["c.apiServer.certSans"]


def test_cluster_configuration_follows_the_model(cfg):
    first = cfg.init_node
    docs = {d["kind"]: d for d in kubeadm_docs(cfg, first)}
    cluster = docs["ClusterConfiguration"]
    assert cluster["kubernetesVersion"] == f"v{cfg.kubernetes.version}"
    assert cluster["controlPlaneEndpoint"] == f"{cfg.network.api_vip}:8443"
    assert cluster["networking"]["podSubnet"] == str(cfg.network.pod_cidr)
    assert cluster["networking"]["serviceSubnet"] == str(cfg.network.service_cidr)
    external = cluster["etcd"]["external"]
    assert external["endpoints"] == [f"https://{m.address}:2379" for m in cfg.etcd_members]
    assert external["caFile"] == kubeadm.ETCD_CA_CERT and external["certFile"] == kubeadm.ETCD_CLIENT_CERT
    assert str(cfg.network.api_vip) in cluster["apiServer"]["certSANs"]
    args = cluster["apiServer"]["extraArgs"]
    mounts = {v["hostPath"]: v for v in cluster["apiServer"]["extraVolumes"]}
    assert args["audit-policy-file"] in mounts and mounts[args["audit-policy-file"]]["readOnly"] is True
    assert Path(args["audit-log-path"]).parent.as_posix() in mounts
    assert all(isinstance(v, str) for v in args.values())
    init = docs["InitConfiguration"]
    assert init["localAPIEndpoint"] == {"advertiseAddress": str(first.address), "bindPort": 6443}
    assert init["nodeRegistration"]["criSocket"] == runtime.cri_socket(cfg)
    assert "token" not in init["bootstrapTokens"][0]


def test_version_comes_from_the_model_only():
    cfg = altered(load("seoul-prod"), lambda d: d["kubernetes"].update(version="1.29.7"))
    cluster = kubeadm.cluster_configuration(cfg)
    assert cluster["kubernetesVersion"] == "v1.29.7"


def test_join_configuration_carries_placeholders_never_secrets(cfg):
    for host in cfg.kubernetes_nodes:
        if host.name == cfg.init_node.name:
            continue
        [doc] = kubeadm_docs(cfg, host)
        discovery = doc["discovery"]["bootstrapToken"]
        assert discovery["token"] == kubeadm.TOKEN_PLACEHOLDER
        assert discovery["caCertHashes"] == [kubeadm.CA_HASH_PLACEHOLDER]
        assert discovery["apiServerEndpoint"] == f"{cfg.network.api_vip}:8443"
        if host.has("control-plane"):
            assert doc["controlPlane"]["certificateKey"] == kubeadm.CERT_KEY_PLACEHOLDER
            assert doc["controlPlane"]["localAPIEndpoint"]["advertiseAddress"] == str(host.address)
        else:
            assert "controlPlane" not in doc
        assert doc["nodeRegistration"]["name"] == host.name


def test_audit_policy_never_records_secret_payloads():
    policy = yaml.safe_load(kubeadm.audit_policy())
    assert policy["apiVersion"] == "audit.k8s.io/v1"
    levels = [rule["level"] for rule in policy["rules"]]
    secret_rule = next(
        i
        for i, r in enumerate(policy["rules"])
        if any("secrets" in g.get("resources", []) for g in r.get("resources", []))
    )
    assert policy["rules"][secret_rule]["level"] == "Metadata"
    assert all(level not in ("Request", "RequestResponse") for level in levels[:secret_rule])


# -- runtime -------------------------------------------------------------------------


def test_containerd_uses_the_systemd_cgroup_driver():
    config = tomllib.loads(runtime.containerd_config(load("seoul-prod")))
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    assert cri["containerd"]["runtimes"]["runc"]["runtime_type"] == "io.containerd.runc.v2"
    assert cri["sandbox_image"] == "registry.k8s.io/pause:3.9"
    assert config["version"] == 2


def test_docker_runtime_goes_through_cri_dockerd():
    cfg = altered(
        load("seoul-prod"), lambda d: d["kubernetes"].update(containerRuntime="docker", criDockerdVersion="0.3.11")
    )
    assert runtime.cri_socket(cfg) == runtime.CRI_DOCKERD_SOCKET
    env = runtime.install_env(cfg)
    assert env["DOCKER_VERSION"] == cfg.kubernetes.docker_version and env["CRI_DOCKERD_VERSION"] == "0.3.11"
    assert "native.cgroupdriver=systemd" in runtime.files_by_path(cfg)[runtime.DOCKER_DAEMON_JSON]
    docs = kubeadm_docs(cfg, cfg.init_node)
    assert docs[0]["nodeRegistration"]["criSocket"] == runtime.CRI_DOCKERD_SOCKET


def test_rendered_files_carry_no_tabs_or_trailing_spaces(cfg):
    host = cfg.control_planes[0]
    for text in (
        apivip.haproxy_cfg(cfg),
        apivip.keepalived_conf(cfg, host),
        etcd.unit(cfg),
        runtime.containerd_config(cfg),
    ):
        assert not [line for line in text.splitlines() if line != line.rstrip()]


def test_no_leftover_processes(tmp_path_factory):
    """The etcd tests stop what they start (only this run's: other runs may share the machine)."""
    if shutil.which("pgrep") is None:
        unavailable("pgrep is not installed")
    ours = re.escape(str(tmp_path_factory.getbasetemp()))
    proc = subprocess.run(["pgrep", "-af", f"etcd --config-file {ours}/"], capture_output=True, text=True)
    assert proc.stdout.strip() == ""


def test_etcd_members_renew_on_distinct_days_up_to_seven():
    days = [etcd.weekly_slot(i) for i in range(7)]
    assert len(set(days)) == 7
    assert all(1 <= int(d.split("-")[2].split()[0]) <= 28 for d in days)  # a day every month has
