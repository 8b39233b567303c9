"""Metrics: kube-prometheus-stack, its scrape targets outside the cluster, node_exporter on other hosts.

kube-prometheus-stack (Prometheus operator v0.76.1) runs Prometheus and Alertmanager with
persistent volumes on `observability.storageClass` (Ceph RBD), Grafana with its dashboard
sidecar, kube-state-metrics and a node_exporter DaemonSet on every Kubernetes node.
What is not a pod is scraped by address (`additional_scrape_configs`):

- etcd members over TLS on the client port, with a client certificate of the etcd CA: the
  init control plane copies kube-apiserver's etcd client certificate into the Secret
  `ETCD_SECRET` (scripts/etcd-metrics-secret.sh, daily, so renewals reach it). Note that
  this certificate has full access to etcd (no etcd RBAC); Prometheus only reads `/metrics`;
- HAProxy's built-in Prometheus exporter (`frontend prometheus` in render/apivip.py) on
  every control plane, and the same port on the API VIP: whoever holds the VIP answers,
  so `up{job="apivip"} == 0` means no control plane holds it;
- the Ceph mgr prometheus module on the storage hosts (standbys answer empty);
- node_exporter on the hosts that are not Kubernetes nodes (etcd, storage), installed by
  `node_exporter_install` with the pinned release and checksum from model/releases.py.

Every node_exporter reads the textfile directory render/certs.TEXTFILE_DIR, where the
certificate-expiry export and the backup jobs write their metrics: the units on the other
hosts directly, the chart's DaemonSet through its host root mount (`NODE_EXPORTER_HOST_ROOT`).
"""

from model import releases
from model.schema import HostSpec, Observability, StackConfig
from render import addons
from render.apivip import HAPROXY_METRICS_PORT
from render.certs import TEXTFILE_DIR
from render.files import FileSet, HostFile, ScriptRun, fingerprint, script, timer_unit, timers, unit_path
from render.helm import HelmRelease, Manifest, manifest
from render.kubeadm import ETCD_CA_CERT, ETCD_CLIENT_CERT, ETCD_CLIENT_KEY

RELEASE = "kube-prometheus-stack"
# kube-state-metrics' name for a PerconaPGBackup's completion time (custom resource state,
# default prefix kube_customresource_), for render/alerts.py.
PG_BACKUP_METRIC = "kube_customresource_pgbackup_completed_timestamp_seconds"
NODE_EXPORTER_PORT = 9100
# Ceph mgr prometheus module's default port (docs.ceph.com, "Prometheus Module").
CEPH_MGR_METRICS_PORT = 9283
ETCD_CLIENT_PORT = 2379
# ingress-nginx controller metrics (host network on the ingress hosts).
INGRESS_METRICS_PORT = 10254

ETCD_SECRET = "etcd-client-cert"
# Prometheus operator mounts `secrets` here (prometheus.prometheusSpec.secrets).
ETCD_SECRET_DIR = f"/etc/prometheus/secrets/{ETCD_SECRET}"
ETCD_SECRET_SCRIPT = "/usr/local/sbin/seoul-etcd-metrics-secret"
ADMIN_KUBECONFIG = "/etc/kubernetes/admin.conf"

ALERTMANAGER_CREDENTIALS_SECRET = "alertmanager-credentials"
GRAFANA_ADMIN_SECRET = "grafana-admin"
# The chart's Grafana sidecar loads ConfigMaps with this label (grafana.sidecar.dashboards).
DASHBOARD_LABEL = "grafana_dashboard"

# The chart's node_exporter DaemonSet sees the host's / here (prometheus-node-exporter
# values `hostRootFsMount`, on by default); setting `extraArgs` replaces the chart's list, so
# its two filesystem excludes (kube-prometheus-stack 64.0.0 values.yaml) are kept first.
NODE_EXPORTER_HOST_ROOT = "/host/root"
CHART_NODE_EXPORTER_ARGS = (
    "--collector.filesystem.mount-points-exclude=^/(dev|proc|sys|var/lib/docker/.+|var/lib/kubelet/.+)($|/)",
    "--collector.filesystem.fs-types-exclude=^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs"
    "|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs"
    "|sysfs|tracefs)$",
)
NODE_EXPORTER_BIN = "/usr/local/bin/node_exporter"
NODE_EXPORTER_UNIT = "node_exporter.service"


