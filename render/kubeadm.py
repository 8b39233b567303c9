"""kubeadm (kubeadm.k8s.io/v1beta3) configuration and the API server audit policy.

The first control plane (by name) gets InitConfiguration + ClusterConfiguration +
KubeletConfiguration; every other node gets a JoinConfiguration *template*: the join
token, CA hash and certificate key are secrets, so they are never rendered here. The
join script fills the `@@...@@` placeholders on the host from a root-only file.
"""

import yaml

from model.schema import HostSpec, StackConfig
from render import addons, apivip, etcd, network, runtime
from render.files import FileSet, HostFile, ScriptRun, script, timer_unit, timers, unit_path

API_VERSION = "kubeadm.k8s.io/v1beta3"
CONFIG_PATH = "/etc/kubernetes/kubeadm-config.yaml"
PKI_DIR = "/etc/kubernetes/pki"
ETCD_CA_CERT = f"{PKI_DIR}/etcd/ca.crt"
ETCD_CA_KEY = f"{PKI_DIR}/etcd/ca.key"
ETCD_CLIENT_CERT = f"{PKI_DIR}/apiserver-etcd-client.crt"
ETCD_CLIENT_KEY = f"{PKI_DIR}/apiserver-etcd-client.key"
ETCD_CLIENT_CN = "kube-apiserver-etcd-client"

AUDIT_POLICY_PATH = "/etc/kubernetes/audit-policy.yaml"
AUDIT_LOG_DIR = "/var/log/kubernetes/audit"

# Where the join script finds its secrets (written by put_file(secret=True), mode 0600).
JOIN_SECRETS_PATH = "/etc/kubernetes/seoul-join.env"
TOKEN_PLACEHOLDER = "@@TOKEN@@"
CA_HASH_PLACEHOLDER = "@@CA_CERT_HASH@@"
CERT_KEY_PLACEHOLDER = "@@CERTIFICATE_KEY@@"

# kubeadm init always creates one bootstrap token; it is unused (joins get a fresh one
# each), so it expires quickly rather than after the default 24 hours.
INIT_TOKEN_TTL = "15m0s"
# A join token is good for this long after it is minted, right before its join.
JOIN_TOKEN_TTL = "2h"
# Draining a node that leaves the stack: past this, the step fails and nothing is forced.
DRAIN_TIMEOUT = "600s"


def kubernetes_version(cfg: StackConfig) -> str:
    return f"v{cfg.kubernetes.version}"


def cluster_name(cfg: StackConfig) -> str:
    return f"seoul-{cfg.environment}"


def _node_registration(cfg: StackConfig, host: HostSpec) -> dict:
    registration = {
        "name": host.name,
        "criSocket": runtime.cri_socket(cfg),
        "kubeletExtraArgs": {"node-ip": str(host.address)},
        "imagePullPolicy": "IfNotPresent",
    }
    if host.has("ingress") and not host.has("control-plane"):
        # Tainted from its first registration, so nothing but ingress-nginx lands there.
        registration["taints"] = [addons.INGRESS_TAINT]
    return registration


