"""The Kubernetes core: container runtime, control plane (kubeadm), workers, cluster access.

Entry point for `__main__.py`: `build_kubernetes(cfg, hosts)`.

Order, and only where the real world needs it:
  etcd healthy + API VIP on the first control plane + its runtime -> `kubeadm init`
  -> control planes join one after another (each with a fresh token and certificate key)
  -> workers join in parallel, each waiting only for `kubeadm init` and its own host.
Join secrets are minted per node on the first control plane by a step whose stdout is a
secret output (logging off), travel on stdin into a root-only file on the node, and are
removed there after the join. Resource names derive from host names only.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import pulumi
import pulumi_kubernetes as k8s

from components.apivip import ApiVip
from components.certs import CertificateExpiry
from components.etcd import EtcdCluster
from components.remote import Target, digest, put_file, run_script, script
from model import ConfigError
from model.schema import Host, StackConfig
from render import apivip, certs, etcd, kubeadm, runtime

# A bootstrap token is good for this long after it is minted, right before its join.
JOIN_TOKEN_TTL = "2h"
# Draining a node that leaves the stack: past this, the step fails and nothing is forced.
DRAIN_TIMEOUT = "600s"


class HostHandle(Protocol):
    """What build_kubernetes needs of each host: how to reach it, and when it is prepared."""

    @property
    def target(self) -> Target: ...

    @property
    def ready(self) -> pulumi.Resource: ...


def _opts(parent: pulumi.Resource, after: list[pulumi.Resource]) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, depends_on=after)


class ContainerRuntime(pulumi.ComponentResource):
    """containerd (or Docker Engine + cri-dockerd) on one Kubernetes node."""

    ready: pulumi.Resource

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        host: Host,
        handle: HostHandle,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("seoul:kubernetes:ContainerRuntime", name, None, opts)
        contents = runtime.files(cfg)
        files = [
            put_file(f"{host.name}-runtime-{_slug(path)}", handle.target, path, content, _opts(self, [handle.ready]))
            for path, content in contents.items()
        ]
        env = runtime.install_env(cfg) | {"FINGERPRINT": digest("".join(contents.values()))}
        self.ready = run_script(
            f"{host.name}-runtime-install", handle.target, "runtime-install.sh", _opts(self, files), env=env
        )
        self.register_outputs({"runtime": cfg.kubernetes.container_runtime, "criSocket": runtime.cri_socket(cfg)})


class ControlPlane(pulumi.ComponentResource):
    """kubeadm control plane: init on the first control plane, the others join one at a time."""

    first: Host
    init: pulumi.Resource
    joins: dict[str, pulumi.Resource]
    kubeconfig: pulumi.Output[str]
    kubeconfig_step: pulumi.Resource

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        hosts: Mapping[str, HostHandle],
        etcd_cluster: EtcdCluster,
        api_vip: ApiVip,
        runtimes: Mapping[str, ContainerRuntime],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("seoul:kubernetes:ControlPlane", name, None, opts)
        self._cfg = cfg
        self._hosts = hosts
        control_planes = apivip.control_planes(cfg)
        self.first = control_planes[0]

        prepared = {
            cp.name: [
                *self._files(cp, etcd_cluster),
                hosts[cp.name].ready,
                runtimes[cp.name].ready,
                api_vip.ready[cp.name],
            ]
            for cp in control_planes
        }
        self.init = self._init(self.first, after=[*prepared[self.first.name], etcd_cluster.ready])
        self.kubeconfig_step = run_script(
            f"{self.first.name}-admin-kubeconfig",
            hosts[self.first.name].target,
            "admin-kubeconfig.sh",
            _opts(self, [self.init]),
            secret_output=True,
        )
        self.kubeconfig = pulumi.Output.secret(self.kubeconfig_step.stdout)

        # One at a time: each join starts after the previous control plane has joined.
        self.joins = {}
        previous = self.init
        for cp in control_planes[1:]:
            previous = join_node(self, cfg, cp, hosts[cp.name], self, after=[*prepared[cp.name], previous])
            self.joins[cp.name] = previous
        for cp in control_planes:
            self._renewal(cp, after=self.joins.get(cp.name, self.init))

        self.register_outputs(
            {
                "endpoint": apivip.endpoint(cfg),
                "first": self.first.name,
                "controlPlanes": [cp.name for cp in control_planes],
            }
        )

    @property
    def first_target(self) -> Target:
        return self._hosts[self.first.name].target

    def _files(self, cp: Host, etcd_cluster: EtcdCluster) -> list[pulumi.Resource]:
        """Everything kubeadm reads on this control plane, in place before init/join."""
        target = self._hosts[cp.name].target
        after = _opts(self, [self._hosts[cp.name].ready])
        ca_cert = put_file(
            f"{cp.name}-etcd-ca-cert",
            target,
            kubeadm.ETCD_CA_CERT,
            etcd_cluster.ca_cert,
            after,
            mode="0644",
            secret=True,
        )
        ca_key = put_file(
            f"{cp.name}-etcd-ca-key", target, kubeadm.ETCD_CA_KEY, etcd_cluster.ca_key, after, mode="0600", secret=True
        )
        client_cert = run_script(
            f"{cp.name}-etcd-client-cert",
            target,
            "etcd-certs.sh",
            _opts(self, [ca_cert, ca_key]),
            env=kubeadm.etcd_client_cert_env(cp),
        )
        audit = put_file(
            f"{cp.name}-audit-policy", target, kubeadm.AUDIT_POLICY_PATH, kubeadm.audit_policy(), after, mode="0600"
        )
        config = put_file(
            f"{cp.name}-kubeadm-config",
            target,
            kubeadm.CONFIG_PATH,
            kubeadm.config_yaml(self._cfg, cp),
            after,
            mode="0600",
        )
        return [client_cert, audit, config]

    def _init(self, cp: Host, after: list[pulumi.Resource]) -> pulumi.Resource:
        return run_script(
            f"{cp.name}-kubeadm-init",
            self._hosts[cp.name].target,
            "kubeadm-init.sh",
            _opts(self, after),
            env={"CONFIG": kubeadm.CONFIG_PATH, "NODE_NAME": cp.name, "CRI_SOCKET": runtime.cri_socket(self._cfg)},
            delete_script="kubeadm-reset.sh",
        )

    def _renewal(self, cp: Host, after: pulumi.Resource) -> None:
        """Monthly: renew the etcd client and kubeadm certificates, restart the static pods."""
        target = self._hosts[cp.name].target
        contents = {
            "kube-certs-renew-script": (kubeadm.CERTS_RENEW_SCRIPT, script("kube-certs-renew.sh"), "0755"),
            "etcd-client-cert-script": (kubeadm.ETCD_CLIENT_CERT_SCRIPT, script("etcd-certs.sh"), "0755"),
            "etcd-client-cert-env": (
                kubeadm.ETCD_CLIENT_ENV,
                etcd.env_file(kubeadm.etcd_client_cert_env(cp)),
                "0644",
            ),
            "kube-certs-renew-service": (
                "/etc/systemd/system/kube-certs-renew.service",
                kubeadm.certs_renew_service(),
                "0644",
            ),
            "kube-certs-renew-timer": (
                "/etc/systemd/system/kube-certs-renew.timer",
                kubeadm.certs_renew_timer(self._cfg, cp),
                "0644",
            ),
        }
        files = [
            put_file(f"{cp.name}-{step}", target, path, content, _opts(self, [after]), mode=mode)
            for step, (path, content, mode) in contents.items()
        ]
        run_script(
            f"{cp.name}-kube-certs-timer",
            target,
            "enable-units.sh",
            _opts(self, files),
            env={
                "TIMERS": "kube-certs-renew.timer",
                "FINGERPRINT": digest("".join(c for _, c, _ in contents.values())),
            },
            delete_script="disable-units.sh",
        )


class WorkerPool(pulumi.ComponentResource):
    """Every non-control-plane Kubernetes node; each joins on its own, after `kubeadm init` only."""

    joins: dict[str, pulumi.Resource]

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        hosts: Mapping[str, HostHandle],
        control_plane: ControlPlane,
        runtimes: Mapping[str, ContainerRuntime],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("seoul:kubernetes:WorkerPool", name, None, opts)
        self.joins = {}
        for worker in workers(cfg):
            handle = hosts[worker.name]
            config = put_file(
                f"{worker.name}-kubeadm-config",
                handle.target,
                kubeadm.CONFIG_PATH,
                kubeadm.config_yaml(cfg, worker),
                _opts(self, [handle.ready]),
                mode="0600",
            )
            self.joins[worker.name] = join_node(
                self,
                cfg,
                worker,
                handle,
                control_plane,
                after=[config, handle.ready, runtimes[worker.name].ready, control_plane.init],
            )
        self.register_outputs({"nodes": sorted(self.joins)})


def join_node(
    parent: pulumi.Resource,
    cfg: StackConfig,
    node: Host,
    handle: HostHandle,
    control_plane: ControlPlane,
    after: list[pulumi.Resource],
) -> pulumi.Resource:
    """Mint join material on the first control plane, hand it to the node, join, register.

    Removing the node from the stack runs the deletes in reverse: drain + delete the Node
    (from the first control plane), then `kubeadm reset` on the node itself.
    """
    is_control_plane = node.has("control-plane")
    token = run_script(
        f"{node.name}-join-token",
        control_plane.first_target,
        "kubeadm-join-token.sh",
        _opts(parent, after),
        env={
            "NODE_NAME": node.name,
            "CONTROL_PLANE": str(is_control_plane).lower(),
            "TTL": JOIN_TOKEN_TTL,
            "CONFIG": kubeadm.CONFIG_PATH,
        },
        secret_output=True,
    )
    secrets = put_file(
        f"{node.name}-join-secrets",
        handle.target,
        kubeadm.JOIN_SECRETS_PATH,
        token.stdout,
        _opts(parent, [handle.ready, token]),
        mode="0600",
        secret=True,
    )
    join = run_script(
        f"{node.name}-kubeadm-join",
        handle.target,
        "kubeadm-join.sh",
        _opts(parent, [*after, secrets]),
        env={
            "NODE_NAME": node.name,
            "CONFIG": kubeadm.CONFIG_PATH,
            "SECRETS_FILE": kubeadm.JOIN_SECRETS_PATH,
            "CONTROL_PLANE": str(is_control_plane).lower(),
            "CRI_SOCKET": runtime.cri_socket(cfg),
        },
        delete_script="kubeadm-reset.sh",
    )
    run_script(
        f"{node.name}-node",
        control_plane.first_target,
        "node-register.sh",
        _opts(parent, [join]),
        env={"NODE_NAME": node.name, "LABELS": " ".join(kubeadm.node_labels(node)), "DRAIN_TIMEOUT": DRAIN_TIMEOUT},
        delete_script="node-drain.sh",
    )
    return join


def workers(cfg: StackConfig) -> list[Host]:
    """Kubernetes nodes that are not control planes, by name."""
    return sorted((h for h in cfg.kubernetes_nodes if not h.has("control-plane")), key=lambda h: h.name)


def _slug(path: str) -> str:
    return path.rsplit("/", 1)[-1].replace(".", "-").replace("_", "-")


@dataclass
class KubernetesCluster:
    """What the rest of the program uses: the provider, the admin kubeconfig, stack exports."""

    provider: k8s.Provider
    kubeconfig: pulumi.Output[str]
    outputs: dict[str, Any]
    etcd: EtcdCluster
    api_vip: ApiVip
    control_plane: ControlPlane
    workers: WorkerPool
    runtimes: dict[str, ContainerRuntime] = field(default_factory=dict)


def check_releases(cfg: StackConfig) -> None:
    """Refuse pinned releases without a reviewed checksum or pause image (ConfigError naming the key).

    Part of validating the config: call it before registering anything.
    """
    try:
        etcd.archive(cfg)
        runtime.check_releases(cfg)
    except ValueError as err:
        raise ConfigError([str(err)]) from None


def build_kubernetes(cfg: StackConfig, hosts: Mapping[str, HostHandle]) -> KubernetesCluster:
    """External etcd, API VIP, container runtimes, control plane, workers and a provider.

    `hosts` maps every host name of the inventory to its handle (at least every etcd
    member and Kubernetes node). Releases are checked again, in case a caller skipped
    `check_releases`.
    """
    check_releases(cfg)
    missing = sorted({h.name for h in (*etcd.members(cfg), *cfg.kubernetes_nodes)} - set(hosts))
    if missing:
        raise ValueError(f"build_kubernetes: no host handle for {', '.join(missing)}")

    etcd_cluster = EtcdCluster("etcd", cfg, hosts)
    api_vip = ApiVip("api-vip", cfg, hosts)
    runtimes = {
        node.name: ContainerRuntime(f"{node.name}-runtime", cfg, node, hosts[node.name])
        for node in sorted(cfg.kubernetes_nodes, key=lambda h: h.name)
    }
    control_plane = ControlPlane("control-plane", cfg, hosts, etcd_cluster, api_vip, runtimes)
    worker_pool = WorkerPool("workers", cfg, hosts, control_plane, runtimes)

    joined = {control_plane.first.name: control_plane.init, **control_plane.joins, **worker_pool.joins}
    for name in sorted({h.name for h in etcd.members(cfg)} | set(joined)):
        after = [joined[name]] if name in joined else [etcd_cluster.started[name]]
        CertificateExpiry(f"{name}-cert-expiry", name, hosts[name], after)

    provider = k8s.Provider(
        "seoul-k8s",
        kubeconfig=control_plane.kubeconfig,
        opts=pulumi.ResourceOptions(depends_on=[control_plane.kubeconfig_step]),
    )
    outputs = {
        "controlPlaneEndpoint": f"https://{apivip.endpoint(cfg)}",
        "kubernetesVersion": kubeadm.kubernetes_version(cfg),
        "etcdEndpoints": etcd.client_endpoints(cfg),
        "certExpiryScript": certs.EXPIRY_SCRIPT,
        "certExpiryMetrics": certs.EXPIRY_METRICS,
        "etcdSnapshotDir": etcd.SNAPSHOT_DIR,
    }
    return KubernetesCluster(
        provider=provider,
        kubeconfig=control_plane.kubeconfig,
        outputs=outputs,
        etcd=etcd_cluster,
        api_vip=api_vip,
        control_plane=control_plane,
        workers=worker_pool,
        runtimes=runtimes,
    )