def exporter_ports(host: HostSpec) -> list[int]:
    """TCP ports a host serves metrics on, by role (render/hosts.py opens them)."""
    ports = [NODE_EXPORTER_PORT]
    if host.has("control-plane"):
        ports.append(HAPROXY_METRICS_PORT)
    if host.has("ingress"):
        ports.append(INGRESS_METRICS_PORT)
    if host.has("storage"):
        ports.append(CEPH_MGR_METRICS_PORT)
    return ports


def scrape_sources(cfg: StackConfig) -> list[str]:
    """The source networks Prometheus's scrapes arrive from: `network.nodeCidr`, then
    `network.podCidr`. The hosts accept `exporter_ports` from these only (render/hosts.py).

    Prometheus is a pod. Its pool has Calico's `natOutgoing` (render/network.py), which
    masquerades pod traffic to any address outside the Calico pools, host addresses
    included, behind the address of the node the pod runs on: a scrape of another host
    arrives from a node address, inside the node network (model/invariants.py keeps every
    host there). A scrape of the pod's own node is delivered locally, without passing
    POSTROUTING, so it keeps the pod's address: hence the pod CIDR (which also covers the
    nodes' tunnel addresses and stays right if natOutgoing is ever turned off).
    The node network rather than each node's address: adding or removing a node then
    changes no other host's firewall (issue 16: scale-out touches only the new host); the
    cost is that other devices on that network (switches, the F5's self IPs) could scrape.
    """
    return [str(cfg.network.node_cidr), str(cfg.network.pod_cidr)]


def external_hosts(cfg: StackConfig) -> list[HostSpec]:
    """Live hosts that are not Kubernetes nodes (etcd, storage), by name: node_exporter runs as a unit there."""
    return sorted((h for h in cfg.live_hosts if not h.is_kubernetes_node), key=lambda h: h.name)


def _targets(hosts: list[HostSpec], port: int) -> list[dict]:
    return [{"targets": [f"{h.address}:{port}"], "labels": {"node": h.name}} for h in hosts]


def additional_scrape_configs(cfg: StackConfig) -> list[dict]:
    """Prometheus scrape_configs for what runs outside pods (prometheus.io/docs, <scrape_config>)."""
    cps = cfg.control_planes
    return [
        {"job_name": "node-external", "static_configs": _targets(external_hosts(cfg), NODE_EXPORTER_PORT)},
        {"job_name": "haproxy", "static_configs": _targets(cps, HAPROXY_METRICS_PORT)},
        {"job_name": "apivip", "static_configs": [
            {"targets": [f"{cfg.network.api_vip}:{HAPROXY_METRICS_PORT}"]}]},
        {"job_name": "ceph-mgr", "honor_labels": True,
         "static_configs": _targets(cfg.with_role("storage"), CEPH_MGR_METRICS_PORT)},
    ]


def _volume(obs: Observability, size: str) -> dict:
    return {"volumeClaimTemplate": {"spec": {
        "storageClassName": obs.storage_class,
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    }}}


