"""Registrations for policy tests, in the wire form the offline plan records.

`inputs` Structs are built the way the Python SDK serializes RegisterResource inputs:
secrets wrapped in the secret signature, preview unknowns as `pulumi.runtime.rpc.UNKNOWN`.
`compliant_cluster()` returns a stack every policy accepts (under prod config); tests
mutate one thing and expect exactly one policy to fire.
"""

from __future__ import annotations

import json
import pathlib
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import struct_pb2
from pulumi.runtime import rpc

from offline.registry import Registration

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
STAGE_CONFIG = REPO_ROOT / "policies" / "config" / "stage.json"
PROD_CONFIG = REPO_ROOT / "policies" / "config" / "prod.json"
PROJECT = "seoul-cluster"
STACK = "prod"

UNKNOWN = rpc.UNKNOWN
_SIG_KEY = "4dabf18193072939515e22adb298388d"  # pulumi.runtime.rpc._special_sig_key
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # pulumi.runtime.rpc._special_secret_sig


@dataclass(frozen=True)
class Secret:
    value: Any


def to_wire(value: Any) -> Any:
    """Python value -> the JSON-ish value the SDK puts in the RegisterResource Struct."""
    if isinstance(value, Secret):
        return {_SIG_KEY: _SECRET_SIG, "value": to_wire(value.value)}
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    return value


