"""The kubeadm control plane: init on the init node, the other control planes join one at a time."""

from collections.abc import Mapping

import pulumi

from components.apivip import ApiVip
from components.etcd import EtcdCluster
from components.kubernetes.join import join_node
from components.kubernetes.runtime import ContainerRuntime
from components.remote import HostHandle, Target, apply_file_set, child_opts, put, put_file, run, run_for_failed
from model.schema import HostSpec, StackConfig
from render import apivip, kubeadm


class ControlPlane(pulumi.ComponentResource):
    """`init`: `kubeadm init` done; `joins[name]`: that control plane joined; `kubeconfig`: admin, secret."""

    first: HostSpec
    init: pulumi.Resource
    joins: dict[str, pulumi.Resource]
    registered: dict[str, pulumi.Resource]
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
        self._hosts = hosts
        self.first = cfg.init_node  # live (model/invariants.py)
        built = cfg.as_built  # failed control planes too: their resources stay, inert
        prepared = {
            cp.name: [
                *self._files(built if cp.failed else cfg, cp, etcd_cluster),
                hosts[cp.name].ready,
                runtimes[cp.name].ready,
                api_vip.ready[cp.name],
            ]
            for cp in built.control_planes
        }
        self.init = run(self.first_target, kubeadm.init(cfg, self.first),
                        child_opts(self, [*prepared[self.first.name], etcd_cluster.ready]))
        self.kubeconfig_step = run(self.first_target, kubeadm.admin_kubeconfig(), child_opts(self, [self.init]),
                                   secret_output=True)
        self.kubeconfig = pulumi.Output.secret(self.kubeconfig_step.stdout)

        # One at a time: each join starts after the previous control plane has joined.
        self.joins = {}
        self.registered = {}
        previous = self.init
        for cp in built.control_planes[1:]:
            joined, self.registered[cp.name] = join_node(self, cfg, cp, hosts[cp.name], self.first_target,
                                                         after=[*prepared[cp.name], previous])
            if cp.failed:
                run_for_failed(self.first_target, cp, kubeadm.node_gone(cp), child_opts(self, [self.init]))
            else:
                self.joins[cp.name] = previous = joined
        for cp in built.control_planes:
            joined = self.joins.get(cp.name, self.init)
            rendered = built if cp.failed else cfg
            apply_file_set(self, hosts[cp.name].target, kubeadm.certs_renewal(rendered, cp), after=[joined])

        self.register_outputs(
            {
                "endpoint": apivip.endpoint(cfg),
                "first": self.first.name,
                "controlPlanes": [cp.name for cp in cfg.control_planes],
            }
        )

    @property
    def first_target(self) -> Target:
        """How to reach the init node, where join material is minted."""
        return self._hosts[self.first.name].target

    def _files(self, cfg: StackConfig, cp: HostSpec, etcd_cluster: EtcdCluster) -> list[pulumi.Resource]:
        """Everything kubeadm reads on this control plane, in place before init/join."""
        target = self._hosts[cp.name].target
        after = child_opts(self, [self._hosts[cp.name].ready])
        ca = [
            put_file(f"{cp.name}-etcd-ca-cert", target, kubeadm.ETCD_CA_CERT, etcd_cluster.ca_cert, after,
                     mode="0644", secret=True),
            put_file(f"{cp.name}-etcd-ca-key", target, kubeadm.ETCD_CA_KEY, etcd_cluster.ca_key, after,
                     mode="0600", secret=True),
        ]
        client_cert = run(target, kubeadm.etcd_client_cert(cp), child_opts(self, ca))
        files = (kubeadm.audit_policy_file(), kubeadm.kubeadm_config(cfg, cp))
        return [client_cert, *(put(target, f, after) for f in files)]
