"""Ceph facts derived from the stack config: daemon placement, pools by role, cross-key checks.

One home for what several layers need (render/ceph.py, components/ceph.py, components/csi.py,
model/capacity.py). Placement follows upstream guidance: 3 monitors, 5 from 5 hosts up
(docs.ceph.com/en/reef/rados/operations/add-or-rm-mons: "an odd number... 5 for larger
clusters"); 2 managers (one active, one standby); MDS one active plus standbys.
"""

from collections.abc import Iterator
from uuid import NAMESPACE_URL, UUID, uuid5

from model import releases
from model.schema import CephFilesystem, CephPool, HostSpec, StackConfig

Problem = tuple[str, str]

MGR_COUNT = 2
# cephadm's autotune share for hosts that only store (mgr/cephadm/autotune_memory_target_ratio
# defaults to 0.7, docs.ceph.com/en/reef/cephadm/services/osd/#automatically-tuning-osd-memory).
OSD_MEMORY_SHARE = 0.7
# Below Ceph's default osd_memory_target (4 GiB) BlueStore's caches starve.
OSD_MEMORY_MIN_BYTES = 4 * 1024**3
GIB = 1024**3


def mon_count(storage_hosts: int) -> int:
    """Monitors for a cluster of `storage_hosts` hosts: 5 from 5 hosts up, else 3 (1 or fewer hosts: 1)."""
    if storage_hosts >= 5:
        return 5
    return 3 if storage_hosts >= 3 else 1


def mon_hosts(cfg: StackConfig) -> list[HostSpec]:
    """Hosts labelled `mon`: the first `mon_count` storage hosts (bootstrap host first, natural name order)."""
    hosts = cfg.storage_hosts
    return hosts[: mon_count(len(hosts))]


def mgr_hosts(cfg: StackConfig) -> list[HostSpec]:
    """Hosts labelled `mgr`: the first two storage hosts."""
    return cfg.storage_hosts[:MGR_COUNT]


def labels(cfg: StackConfig, host: HostSpec) -> list[str]:
    """cephadm labels of a host: `osd` everywhere, `mon`/`mds`/`mgr` by position, `_admin` on the bootstrap host.

    MDS run on monitor hosts (their placement picks `filesystem.mdsCount` of them).
    """
    found = ["osd"]
    if host in mon_hosts(cfg):
        found += ["mon", "mds"]
    if host in mgr_hosts(cfg):
        found.append("mgr")
    if host == cfg.storage_hosts[0]:
        found.append("_admin")
    return found


def bootstrap_host(cfg: StackConfig) -> HostSpec:
    """The storage host that runs `cephadm bootstrap` once and every cluster-wide `ceph` command."""
    return cfg.storage_hosts[0]


def fsid(cfg: StackConfig) -> UUID:
    """`ceph.fsid`, or a UUID derived from the environment (stable across runs, distinct per environment)."""
    return cfg.ceph.fsid or uuid5(NAMESPACE_URL, f"https://seoul-cluster.internal/{cfg.environment}/ceph")


def pool(cfg: StackConfig, name: str) -> CephPool | None:
    return next((p for p in cfg.ceph.pools if p.name == name), None)


def rbd_metadata_pool(cfg: StackConfig, ec_pool: CephPool) -> CephPool | None:
    """The replicated rbd pool that holds the image metadata of RBD images on `ec_pool`."""
    if ec_pool.metadata_pool:
        return pool(cfg, ec_pool.metadata_pool)
    return next((p for p in cfg.ceph.pools if p.type == "replicated" and p.application == "rbd"), None)


def default_rbd_pool(cfg: StackConfig) -> CephPool | None:
    """The first replicated rbd pool: backs the default StorageClass."""
    return next((p for p in cfg.ceph.pools if p.type == "replicated" and p.application == "rbd"), None)


def ec_rbd_pools(cfg: StackConfig) -> list[CephPool]:
    return [p for p in cfg.ceph.pools if p.type == "erasure" and p.application == "rbd"]


def filesystem(cfg: StackConfig) -> CephFilesystem | None:
    """The CephFS volume when both of its pools are in `ceph.pools`, else None."""
    fs = cfg.ceph.filesystem
    return fs if pool(cfg, fs.metadata_pool) and pool(cfg, fs.data_pool) else None


