"""The Ceph backup, end to end on a real one-host Ceph (tests/cephlab.py, Debian's Pacific):
the shipped scripts/backup-ceph.sh snapshots and exports an RBD image four times with the
rendered parameters (a new full every 2 runs here: full, increment, full, increment), ships
each run with scripts/backup-ship.sh and the rendered rclone config to an S3 API on loopback
over TLS (moto), prunes the old chain locally; then scripts/backup-ceph-restore.sh rebuilds
new images from what rclone brings back, and each equals the source at its snapshot.
A run naming a missing image besides a real one ships the real one and fails without
recording success.
"""

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from render import backup
from render.files import SCRIPTS
from tests.backup_s3 import s3_lab
from tests.cephlab import TOOLS, ceph_cluster
from tests.test_backup_restore import prod, rclone, rclone_conf
from tests.tools import require_tool

POOL = "backup-test"
IMAGE = f"{POOL}/shop-media"
HOST = "osd-1"
FULL_EVERY = "2"  # rendered: backup.cephFullEveryDays (7); 2 shows a new chain in 4 runs


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    for tool in (*TOOLS, "rclone", "openssl"):
        require_tool(tool)
    with ceph_cluster(tmp_path_factory.mktemp("ceph")) as cluster:
        cluster.ceph("osd", "pool", "create", POOL, "8")
        subprocess.run(["rbd", "pool", "init", POOL], env=cluster.env, check=True, capture_output=True, timeout=60)
        yield cluster


