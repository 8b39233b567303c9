"""Facts that span several keys: each check yields (key path, message) problems."""

from collections import Counter
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network, ip_address
from itertools import combinations

from model import ceph
from model.schema import StackConfig

Problem = tuple[str, str]

# Ports that a role's daemons bind on every interface of a host, so sshd (ssh.port) and
# HAProxy on the VIP (network.apiVipPort) cannot have them. Upstream:
# https://kubernetes.io/docs/reference/networking/ports-and-protocols/
BOUND_PORTS = {
    "control-plane": {6443: "kube-apiserver", 10250: "the kubelet"},
    "worker": {10250: "the kubelet"},
    "ingress": {10250: "the kubelet", 80: "ingress-nginx", 443: "ingress-nginx"},
    "etcd": {2379: "etcd (clients)", 2380: "etcd (peers)"},
}


def problems(cfg: StackConfig) -> list[Problem]:
    """Every cross-key problem of `cfg`, as (key path, message naming the value) pairs."""
    return [
        *_unique_hosts(cfg),
        *_addresses_in_node_cidr(cfg),
        *_usable_addresses(cfg),
        *_distinct_addresses(cfg),
        *_outside_cluster_ranges(cfg),
        *_cidrs_disjoint(cfg),
        *_unique_entries(cfg),
        *_role_counts(cfg),
        *_storage_disks(cfg),
        *_pools_placeable(cfg),
        *_bootstrap_hosts(cfg),
        *_deploy_keeps_access(cfg),
        *_ports_free(cfg),
        *_peer_racks(cfg),
        *_unique_apps(cfg),
        *_backup_images(cfg),
        *ceph.problems(cfg),  # Ceph's own checks: model/ceph.py
    ]


def _unique_hosts(cfg: StackConfig) -> Iterator[Problem]:
    for attr in ("name", "address"):
        seen = Counter(str(getattr(h, attr)) for h in cfg.hosts)
        for i, host in enumerate(cfg.hosts):
            value = str(getattr(host, attr))
            if seen[value] > 1:
                yield f"hosts[{i}].{attr}", f"{value} is used by {seen[value]} hosts"


def _addresses_in_node_cidr(cfg: StackConfig) -> Iterator[Problem]:
    cidr = cfg.network.node_cidr
    for i, host in enumerate(cfg.hosts):
        if host.address not in cidr:
            yield f"hosts[{i}].address", f"{host.address} is outside network.nodeCidr {cidr}"
    if cfg.network.api_vip not in cidr:
        yield "network.apiVip", f"{cfg.network.api_vip} is outside network.nodeCidr {cidr}"


def _ntp_addresses(cfg: StackConfig) -> list[tuple[str, IPv4Address]]:
    """NTP servers given as IPv4 addresses (names are resolved by chrony, not checked here)."""
    found = []
    for i, server in enumerate(cfg.network.ntp_servers):
        try:
            address = ip_address(server)
        except ValueError:
            continue
        if isinstance(address, IPv4Address):
            found.append((f"network.ntpServers[{i}]", address))
    return found


def _f5_management_address(cfg: StackConfig) -> list[tuple[str, IPv4Address]]:
    try:
        address = ip_address(cfg.f5.management.address)
    except ValueError:
        return []  # a DNS name
    return [("f5.management.address", address)] if isinstance(address, IPv4Address) else []


def _addresses(cfg: StackConfig) -> list[tuple[str, IPv4Address]]:
    """Every single address the config names, as (key path, address), NTP servers excluded."""
    return [
        *((f"hosts[{i}].address", h.address) for i, h in enumerate(cfg.hosts)),
        ("network.apiVip", cfg.network.api_vip),
        *((f"network.torPeers[{i}].address", p.address) for i, p in enumerate(cfg.network.tor_peers)),
        ("f5.virtualAddress", cfg.f5.virtual_address),
        *_f5_management_address(cfg),
    ]


def _unusable(address: IPv4Address, node_cidr: IPv4Network) -> str | None:
    """Why no machine can hold `address`, or None."""
    if address.is_unspecified or address.is_loopback or address.is_multicast or address.is_link_local \
            or address.is_reserved:
        return "is not a unicast address a machine can hold"
    # /31 and /32 have no network or broadcast address (RFC 3021).
    if address in node_cidr and node_cidr.prefixlen <= 30:
        if address == node_cidr.network_address:
            return f"is the network address of network.nodeCidr {node_cidr}"
        if address == node_cidr.broadcast_address:
            return f"is the broadcast address of network.nodeCidr {node_cidr}"
    return None


def _usable_addresses(cfg: StackConfig) -> Iterator[Problem]:
    for path, address in [*_addresses(cfg), *_ntp_addresses(cfg)]:
        reason = _unusable(address, cfg.network.node_cidr)
        if reason:
            yield path, f"{address} {reason}"


