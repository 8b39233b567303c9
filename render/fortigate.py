"""The FortiGate 200F rule base in front of the cluster, as data (components/firewall.py applies it).

Internet traffic may reach only the F5 virtual address on its HTTPS port (and port 80, which
the F5 answers with a redirect to HTTPS); SSH to the nodes and the Kubernetes API VIP are
reachable only from the bastion network. The nodes reach the backup vault's S3 name over HTTPS
through a traffic shaper that holds every upload there (pgBackRest, which has no rate option,
and rclone) to the uplink share off-site backups may use (render/backup.py `share_mbps`); that
policy comes before the general egress one, which lets the node network out for what the
cluster itself fetches or sends, with source NAT: HTTPS (packages, images, SNS), NTP
(`hosts.ntpServers`) and SMTP to Alertmanager's smarthost port. An explicit last policy denies
everything else. Every policy logs all its sessions (`logtraffic all`), the deny included, so a
blocked attempt is on record (FortiOS "Firewall policy" reference:
`logtraffic {all | utm | disable}`).
"""

from dataclasses import dataclass
from ipaddress import IPv4Network, ip_network

from model.schema import FortiGate, StackConfig
from render import backup

# FortiOS built-in names: the any address, the any service, the any interface.
ANY_ADDRESS = "all"
ANY_SERVICE = "ALL"
ANY_INTERFACE = "any"
LOG_ALL = "all"
VAULT = "seoul-backup-vault"
S3_SERVICE = "seoul-s3-https"


@dataclass(frozen=True)
class Address:
    """A firewall address object: type ipmask with `subnet` (FortiOS's "<ip> <netmask>"), or
    type fqdn with `fqdn` (the FortiGate resolves the name and follows its addresses)."""

    name: str
    subnet: str
    comment: str
    fqdn: str = ""


@dataclass(frozen=True)
class Shaper:
    """A shared traffic shaper: `maximum_mbps` over every session of the policies using it."""

    name: str
    maximum_mbps: int


@dataclass(frozen=True)
class Service:
    """A custom service: `ports` and `udp_ports` are FortiOS's tcp-portrange and udp-portrange
    ("443", "6800-7300"; "" for none)."""

    name: str
    ports: str
    comment: str
    udp_ports: str = ""


@dataclass(frozen=True)
class Rule:
    """One firewall policy, evaluated in `policyid` order; every rule logs all sessions."""

    policyid: int
    name: str
    source_interface: str
    destination_interface: str
    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    services: tuple[str, ...]
    action: str  # accept | deny
    nat: bool = False  # source NAT to the outgoing interface's address
    shaper: str | None = None  # traffic-shaper of the original direction (what the sources send)


def _subnet(network: IPv4Network) -> str:
    return f"{network.network_address} {network.netmask}"


def _host(address: object) -> str:
    return _subnet(ip_network(f"{address}/32"))


def addresses(cfg: StackConfig, fw: FortiGate) -> list[Address]:
    return [
        Address("seoul-f5-vip", _host(cfg.f5.virtual_address), "F5 BIG-IP public virtual address"),
        Address("seoul-node-network", _subnet(cfg.network.node_cidr), "Kubernetes and storage hosts"),
        Address("seoul-k8s-api-vip", _host(cfg.network.api_vip), "Kubernetes API VIP (HAProxy/Keepalived)"),
        Address("seoul-bastion", _subnet(fw.bastion_cidr), "operators' bastion network"),
        Address(VAULT, "", "the S3 backup vault (virtual-hosted bucket name)", fqdn=backup.vault_host(cfg)),
    ]


def _smtp_port(cfg: StackConfig) -> str | None:
    # Alertmanager's smarthost is "host:port" (model AlertEmail).
    return cfg.observability.email.smarthost.rsplit(":", 1)[1] if cfg.observability else None


def shapers(cfg: StackConfig) -> list[Shaper]:
    """The backups' share of the uplink, for every upload to the vault together."""
    return [Shaper(backup.SHAPER, backup.share_mbps(cfg))]


def services(cfg: StackConfig) -> list[Service]:
    egress = " ".join(dict.fromkeys(p for p in ("443", _smtp_port(cfg)) if p))
    return [
        Service("seoul-https", str(cfg.f5.port), "the F5 virtual server"),
        Service("seoul-http", "80", "the F5's redirect to HTTPS"),
        Service("seoul-egress", egress, "what the cluster sends out: HTTPS, SMTP to the smarthost; NTP", "123"),
        Service("seoul-ssh", str(cfg.ssh.port), "SSH to the hosts"),
        Service("seoul-k8s-api", str(cfg.network.api_vip_port), "Kubernetes API on the VIP"),
        Service(S3_SERVICE, "443", "HTTPS to S3"),
    ]


def rules(fw: FortiGate) -> list[Rule]:
    """Allow internet -> F5 VIP (https, http), bastion -> nodes (ssh), bastion -> API VIP, nodes ->
    the vault (https, NAT, shaped uploads; downloads for restores unshaped), nodes -> internet
    (egress services, NAT); deny the rest. First match wins: the vault's policy comes first."""
    ports = fw.interfaces
    return [
        Rule(10, "internet-to-f5-https", ports.internet, ports.edge, (ANY_ADDRESS,), ("seoul-f5-vip",),
             ("seoul-https", "seoul-http"), "accept"),
        Rule(20, "bastion-ssh-to-nodes", ports.bastion, ports.nodes, ("seoul-bastion",), ("seoul-node-network",),
             ("seoul-ssh",), "accept"),
        Rule(30, "bastion-to-k8s-api", ports.bastion, ports.nodes, ("seoul-bastion",), ("seoul-k8s-api-vip",),
             ("seoul-k8s-api",), "accept"),
        Rule(40, "nodes-to-backup-vault", ports.nodes, ports.internet, ("seoul-node-network",), (VAULT,),
             (S3_SERVICE,), "accept", nat=True, shaper=backup.SHAPER),
        Rule(50, "nodes-to-internet", ports.nodes, ports.internet, ("seoul-node-network",), (ANY_ADDRESS,),
             ("seoul-egress",), "accept", nat=True),
        Rule(1000, "deny-everything-else", ANY_INTERFACE, ANY_INTERFACE, (ANY_ADDRESS,), (ANY_ADDRESS,),
             (ANY_SERVICE,), "deny"),
    ]
