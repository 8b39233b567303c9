"""Calico (tigera-operator) with BGP to the top-of-rack switches, and MetalLB's address pool.

Pod and LoadBalancer routes are announced by Calico over BGP (docs.tigera.io, "Configure BGP
peering" and "Advertise Kubernetes service IP addresses"); MetalLB runs its controller only
and hands out addresses from `network.loadBalancerCidr` (metallb.io, "Calico" under "Issues
with Calico": its speaker would open BGP sessions that collide with Calico's).

Calico resources are `crd.projectcalico.org/v1` objects (the CRDs the tigera-operator chart
installs): they exist as soon as the chart does, with no Calico API server to wait for.
Every field is set explicitly, since nothing here goes through calicoctl's defaulting.
"""

from model import releases
from model.schema import StackConfig, TorPeer
from render.helm import HelmRelease, Manifest, manifest

CALICO_NAMESPACE = "tigera-operator"
METALLB_NAMESPACE = "metallb-system"
# Node label naming the rack a host sits in (hosts[].rack); rack-scoped BGP peers select on it.
RACK_LABEL = "topology.seoul-cluster.io/rack"

BGP_PORT = 179        # BGP sessions with the ToR switches
TYPHA_PORT = 5473     # calico-node -> Typha (a node that blocks it never becomes ready)
VXLAN_PORT = 4789     # Calico's VXLAN (udp)
IPIP_PROTOCOL = "4"   # IP-in-IP is IP protocol 4 (/etc/protocols calls it ipencap, not ipip)


def node_firewall(cfg: StackConfig) -> tuple[list[str], list[str], list[str]]:
    """(tcp ports, udp ports, IP protocols) every Kubernetes node opens for Calico, from the other nodes."""
    encapsulation = cfg.network.encapsulation
    udp = [str(VXLAN_PORT)] if encapsulation.startswith("VXLAN") else []
    protocols = [IPIP_PROTOCOL] if encapsulation.startswith("IPIP") else []
    return [str(BGP_PORT), str(TYPHA_PORT)], udp, protocols


def operator_release() -> HelmRelease:
    """The tigera-operator chart: the operator and the CRDs. The Installation is ours (`installation`)."""
    values = {
        # The Installation is a separate object (validated against its CRD, ordered by us).
        "installation": {"enabled": False},
        # No aggregated Calico API server: the crd.projectcalico.org objects are managed directly.
        "apiServer": {"enabled": False},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    }
    return HelmRelease("tigera-operator", releases.TIGERA_OPERATOR, CALICO_NAMESPACE, values)


def installation(cfg: StackConfig) -> Manifest:
    """operator.tigera.io/v1 Installation `default`: BGP on, autodetection inside nodeCidr, one pod pool."""
    net = cfg.network
    pool = {
        "cidr": str(net.pod_cidr),
        "blockSize": 26,
        "encapsulation": net.encapsulation,
        "natOutgoing": "Enabled",
        "nodeSelector": "all()",
    }
    spec = {
        "variant": "Calico",
        "cni": {"type": "Calico", "ipam": {"type": "Calico"}},
        "calicoNetwork": {
            "bgp": "Enabled",
            "hostPorts": "Enabled",
            "linuxDataplane": "Iptables",
            "nodeAddressAutodetectionV4": {"cidrs": [str(net.node_cidr)]},
            "ipPools": [pool],
        },
        "controlPlaneReplicas": 2,
        "nodeMetricsPort": 9091,
        "typhaMetricsPort": 9093,
    }
    return manifest("operator.tigera.io/v1", "Installation", "default", spec=spec)


def peer_name(peer: TorPeer) -> str:
    return "tor-" + str(peer.address).replace(".", "-")


def bgp_peers(cfg: StackConfig) -> list[Manifest]:
    """One BGPPeer per `network.torPeers` entry; a peer with a rack serves only that rack's nodes."""
    peers = []
    for peer in cfg.network.tor_peers:
        spec = {"peerIP": str(peer.address), "asNumber": peer.as_number}
        if peer.rack:
            spec["nodeSelector"] = f"{RACK_LABEL} == '{peer.rack}'"
        peers.append(manifest("crd.projectcalico.org/v1", "BGPPeer", peer_name(peer), spec=spec))
    return peers


def bgp_configuration(cfg: StackConfig) -> Manifest:
    """BGPConfiguration `default`: the cluster AS, LoadBalancer IPs announced, mesh off once peers exist."""
    spec = {
        "asNumber": cfg.network.as_number,
        # With ToR peers every node learns routes from the switches; a full mesh on top
        # would be n^2 sessions for nothing.
        "nodeToNodeMeshEnabled": not cfg.network.tor_peers,
        "serviceLoadBalancerIPs": [{"cidr": str(cfg.network.load_balancer_cidr)}],
        "logSeverityScreen": "Info",
    }
    return manifest("crd.projectcalico.org/v1", "BGPConfiguration", "default", spec=spec)


def metallb_release() -> HelmRelease:
    """MetalLB with its controller only (address assignment); Calico announces the addresses."""
    values = {
        "speaker": {"enabled": False},
        "frrk8s": {"enabled": False},
        "crds": {"enabled": True},
        "controller": {
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        },
    }
    return HelmRelease("metallb", releases.METALLB, METALLB_NAMESPACE, values)


def address_pool(cfg: StackConfig) -> Manifest:
    """metallb.io/v1beta1 IPAddressPool for `network.loadBalancerCidr`."""
    spec = {"addresses": [str(cfg.network.load_balancer_cidr)], "autoAssign": True, "avoidBuggyIPs": True}
    return manifest("metallb.io/v1beta1", "IPAddressPool", "load-balancers", METALLB_NAMESPACE, spec=spec)