def _distinct_addresses(cfg: StackConfig) -> Iterator[Problem]:
    # Hosts among themselves are _unique_hosts' job; everything else must differ from
    # every host and from each other (VIPs, ToR peers, the F5's two addresses).
    host_of = {h.address: h.name for h in reversed(cfg.hosts)}
    first: dict[IPv4Address, str] = {}
    for path, address in _addresses(cfg):
        if path.startswith("hosts["):
            continue
        if address in host_of:
            yield path, f"{address} is the address of host {host_of[address]}"
        elif address in first:
            yield path, f"{address} is also {first[address]}"
        else:
            first[address] = path
    # An NTP server may be a ToR switch or a host, never a virtual address.
    vips = {cfg.network.api_vip: "network.apiVip", cfg.f5.virtual_address: "f5.virtualAddress"}
    for path, address in _ntp_addresses(cfg):
        if address in vips:
            yield path, f"{address} is {vips[address]}, a virtual address, not an NTP server"


def _outside_cluster_ranges(cfg: StackConfig) -> Iterator[Problem]:
    # Pod, Service and LoadBalancer addresses are routed inside the cluster: a machine
    # the config names there would be unreachable. (Inside nodeCidr, _cidrs_disjoint speaks.)
    net = cfg.network
    ranges = {"podCidr": net.pod_cidr, "serviceCidr": net.service_cidr, "loadBalancerCidr": net.load_balancer_cidr}
    for path, address in [*_addresses(cfg), *_ntp_addresses(cfg)]:
        if address in net.node_cidr:
            continue
        for name, cidr in ranges.items():
            if address in cidr:
                yield path, f"{address} is inside network.{name} {cidr}"


def _cidrs_disjoint(cfg: StackConfig) -> Iterator[Problem]:
    net = cfg.network
    named = {
        "nodeCidr": net.node_cidr,
        "podCidr": net.pod_cidr,
        "serviceCidr": net.service_cidr,
        "loadBalancerCidr": net.load_balancer_cidr,
    }
    for (a, cidr_a), (b, cidr_b) in combinations(named.items(), 2):
        if cidr_a.overlaps(cidr_b):
            yield f"network.{b}", f"{cidr_b} overlaps network.{a} {cidr_a}"


def _repeated(path: str, values: list[str], what: str) -> Iterator[Problem]:
    """One problem for each entry of `values` that repeats an earlier one."""
    first: dict[str, int] = {}
    for i, value in enumerate(values):
        if value in first:
            yield f"{path}[{i}]{what}", f"{value} is listed again (first at {path}[{first[value]}])"
        else:
            first[value] = i


def _unique_entries(cfg: StackConfig) -> Iterator[Problem]:
    # Lists whose entries are identified by a name or address (hosts: _unique_hosts,
    # disks: _storage_disks).
    yield from _repeated("ceph.pools", [p.name for p in cfg.ceph.pools], ".name")
    yield from _repeated("network.torPeers", [str(p.address) for p in cfg.network.tor_peers], ".address")
    yield from _repeated("network.ntpServers", [s.lower() for s in cfg.network.ntp_servers], "")
    # The backup snapshots each entry under one name a run: a repeat fails the second `rbd snap create`.
    yield from _repeated("backup.cephImages", list(cfg.backup.ceph_images), "")
    for i, host in enumerate(cfg.hosts):
        yield from _repeated(f"hosts[{i}].roles", list(host.roles), "")


def _role_counts(cfg: StackConfig) -> Iterator[Problem]:
    # A failed member stays in etcd's membership until its cleanup removes it: count it.
    listed = [h for h in cfg.hosts if h.has("etcd")]
    if len(listed) < 3 or len(listed) % 2 == 0:
        yield "hosts", f"{len(listed)} etcd members: etcd needs an odd count of at least 3 to keep quorum"
    lost = [h.name for h in listed if h.failed]
    if len(lost) >= (len(listed) + 1) // 2:
        yield "hosts", (f"{', '.join(lost)} failed: {len(listed) - len(lost)} of {len(listed)} etcd members left, "
                        "quorum is lost; restore etcd from a snapshot (docs/kubernetes.md) before changing the stack")
    if not cfg.with_role("control-plane"):
        yield "hosts", "no live host has the role control-plane"


def _storage_disks(cfg: StackConfig) -> Iterator[Problem]:
    for i, host in enumerate(cfg.hosts):
        if host.has("storage") and not host.disks:
            yield f"hosts[{i}].disks", f"storage host {host.name} lists no OSD disks"
        if host.disks and not host.has("storage"):
            yield f"hosts[{i}].disks", f"{host.name} lists disks but has no storage role"
        for dup, count in Counter(host.disks).items():
            if count > 1:
                yield f"hosts[{i}].disks", f"{dup} is listed {count} times"


