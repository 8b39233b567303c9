"""Every Kubernetes node that is not a control plane."""

from collections.abc import Mapping

import pulumi

from components.kubernetes.control_plane import ControlPlane
from components.kubernetes.join import join_node
from components.kubernetes.runtime import ContainerRuntime
from components.remote import HostHandle, child_opts, run_for_failed
from model.schema import StackConfig
from render import kubeadm


class WorkerPool(pulumi.ComponentResource):
    """Each worker joins on its own, after `kubeadm init` and its own host only.

    `joins[name]`: the worker joined; `registered[name]`: its registration (removal drains it).
    """

    joins: dict[str, pulumi.Resource]
    registered: dict[str, pulumi.Resource]

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
        self.registered = {}
        for worker in cfg.as_built.workers:  # failed ones too: their resources stay, inert
            handle = hosts[worker.name]
            after = [handle.ready, runtimes[worker.name].ready, control_plane.init]
            joined, self.registered[worker.name] = join_node(
                self, cfg, worker, handle, control_plane.first_target, after,
                files=(kubeadm.kubeadm_config(cfg, worker),))
            if worker.failed:
                run_for_failed(control_plane.first_target, worker, kubeadm.node_gone(worker),
                               child_opts(self, [control_plane.init]))
            else:
                self.joins[worker.name] = joined
        self.register_outputs({"nodes": sorted(self.joins)})
