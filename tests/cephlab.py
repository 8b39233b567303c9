"""A one-host Ceph cluster on loopback for tests: Debian's Pacific (16.2) daemons, no systemd, no containers.

One mon, one mgr, three BlueStore OSDs on sparse files (EC overwrites need BlueStore) and two
hand-started MDS (one active, one standby), all in a temporary folder, all on 127.0.0.1 at a
free port, each started in the foreground by this process and stopped by its own pid.
cephx is on, so the client keys the scripts create are real. The cluster's own ceph.conf
makes a single host whole: the CRUSH failure domain is the OSD (the rendered scripts take
FAILURE_DOMAIN as a parameter, `host` in production).

Facts from the Pacific packages: `ceph-mon --mkfs`, `ceph-osd --mkfs` with
`bluestore_block_create`, keyrings made with `ceph-authtool`, as src/vstart.sh does.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

OSDS = 3
START_TIMEOUT = 90  # seconds for the whole cluster to come up (measured: ~15 s on 2 cores)
TOOLS = ("ceph-mon", "ceph-mgr", "ceph-osd", "ceph-mds", "ceph", "ceph-authtool", "rados", "rbd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class CephLab:
    root: Path
    conf: Path
    keyring: Path
    fsid: str
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """Environment for `ceph`, `rados`, `rbd` and the rendered scripts: this cluster as admin."""
        return {**os.environ, "CEPH_ARGS": f"--conf {self.conf} --keyring {self.keyring}"}

    def ceph(self, *args: str, timeout: int = 60) -> str:
        proc = subprocess.run(["ceph", *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"ceph {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def run_script(self, script: Path, env: dict[str, str], timeout: int = 180) -> subprocess.CompletedProcess:
        """scripts/<x>.sh with `env` words, as `sudo env K=V bash -s` runs it on a host."""
        return subprocess.run(["bash", "-s"], input=script.read_text(), env={**self.env, **env},
                              capture_output=True, text=True, timeout=timeout)

    def start(self, name: str, argv: list[str]) -> None:
        log = open(self.root / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)

    def wait_for(self, what: str, ok, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited: {(self.root / f'{name}.log').read_text()[-2000:]}")
            try:
                if ok():
                    return
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{what} not reached in {timeout}s: {self.ceph('status')}")


def _conf(root: Path, fsid: str, port: int) -> str:
    return f"""\
[global]
fsid = {fsid}
mon_host = v2:127.0.0.1:{port}
mon_initial_members = a
public_network = 127.0.0.0/8
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
auth_allow_insecure_global_id_reclaim = false
run_dir = {root}/run
admin_socket = {root}/run/$name.asok
log_file = {root}/log/$name.log
pid_file = {root}/run/$name.pid
keyring = {root}/$name/keyring
# One host: copies go to distinct OSDs (CRUSH type 0), pools start small.
osd_crush_chooseleaf_type = 0
osd_pool_default_size = 3
osd_pool_default_min_size = 2
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
mon_data_avail_warn = 1
mon_data_avail_crit = 0
ms_bind_msgr1 = false
osd_objectstore = bluestore

[mon.a]
mon_data = {root}/mon.a
public_addr = v2:127.0.0.1:{port}

[mgr]
mgr_data = {root}/$name

[osd]
osd_data = {root}/$name
bluestore_block_create = true
bluestore_block_size = 3221225472
bluestore_fsck_on_mount = false
osd_memory_target = 939524096
bluestore_cache_autotune = false
bluestore_cache_size = 134217728
osd_max_pg_per_osd_hard_ratio = 10

[mds]
mds_data = {root}/$name
"""


@contextmanager
def ceph_cluster(root: Path):
    """Start the cluster under `root`, yield a CephLab once HEALTH_OK, stop every daemon after."""
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("run", "log", "mon.a", "mgr.x", "client.admin"):
        (root / sub).mkdir(exist_ok=True)
    fsid = str(uuid.uuid4())
    conf = root / "ceph.conf"
    conf.write_text(_conf(root, fsid, free_port()))
    keyring = root / "client.admin" / "keyring"
    lab = CephLab(root, conf, keyring, fsid)
    auth = shutil.which("ceph-authtool")
    mon_keyring = root / "mon.keyring"
    subprocess.run([auth, "--create-keyring", str(mon_keyring), "--gen-key", "-n", "mon.", "--cap", "mon", "allow *"],
                   check=True, capture_output=True)
    subprocess.run([auth, "--create-keyring", str(keyring), "--gen-key", "-n", "client.admin",
                    "--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mds", "allow *",
                    "--cap", "mgr", "allow *"], check=True, capture_output=True)
    subprocess.run([auth, str(mon_keyring), "--import-keyring", str(keyring)], check=True, capture_output=True)
    conf_arg = ["-c", str(conf)]
    subprocess.run(["ceph-mon", *conf_arg, "--mkfs", "-i", "a", "--keyring", str(mon_keyring)],
                   check=True, capture_output=True, timeout=60)
    try:
        lab.start("mon.a", ["ceph-mon", *conf_arg, "-f", "-i", "a"])
        lab.wait_for("monitor quorum", lambda: "quorum" in lab.ceph("mon", "stat", timeout=10), 30)
        lab.ceph("config", "set", "mon", "auth_allow_insecure_global_id_reclaim", "false")

        mgr_key = lab.ceph("auth", "get-or-create", "mgr.x", "mon", "allow profile mgr", "osd", "allow *",
                           "mds", "allow *")
        (root / "mgr.x" / "keyring").write_text(mgr_key)
        lab.start("mgr.x", ["ceph-mgr", *conf_arg, "-f", "-i", "x"])

        for i in range(OSDS):
            osd_dir = root / f"osd.{i}"
            osd_dir.mkdir()
            osd_uuid = str(uuid.uuid4())
            osd_id = lab.ceph("osd", "new", osd_uuid).strip()
            key = lab.ceph("auth", "get-or-create", f"osd.{osd_id}", "mon", "allow profile osd",
                           "mgr", "allow profile osd", "osd", "allow *")
            (osd_dir / "keyring").write_text(key)
            subprocess.run(["ceph-osd", *conf_arg, "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid],
                           check=True, capture_output=True, timeout=120)
            lab.start(f"osd.{osd_id}", ["ceph-osd", *conf_arg, "-f", "-i", osd_id])

        for name in ("a", "b"):
            (root / f"mds.{name}").mkdir()
            key = lab.ceph("auth", "get-or-create", f"mds.{name}", "mon", "allow profile mds", "osd", "allow rwx",
                           "mds", "allow", "mgr", "allow profile mds")
            (root / f"mds.{name}" / "keyring").write_text(key)
            lab.start(f"mds.{name}", ["ceph-mds", *conf_arg, "-f", "-i", name])

        lab.wait_for(f"{OSDS} OSDs up and a mgr", lambda: _ready(lab), START_TIMEOUT)
        lab.wait_for("HEALTH_OK", lambda: lab.ceph("health", timeout=10).startswith("HEALTH_OK"), START_TIMEOUT)
        yield lab
    finally:
        lab.stop()


def _ready(lab: CephLab) -> bool:
    s = json.loads(lab.ceph("status", "-f", "json", timeout=10))
    return s["osdmap"]["num_up_osds"] == OSDS and s["mgrmap"]["available"]
