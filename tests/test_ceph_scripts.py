"""The rendered Ceph steps against a real one-host Ceph cluster (tests/cephlab.py).

Runs each cluster-wide step exactly as render/ceph.py parameterises it for seoul-stage,
with two changes a one-host cluster needs: the failure domain is the OSD (`host` in
production) and the EC pool is 2+1 (three OSDs). Debian ships Pacific (16.2); the scripts
use no Reef-only command (see docs/storage.md, "Tested against").
"""

import copy
import json
import subprocess
import time

import pytest

from model import load_config
from model.schema import StackConfig
from offline.stackfile import stack_from_config
from render import ceph as render_ceph
from render.files import SCRIPTS, ScriptRun
from tests.cephlab import TOOLS, ceph_cluster
from tests.stacks import key, stack_config
from tests.tools import require_tool

TEST_OVERRIDES = {"FAILURE_DOMAIN": "osd"}


def lab_config() -> StackConfig:
    config = copy.deepcopy(stack_config("seoul-stage"))
    for pool in config[key("ceph")]["pools"]:
        if pool["type"] == "erasure":
            pool.update(k=2, m=1)
    return load_config(stack_from_config("lab", config).lookup)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    for tool in TOOLS:
        require_tool(tool)
    started = time.monotonic()
    with ceph_cluster(tmp_path_factory.mktemp("ceph")) as cluster:
        cluster.startup_seconds = time.monotonic() - started
        yield cluster


@pytest.fixture(scope="module")
def cfg() -> StackConfig:
    return lab_config()


def run(lab, step: ScriptRun, **extra: str):
    env = {**step.env, **TEST_OVERRIDES, **extra}
    proc = lab.run_script(SCRIPTS / step.script, env)
    assert proc.returncode == 0, f"{step.step}: {proc.stdout}\n{proc.stderr}"
    return proc


def cluster_steps(cfg: StackConfig) -> list[ScriptRun]:
    fs = render_ceph.filesystem(cfg)
    assert fs is not None
    return [render_ceph.settings(cfg), *render_ceph.pools(cfg), fs]


def state(lab) -> dict:
    """What the steps own: pools (id, size, profile, flags, applications), profiles, filesystems, users' caps."""
    pools = {p["pool_name"]: {k: p[k] for k in ("pool_id", "size", "min_size", "crush_rule",
                                                 "erasure_code_profile", "flags_names", "application_metadata")}
             for p in json.loads(lab.ceph("osd", "pool", "ls", "detail", "-f", "json"))}
    profiles = {n: lab.ceph("osd", "erasure-code-profile", "get", n)
                for n in lab.ceph("osd", "erasure-code-profile", "ls").split()}
    fs = json.loads(lab.ceph("fs", "ls", "-f", "json"))
    users = {e["entity"]: e["caps"] for e in json.loads(lab.ceph("auth", "ls", "-f", "json"))["auth_dump"]
             if e["entity"].startswith("client.csi")}
    return {"pools": pools, "profiles": profiles, "fs": fs, "users": users}


def pool_ids(lab) -> dict[str, int]:
    return {p["pool_name"]: p["pool_id"] for p in json.loads(lab.ceph("osd", "pool", "ls", "detail", "-f", "json"))}


def test_cluster_reaches_health_ok_quickly(lab):
    assert lab.ceph("health").startswith("HEALTH_OK")
    print(f"one-host cluster HEALTH_OK after {lab.startup_seconds:.1f}s")
    assert lab.startup_seconds < 120


def test_steps_converge_and_a_second_run_changes_nothing(lab, cfg):
    first = [run(lab, step).stdout for step in cluster_steps(cfg)]
    keys_first = run(lab, render_ceph.csi_keys(cfg))
    assert "changed:" in "".join(first)
    before = state(lab)
    second = [run(lab, step).stdout for step in cluster_steps(cfg)]
    keys_second = run(lab, render_ceph.csi_keys(cfg))
    assert not [line for out in second for line in out.splitlines() if line.startswith("changed:")], second
    assert "changed:" not in keys_second.stderr
    assert state(lab) == before
    assert json.loads(keys_first.stdout) == json.loads(keys_second.stdout)
    assert set(before["pools"]) >= {p.name for p in cfg.ceph.pools}


def test_settings_are_applied(lab, cfg):
    dump = lab.ceph("osd", "dump")
    assert "nearfull_ratio 0.85" in dump and "backfillfull_ratio 0.9" in dump and "full_ratio 0.95" in dump
    balancer = json.loads(lab.ceph("balancer", "status", "-f", "json"))
    assert balancer["mode"] == "upmap" and balancer["active"] is True
    target = lab.ceph("config", "get", "osd", "osd_memory_target").strip()
    assert target == render_ceph.settings(cfg).env["OSD_MEMORY_TARGET"]
    assert lab.ceph("config", "get", "mon", "osd_pool_default_pg_autoscale_mode").strip() == "on"