def cluster_configuration(cfg: StackConfig) -> dict:
    cps = cfg.control_planes
    sans = [str(cfg.network.api_vip), *(str(h.address) for h in cps), *(h.name for h in cps)]
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterConfiguration",
        "clusterName": cluster_name(cfg),
        "kubernetesVersion": kubernetes_version(cfg),
        "controlPlaneEndpoint": apivip.endpoint(cfg),
        "certificatesDir": PKI_DIR,
        "imageRepository": "registry.k8s.io",
        "networking": {
            "podSubnet": str(cfg.network.pod_cidr),
            "serviceSubnet": str(cfg.network.service_cidr),
            "dnsDomain": "cluster.local",
        },
        "etcd": {
            "external": {
                "endpoints": etcd.client_endpoints(cfg),
                "caFile": ETCD_CA_CERT,
                "certFile": ETCD_CLIENT_CERT,
                "keyFile": ETCD_CLIENT_KEY,
            }
        },
        "apiServer": {
            "certSANs": sans,
            "timeoutForControlPlane": "4m0s",
            "extraArgs": {
                "audit-policy-file": AUDIT_POLICY_PATH,
                "audit-log-path": f"{AUDIT_LOG_DIR}/audit.log",
                "audit-log-format": "json",
                "audit-log-maxage": "30",
                "audit-log-maxbackup": "10",
                "audit-log-maxsize": "200",
                "profiling": "false",
                "tls-min-version": "VersionTLS12",
            },
            "extraVolumes": [
                {
                    "name": "audit-policy",
                    "hostPath": AUDIT_POLICY_PATH,
                    "mountPath": AUDIT_POLICY_PATH,
                    "readOnly": True,
                    "pathType": "File",
                },
                {
                    "name": "audit-logs",
                    "hostPath": AUDIT_LOG_DIR,
                    "mountPath": AUDIT_LOG_DIR,
                    "readOnly": False,
                    "pathType": "DirectoryOrCreate",
                },
            ],
        },
        "controllerManager": {"extraArgs": {"profiling": "false"}},
        "scheduler": {"extraArgs": {"profiling": "false"}},
    }


def init_configuration(cfg: StackConfig, host: HostSpec) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": "InitConfiguration",
        "bootstrapTokens": [
            {
                "description": "created by kubeadm init; unused, joins get their own",
                "ttl": INIT_TOKEN_TTL,
                "usages": ["signing", "authentication"],
                "groups": ["system:bootstrappers:kubeadm:default-node-token"],
            }
        ],
        "localAPIEndpoint": {"advertiseAddress": str(host.address), "bindPort": apivip.APISERVER_PORT},
        "nodeRegistration": _node_registration(cfg, host),
    }


def kubelet_configuration(cfg: StackConfig) -> dict:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "systemd",
        "rotateCertificates": True,
        # Serving certificates signed by the cluster CA (CSRs approved by kubelet-csr-approver,
        # render/addons.py), so metrics-server verifies kubelets instead of skipping TLS checks.
        "serverTLSBootstrap": True,
    }


def join_configuration(cfg: StackConfig, host: HostSpec) -> dict:
    doc = {
        "apiVersion": API_VERSION,
        "kind": "JoinConfiguration",
        "discovery": {
            "bootstrapToken": {
                "apiServerEndpoint": apivip.endpoint(cfg),
                "token": TOKEN_PLACEHOLDER,
                "caCertHashes": [CA_HASH_PLACEHOLDER],
            },
            "timeout": "5m0s",
        },
        "nodeRegistration": _node_registration(cfg, host),
    }
    if host.has("control-plane"):
        doc["controlPlane"] = {
            "localAPIEndpoint": {"advertiseAddress": str(host.address), "bindPort": apivip.APISERVER_PORT},
            "certificateKey": CERT_KEY_PLACEHOLDER,
        }
    return doc


def _dump(docs: list[dict], host: HostSpec, what: str) -> str:
    header = f"# kubeadm {what} for {host.name}: rendered by seoul-cluster (render/kubeadm.py). Do not edit.\n"
    return header + yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False, explicit_start=True)


def init_config_yaml(cfg: StackConfig, host: HostSpec) -> str:
    docs = [init_configuration(cfg, host), cluster_configuration(cfg), kubelet_configuration(cfg)]
    return _dump(docs, host, "init")


def join_config_yaml(cfg: StackConfig, host: HostSpec) -> str:
    return _dump([join_configuration(cfg, host)], host, "join (template; secrets filled in on the host)")


def config_yaml(cfg: StackConfig, host: HostSpec) -> str:
    if host.name == cfg.init_node.name:
        return init_config_yaml(cfg, host)
    return join_config_yaml(cfg, host)


