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
                              env={**env, "MEMBER": "etcd-1", "SNAPSHOT_DIR": str(snapshots), "SNAPSHOT_KEEP": "48",
                                   "BIN_DIR": str(etcd_bin(tmp_path, hosts)), "ENDPOINT": env["LOCAL_ENDPOINT"]})
        assert snap.returncode == 0, snap.stderr
        [taken] = list(snapshots.glob("etcd-etcd-1-*.db"))  # named after the inventory, not the host name

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
            match = re.search(rf'^{backup.METRIC}{{backup="etcd"}} (\d+)$', metric, re.MULTILINE)
            assert match and abs(int(match.group(1)) - time.time()) < 120, metric
            assert f'{backup.PERIOD_METRIC}{{backup="etcd"}} 3600\n' in metric
            lint = subprocess.run([require_tool("promtool"), "check", "metrics"], input=metric, capture_output=True,
                                  text=True, timeout=30)
            assert lint.returncode == 0, lint.stdout + lint.stderr

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


# -- PostgreSQL: real PostgreSQL and pgBackRest, set up from the operator resource's values ----------

PG_BIN = Path("/usr/lib/postgresql")
STANZA = "db"
CIPHER_PASS = "seoul-test-cipher-passphrase"


def pg_bin() -> Path:
    found = sorted(PG_BIN.glob("*/bin/initdb"))
    if not found:
        from tests.tools import unavailable

        unavailable("PostgreSQL is not installed (Debian `postgresql`, run `make test-tools`)")
    return found[-1].parent


def pgbackrest_conf(home: Path, lab: S3Lab, port: int) -> tuple[Path, Path]:
    """pgbackrest.conf from the PerconaPGCluster's repo1 and global options, as the operator
    would write it, with the endpoint moved to the lab; the operator's s3.conf beside it."""
    from urllib.parse import urlsplit

    from render import database

    cfg = prod()
    options = database.repo1_options(cfg, cfg.database)
    assert options["repo1-s3-endpoint"] == "s3.ap-northeast-2.amazonaws.com"
    url = urlsplit(lab.endpoint)
    options |= {"repo1-s3-endpoint": url.hostname, "repo1-storage-port": str(url.port),
                "repo1-s3-uri-style": "path", "repo1-storage-ca-file": str(home / "ca.crt"),
                "log-path": str(home / "log"), "lock-path": str(home / "lock"), "log-level-console": "info"}
    conf = home / "pgbackrest.conf"
    lines = ["[global]", *(f"{k}={v}" for k, v in options.items()), f"[{STANZA}]",
             f"pg1-path={home / 'data'}", f"pg1-port={port}", f"pg1-socket-path={home}"]
    conf.write_text("\n".join(lines) + "\n")
    include = home / "conf.d"
    include.mkdir()
    (include / database.S3_SECRET_KEY).write_text(database.s3_conf(ACCESS_KEY, SECRET_KEY, CIPHER_PASS))
    return conf, include


def as_postgres(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True,
                          timeout=timeout, env={"PATH": os.environ["PATH"], "HOME": "/tmp"})


