"""Add-ons at the cluster's edge: ingress-nginx on the ingress hosts, metrics-server, the CSR approver.

All wait for Calico (their pods need the pod network). The kubelet CSR approver comes before
metrics-server: metrics-server can only scrape kubelets whose serving certificates exist.
"""

from collections.abc import Sequence

import pulumi

from components.kube import apply_manifest, in_cluster, install_release
from model.schema import StackConfig
from render import addons


class ClusterAddons(pulumi.ComponentResource):
    """`ingress`: the ingress-nginx release (F5 pool members and app Ingresses wait for it)."""

    ingress: pulumi.Resource

    def __init__(self, name: str, cfg: StackConfig, provider: pulumi.ProviderResource,
                 after: Sequence[pulumi.Resource], opts: pulumi.ResourceOptions | None = None):
        super().__init__("seoul:addons:ClusterAddons", name, None, opts)
        self.ingress = install_release(addons.ingress_release(cfg), in_cluster(self, provider, after))
        approver = [apply_manifest(obj, in_cluster(self, provider, after)) for obj in addons.csr_approver(cfg)]
        install_release(addons.metrics_server_release(), in_cluster(self, provider, [*after, *approver]))
        self.register_outputs({
            "ingressClass": addons.INGRESS_CLASS,
            "ingressNodes": [h.name for h in cfg.ingress_nodes],
        })
