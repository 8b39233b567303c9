"""Backups that restore, with the real tools, against an S3 API on loopback over TLS (moto).

etcd: a snapshot taken from a real etcd by the shipped script goes off site with the
rendered rclone config and the ship script, comes back byte-identical, and
`etcdctl snapshot restore` rebuilds a member whose keys match.
"""

import hashlib
import os
import re
import subprocess
import time
from pathlib import Path

from model import load_config
from offline.stackfile import read_stack_file
from render import backup
from tests.backup_s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Lab, s3_lab
from tests.test_k8s_scripts import SCRIPTS, EtcdHosts, etcdctl
from tests.tools import REPO, require_loopback_ports, require_tool


def prod():
    return load_config(read_stack_file(REPO / "Pulumi.seoul-prod.yaml").lookup)


def rclone_conf(tmp: Path, lab: S3Lab) -> Path:
    """The config the program renders, with the endpoint pointed at the lab."""
    path = tmp / "rclone.conf"
    path.write_text(backup.rclone_config(REGION, ACCESS_KEY, SECRET_KEY, lab.kms_key_arn, endpoint=lab.endpoint))
    path.chmod(0o600)
    return path


def rclone(conf: Path, lab: S3Lab, *args: str) -> subprocess.CompletedProcess:
    # Only PATH: an AWS_CA_BUNDLE in the caller's environment would override --ca-cert.
    return subprocess.run([require_tool("rclone"), "--config", str(conf), "--ca-cert", str(lab.ca_cert), *args],
                          env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=120)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ship(tmp: Path, lab: S3Lab, conf: Path, kind: str, source: Path, include: str, host: str):
    cfg = prod()
    env = {
        **backup.ship_env(cfg, kind, str(source), include, host),
        "RCLONE_CONFIG": str(conf),
        "TEXTFILE_DIR": str(tmp / "textfile"),
        "DEST": f"{backup.RCLONE_REMOTE}:{lab.bucket}/{backup.prefix(kind)}{host}",
    }
    return subprocess.run(["bash", str(SCRIPTS / "backup-ship.sh")],
                          env={"PATH": os.environ["PATH"], "RCLONE_CA_CERT": str(lab.ca_cert), **env},
                          capture_output=True, text=True, timeout=180)


def etcd_bin(tmp: Path, hosts: EtcdHosts) -> Path:
    """BIN_DIR for the snapshot script: Debian's etcd 3.4 has no etcdutl, whose
    `snapshot status` is `etcdctl snapshot status` there."""
    shim = tmp / "etcd-bin"
    shim.mkdir()
    (shim / "etcdctl").symlink_to(hosts.etcd_bin / "etcdctl")
    (shim / "etcdutl").write_text(f'#!/bin/sh\nETCDCTL_API=3 exec {hosts.etcd_bin / "etcdctl"} "$@"\n')
    (shim / "etcdutl").chmod(0o755)
    return shim


def test_etcd_snapshot_goes_off_site_and_restores_a_member_with_every_key(tmp_path):
    require_tool("openssl")
    require_tool("etcdctl")
    require_tool("rclone")
    require_loopback_ports(1, (2379, 2380, 2381))
    hosts = EtcdHosts(tmp_path)
    restored = None
    try:
        one = hosts.cfg(1)
        hosts.prepare(one, "etcd-1")
        started = hosts.script("etcd-start.sh", one, "etcd-1")
        assert started.returncode == 0, started.stdout + started.stderr
        keys = {f"/seoul/orders/{i:03d}": f"order-{i}-{'x' * i}" for i in range(50)}
        for key, value in keys.items():
            assert etcdctl(hosts, one, "etcd-1", "put", key, value).returncode == 0

        env = hosts.env(one, "etcd-1")
        snapshots = tmp_path / "snapshots"
        snapshots.mkdir()
        snap = subprocess.run(["bash", str(SCRIPTS / "etcd-snapshot.sh")], capture_output=True, text=True, timeout=120,
                              env={**env, "SNAPSHOT_DIR": str(snapshots), "SNAPSHOT_KEEP": "48",
                                   "BIN_DIR": str(etcd_bin(tmp_path, hosts)), "ENDPOINT": env["LOCAL_ENDPOINT"]})
        assert snap.returncode == 0, snap.stderr
        [taken] = list(snapshots.glob("etcd-*.db"))

        with s3_lab(tmp_path, "seoul-cluster-prod-backups") as lab:
            conf = rclone_conf(tmp_path, lab)
            shipped = ship(tmp_path, lab, conf, "etcd", snapshots, "etcd-*.db", "etcd-1")
            assert shipped.returncode == 0, shipped.stdout + shipped.stderr
            listed = lab.client().list_objects_v2(Bucket=lab.bucket, Prefix="etcd/etcd-1/")["Contents"]
            assert [o["Key"] for o in listed] == [f"etcd/etcd-1/{taken.name}"]
            head = lab.client().head_object(Bucket=lab.bucket, Key=listed[0]["Key"])
            assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == lab.kms_key_arn

            # The freshness gauge, in the textfile collector's format, is recent.
            metric = (tmp_path / "textfile" / "seoul_backup_etcd.prom").read_text()
            match = re.search(rf'^{backup.METRIC}{{job="etcd"}} (\d+)$', metric, re.MULTILINE)
            assert match and abs(int(match.group(1)) - time.time()) < 120, metric

            # Shipping again sends nothing new and keeps the one copy.
            again = ship(tmp_path, lab, conf, "etcd", snapshots, "etcd-*.db", "etcd-1")
            assert again.returncode == 0, again.stderr
            assert len(lab.client().list_object_versions(Bucket=lab.bucket, Prefix="etcd/")["Versions"]) == 1

            back = tmp_path / "back"
            fetched = rclone(conf, lab, "copy", f"vault:{lab.bucket}/etcd/etcd-1", str(back))
            assert fetched.returncode == 0, fetched.stderr
        copy = back / taken.name
        assert sha256(copy) == sha256(taken)

        # Rebuild a member from the copy and read every key back.
        etcd = hosts.etcd_bin / "etcd"
        peer, client = "http://127.0.0.1:23800", "http://127.0.0.1:23790"
        data = tmp_path / "restored"
        rebuilt = subprocess.run(
            [str(hosts.etcd_bin / "etcdctl"), "snapshot", "restore", str(copy), "--name", "etcd-1",
             "--data-dir", str(data), "--initial-cluster", f"etcd-1={peer}", "--initial-advertise-peer-urls", peer],
            env={**os.environ, "ETCDCTL_API": "3"}, capture_output=True, text=True, timeout=60)
        assert rebuilt.returncode == 0, rebuilt.stderr
        restored = subprocess.Popen(
            [str(etcd), "--name", "etcd-1", "--data-dir", str(data), "--listen-peer-urls", peer,
             "--listen-client-urls", client, "--advertise-client-urls", client, "--listen-metrics-urls",
             "http://127.0.0.1:23810"], stdout=subprocess.DEVNULL, stderr=(tmp_path / "restored.log").open("w"))
        got: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            out = subprocess.run([str(hosts.etcd_bin / "etcdctl"), "--endpoints", client, "get", "--prefix",
                                  "/seoul/orders/"], env={**os.environ, "ETCDCTL_API": "3"},
                                 capture_output=True, text=True, timeout=30)
            if out.returncode == 0 and out.stdout:
                lines = out.stdout.splitlines()
                got = dict(zip(lines[::2], lines[1::2], strict=True))
                break
            time.sleep(0.5)
        assert got == keys
    finally:
        if restored is not None:
            restored.terminate()
            restored.wait(timeout=30)
        hosts.stop_all()