def osd_memory_target(cfg: StackConfig) -> int:
    """osd_memory_target in bytes: 70% of a storage host's RAM over its OSDs (the host with most disks), whole GiB."""
    disks = max((len(h.disks) for h in cfg.with_role("storage")), default=1) or 1
    share = cfg.ceph.storage_host_memory_gib * OSD_MEMORY_SHARE / disks
    return int(share) * GIB


def problems(cfg: StackConfig) -> list[Problem]:
    """Ceph checks that make the config invalid (exit 2); each (key path, message)."""
    return [*releases.ceph_problems(cfg.ceph.version), *_bootstrap(cfg), *_pools(cfg), *_rbd_on_ec(cfg),
            *_filesystem(cfg), *_ratios(cfg), *_memory(cfg)]


def _bootstrap(cfg: StackConfig) -> Iterator[Problem]:
    name = cfg.ceph.bootstrap_host
    built = cfg.as_built.storage_hosts
    if name in {h.name for h in cfg.failed_hosts}:
        yield "ceph.bootstrapHost", f"{name} is marked failed: pin a live storage host (README: When a server dies)"
    elif name is not None and name not in {h.name for h in cfg.with_role("storage")}:
        yield "ceph.bootstrapHost", f"{name} is not a host with the role storage"
    elif name is None and built and built[0].failed:
        yield "ceph.bootstrapHost", f"{built[0].name}, the bootstrap host, is marked failed: pin a live storage host"
    if cfg.ceph.pools and not cfg.with_role("storage"):
        yield "ceph.pools", "pools are configured but no host has the role storage"


def _pools(cfg: StackConfig) -> Iterator[Problem]:
    # Duplicate names and pools needing more hosts than there are: model/invariants.py.
    for i, p in enumerate(cfg.ceph.pools):
        if p.metadata_pool is not None and not (p.type == "erasure" and p.application == "rbd"):
            yield f"ceph.pools[{i}].metadataPool", "only an erasure-coded rbd pool has a metadata pool"


def _rbd_on_ec(cfg: StackConfig) -> Iterator[Problem]:
    for i, p in enumerate(cfg.ceph.pools):
        if not (p.type == "erasure" and p.application == "rbd"):
            continue
        meta = rbd_metadata_pool(cfg, p)
        if meta is None or meta.type != "replicated" or meta.application != "rbd":
            wanted = p.metadata_pool or "a replicated rbd pool"
            yield f"ceph.pools[{i}].metadataPool", (
                f"RBD on erasure-coded {p.name} needs {wanted} in ceph.pools for its image metadata")


def _filesystem(cfg: StackConfig) -> Iterator[Problem]:
    fs = cfg.ceph.filesystem
    found = {role: pool(cfg, name) for role, name in (("metadataPool", fs.metadata_pool), ("dataPool", fs.data_pool))}
    if not any(found.values()):
        return
    for role, p in found.items():
        name = getattr(fs, "metadata_pool" if role == "metadataPool" else "data_pool")
        if p is None:
            yield f"ceph.filesystem.{role}", f"{name} is not in ceph.pools (CephFS needs both of its pools)"
        elif p.application != "cephfs":
            yield f"ceph.filesystem.{role}", f"{name} has application {p.application}, not cephfs"
        elif p.type != "replicated":
            # Ceph refuses an EC default data pool without --force; metadata must be replicated.
            yield f"ceph.filesystem.{role}", f"{name} must be replicated (add EC data pools as extra data pools)"


def _ratios(cfg: StackConfig) -> Iterator[Problem]:
    c = cfg.ceph
    if not c.nearfull_ratio < c.backfillfull_ratio < c.full_ratio:
        yield "ceph.backfillfullRatio", (
            f"ratios must rise: nearfull {c.nearfull_ratio} < backfillfull {c.backfillfull_ratio} "
            f"< full {c.full_ratio}")


def _memory(cfg: StackConfig) -> Iterator[Problem]:
    if cfg.with_role("storage") and osd_memory_target(cfg) < OSD_MEMORY_MIN_BYTES:
        yield "ceph.storageHostMemoryGib", (
            f"{cfg.ceph.storage_host_memory_gib} GiB leaves under 4 GiB per OSD (70% over the most OSDs on one host)")