def rbd(lab, *args: str, timeout: int = 120) -> str:
    proc = subprocess.run(["rbd", *args], env=lab.env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"rbd {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def image_sha256(lab, spec: str, tmp: Path) -> str:
    """sha256 of `rbd export` of an image or snapshot (the whole device, size included)."""
    out = tmp / "export.img"
    out.unlink(missing_ok=True)
    rbd(lab, "export", "--no-progress", spec, str(out))
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    out.unlink()
    return digest


def snapshots(lab, spec: str) -> list[str]:
    return [s["name"] for s in json.loads(rbd(lab, "snap", "ls", "--format", "json", spec))]


def run_script(lab, name: str, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    # Only PATH and this cluster: an AWS_CA_BUNDLE in the caller's environment would override the CA.
    base = {"PATH": os.environ["PATH"], "CEPH_ARGS": lab.env["CEPH_ARGS"], "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run(["bash", str(SCRIPTS / name)], env={**base, **env}, capture_output=True, text=True,
                          timeout=timeout)


def test_rbd_chains_go_off_site_and_restore_to_each_snapshot(lab, tmp_path):
    exports = tmp_path / "rbd"
    ship = tmp_path / "ship"
    ship.write_text(f"#!/bin/sh\nexec bash {SCRIPTS / 'backup-ship.sh'}\n")
    ship.chmod(0o755)
    seed = tmp_path / "seed.img"
    seed.write_bytes(os.urandom(16 * 1024 * 1024))
    rbd(lab, "import", "--no-progress", str(seed), IMAGE)

    with s3_lab(tmp_path, prod().backup_bucket) as lab_s3:
        conf = rclone_conf(tmp_path, lab_s3)
        env = {
            **backup.ceph_env(prod(), HOST),
            "IMAGES": IMAGE, "EXPORT_DIR": str(exports), "FULL_EVERY": FULL_EVERY, "SHIP": str(ship),
            "SOURCE_DIR": str(exports), "RCLONE_CONFIG": str(conf), "TEXTFILE_DIR": str(tmp_path / "textfile"),
            "RCLONE_CA_CERT": str(lab_s3.ca_cert),
        }
        assert env["BWLIMIT"] == backup.bwlimit(prod(), "ceph")
        taken: list[tuple[str, str]] = []  # (snapshot, sha256 of the image at it)
        for run in range(4):
            if run:
                # Change the image between runs: random 4 KiB writes, and it grows once.
                rbd(lab, "bench", "--io-type", "write", "--io-size", "4K", "--io-total", "512K",
                    "--io-pattern", "rand", "--io-threads", "1", IMAGE)
                if run == 2:
                    rbd(lab, "resize", "--no-progress", "--size", "24M", IMAGE)
                time.sleep(1.1)  # snapshot names have one-second resolution
            last = run == 3
            done = run_script(lab, "backup-ceph.sh", {**env, "KEEP_DAYS": "0" if last else env["KEEP_DAYS"]})
            assert done.returncode == 0, done.stdout + done.stderr
            [snap] = snapshots(lab, IMAGE)  # only the newest is kept, as the next base
            digest = image_sha256(lab, f"{IMAGE}@{snap}", tmp_path)
            assert digest not in [d for _, d in taken]  # the run saw a changed image
            taken.append((snap, digest))

        names = [s for s, _ in taken]
        kinds = ["full", "diff", "full", "diff"]
        keys = sorted(o["Key"] for o in lab_s3.client().list_objects_v2(Bucket=lab_s3.bucket)["Contents"])
        prefix = f"{backup.prefix('ceph')}{HOST}/{IMAGE}/"
        assert keys == [f"{prefix}{n}.{k}.rbd" for n, k in zip(names, kinds, strict=True)]
        head = lab_s3.client().head_object(Bucket=lab_s3.bucket, Key=keys[0])
        assert head["ServerSideEncryption"] == "aws:kms"
        # Locally the first chain is pruned whole (KEEP_DAYS 0 on the last run); the current stays.
        assert sorted(p.name for p in (exports / IMAGE).glob("*.rbd")) == [f"{names[2]}.full.rbd",
                                                                         f"{names[3]}.diff.rbd"]
        assert (exports / IMAGE / "chain").read_text().split() == names[2:]

        back = tmp_path / "back"
        fetched = rclone(conf, lab_s3, "copy", f"{backup.RCLONE_REMOTE}:{lab_s3.bucket}/{prefix}", str(back))
        assert fetched.returncode == 0, fetched.stderr

    # The newest point: the second chain's full and its increment.
    restored = run_script(lab, "backup-ceph-restore.sh", {"EXPORTS": str(back), "TARGET": f"{POOL}/restored"})
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "from 2 exports" in restored.stdout
    assert image_sha256(lab, f"{POOL}/restored", tmp_path) == taken[3][1]
    assert snapshots(lab, f"{POOL}/restored") == [names[2], names[3]]
    # An older point, the end of the first chain (full + increment), and the first full alone.
    for index in (1, 0):
        target = f"{POOL}/restored-{index}"
        older = run_script(lab, "backup-ceph-restore.sh",
                           {"EXPORTS": str(back), "TARGET": target, "UNTIL": names[index]})
        assert older.returncode == 0, older.stdout + older.stderr
        assert image_sha256(lab, target, tmp_path) == taken[index][1]
    # Never over an existing image.
    again = run_script(lab, "backup-ceph-restore.sh", {"EXPORTS": str(back), "TARGET": f"{POOL}/restored"})
    assert again.returncode == 2 and "exists" in again.stderr


def test_a_failing_image_is_skipped_the_rest_shipped_and_no_success_recorded(lab, tmp_path):
    # Issue 11: one bad image must not keep the others from going off site that day, and the
    # run must still fail (unit failed, freshness metric left alone so its alert fires).
    exports, textfile = tmp_path / "rbd", tmp_path / "textfile"
    ship = tmp_path / "ship"
    ship.write_text(f"#!/bin/sh\nexec bash {SCRIPTS / 'backup-ship.sh'}\n")
    ship.chmod(0o755)
    good, missing = f"{POOL}/partial-good", f"{POOL}/no-such-image"
    seed = tmp_path / "seed.img"
    seed.write_bytes(os.urandom(4 * 1024 * 1024))
    rbd(lab, "import", "--no-progress", str(seed), good)

    with s3_lab(tmp_path, prod().backup_bucket) as lab_s3:
        env = {
            **backup.ceph_env(prod(), HOST),
            "IMAGES": f"{missing} {good}", "EXPORT_DIR": str(exports), "FULL_EVERY": FULL_EVERY, "SHIP": str(ship),
            "SOURCE_DIR": str(exports), "RCLONE_CONFIG": str(rclone_conf(tmp_path, lab_s3)),
            "TEXTFILE_DIR": str(textfile), "RCLONE_CA_CERT": str(lab_s3.ca_cert),
        }
        done = run_script(lab, "backup-ceph.sh", env)
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"backup-ceph: {missing} failed" in done.stderr
        assert "1 of 2 images failed" in done.stderr
        assert "Traceback" not in done.stderr
        [snap] = snapshots(lab, good)
        prefix = f"{backup.prefix('ceph')}{HOST}/"
        keys = [o["Key"] for o in lab_s3.client().list_objects_v2(Bucket=lab_s3.bucket)["Contents"]]
        assert keys == [f"{prefix}{good}/{snap}.full.rbd"]
        # A first run that failed in part exports only the period: BackupNeverSucceeded fires.
        first = (textfile / "seoul_backup_ceph.prom").read_text()
        assert 'seoul_backup_period_seconds{backup="ceph"}' in first and "last_success" not in first
        assert not (exports / missing).exists()

        # The same images without the bad one: success, and now the metric is written.
        time.sleep(1.1)  # snapshot names have one-second resolution
        again = run_script(lab, "backup-ceph.sh", {**env, "IMAGES": good})
        assert again.returncode == 0, again.stdout + again.stderr
        assert 'seoul_backup_last_success_timestamp_seconds{backup="ceph"}' in \
            (textfile / "seoul_backup_ceph.prom").read_text()

        # Failing in part again leaves the last success time where it was.
        recorded = (textfile / "seoul_backup_ceph.prom").read_text()
        time.sleep(1.1)
        third = run_script(lab, "backup-ceph.sh", env)
        assert third.returncode == 1, third.stdout + third.stderr
        assert (textfile / "seoul_backup_ceph.prom").read_text() == recorded