def test_erasure_coded_pool_and_profile(lab, cfg):
    ec = next(p for p in cfg.ceph.pools if p.type == "erasure")
    profile = render_ceph.profile_name(ec)
    assert lab.ceph("osd", "pool", "get", ec.name, "erasure_code_profile").split()[1] == profile
    got = dict(line.split("=", 1) for line in lab.ceph("osd", "erasure-code-profile", "get", profile).split())
    assert (got["k"], got["m"], got["crush-failure-domain"]) == ("2", "1", "osd")
    assert lab.ceph("osd", "pool", "get", ec.name, "allow_ec_overwrites").split()[1] == "true"
    assert "rbd" in json.loads(lab.ceph("osd", "pool", "application", "get", ec.name, "-f", "json"))


def test_size_changes_in_place(lab, cfg):
    pool = next(p for p in cfg.ceph.pools if p.name == "rbd")
    step = render_ceph.pool_step(cfg, pool)
    pool_id = pool_ids(lab)[pool.name]
    out = run(lab, step, SIZE="2", MIN_SIZE="1").stdout
    assert "changed: pool rbd: size 2" in out and "changed: pool rbd: min_size 1" in out
    assert lab.ceph("osd", "pool", "get", "rbd", "size").split()[1] == "2"
    assert pool_ids(lab)[pool.name] == pool_id  # the same pool, changed in place
    run(lab, step)
    assert lab.ceph("osd", "pool", "get", "rbd", "size").split()[1] == "3"
    assert lab.ceph("osd", "pool", "get", "rbd", "min_size").split()[1] == "2"


def test_changing_k_of_an_existing_pool_is_refused(lab, cfg):
    ec = next(p for p in cfg.ceph.pools if p.type == "erasure")
    step = render_ceph.pool_step(cfg, ec)
    proc = lab.run_script(SCRIPTS / step.script, {**step.env, **TEST_OVERRIDES, "K": "3", "PROFILE": "seoul-ec-3-1"})
    assert proc.returncode == 1 and "never change" in proc.stderr
    assert "seoul-ec-3-1" not in lab.ceph("osd", "erasure-code-profile", "ls").split()
    assert lab.ceph("osd", "pool", "get", ec.name, "erasure_code_profile").split()[1] == render_ceph.profile_name(ec)


def test_filesystem_has_an_active_mds_and_the_csi_group(lab, cfg):
    fs = cfg.ceph.filesystem
    listed = json.loads(lab.ceph("fs", "ls", "-f", "json"))
    assert [(f["name"], f["metadata_pool"], f["data_pools"]) for f in listed] == \
        [(fs.name, fs.metadata_pool, [fs.data_pool])]
    groups = json.loads(lab.ceph("fs", "subvolumegroup", "ls", fs.name))
    assert {"name": render_ceph.CSI_SUBVOLUME_GROUP} in groups
    lab.wait_for("an active MDS", lambda: '"state": "active"' in lab.ceph("fs", "status", "-f", "json", "--format",
                                                                         "json-pretty"), 60)


def test_csi_users_hold_only_what_they_need(lab, cfg, tmp_path):
    keys = json.loads(run(lab, render_ceph.csi_keys(cfg)).stdout)
    assert set(keys) == {"csi-rbd-provisioner", "csi-rbd-node", "csi-cephfs-provisioner", "csi-cephfs-node"}

    def as_user(user: str, *argv: str):
        keyring = tmp_path / f"{user}.keyring"
        keyring.write_text(f"[client.{user}]\n\tkey = {keys[user]}\n")
        env = {**lab.env, "CEPH_ARGS": f"--conf {lab.conf} --keyring {keyring} --id {user}"}
        return subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=60)

    made = as_user("csi-rbd-provisioner", "rbd", "create", "--size", "16M", "--data-pool", "logs-data", "rbd/csi-probe")
    assert made.returncode == 0, made.stderr
    assert as_user("csi-rbd-provisioner", "ceph", "osd", "pool", "create", "intruder").returncode != 0
    assert as_user("csi-rbd-node", "rados", "-p", "cephfs-metadata", "ls").returncode != 0
    assert as_user("csi-rbd-node", "rbd", "ls", "rbd").stdout.split() == ["csi-probe"]


def test_host_removal_is_refused_when_pools_would_drop_below_min_size(lab, cfg):
    host = json.loads(lab.ceph("osd", "tree", "-f", "json"))
    name = next(n["name"] for n in host["nodes"] if n["type"] == "host")
    step = render_ceph.host_entry(cfg, cfg.storage_hosts[0])
    proc = lab.run_script(SCRIPTS / "ceph-host-remove.sh", {**step.env, **TEST_OVERRIDES, "HOST": name,
                                                             "CHECK_ONLY": "true"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"refusing to remove {name}" in proc.stderr and "min_size 2 is above the 0 osds left" in proc.stderr
    assert "osd.0" in lab.ceph("osd", "tree")


def test_cluster_still_healthy(lab):
    lab.wait_for("HEALTH_OK after the steps", lambda: lab.ceph("health").startswith("HEALTH_OK"), 90)