def test_postgresql_backs_up_full_and_incremental_to_s3_and_restores_every_row(tmp_path):
    import shutil
    import socket
    import tempfile

    bin_dir = pg_bin()
    require_tool("pgbackrest")
    require_tool("runuser")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = Path(tempfile.mkdtemp(prefix="seoul-pg-"))  # postgres cannot enter pytest's tmp_path
    home.chmod(0o755)
    running: list[Path] = []
    try:
        with s3_lab(tmp_path, "seoul-cluster-prod-backups") as lab:
            for sub in ("log", "lock"):
                (home / sub).mkdir()
            shutil.copy(lab.ca_cert, home / "ca.crt")
            conf, include = pgbackrest_conf(home, lab, port)
            shutil.chown(home, "postgres", "postgres")
            for path in home.rglob("*"):
                shutil.chown(path, "postgres", "postgres")
            pgbr = ["pgbackrest", f"--config={conf}", f"--config-include-path={include}", f"--stanza={STANZA}"]

            def sql(query: str) -> str:
                out = as_postgres(str(bin_dir / "psql"), "-h", str(home), "-p", str(port), "-d", "postgres",
                                  "-Atqc", query)
                assert out.returncode == 0, out.stderr
                return out.stdout.strip()

            def pgbackrest(*args: str) -> str:
                out = as_postgres(*pgbr, *args, timeout=300)
                assert out.returncode == 0, out.stdout + out.stderr
                return out.stdout

            data = home / "data"
            made = as_postgres(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
            assert made.returncode == 0, made.stderr
            with (data / "postgresql.conf").open("a") as pg_conf:
                pg_conf.write(f"listen_addresses = ''\nport = {port}\nunix_socket_directories = '{home}'\n"
                              "wal_level = replica\narchive_mode = on\n"
                              f"archive_command = '{' '.join(pgbr)} archive-push %p'\n")
            started = as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(home / "pg.log"), "-w", "start")
            assert started.returncode == 0, started.stderr
            running.append(data)

            sql("CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL)")
            sql("INSERT INTO orders SELECT i, md5(i::text) FROM generate_series(1, 1000) i")
            pgbackrest("stanza-create")
            pgbackrest("check")
            pgbackrest("backup", "--type=full")
            sql("INSERT INTO orders SELECT i, md5(i::text) FROM generate_series(1001, 1500) i")
            pgbackrest("backup", "--type=incr")
            info = pgbackrest("info")
            assert "full backup" in info and "incr backup" in info, info
            expected = sql("SELECT count(*), md5(string_agg(id || item, ',' ORDER BY id)) FROM orders")
            assert expected.startswith("1500|")

            # repo1 is where the vault's postgresql writer may write, encrypted client-side.
            objects = lab.client().list_objects_v2(Bucket=lab.bucket)["Contents"]
            keys = [o["Key"] for o in objects]
            assert keys and all(k.startswith("postgresql/shop-db/repo1/") for k in keys), keys[:3]
            manifest = next(k for k in keys if k.endswith("/backup.manifest"))
            body = lab.client().get_object(Bucket=lab.bucket, Key=manifest)["Body"].read()
            assert body.startswith(b"Salted__"), body[:16]  # OpenSSL's aes-256-cbc envelope

            stopped = as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
            assert stopped.returncode == 0, stopped.stderr
            running.remove(data)

            # Restore into a new data directory and start it there.
            restored = home / "restored"
            restored.mkdir(mode=0o700)
            shutil.chown(restored, "postgres", "postgres")
            pgbackrest("restore", f"--pg1-path={restored}", "--archive-mode=off")
            # Recovery fetches the WAL after the incremental from repo1 (archive-get).
            started = as_postgres(str(bin_dir / "pg_ctl"), "-D", str(restored), "-l", str(home / "restored.log"),
                                  "-w", "-t", "120", "start")
            assert started.returncode == 0, started.stderr + (home / "restored.log").read_text()
            running.append(restored)
            for _ in range(120):
                if sql("SELECT pg_is_in_recovery()") == "f":
                    break
                time.sleep(0.5)
            assert sql("SELECT count(*), md5(string_agg(id || item, ',' ORDER BY id)) FROM orders") == expected
    finally:
        for folder in running:
            as_postgres(str(bin_dir / "pg_ctl"), "-D", str(folder), "-m", "immediate", "-w", "stop")
        shutil.rmtree(home, ignore_errors=True)


# -- Ceph: an RBD export goes off site with the Ceph job's rendered settings and comes back ----------

