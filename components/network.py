"""Cluster networking: Calico with BGP to the top-of-rack switches, MetalLB's address pool.

Order, where the real world needs it:
  tigera-operator (CRDs, operator) -> Installation (Calico on every node)
                                   -> BGPPeers -> BGPConfiguration (mesh off only once peers exist)
  Installation -> MetalLB (controller only; its pod needs the pod network) -> IPAddressPool
"""

import pulumi

from components.kube import apply_manifest, in_cluster, install_release
from model.schema import StackConfig
from render import network


class ClusterNetwork(pulumi.ComponentResource):
    """`ready`: Calico is installed (pods can get addresses); `peers`: the BGPPeer objects by name."""

    ready: pulumi.Resource
    peers: dict[str, pulumi.Resource]

    def __init__(self, name: str, cfg: StackConfig, provider: pulumi.ProviderResource,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("seoul:network:ClusterNetwork", name, None, opts)
        operator = install_release(network.operator_release(), in_cluster(self, provider))
        self.ready = apply_manifest(network.installation(cfg), in_cluster(self, provider, [operator]))
        self.peers = {
            peer["metadata"]["name"]: apply_manifest(peer, in_cluster(self, provider, [operator]))
            for peer in network.bgp_peers(cfg)
        }
        # The node-to-node mesh goes off only after every ToR peer exists.
        apply_manifest(network.bgp_configuration(cfg), in_cluster(self, provider, [operator, *self.peers.values()]))

        metallb = install_release(network.metallb_release(), in_cluster(self, provider, [self.ready]))
        apply_manifest(network.address_pool(cfg), in_cluster(self, provider, [metallb]))
        self.register_outputs({
            "calicoVersion": network.operator_release().chart.version,
            "bgpPeers": sorted(self.peers),
            "loadBalancerCidr": str(cfg.network.load_balancer_cidr),
        })