def _pools_placeable(cfg: StackConfig) -> Iterator[Problem]:
    # Ceph's default CRUSH rule puts each replica (or EC chunk) on a different host: a
    # pool needing more hosts than there are never becomes active+clean.
    # https://docs.ceph.com/en/reef/rados/operations/pools/ (size), .../erasure-code/ (k+m)
    storage = len(cfg.with_role("storage"))
    for i, pool in enumerate(cfg.ceph.pools):
        if pool.type == "replicated" and pool.size is not None and pool.size > storage:
            yield (f"ceph.pools[{i}].size", f"{pool.size}: pool {pool.name} needs {pool.size} storage hosts "
                   f"(one per replica), there {_are(storage)}")
        if pool.type == "erasure" and pool.k is not None and pool.m is not None and pool.k + pool.m > storage:
            yield (f"ceph.pools[{i}]", f"k={pool.k} m={pool.m}: pool {pool.name} needs {pool.k + pool.m} storage "
                   f"hosts (one per chunk), there {_are(storage)}")


def _are(count: int) -> str:
    return f"is {count} storage host" if count == 1 else f"are {count} storage hosts"


def _bootstrap_hosts(cfg: StackConfig) -> Iterator[Problem]:
    pinned = (("kubernetes.initNode", cfg.kubernetes.init_node, "control-plane"),
              ("etcd.caMember", cfg.etcd.ca_member, "etcd"))
    failed = {h.name for h in cfg.failed_hosts}
    for path, name, role in pinned:
        if name in failed:
            yield path, f"{name} is marked failed: pin a live host with the role {role} (README: When a server dies)"
        elif name is not None and name not in {h.name for h in cfg.with_role(role)}:
            yield path, f"{name} is not a host with the role {role}"


def _deploy_keeps_access(cfg: StackConfig) -> Iterator[Problem]:
    # Hardening rewrites sshd's config on the first `pulumi up`: the deploy's own login
    # must survive it.
    if cfg.ssh.user == "root" and not cfg.hardening.permit_root_login:
        yield ("ssh.user", "root: hardening.permitRootLogin is false, so hardening sshd would lock the deploy "
               "out of every host; deploy as a user with passwordless sudo")


def _ports_free(cfg: StackConfig) -> Iterator[Problem]:
    checked = (("ssh.port", cfg.ssh.port, cfg.hosts),
               ("network.apiVipPort", cfg.network.api_vip_port, cfg.with_role("control-plane")))
    for path, port, hosts in checked:
        for role, bound in BOUND_PORTS.items():
            users = [h.name for h in hosts if h.has(role)]
            if port in bound and users:
                yield path, f"{port} is taken by {bound[port]} on {role} hosts ({', '.join(users[:3])}" \
                            f"{', ...' if len(users) > 3 else ''})"
                break
    if cfg.network.api_vip_port == cfg.ssh.port and cfg.with_role("control-plane"):
        yield "network.apiVipPort", f"{cfg.network.api_vip_port} is ssh.port, which sshd holds on control planes"


def _peer_racks(cfg: StackConfig) -> Iterator[Problem]:
    racks = {h.rack for h in cfg.kubernetes_nodes if h.rack}
    for i, peer in enumerate(cfg.network.tor_peers):
        if peer.rack is not None and peer.rack not in racks:
            yield f"network.torPeers[{i}].rack", f"{peer.rack}: no Kubernetes node is in this rack"


def _unique_apps(cfg: StackConfig) -> Iterator[Problem]:
    for attr in ("name", "host"):
        seen = Counter(getattr(a, attr) for a in cfg.apps)
        for i, app in enumerate(cfg.apps):
            if seen[getattr(app, attr)] > 1:
                yield f"apps[{i}].{attr}", f"{getattr(app, attr)} is used by {seen[getattr(app, attr)]} apps"


def _backup_images(cfg: StackConfig) -> Iterator[Problem]:
    # `rbd` names an image by the pool that holds its header: a replicated rbd pool. An image
    # whose data is erasure-coded is named by its metadata pool (the StorageClass's `pool`), so
    # an erasure-coded pool in `pool/image` names no image.
    # https://docs.ceph.com/en/reef/rados/operations/erasure-code/#erasure-coding-with-overwrites
    for i, spec in enumerate(cfg.backup.ceph_images):
        name = spec.split("/", 1)[0]
        found = ceph.pool(cfg, name)
        path = f"backup.cephImages[{i}]"
        if found is None:
            yield path, f"{spec}: pool {name} is not in ceph.pools"
        elif found.type == "erasure":
            meta = ceph.rbd_metadata_pool(cfg, found) if found.application == "rbd" else None
            hint = f": name the image by its metadata pool ({meta.name}/...)" if meta else ""
            yield path, f"{spec}: pool {name} is erasure-coded and holds no RBD image headers{hint}"
        elif found.application != "rbd":
            yield path, f"{spec}: pool {name} is a {found.application} pool, not an rbd one"
