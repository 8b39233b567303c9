"""Facts that span several keys: each check yields (key path, message) problems."""

from collections import Counter
from collections.abc import Iterator
from itertools import combinations

from model import ceph
from model.schema import StackConfig

Problem = tuple[str, str]


def problems(cfg: StackConfig) -> list[Problem]:
    return [
        *_unique_hosts(cfg),
        *_addresses_in_node_cidr(cfg),
        *_cidrs_disjoint(cfg),
        *_vips_free(cfg),
        *_role_counts(cfg),
        *_storage_disks(cfg),
        *_bootstrap_hosts(cfg),
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


def _vips_free(cfg: StackConfig) -> Iterator[Problem]:
    by_address = {h.address: h.name for h in cfg.hosts}
    for path, vip in (("network.apiVip", cfg.network.api_vip), ("f5.virtualAddress", cfg.f5.virtual_address)):
        if vip in by_address:
            yield path, f"{vip} is the address of host {by_address[vip]}"


def _role_counts(cfg: StackConfig) -> Iterator[Problem]:
    etcd = len(cfg.with_role("etcd"))
    if etcd < 3 or etcd % 2 == 0:
        yield "hosts", f"{etcd} etcd members: etcd needs an odd count of at least 3 to keep quorum"
    if not cfg.with_role("control-plane"):
        yield "hosts", "no host has the role control-plane"


def _storage_disks(cfg: StackConfig) -> Iterator[Problem]:
    for i, host in enumerate(cfg.hosts):
        if host.has("storage") and not host.disks:
            yield f"hosts[{i}].disks", f"storage host {host.name} lists no OSD disks"
        if host.disks and not host.has("storage"):
            yield f"hosts[{i}].disks", f"{host.name} lists disks but has no storage role"
        for dup, count in Counter(host.disks).items():
            if count > 1:
                yield f"hosts[{i}].disks", f"{dup} is listed {count} times"


def _bootstrap_hosts(cfg: StackConfig) -> Iterator[Problem]:
    pinned = (("kubernetes.initNode", cfg.kubernetes.init_node, "control-plane"),
              ("etcd.caMember", cfg.etcd.ca_member, "etcd"))
    for path, name, role in pinned:
        if name is not None and name not in {h.name for h in cfg.with_role(role)}:
            yield path, f"{name} is not a host with the role {role}"