def to_struct(inputs: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(to_wire(inputs))
    return struct


def file_put(path: str, mode: str = "0644") -> str:
    return f"sudo install -D -m {mode} -o root -g root /dev/stdin {path}"


def script_run(**env: str) -> str:
    pairs = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return f"sudo env {pairs} bash -s"


@dataclass
class Res:
    """A registration under construction (mutable so tests can tweak it)."""

    type: str
    name: str
    inputs: dict[str, Any]
    parent: Res | None = None
    custom: bool = True
    protect: bool = False
    provider: Res | None = None
    dependencies: list[Res] = field(default_factory=list)
    property_dependencies: dict[str, list[Res]] = field(default_factory=dict)


@dataclass
class Cluster:
    project: str = PROJECT
    stack: str = STACK
    resources: list[Res] = field(default_factory=list)

    def add(self, type_: str, name: str, inputs: dict[str, Any], **kwargs: Any) -> Res:
        res = Res(type_, name, inputs, **kwargs)
        self.resources.append(res)
        return res

    def find(self, name: str, type_: str | None = None) -> Res:
        matches = [r for r in self.resources if r.name == name and (type_ is None or r.type == type_)]
        assert len(matches) == 1, f"{len(matches)} resources named {name}"
        return matches[0]

    def remove(self, res: Res) -> None:
        self.resources.remove(res)

    def urn(self, res: Res) -> str:
        chain = []
        cur: Res | None = res
        while cur is not None:
            chain.append(cur.type)
            cur = cur.parent
        return f"urn:pulumi:{self.stack}::{self.project}::{'$'.join(reversed(chain))}::{res.name}"

    def registrations(self) -> list[Registration]:
        return [
            Registration(
                urn=self.urn(r),
                type=r.type,
                name=r.name,
                parent=self.urn(r.parent) if r.parent else "",
                custom=r.custom,
                protect=r.protect,
                provider=f"{self.urn(r.provider)}::{UNKNOWN}" if r.provider else "",
                dependencies=[self.urn(d) for d in r.dependencies],
                property_dependencies={k: [self.urn(d) for d in v] for k, v in r.property_dependencies.items()},
                inputs=to_struct(r.inputs),
            )
            for r in self.resources
        ]


# --- the compliant cluster ---------------------------------------------------------------------
HARDENED_SSHD = "# managed by pulumi\nPasswordAuthentication no\nPermitRootLogin no\nX11Forwarding no\n"
CONTROL_PLANES = {"cp-1": "10.0.1.11", "cp-2": "10.0.1.12", "cp-3": "10.0.1.13"}
ETCD_MEMBERS = {"etcd-1": "10.0.1.31", "etcd-2": "10.0.1.32", "etcd-3": "10.0.1.33"}
STORAGE = {f"storage-{i}": f"10.0.1.{40 + i}" for i in range(1, 6)}
K8S_VERSION = "1.29.6"
PRIVATE_KEY = Secret(
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyMaterial0123456789\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)


def etcd_config(name: str, ip: str, members: dict[str, str] = ETCD_MEMBERS) -> str:
    initial = ",".join(f"{n}=https://{addr}:2380" for n, addr in members.items())
    return (
        f"name: {name}\n"
        f"listen-peer-urls: https://{ip}:2380\n"
        f'initial-cluster: "{initial}"\n'
        "initial-cluster-state: new\n"
        "initial-cluster-token: seoul-etcd\n"
    )


def haproxy_config(servers: dict[str, str] = CONTROL_PLANES) -> str:
    lines = [
        "global",
        "    log /dev/log local0",
        "defaults",
        "    mode tcp",
        "frontend kube-apiserver",
        "    bind *:8443",
        "    default_backend kube-apiserver-backend",
        "backend kube-apiserver-backend",
        "    balance roundrobin",
    ]
    lines += [f"    server {n} {ip}:6443 check fall 3 rise 2" for n, ip in servers.items()]
    return "\n".join(lines) + "\n"


def kubeadm_config(version: str = f"v{K8S_VERSION}") -> str:
    return (
        "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\n"
        "bootstrapTokens:\n- token: abcdef.0123456789abcdef\n---\n"
        "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n"
        f"kubernetesVersion: {version}\ncontrolPlaneEndpoint: 10.0.1.10:8443\n"
    )


def tls_only_policy(bucket: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


def add_host(c: Cluster, name: str, address: str, roles: list[str]) -> Res:
    host = c.add("seoul:hosts:Host", name, {"address": address, "roles": roles, "cisLevel": 1}, custom=False)

    def step(step_name: str, create: str, stdin: Any) -> Res:
        return c.add(
            "command:remote:Command",
            f"{name}-{step_name}",
            {
                "connection": Secret({"host": address, "user": "deploy", "privateKey": PRIVATE_KEY.value}),
                "create": create,
                "stdin": stdin,
            },
            parent=host,
        )

    step("sshd", file_put("/etc/ssh/sshd_config.d/50-hardening.conf", "0600"), HARDENED_SSHD)
    step("selinux", script_run(SELINUX_MODE="enforcing"), "setenforce 1\n")
    step("firewalld", script_run(DEFAULT_ZONE="drop", TCP_PORTS="22 6443 10250"), "firewall-cmd --reload\n")
    step("k8s-packages", script_run(KUBERNETES_VERSION=K8S_VERSION), "dnf install -y kubelet-$KUBERNETES_VERSION\n")
    return host


def host_step(c: Cluster, host: str, step_name: str) -> Res:
    return c.find(f"{host}-{step_name}", "command:remote:Command")


def add_host_step(c: Cluster, host: str, step_name: str, create: str, stdin: Any) -> Res:
    host_res = c.find(host, "seoul:hosts:Host")
    return c.add(
        "command:remote:Command",
        f"{host}-{step_name}",
        {
            "connection": Secret(
                {"host": host_res.inputs["address"], "user": "deploy", "privateKey": PRIVATE_KEY.value}
            ),
            "create": create,
            "stdin": stdin,
        },
        parent=host_res,
    )


def compliant_cluster() -> Cluster:
    c = Cluster()
    c.add("pulumi:pulumi:Stack", f"{PROJECT}-{STACK}", {}, custom=False)

    # hosts
    for name, ip in CONTROL_PLANES.items():
        add_host(c, name, ip, ["control-plane"])
        add_host_step(c, name, "haproxy", file_put("/etc/haproxy/haproxy.cfg"), haproxy_config())
    for name, ip in ETCD_MEMBERS.items():
        add_host(c, name, ip, ["etcd"])
        add_host_step(c, name, "etcd-config", file_put("/etc/etcd/etcd.conf.yml", "0600"), etcd_config(name, ip))
    for name, ip in STORAGE.items():
        add_host(c, name, ip, ["storage", "worker"])
    add_host_step(
        c, "cp-1", "kubeadm-config", file_put("/etc/kubernetes/kubeadm-config.yaml", "0600"), Secret(kubeadm_config())
    )
    add_host_step(
        c,
        "storage-1",
        "ceph-pool-rbd",
        script_run(POOL_NAME="rbd", POOL_TYPE="replicated", SIZE="3", MIN_SIZE="2"),
        'ceph osd pool create "$POOL_NAME"\n',
    )
    add_host_step(
        c,
        "storage-1",
        "ceph-pool-archive",
        script_run(POOL_NAME="archive", POOL_TYPE="erasure", K="2", M="2"),
        'ceph osd pool create "$POOL_NAME" erasure\n',
    )

    # F5
    pool = c.add(
        "f5bigip:ltm/pool:Pool",
        "k8s-ingress",
        {"name": "/Common/k8s-ingress", "monitors": ["/Common/https_443"], "loadBalancingMode": "round-robin"},
    )
    for i, ip in enumerate(["10.0.1.51", "10.0.1.52"], start=1):
        c.add(
            "f5bigip:ltm/poolAttachment:PoolAttachment",
            f"k8s-ingress-member-{i}",
            {"pool": UNKNOWN, "node": f"/Common/{ip}:443"},
            property_dependencies={"pool": [pool]},
            dependencies=[pool],
        )
    c.add(
        "f5bigip:ltm/profileClientSsl:ProfileClientSsl",
        "k8s-clientssl",
        {
            "name": "/Common/k8s-clientssl",
            "defaultsFrom": "/Common/clientssl",
            "tmOptions": ["dont-insert-empty-fragments", "no-sslv3", "no-tlsv1", "no-tlsv1.1"],
        },
    )

    # AWS
    aws = c.add("pulumi:providers:aws", "seoul", {"region": "ap-northeast-2", "skipCredentialsValidation": "false"})
    key = c.add("aws:kms/key:Key", "backup-key", {"enableKeyRotation": True, "description": "backups"}, provider=aws)
    for bucket_name, tags in (
        ("seoul-cluster-backups", {"backup": "true"}),
        ("seoul-cluster-backups-replica", {"backup": "true"}),
    ):
        add_backup_bucket(c, bucket_name, tags, aws, key)
    source = c.find("seoul-cluster-backups", "aws:s3/bucket:Bucket")
    replica = c.find("seoul-cluster-backups-replica", "aws:s3/bucket:Bucket")
    c.add(
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
        "backups-replication",
        {
            "bucket": UNKNOWN,
            "role": UNKNOWN,
            "rules": [
                {
                    "id": "all",
                    "status": "Enabled",
                    "destination": {"bucket": "arn:aws:s3:::seoul-cluster-backups-replica", "storageClass": "STANDARD"},
                }
            ],
        },
        provider=aws,
        property_dependencies={"bucket": [source], "rules": [replica]},
    )

    # Kubernetes
    add_app(c, "shop-api", "apps")
    c.add(
        "kubernetes:apps/v1:DaemonSet",
        "calico-node",
        {
            "metadata": {"name": "calico-node", "namespace": "calico-system"},
            "spec": {
                "selector": {"matchLabels": {"k8s-app": "calico-node"}},
                "template": {
                    "metadata": {"labels": {"k8s-app": "calico-node"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "calico-node",
                                "image": "calico/node:v3.27.3",
                                "securityContext": {"privileged": True},
                            }
                        ]
                    },
                },
            },
        },
    )
    c.add(
        "kubernetes:apps/v1:Deployment",
        "coredns",
        {
            "metadata": {"name": "coredns", "namespace": "kube-system"},
            "spec": {"template": {"spec": {"containers": [{"name": "coredns", "image": "coredns/coredns:1.11.1"}]}}},
        },
    )
    add_firewall(c)
    return c


FORTIOS_POLICY = "fortios:firewall/policy:Policy"


def add_firewall(c: Cluster) -> None:
    """A FortiGate rule base: internet -> VIP https, bastion -> SSH, deny the rest, all logging."""
    c.add("fortios:firewall/service/custom:Custom", "seoul-ssh", {"name": "seoul-ssh", "tcpPortrange": "22"})

    def policy(name: str, policyid: int, src_if: str, src: str, dst: str, service: str, action: str) -> None:
        c.add(FORTIOS_POLICY, name, {
            "policyid": policyid, "name": name, "srcintfs": [{"name": src_if}], "dstintfs": [{"name": "port1"}],
            "srcaddrs": [{"name": src}], "dstaddrs": [{"name": dst}], "services": [{"name": service}],
            "action": action, "logtraffic": "all",
        })

    policy("internet-to-f5-https", 10, "wan1", "all", "seoul-f5-vip", "HTTPS", "accept")
    policy("bastion-ssh-to-nodes", 20, "port2", "seoul-bastion", "seoul-node-network", "seoul-ssh", "accept")
    policy("deny-everything-else", 1000, "any", "all", "all", "ALL", "deny")


def add_backup_bucket(c: Cluster, name: str, tags: dict[str, str], provider: Res, key: Res) -> Res:
    bucket = c.add(
        "aws:s3/bucket:Bucket",
        name,
        {"bucket": name, "objectLockEnabled": True, "tags": tags},
        provider=provider,
        protect=True,
    )

    def companion(type_: str, suffix: str, inputs: dict[str, Any], extra: dict[str, list[Res]] | None = None) -> Res:
        return c.add(
            type_,
            f"{name}-{suffix}",
            {"bucket": UNKNOWN, **inputs},
            provider=provider,
            property_dependencies={"bucket": [bucket], **(extra or {})},
            dependencies=[bucket],
        )

    companion(
        "aws:s3/bucketVersioning:BucketVersioning", "versioning", {"versioningConfiguration": {"status": "Enabled"}}
    )
    companion(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "sse",
        {
            "rules": [
                {
                    "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": UNKNOWN},
                    "bucketKeyEnabled": True,
                }
            ]
        },
        {"rules": [key]},
    )
    companion(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "public-access-block",
        {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True, "restrictPublicBuckets": True},
    )
    companion(
        "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
        "object-lock",
        {"objectLockEnabled": "Enabled", "rule": {"defaultRetention": {"mode": "COMPLIANCE", "days": 30}}},
    )
    companion("aws:s3/bucketPolicy:BucketPolicy", "policy", {"policy": tls_only_policy(name)})
    return bucket


def add_app(c: Cluster, name: str, namespace: str) -> Res:
    labels = {"app": name}
    deployment = c.add(
        "kubernetes:apps/v1:Deployment",
        name,
        {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": "registry.local/shop-api:1.4.2",
                                "resources": {
                                    "requests": {"cpu": "250m", "memory": "256Mi"},
                                    "limits": {"cpu": "1", "memory": "512Mi"},
                                },
                            }
                        ]
                    },
                },
            },
        },
    )
    c.add(
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        f"{name}-hpa",
        {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": 3,
                "maxReplicas": 10,
            },
        },
    )
    c.add(
        "kubernetes:policy/v1:PodDisruptionBudget",
        f"{name}-pdb",
        {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": labels}},
        },
    )
    return deployment


Mutation = Callable[[Cluster], None]