def prometheus_release(cfg: StackConfig, alertmanager_config: dict) -> HelmRelease:
    """kube-prometheus-stack 64.0.0 values: storage, retention, etcd over TLS, outside targets, receivers' secrets.

    Raises ValueError when the stack has no `observability` section.
    """
    obs = _observability(cfg)
    members = cfg.etcd_members
    prometheus_spec = {
        "replicas": 2,
        "retention": f"{obs.retention_days}d",
        "storageSpec": _volume(obs, obs.prometheus_storage),
        "secrets": [ETCD_SECRET],
        # Select every PrometheusRule, ServiceMonitor and PodMonitor, not only the chart's own.
        "ruleSelectorNilUsesHelmValues": False,
        "serviceMonitorSelectorNilUsesHelmValues": False,
        "podMonitorSelectorNilUsesHelmValues": False,
        "additionalScrapeConfigs": additional_scrape_configs(cfg),
    }
    alertmanager_spec = {
        "replicas": 3,
        "storage": _volume(obs, "10Gi"),
        "secrets": [ALERTMANAGER_CREDENTIALS_SECRET],
        # SNS signs with the AWS SDK's credential chain (sigv4 without keys in the config).
        "containers": [{"name": "alertmanager", "env": [
            {"name": "AWS_SHARED_CREDENTIALS_FILE",
             "value": f"/etc/alertmanager/secrets/{ALERTMANAGER_CREDENTIALS_SECRET}/aws-credentials"}]}],
    }
    values = {
        # No secret inside (render/alerts.py); the chart writes it into Alertmanager's Secret.
        "alertmanager": {"config": alertmanager_config, "alertmanagerSpec": alertmanager_spec},
        "prometheus": {"prometheusSpec": prometheus_spec},
        "grafana": {
            "admin": {"existingSecret": GRAFANA_ADMIN_SECRET, "userKey": "admin-user", "passwordKey": "admin-password"},
            "persistence": {"enabled": True, "storageClassName": obs.storage_class, "size": "10Gi"},
            "sidecar": {"dashboards": {"enabled": True, "label": DASHBOARD_LABEL, "labelValue": "1"}},
            "defaultDashboardsTimezone": "Asia/Seoul",
        },
        # The Kubernetes nodes' certificate-expiry and backup exports (TEXTFILE_DIR) are read
        # through the host root mount. containerd runs without SELinux labelling
        # (render/runtime.py), so the container may read the host's var_lib_t files.
        "prometheus-node-exporter": {"extraArgs": [
            *CHART_NODE_EXPORTER_ARGS,
            f"--collector.textfile.directory={NODE_EXPORTER_HOST_ROOT}{TEXTFILE_DIR}",
        ]},
        # pgBackRest runs in the Percona operator's Jobs: its backups' completion times come
        # from the PerconaPGBackup objects (CRD pgv2.percona.com/v2 status.completed, RFC 3339,
        # which kube-state-metrics turns into Unix time) for alerts.PG_BACKUP_METRIC.
        "kube-state-metrics": {
            "rbac": {"extraRules": [{"apiGroups": ["pgv2.percona.com"], "resources": ["perconapgbackups"],
                                     "verbs": ["list", "watch"]}]},
            "customResourceState": {"enabled": True, "config": {"kind": "CustomResourceStateMetrics", "spec": {
                "resources": [{
                    "groupVersionKind": {"group": "pgv2.percona.com", "version": "v2", "kind": "PerconaPGBackup"},
                    "labelsFromPath": {"namespace": ["metadata", "namespace"], "cluster": ["spec", "pgCluster"],
                                       "name": ["metadata", "name"], "state": ["status", "state"]},
                    "metrics": [{
                        "name": PG_BACKUP_METRIC.removeprefix("kube_customresource_"),
                        "help": "When a pgBackRest backup of the cluster completed (Unix time).",
                        "each": {"type": "Gauge", "gauge": {"path": ["status", "completed"]}},
                    }],
                }],
            }}},
        },
        # External etcd: scraped by address with the client certificate in ETCD_SECRET.
        "kubeEtcd": {
            "enabled": True,
            "endpoints": [str(h.address) for h in members],
            "service": {"enabled": True, "port": ETCD_CLIENT_PORT, "targetPort": ETCD_CLIENT_PORT},
            "serviceMonitor": {
                "enabled": True,
                "scheme": "https",
                "insecureSkipVerify": False,
                "caFile": f"{ETCD_SECRET_DIR}/etcd-ca",
                "certFile": f"{ETCD_SECRET_DIR}/etcd-client",
                "keyFile": f"{ETCD_SECRET_DIR}/etcd-client-key",
            },
        },
    }
    return HelmRelease(RELEASE, releases.KUBE_PROMETHEUS_STACK, obs.namespace, values)