def etcd_client_cert_env(host: HostSpec) -> dict[str, str]:
    """Parameters of scripts/etcd-certs.sh for an API server's etcd client certificate."""
    return {
        "MODE": "client",
        "NAME": ETCD_CLIENT_CN,
        "IP": str(host.address),
        "CA_CERT": ETCD_CA_CERT,
        "CA_KEY": ETCD_CA_KEY,
        "CERT": ETCD_CLIENT_CERT,
        "KEY": ETCD_CLIENT_KEY,
        "OWNER": "root",
        "DAYS": str(etcd.CERT_DAYS),
        "RENEW_DAYS": str(etcd.CERT_RENEW_DAYS),
    }


def node_labels(host: HostSpec) -> list[str]:
    """Role labels the kubelet may not set on itself; set from the first control plane."""
    labels = []
    if host.has("worker"):
        labels.append("node-role.kubernetes.io/worker=")
    if host.has("ingress"):
        labels.append("node-role.kubernetes.io/ingress=")
    if host.rack:
        labels.append(f"{network.RACK_LABEL}={host.rack}")
    return labels


def audit_policy() -> str:
    """Metadata for everything, request bodies for writes, never the content of secrets."""
    policy = {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [
            # High-volume, low-value reads by system components.
            {
                "level": "None",
                "users": ["system:kube-proxy"],
                "verbs": ["watch"],
                "resources": [{"group": "", "resources": ["endpoints", "services", "services/status"]}],
            },
            {
                "level": "None",
                "userGroups": ["system:nodes"],
                "verbs": ["get"],
                "resources": [{"group": "", "resources": ["nodes", "nodes/status"]}],
            },
            {
                "level": "None",
                "users": ["system:kube-controller-manager", "system:kube-scheduler"],
                "verbs": ["get", "update"],
                "namespaces": ["kube-system"],
                "resources": [
                    {"group": "", "resources": ["endpoints"]},
                    {"group": "coordination.k8s.io", "resources": ["leases"]},
                ],
            },
            {"level": "None", "nonResourceURLs": ["/healthz*", "/livez*", "/readyz*", "/version", "/metrics"]},
            {
                "level": "None",
                "resources": [
                    {"group": "", "resources": ["events"]},
                    {"group": "events.k8s.io", "resources": ["events"]},
                ],
            },
            # Secrets, config maps and token requests: who and when, never the payload.
            {
                "level": "Metadata",
                "resources": [
                    {"group": "", "resources": ["secrets", "configmaps", "serviceaccounts/token"]},
                    {"group": "authentication.k8s.io", "resources": ["tokenreviews"]},
                ],
            },
            {"level": "Request", "verbs": ["create", "update", "patch", "delete", "deletecollection"]},
            {"level": "Metadata"},
        ],
    }
    header = "# API server audit policy: rendered by seoul-cluster (render/kubeadm.py). Do not edit.\n"
    return header + yaml.safe_dump(policy, sort_keys=False)


def certs_renew_slot(cfg: StackConfig, host: HostSpec) -> str:
    """Monthly slot per control plane, a week apart, so only one API server restarts at a time."""
    index = [h.name for h in cfg.control_planes].index(host.name)
    day = 1 + (7 * index) % 28
    return f"*-*-{day:02d} 02:30:00"


CERTS_RENEW_SCRIPT = "/usr/local/sbin/seoul-kube-certs-renew"
ETCD_CLIENT_CERT_SCRIPT = "/usr/local/sbin/seoul-etcd-client-cert"
ETCD_CLIENT_ENV = "/etc/kubernetes/seoul-etcd-client.env"


def certs_renew_service() -> str:
    return f"""\
[Unit]
Description=Renew kubeadm certificates and restart the control-plane static pods
After=kubelet.service

[Service]
Type=oneshot
EnvironmentFile={ETCD_CLIENT_ENV}
ExecStart={CERTS_RENEW_SCRIPT}
"""


def certs_renew_timer(cfg: StackConfig, host: HostSpec) -> str:
    return timer_unit("Monthly kubeadm certificate renewal (certificates last one year)",
                      certs_renew_slot(cfg, host))


