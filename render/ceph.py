"""Ceph Reef with cephadm: repository, bootstrap, hosts, service specs, settings, pools, CephFS, CSI users.

Pure functions of the model (placement and pool roles from model/ceph.py). Every
cluster-wide step runs on the bootstrap host (`ceph.bootstrapHost`), which holds the admin
keyring; per-host steps are named after the host they are for. Specs are cephadm service
specifications (docs.ceph.com/en/reef/cephadm/services/#service-specification) applied with
`ceph orch apply -i`, which is declarative and safe to repeat.
"""

import yaml

from model import ceph, releases
from model.schema import CephPool, HostSpec, StackConfig
from render.files import FileSet, HostFile, ScriptRun, fingerprint

REPO_FILE = "/etc/yum.repos.d/ceph-reef.repo"
CONF_DIR = "/etc/ceph"
PUBKEY = f"{CONF_DIR}/ceph.pub"  # cephadm's SSH public key, written by bootstrap
CEPHADM_PUBKEY = f"{CONF_DIR}/cephadm-authorized.pub"  # its copy on every storage host
SPEC_DIR = f"{CONF_DIR}/seoul-specs"
FAILURE_DOMAIN = "host"
REPLICATED_RULE = "seoul-replicated-host"
CSI_SUBVOLUME_GROUP = "csi"
MGR_MODULES = ("prometheus",)  # the observability stack scrapes the mgr's exporter on 9283
MON_V1_PORT = 6789
# A drained host's OSDs move their data away first: wait up to a day, reporting each minute.
DRAIN_TIMEOUT_SECONDS = 86_400


def image(cfg: StackConfig) -> str:
    return releases.ceph_image(cfg.ceph.version)


def repo_file(cfg: StackConfig) -> str:
    base = releases.CEPH_REPO.format(version=cfg.ceph.version)
    return f"""\
# Rendered by seoul-cluster (render/ceph.py): Ceph {cfg.ceph.version} packages (cephadm, ceph-common).
[ceph-reef-noarch]
name=Ceph {cfg.ceph.version} noarch
baseurl={base}/noarch
enabled=1
gpgcheck=1
repo_gpgcheck=0
gpgkey={releases.CEPH_RELEASE_KEY_URL}

[ceph-reef]
name=Ceph {cfg.ceph.version} x86_64
baseurl={base}/x86_64
enabled=1
gpgcheck=1
repo_gpgcheck=0
gpgkey={releases.CEPH_RELEASE_KEY_URL}
"""


def spec_yaml(spec: dict) -> str:
    return "# Rendered by seoul-cluster (render/ceph.py). Applied with `ceph orch apply -i`.\n" + yaml.safe_dump(
        spec, sort_keys=False)


def mon_spec() -> dict:
    """Monitors on every host labelled `mon` (model/ceph.py picks 3, or 5 from 5 hosts up)."""
    return {"service_type": "mon", "placement": {"label": "mon"}}


def mgr_spec() -> dict:
    return {"service_type": "mgr", "placement": {"label": "mgr", "count": ceph.MGR_COUNT}}


def mds_spec(cfg: StackConfig) -> dict | None:
    fs = ceph.filesystem(cfg)
    if fs is None:
        return None
    return {"service_type": "mds", "service_id": fs.name, "placement": {"label": "mds", "count": fs.mds_count}}


def osd_spec(host: HostSpec) -> dict:
    """One OSD service per host naming its disks (never all-available-devices)."""
    return {
        "service_type": "osd",
        "service_id": host.name,
        "placement": {"hosts": [host.name]},
        "spec": {"data_devices": {"paths": list(host.disks)}, "objectstore": "bluestore"},
    }


def spec_path(name: str) -> str:
    return f"{SPEC_DIR}/{name}.yaml"


def _spec_set(step: str, name: str, spec: dict) -> FileSet:
    file = HostFile(f"{step}-file", spec_path(name), spec_yaml(spec), "0600")
    return FileSet((file,), ScriptRun(step, "ceph-spec.sh", {"SPEC": file.path, "FINGERPRINT": fingerprint([file])}))


# -- the steps components/ceph.py runs, in order -----------------------------------------


def install(cfg: StackConfig) -> FileSet:
    """Every storage host: the signed Ceph repository, then cephadm, ceph-common and podman."""
    files = (HostFile("ceph-repo", REPO_FILE, repo_file(cfg)),)
    return FileSet(files, ScriptRun("ceph-install", "ceph-install.sh", {
        "CEPH_VERSION": cfg.ceph.version,
        "KEY_URL": releases.CEPH_RELEASE_KEY_URL,
        "KEY_FINGERPRINT": releases.CEPH_RELEASE_KEY_FINGERPRINT,
        "FINGERPRINT": fingerprint(files),
    }))


def bootstrap(cfg: StackConfig) -> ScriptRun:
    """`cephadm bootstrap` on the bootstrap host, once: the script does nothing when the cluster exists."""
    host = ceph.bootstrap_host(cfg)
    env = {
        "FSID": str(ceph.fsid(cfg)),
        "MON_IP": str(host.address),
        "IMAGE": image(cfg),
        "SSH_USER": cfg.ssh.user,
        "CONF_DIR": CONF_DIR,
    }
    if cfg.ceph.cluster_network:
        env["CLUSTER_NETWORK"] = str(cfg.ceph.cluster_network)
    return ScriptRun("ceph-bootstrap", "ceph-bootstrap.sh", env)


def public_key() -> ScriptRun:
    """Print cephadm's SSH public key (not a secret) for the other hosts' authorized_keys."""
    return ScriptRun("ceph-pubkey", "ceph-pubkey.sh", {"PUBKEY": PUBKEY})


