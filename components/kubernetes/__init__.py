"""The Kubernetes core: container runtime, control plane (kubeadm), workers, cluster access.

Entry point for `__main__.py`: `build_kubernetes(cfg, hosts)`.

Order, and only where the real world needs it:
  etcd healthy + API VIP on the init node + its runtime -> `kubeadm init`
  -> control planes join one after another (each with a fresh token and certificate key)
  -> workers join in parallel, each waiting only for `kubeadm init` and its own host.
Resource names derive from host names only. A host marked failed keeps its resources,
inert (`components.remote.inert`); its Node is deleted from the init node instead.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.apivip import ApiVip
from components.certs import CertificateExpiry
from components.etcd import EtcdCluster
from components.kubernetes.control_plane import ControlPlane
from components.kubernetes.runtime import ContainerRuntime
from components.kubernetes.workers import WorkerPool
from components.remote import HostHandle
from model.schema import StackConfig
from render import apivip, certs, etcd, kubeadm

__all__ = ["ContainerRuntime", "ControlPlane", "KubernetesCluster", "WorkerPool", "build_kubernetes"]


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

    @property
    def registered(self) -> dict[str, pulumi.Resource]:
        """Node name -> its registration step (the init node: `kubeadm init`); removal drains the node."""
        return {self.control_plane.first.name: self.control_plane.init, **self.control_plane.registered,
                **self.workers.registered}


def build_kubernetes(cfg: StackConfig, hosts: Mapping[str, HostHandle]) -> KubernetesCluster:
    """External etcd, API VIP, container runtimes, control plane, workers and a provider.

    `cfg` comes from `model.load_config` (releases already checked there). `hosts` maps
    every host name of the inventory to its handle (at least every etcd member and
    Kubernetes node); ValueError names any that are missing.
    """
    built = cfg.as_built
    missing = sorted({h.name for h in (*built.etcd_members, *built.kubernetes_nodes)} - set(hosts))
    if missing:
        raise ValueError(f"build_kubernetes: no host handle for {', '.join(missing)}")

    etcd_cluster = EtcdCluster("etcd", cfg, hosts)
    api_vip = ApiVip("api-vip", cfg, hosts)
    runtimes = {
        node.name: ContainerRuntime(f"{node.name}-runtime", cfg, hosts[node.name])
        for node in sorted(built.kubernetes_nodes, key=lambda h: h.name)
    }
    control_plane = ControlPlane("control-plane", cfg, hosts, etcd_cluster, api_vip, runtimes)
    worker_pool = WorkerPool("workers", cfg, hosts, control_plane, runtimes)

    joined = {control_plane.first.name: control_plane.init, **control_plane.joins, **worker_pool.joins}
    for name in sorted({h.name for h in (*built.etcd_members, *built.kubernetes_nodes)}):
        # A failed host has neither: its expiry export is inert anyway.
        after = [step for step in (joined.get(name) or etcd_cluster.started.get(name),) if step]
        CertificateExpiry(f"{name}-cert-expiry", hosts[name], after)

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