# -- the steps components/kubernetes runs, in order ------------------------------------------


def kubeadm_config(cfg: StackConfig, host: HostSpec) -> HostFile:
    """The node's kubeadm config: init on the init node, a join template elsewhere."""
    return HostFile("kubeadm-config", CONFIG_PATH, config_yaml(cfg, host), "0600")


def audit_policy_file() -> HostFile:
    return HostFile("audit-policy", AUDIT_POLICY_PATH, audit_policy(), "0600")


def etcd_client_cert(host: HostSpec) -> ScriptRun:
    """The API server's etcd client certificate, issued on the control plane from the etcd CA."""
    return ScriptRun("etcd-client-cert", "etcd-certs.sh", etcd_client_cert_env(host))


def init(cfg: StackConfig, host: HostSpec) -> ScriptRun:
    """`kubeadm init` on the init node (once); removal runs `kubeadm reset`."""
    env = {"CONFIG": CONFIG_PATH, "NODE_NAME": host.name, "CRI_SOCKET": runtime.cri_socket(cfg)}
    return ScriptRun("kubeadm-init", "kubeadm-init.sh", env, delete_script="kubeadm-reset.sh")


def admin_kubeconfig() -> ScriptRun:
    """Print the admin kubeconfig (a secret output)."""
    return ScriptRun("admin-kubeconfig", "admin-kubeconfig.sh")


def join_token(node: HostSpec) -> ScriptRun:
    """Mint `node`'s join material on the init node (a secret output)."""
    return ScriptRun("join-token", "kubeadm-join-token.sh", {
        "NODE_NAME": node.name,
        "CONTROL_PLANE": str(node.has("control-plane")).lower(),
        "TTL": JOIN_TOKEN_TTL,
        "CONFIG": CONFIG_PATH,
    })


def join(cfg: StackConfig, node: HostSpec) -> ScriptRun:
    """`kubeadm join` on the node with the secrets file the token step made; removal resets it."""
    return ScriptRun("kubeadm-join", "kubeadm-join.sh", {
        "NODE_NAME": node.name,
        "CONFIG": CONFIG_PATH,
        "SECRETS_FILE": JOIN_SECRETS_PATH,
        "CONTROL_PLANE": str(node.has("control-plane")).lower(),
        "CRI_SOCKET": runtime.cri_socket(cfg),
    }, delete_script="kubeadm-reset.sh")


def node_registration(node: HostSpec) -> ScriptRun:
    """Label the joined node (from the init node); removal drains and deletes it."""
    env = {"NODE_NAME": node.name, "LABELS": " ".join(node_labels(node)), "DRAIN_TIMEOUT": DRAIN_TIMEOUT}
    return ScriptRun("node", "node-register.sh", env, delete_script="node-drain.sh")


def node_gone(node: HostSpec) -> ScriptRun:
    """Run on the init node: delete `node`, marked failed, and force its pods elsewhere (no drain)."""
    return ScriptRun("node-gone", "node-gone.sh", {"NODE_NAME": node.name})


def certs_renewal(cfg: StackConfig, host: HostSpec) -> FileSet:
    """Monthly: renew the etcd client and kubeadm certificates, restart the static pods."""
    files = (
        HostFile("kube-certs-renew-script", CERTS_RENEW_SCRIPT, script("kube-certs-renew.sh"), "0755"),
        HostFile("etcd-client-cert-script", ETCD_CLIENT_CERT_SCRIPT, script("etcd-certs.sh"), "0755"),
        HostFile("etcd-client-cert-env", ETCD_CLIENT_ENV, etcd.env_file(etcd_client_cert_env(host))),
        HostFile("kube-certs-renew-service", unit_path("kube-certs-renew.service"), certs_renew_service()),
        HostFile("kube-certs-renew-timer", unit_path("kube-certs-renew.timer"), certs_renew_timer(cfg, host)),
    )
    return timers("kube-certs-timer", files, ["kube-certs-renew.timer"])