def ingress_service_monitor(cfg: StackConfig) -> Manifest:
    """A ServiceMonitor for ingress-nginx's metrics Service (controller.metrics.enabled in render/addons.py)."""
    obs = _observability(cfg)
    return manifest("monitoring.coreos.com/v1", "ServiceMonitor", "ingress-nginx", obs.namespace, spec={
        "namespaceSelector": {"matchNames": [addons.INGRESS_NAMESPACE]},
        "selector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx",
                                     "app.kubernetes.io/component": "controller"}},
        "endpoints": [{"port": "metrics", "interval": "30s"}],
    })


def etcd_metrics_secret(cfg: StackConfig) -> FileSet:
    """On the init control plane: copy the etcd client certificate into ETCD_SECRET, now and daily.

    Daily, so the monthly renewal (render/kubeadm.py) reaches Prometheus long before expiry.
    """
    obs = _observability(cfg)
    env = "\n".join(f"Environment={k}={v}" for k, v in {
        "NAMESPACE": obs.namespace, "SECRET": ETCD_SECRET, "KUBECONFIG": ADMIN_KUBECONFIG,
        "CA_CERT": ETCD_CA_CERT, "CLIENT_CERT": ETCD_CLIENT_CERT, "CLIENT_KEY": ETCD_CLIENT_KEY}.items())
    service = f"""\
[Unit]
Description=Copy the etcd client certificate into the Secret Prometheus scrapes etcd with

[Service]
Type=oneshot
{env}
ExecStart={ETCD_SECRET_SCRIPT}
"""
    timer = timer_unit("Daily copy of the etcd client certificate for Prometheus", "daily", "600")
    files = (
        HostFile("etcd-metrics-secret-script", ETCD_SECRET_SCRIPT, script("etcd-metrics-secret.sh"), "0755"),
        HostFile("etcd-metrics-secret-service", unit_path("etcd-metrics-secret.service"), service),
        HostFile("etcd-metrics-secret-timer", unit_path("etcd-metrics-secret.timer"), timer),
    )
    return timers("etcd-metrics-secret-enable", files, ["etcd-metrics-secret.timer"],
                  run_now="etcd-metrics-secret.service")


def node_exporter_unit() -> str:
    """systemd unit: node_exporter as its own user, textfile collector on TEXTFILE_DIR."""
    return f"""\
[Unit]
Description=Prometheus node_exporter
After=network-online.target
Wants=network-online.target

[Service]
User=node_exporter
Group=node_exporter
ExecStart={NODE_EXPORTER_BIN} --web.listen-address=:{NODE_EXPORTER_PORT} \\
    --collector.textfile.directory={TEXTFILE_DIR} --collector.systemd
Restart=on-failure
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes

[Install]
WantedBy=multi-user.target
"""


def node_exporter_install() -> FileSet:
    """Download the pinned node_exporter (sha256 verified), write its unit, (re)start it."""
    archive = releases.node_exporter_archive()
    files = (HostFile("node-exporter-unit", unit_path(NODE_EXPORTER_UNIT), node_exporter_unit()),)
    return FileSet(files, ScriptRun("node-exporter-install", "node-exporter-install.sh", {
        "VERSION": releases.NODE_EXPORTER_VERSION,
        "URL": archive.url,
        "SHA256": archive.sha256,
        "BIN": NODE_EXPORTER_BIN,
        "TEXTFILE_DIR": TEXTFILE_DIR,
        "UNIT": NODE_EXPORTER_UNIT,
        # disable-units.sh stops and disables it when the step leaves the stack.
        "TIMERS": NODE_EXPORTER_UNIT,
        "FINGERPRINT": fingerprint(files),
    }, delete_script="disable-units.sh"))


def _observability(cfg: StackConfig) -> Observability:
    if cfg.observability is None:
        raise ValueError("the stack has no observability section")
    return cfg.observability