def authorized_key_file() -> str:
    """Where each storage host keeps cephadm's public key (written from the bootstrap host's output)."""
    return CEPHADM_PUBKEY


def authorize(cfg: StackConfig) -> ScriptRun:
    """Add cephadm's public key (from `authorized_key_file`) to the deploy user's authorized_keys."""
    return ScriptRun("ceph-ssh-key", "ceph-authorize.sh", {"SSH_USER": cfg.ssh.user, "KEY_FILE": CEPHADM_PUBKEY})


def host_entry(cfg: StackConfig, host: HostSpec) -> ScriptRun:
    """`ceph orch host add` with its labels; removal drains the host first (ceph-host-remove.sh)."""
    return ScriptRun("ceph-host", "ceph-host.sh", {
        "HOST": host.name,
        "ADDRESS": str(host.address),
        "LABELS": " ".join(ceph.labels(cfg, host)),
        "MANAGED_LABELS": "mon mgr mds osd",
        "FAILURE_DOMAIN": FAILURE_DOMAIN,
        "DRAIN_TIMEOUT_SECONDS": str(DRAIN_TIMEOUT_SECONDS),
    }, delete_script="ceph-host-remove.sh")


def service_specs(cfg: StackConfig) -> list[FileSet]:
    """mon, mgr (and mds when there is a CephFS) placement by label, on the bootstrap host."""
    sets = [_spec_set("ceph-mon-spec", "mon", mon_spec()), _spec_set("ceph-mgr-spec", "mgr", mgr_spec())]
    mds = mds_spec(cfg)
    if mds is not None:
        sets.append(_spec_set("ceph-mds-spec", f"mds-{mds['service_id']}", mds))
    return sets


def host_gone(host: HostSpec) -> ScriptRun:
    """Run on the bootstrap host for a storage host marked failed: purge its OSDs, remove it offline."""
    return ScriptRun("ceph-gone", "ceph-host-gone.sh", {"HOST": host.name})


def osds(host: HostSpec) -> FileSet:
    """The host's OSD spec (kept on the bootstrap host), applied; named after the host."""
    return _spec_set("ceph-osd-spec", f"osd-{host.name}", osd_spec(host))


def osds_up(host: HostSpec) -> ScriptRun:
    """Wait until every disk of the host runs an OSD that is up and in."""
    return ScriptRun("ceph-osds-up", "ceph-osds-up.sh", {
        "HOST": host.name, "COUNT": str(len(host.disks)), "TIMEOUT_SECONDS": "3600"})


def settings(cfg: StackConfig) -> ScriptRun:
    """PG autoscaler, upmap balancer, full ratios, OSD memory target, mgr modules."""
    c = cfg.ceph
    return ScriptRun("ceph-settings", "ceph-settings.sh", {
        "NEARFULL_RATIO": str(c.nearfull_ratio),
        "BACKFILLFULL_RATIO": str(c.backfillfull_ratio),
        "FULL_RATIO": str(c.full_ratio),
        "OSD_MEMORY_TARGET": str(ceph.osd_memory_target(cfg)),
        "MGR_MODULES": " ".join(MGR_MODULES),
    })


def profile_name(pool: CephPool) -> str:
    return f"seoul-ec-{pool.k}-{pool.m}"


def pool_step(cfg: StackConfig, pool: CephPool) -> ScriptRun:
    """Create the pool or change it in place (ceph-pool.sh). The policy pack reads these words."""
    env = {"POOL_NAME": pool.name, "POOL_TYPE": pool.type, "APPLICATION": pool.application,
           "FAILURE_DOMAIN": FAILURE_DOMAIN}
    if pool.type == "replicated":
        env |= {"SIZE": str(pool.size), "MIN_SIZE": str(pool.min_size), "CRUSH_RULE": REPLICATED_RULE,
                "RBD_INIT": str(pool.application == "rbd").lower()}
    else:
        env |= {"K": str(pool.k), "M": str(pool.m), "PROFILE": profile_name(pool),
                "EC_OVERWRITES": str(pool.application in ("rbd", "cephfs")).lower(), "RBD_INIT": "false"}
    if pool.workload:
        env["WORKLOAD"] = "true"
    return ScriptRun(f"ceph-pool-{pool.name}", "ceph-pool.sh", env)


def pools(cfg: StackConfig) -> list[ScriptRun]:
    """One step per pool, in config order (an EC rbd pool's metadata pool is listed by the user)."""
    return [pool_step(cfg, p) for p in cfg.ceph.pools]


def filesystem(cfg: StackConfig) -> ScriptRun | None:
    fs = ceph.filesystem(cfg)
    if fs is None:
        return None
    return ScriptRun("ceph-fs", "ceph-fs.sh", {
        "FS_NAME": fs.name, "METADATA_POOL": fs.metadata_pool, "DATA_POOL": fs.data_pool,
        "STANDBY_COUNT": str(fs.mds_count - 1), "SUBVOLUME_GROUP": CSI_SUBVOLUME_GROUP})


def csi_rbd_pools(cfg: StackConfig) -> list[str]:
    return [p.name for p in cfg.ceph.pools if p.application == "rbd"]


def csi_keys(cfg: StackConfig) -> ScriptRun:
    """cephx users for ceph-csi with least privilege; prints their keys (a secret output)."""
    fs = ceph.filesystem(cfg)
    return ScriptRun("ceph-csi-keys", "ceph-csi-keys.sh", {
        "RBD_POOLS": " ".join(csi_rbd_pools(cfg)), "FS_NAME": fs.name if fs else ""})


def monitors(cfg: StackConfig) -> list[str]:
    """Monitor addresses as ceph-csi's config lists them (msgr v1 port: the kernel clients' default)."""
    return [f"{h.address}:{MON_V1_PORT}" for h in ceph.mon_hosts(cfg)]