def test_an_rbd_export_goes_off_site_and_comes_back_byte_identical(tmp_path):
    require_tool("rclone")
    require_tool("openssl")
    exports = tmp_path / "rbd" / "rbd" / "shop-media"
    exports.mkdir(parents=True)
    full = exports / "seoul-20261130T020000Z.full.rbd"
    diff = exports / "seoul-20261201T020000Z.diff.rbd"
    full.write_bytes(os.urandom(3 * 1024 * 1024))
    diff.write_bytes(b"rbd diff v1\n" + os.urandom(64 * 1024))
    (exports / "seoul-20261201T020000Z.diff.rbd.part").write_bytes(b"unfinished")  # never shipped
    with s3_lab(tmp_path, "seoul-cluster-prod-backups") as lab:
        conf = rclone_conf(tmp_path, lab)
        shipped = ship(tmp_path, lab, conf, "ceph", tmp_path / "rbd", "*.rbd", "osd-1")
        assert shipped.returncode == 0, shipped.stdout + shipped.stderr
        keys = sorted(o["Key"] for o in lab.client().list_objects_v2(Bucket=lab.bucket)["Contents"])
        assert keys == [f"ceph/osd-1/rbd/shop-media/{full.name}", f"ceph/osd-1/rbd/shop-media/{diff.name}"]
        assert 'seoul_backup_last_success_timestamp_seconds{backup="ceph"}' in (
            tmp_path / "textfile" / "seoul_backup_ceph.prom").read_text()
        back = tmp_path / "back"
        fetched = rclone(conf, lab, "copy", f"vault:{lab.bucket}/ceph/osd-1", str(back))
        assert fetched.returncode == 0, fetched.stderr
    for original in (full, diff):
        assert sha256(back / "rbd" / "shop-media" / original.name) == sha256(original)


# -- pgBackRest's retention deletes: in the locked, versioned vault that only hides a version ------

def test_a_writers_delete_only_hides_a_locked_version_which_stays_restorable(tmp_path):
    """The postgresql writer holds s3:DeleteObject for pgBackRest's `expire` (retention by
    count of fulls; pgBackRest removes expired paths with DeleteObjects, no version ids).
    With the vault's versioning and Object Lock default retention, that adds delete markers:
    the version is still there, readable by version id, and deleting the version itself
    (s3:DeleteObjectVersion, never granted) is refused by the lock anyway."""
    import botocore.exceptions
    import pytest

    cfg = prod()
    rule = backup.default_retention(cfg)
    assert rule["mode"] == "COMPLIANCE"
    policy = backup.writer_policy(cfg.backup_bucket, "postgresql")
    granted = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert "s3:DeleteObject" in granted
    assert not granted & {"s3:DeleteObjectVersion", "s3:BypassGovernanceRetention", "s3:PutBucketVersioning",
                          "s3:PutObjectRetention", "s3:PutBucketObjectLockConfiguration",
                          "s3:PutLifecycleConfiguration"}
    with s3_lab(tmp_path, cfg.backup_bucket) as lab:
        s3 = lab.client()
        s3.put_object_lock_configuration(Bucket=lab.bucket, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": rule["mode"], "Days": rule["days"]}}})
        key = "postgresql/shop-db/repo1/backup/db/20261130-010000F/backup.manifest"
        body = os.urandom(4096)
        version = s3.put_object(Bucket=lab.bucket, Key=key, Body=body)["VersionId"]
        assert s3.head_object(Bucket=lab.bucket, Key=key)["ObjectLockMode"] == rule["mode"]

        deleted = s3.delete_objects(Bucket=lab.bucket, Delete={"Objects": [{"Key": key}]})["Deleted"]
        assert deleted[0]["DeleteMarker"] is True
        with pytest.raises(botocore.exceptions.ClientError, match="NoSuchKey"):
            s3.get_object(Bucket=lab.bucket, Key=key)  # hidden, as pgBackRest expects
        assert s3.get_object(Bucket=lab.bucket, Key=key, VersionId=version)["Body"].read() == body
        with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
            s3.delete_object(Bucket=lab.bucket, Key=key, VersionId=version)
