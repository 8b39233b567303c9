"""Cluster add-ons at the edge of the cluster: ingress-nginx, metrics-server, the kubelet CSR approver.

ingress-nginx runs on the ingress hosts only, in the host network (ingress-nginx's bare-metal
guide, "Via the host network"): each controller serves 80/443 on its host's own address, which
is what the F5 pool members `<ingress address>:443` point at, and answers the F5 monitor's
`GET /healthz` from its default server.

metrics-server trusts kubelet serving certificates signed by the cluster CA (kubelet
`serverTLSBootstrap: true`, render/kubeadm.py) instead of `--kubelet-insecure-tls`; the
kubelets' serving CSRs are approved by kubelet-csr-approver after it checks the names and
addresses in them (kubernetes.io, "kubeadm certificate management: kubelet serving certs").
"""

from model import releases
from model.schema import HOST_NAME_PATTERN, StackConfig
from render.helm import HelmRelease, Manifest, manifest

INGRESS_NAMESPACE = "ingress-nginx"
INGRESS_CLASS = "nginx"
INGRESS_NODE_LABEL = "node-role.kubernetes.io/ingress"
# Ingress hosts carry this taint (kubeadm JoinConfiguration), so only ingress-nginx runs there.
INGRESS_TAINT = {"key": INGRESS_NODE_LABEL, "effect": "NoSchedule"}
# The admission webhook listens in the host network too: not 8443, which HAProxy holds on
# the API VIP of a control plane.
INGRESS_WEBHOOK_PORT = 8444
INGRESS_PORTS = (80, 443)
HEALTH_PATH = "/healthz"

METRICS_NAMESPACE = "kube-system"
APPROVER_NAME = "kubelet-csr-approver"
APPROVER_NAMESPACE = "kube-system"
# The longest serving certificate the approver lets through (the CA signs for one year).
APPROVER_MAX_EXPIRATION_SECONDS = 367 * 24 * 3600


def ingress_release(cfg: StackConfig) -> HelmRelease:
    """ingress-nginx: one controller per ingress host (host network), PDB, metrics, class `nginx`."""
    replicas = len(cfg.ingress_nodes)
    selector = {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"}
    controller = {
        "kind": "Deployment",
        "replicaCount": replicas,
        # PodDisruptionBudget: at most one controller down at a time (drains go one by one).
        "minAvailable": max(replicas - 1, 1),
        "hostNetwork": True,
        "dnsPolicy": "ClusterFirstWithHostNet",
        "reportNodeInternalIp": True,
        "nodeSelector": {"kubernetes.io/os": "linux", INGRESS_NODE_LABEL: ""},
        "tolerations": [{**INGRESS_TAINT, "operator": "Exists"}],
        # One per host: two controllers in one host network would fight over 80/443.
        "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": selector}, "topologyKey": "kubernetes.io/hostname"}]}},
        # No surge: the new pod needs the ports the old one holds on that host.
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
        "ingressClassResource": {"name": INGRESS_CLASS, "enabled": True, "default": True},
        "ingressClass": INGRESS_CLASS,
        "healthCheckPath": HEALTH_PATH,
        "config": {"ssl-protocols": "TLSv1.2 TLSv1.3", "use-http2": "true", "server-tokens": "false"},
        # Traffic comes to the hosts' own addresses from the F5; no LoadBalancer address needed.
        "service": {"type": "ClusterIP"},
        "metrics": {"enabled": True},
        "admissionWebhooks": {"enabled": True, "port": INGRESS_WEBHOOK_PORT},
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
    }
    return HelmRelease("ingress-nginx", releases.INGRESS_NGINX, INGRESS_NAMESPACE, {"controller": controller})


def metrics_server_release() -> HelmRelease:
    """metrics-server, two replicas with a PDB, verifying kubelets against the cluster CA (no insecure TLS)."""
    values = {
        "replicas": 2,
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
        # `args` adds to the chart's defaultArgs; nothing here turns kubelet TLS checks off.
        "args": [],
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100,
            "podAffinityTerm": {"labelSelector": {"matchLabels": {"app.kubernetes.io/name": "metrics-server"}},
                                "topologyKey": "kubernetes.io/hostname"}}]}},
        "resources": {"requests": {"cpu": "100m", "memory": "200Mi"}, "limits": {"memory": "400Mi"}},
    }
    return HelmRelease("metrics-server", releases.METRICS_SERVER, METRICS_NAMESPACE, values)


def csr_approver(cfg: StackConfig) -> list[Manifest]:
    """kubelet-csr-approver as plain objects: RBAC as upstream's deploy/k8s, a two-replica Deployment.

    It approves a `kubernetes.io/kubelet-serving` CSR only when its DNS names match the
    host-name pattern and its IP addresses are inside `network.nodeCidr`.
    """
    labels = {"app.kubernetes.io/name": APPROVER_NAME}
    rules = [
        {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create", "get", "update"]},
        {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests/approval"],
         "verbs": ["update"]},
        {"apiGroups": ["certificates.k8s.io"], "resources": ["signers"],
         "resourceNames": ["kubernetes.io/kubelet-serving"], "verbs": ["approve"]},
    ]
    env = {
        "PROVIDER_REGEX": HOST_NAME_PATTERN,
        "PROVIDER_IP_PREFIXES": str(cfg.network.node_cidr),
        "MAX_EXPIRATION_SEC": str(APPROVER_MAX_EXPIRATION_SECONDS),
        # Node names are short host names, not DNS records the approver could resolve.
        "BYPASS_DNS_RESOLUTION": "true",
    }
    container = {
        "name": APPROVER_NAME,
        "image": releases.KUBELET_CSR_APPROVER_IMAGE,
        "args": ["-metrics-bind-address", ":8080", "-health-probe-bind-address", ":8081", "-leader-election"],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "ports": [{"name": "metrics", "containerPort": 8080}, {"name": "health", "containerPort": 8081}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "health"}},
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "health"}},
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "runAsUser": 65532,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    pod = {
        "serviceAccountName": APPROVER_NAME,
        "priorityClassName": "system-cluster-critical",
        "containers": [container],
        # Runs on control planes too, so serving certificates get approved before workers join.
        "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                         "effect": "NoSchedule"}],
    }
    return [
        manifest("v1", "ServiceAccount", APPROVER_NAME, APPROVER_NAMESPACE, labels=labels),
        manifest("rbac.authorization.k8s.io/v1", "ClusterRole", APPROVER_NAME, labels=labels, rules=rules),
        manifest("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", APPROVER_NAME, labels=labels,
                 roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": APPROVER_NAME},
                 subjects=[{"kind": "ServiceAccount", "name": APPROVER_NAME, "namespace": APPROVER_NAMESPACE}]),
        manifest("apps/v1", "Deployment", APPROVER_NAME, APPROVER_NAMESPACE, labels=labels, spec={
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        }),
    ]
