"""The backup vault's documents and the hosts' off-site copy jobs: pure functions of the model.

One bucket, one prefix per kind of backup (`KINDS`), one writer identity per kind. The
facts about S3 encoded here come from the AWS S3 user guide ("Object Lock", "Lifecycle",
"Enabling Amazon S3 server access logging", "Enforcing TLS": the `s3:TlsVersion`
condition key) and rclone's S3 backend documentation (https://rclone.org/s3/).
"""

import json
import re

from model.schema import HostSpec, StackConfig
from render import etcd
from render.certs import TEXTFILE_DIR
from render.files import FileSet, HostFile, ScriptRun, script, timer_unit, timers, unit_path

# Kind of backup -> its prefix in the vault (S3 keys start with it, no leading slash).
KINDS = ("postgresql", "ceph", "etcd")

CONF_DIR = "/etc/seoul-backup"
RCLONE_REMOTE = "vault"
SHIP_SCRIPT = "/usr/local/sbin/seoul-backup-ship"
CEPH_SCRIPT = "/usr/local/sbin/seoul-backup-ceph"
CEPH_RESTORE_SCRIPT = "/usr/local/sbin/seoul-restore-ceph"
CEPH_EXPORT_DIR = "/var/lib/seoul-backup/rbd"
CEPH_KEEP_DAYS = 3  # exports kept locally after they are shipped
# The freshness gauges render/alerts.py alerts on; label `backup` is the kind.
METRIC = "seoul_backup_last_success_timestamp_seconds"
PERIOD_METRIC = "seoul_backup_period_seconds"
PERIOD_SECONDS = {"etcd": 3600, "ceph": 86400}
MIN_TLS_VERSION = "1.2"
LOG_PREFIX = "s3-access/"
LOG_RETENTION_DAYS = 365
ABORT_MULTIPART_DAYS = 7


def prefix(kind: str) -> str:
    """`etcd/` for `etcd`: where that kind's objects live in the vault."""
    if kind not in KINDS:
        raise ValueError(f"unknown backup kind {kind!r}; one of {', '.join(KINDS)}")
    return f"{kind}/"


def rclone_config_path(kind: str) -> str:
    """Where the rclone config of `kind`'s writer is put (0600, root)."""
    return f"{CONF_DIR}/rclone-{prefix(kind).rstrip('/')}.conf"


def log_bucket(cfg: StackConfig) -> str:
    """The bucket that receives the vault's server access logs."""
    return f"{cfg.backup_bucket}-logs"


def _arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def vault_policy(bucket: str) -> dict:
    """Bucket policy: deny plain HTTP (aws:SecureTransport) and TLS below 1.2 (s3:TlsVersion)."""
    resources = [_arn(bucket), f"{_arn(bucket)}/*"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "DenyPlainHttp", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": resources, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Sid": "DenyTlsBelow12", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": resources,
             "Condition": {"NumericLessThan": {"s3:TlsVersion": float(MIN_TLS_VERSION)}}},
        ],
    }


def log_bucket_policy(logs: str, source: str) -> dict:
    """The vault's TLS rules plus: the S3 logging service may put logs from `source` only."""
    document = vault_policy(logs)
    document["Statement"].append({
        "Sid": "S3ServerAccessLogs", "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject", "Resource": f"{_arn(logs)}/{LOG_PREFIX}*",
        "Condition": {"ArnLike": {"aws:SourceArn": _arn(source)}},
    })
    return document


def default_retention(cfg: StackConfig) -> dict:
    """The vault's Object Lock default retention (BucketObjectLockConfiguration `rule`):
    COMPLIANCE in prod, where not even the account root can shorten it (ransomware);
    GOVERNANCE in stage, where an identity granted s3:BypassGovernanceRetention can."""
    return {"mode": "COMPLIANCE" if cfg.environment == "prod" else "GOVERNANCE", "days": cfg.backup.retention_days}


def lifecycle_rules(cfg: StackConfig) -> list[dict]:
    """Lifecycle rules (pulumi_aws BucketLifecycleConfiguration `rules`), one per prefix.

    A version is only ever removed `retentionDays` after it stopped being current, and it
    was written before that, so no rule removes a version Object Lock still holds (S3
    refuses to anyway; the rules just never ask). etcd and Ceph copies turn noncurrent
    `retentionDays` after they were written; PostgreSQL's are retired by pgBackRest's own
    retention (`database.retentionFull`), which only adds delete markers.
    """
    days = cfg.backup.retention_days
    rules = []
    for kind in KINDS:
        rule: dict = {
            "id": f"{kind}-retention",
            "status": "Enabled",
            "filter": {"prefix": prefix(kind)},
            "noncurrent_version_expiration": {"noncurrent_days": days},
            "abort_incomplete_multipart_upload": {"days_after_initiation": ABORT_MULTIPART_DAYS},
        }
        if kind != "postgresql":
            rule["expiration"] = {"days": days}
        rules.append(rule)
    return rules


def writer_policy(bucket: str, kind: str) -> dict:
    """IAM policy of the identity that writes `kind`'s backups: its own prefix only.

    rclone (etcd, ceph) lists and puts, nothing else. pgBackRest also reads (restore,
    archive-get) and deletes (its retention, `expire`): in the versioned, Object Lock
    bucket a delete only adds a delete marker, so no identity may remove a version
    (`s3:DeleteObjectVersion` and `s3:BypassGovernanceRetention` are never granted).
    """
    own = prefix(kind)
    actions = ["s3:PutObject"]
    if kind == "postgresql":
        actions += ["s3:GetObject", "s3:DeleteObject"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ListOwnPrefix", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": _arn(bucket),
             "Condition": {"StringLike": {"s3:prefix": [own, f"{own}*"]}}},
            {"Sid": "WriteOwnPrefix", "Effect": "Allow", "Action": actions, "Resource": f"{_arn(bucket)}/{own}*"},
        ],
    }


def kms_policy(key_arn: str) -> str:
    """IAM policy (JSON) for SSE-KMS uploads with the vault's key: data keys, and Decrypt,
    which multipart uploads and pgBackRest's reads need."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "UseVaultKey", "Effect": "Allow",
                       "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": key_arn}],
    })


def rclone_config(region: str, access_key_id: str, secret_access_key: str, kms_key_arn: str,
                  endpoint: str | None = None) -> str:
    """rclone.conf with one S3 remote `vault` (SSE-KMS with the vault's key).

    `endpoint`: only to point at another S3 API (tests): the provider is then `Other` with
    path-style URLs, since for `AWS` rclone always uses virtual-hosted bucket names.
    """
    lines = [
        f"[{RCLONE_REMOTE}]",
        "type = s3",
        f"provider = {'Other' if endpoint else 'AWS'}",
        "env_auth = false",
        f"access_key_id = {access_key_id}",
        f"secret_access_key = {secret_access_key}",
        f"region = {region}",
        f"location_constraint = {region}",
        "server_side_encryption = aws:kms",
        f"sse_kms_key_id = {kms_key_arn}",
        # The writer may not create buckets nor read objects back: skip both checks.
        "no_check_bucket = true",
        "no_head = true",
    ]
    if endpoint:
        lines += [f"endpoint = {endpoint}", "force_path_style = true"]
    return "\n".join(lines) + "\n"


# -- uplink ---------------------------------------------------------------------------------------


# The FortiGate traffic shaper that caps everything the nodes send to the vault (render/fortigate.py).
SHAPER = "seoul-backup-uplink"


def share_mbps(cfg: StackConfig) -> int:
    """The uplink share off-site backups may use, in Mbit/s (10^6 bits), whole: the FortiGate
    shaper's `maximum-bandwidth` (bandwidth-unit mbps) and the basis of every other limit here."""
    return max(1, int(cfg.network.uplink_gbps * 1000 * cfg.backup.uplink_share_percent / 100))


def share_bytes_per_second(cfg: StackConfig) -> float:
    """The uplink share off-site backups may use, in bytes per second (`share_mbps`)."""
    return share_mbps(cfg) * 1e6 / 8


def vault_host(cfg: StackConfig) -> str:
    """The vault's virtual-hosted S3 name, the one host every writer sends to: pgBackRest
    (`repo1-s3-uri-style=host`) and rclone (provider AWS) both address the bucket this way
    (AWS "Virtual hosting of buckets")."""
    return f"{cfg.backup_bucket}.s3.{cfg.aws_region}.amazonaws.com"


def bwlimit(cfg: StackConfig, kind: str) -> str:
    """rclone `--bwlimit` of one `kind` job (KiB/s): each kind gets the share in proportion to
    its daily volume (`daily_offsite_gb`), so every kind finishes in `uplink_hours`; the etcd
    part is split between the etcd members, which ship at once. The rest of the share is
    pgBackRest's (held with the others by the FortiGate shaper: it has no rate option).
    rclone reads 0 as "no limit", so the least is 1k."""
    volume = daily_offsite_gb(cfg)
    part = volume[kind] / (sum(volume.values()) or 1)
    ways = len(cfg.etcd_members) if kind == "etcd" else 1
    return f"{max(1, int(share_bytes_per_second(cfg) * part / ways / 1024))}k"


def daily_offsite_gb(cfg: StackConfig) -> dict[str, float]:
    """GB (10^9 bytes) sent off site a day, per kind: Ceph increments are a day's ingest
    (`workload.dailyIngestTb`) when `backup.cephImages` names images; PostgreSQL one full
    (the volume's size, an upper bound) plus `database.dailyChangeGb`; etcd 24 hourly
    snapshots of `backup.etcdSnapshotGb` per member."""
    volume = {
        "ceph": cfg.workload.daily_ingest_tb * 1000 if cfg.backup.ceph_images else 0.0,
        "postgresql": 0.0,
        "etcd": 24 * len(cfg.etcd_members) * cfg.backup.etcd_snapshot_gb,
    }
    if cfg.database:
        volume["postgresql"] = _quantity_gb(cfg.database.storage_size) + cfg.database.daily_change_gb
    return volume


def uplink_hours(cfg: StackConfig) -> float:
    """Hours a day the off-site copies keep the uplink busy at their share."""
    total = sum(daily_offsite_gb(cfg).values()) * 1e9
    return total / share_bytes_per_second(cfg) / 3600


def uplink_verdict(cfg: StackConfig) -> dict:
    """The facts the plan prints and `OffsiteCopies` registers (policy backup-offsite-fits-uplink)."""
    return {
        "uplinkGbps": cfg.network.uplink_gbps,
        "sharePercent": cfg.backup.uplink_share_percent,
        "dailyOffsiteGb": {k: round(v, 1) for k, v in daily_offsite_gb(cfg).items()},
        "hoursPerDay": round(uplink_hours(cfg), 2),
        # What enforces the share for pgBackRest (which has no rate option): the FortiGate shaper.
        "shareMbps": share_mbps(cfg),
        "uploadShaper": SHAPER if cfg.fortigate else None,
    }


def uplink_lines(cfg: StackConfig) -> list[str]:
    """The plan's uplink verdict, beside the capacity verdict."""
    facts = uplink_verdict(cfg)
    volume = facts["dailyOffsiteGb"]
    parts = ", ".join(f"{kind} {gb:,.1f}" for kind, gb in volume.items())
    hours = facts["hoursPerDay"]
    fits = "fits in a day" if hours <= 24 else "does NOT fit in a day: raise network.uplinkGbps or the share"
    return [
        f"Off-site backups: {sum(volume.values()):,.1f} GB a day ({parts}) over {facts['sharePercent']}% "
        f"of a {facts['uplinkGbps']:g} Gbps uplink",
        f"  {hours:.1f} hours of uplink a day at that share (rclone --bwlimit {bwlimit(cfg, 'ceph')} for Ceph, "
        f"{bwlimit(cfg, 'etcd')} per etcd member): {fits}",
        schedule_line(cfg),
        f"  {_cap(cfg)}",
    ]


def schedule_line(cfg: StackConfig) -> str:
    """The plan's line of what runs when: the backup timers by host, the operator's schedules."""
    parts = [f"{ETCD_TIMER} on {', '.join(m.name for m in cfg.as_built.etcd_members)} ({ETCD_SHIP_CALENDAR})"]
    ceph_host = ceph_backup_host(cfg)
    if ceph_host:
        parts.append(f"{CEPH_TIMER} on {ceph_host.name} ({CEPH_CALENDAR}, "
                     f"{len(cfg.backup.ceph_images)} RBD images)")
    if cfg.database:
        parts.append(f"pgBackRest via the operator (full '{cfg.database.full_schedule}', "
                     f"incremental '{cfg.database.incremental_schedule}')")
    return "  backup jobs: " + "; ".join(parts)


def _cap(cfg: StackConfig) -> str:
    if cfg.fortigate is None:
        return "pgBackRest has no rate limit and no FortiGate is configured: its uploads are NOT capped"
    return (f"FortiGate shaper {SHAPER} caps all uploads to {vault_host(cfg)} (pgBackRest and rclone) "
            f"at {share_mbps(cfg)} Mbps")


def _quantity_gb(quantity: str) -> float:
    """GB (10^9 bytes) in a Kubernetes quantity such as `200Gi`."""
    number, unit = re.fullmatch(r"([0-9.]+)(m|Ki|Mi|Gi|Ti)?", quantity).groups()
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, None: 1}
    return float(number) * units[unit] / 1e9


def install(kind: str) -> ScriptRun:
    """rclone on the host (EPEL), for `kind`'s job."""
    return ScriptRun(f"backup-{kind}-install", "backup-install.sh", {"PACKAGES": "rclone"})


# -- etcd members: ship the hourly snapshots ------------------------------------------------------

ETCD_SERVICE = "seoul-backup-etcd.service"
ETCD_TIMER = "seoul-backup-etcd.timer"
ETCD_SHIP_CALENDAR = "*-*-* *:30:00"  # systemd OnCalendar


def ship_env(cfg: StackConfig, kind: str, source_dir: str, include: str, host: str) -> dict[str, str]:
    """Parameters of scripts/backup-ship.sh: copy new files of `source_dir` off site."""
    return {
        "JOB": kind,
        "SOURCE_DIR": source_dir,
        "INCLUDE": include,
        "DEST": f"{RCLONE_REMOTE}:{cfg.backup_bucket}/{prefix(kind)}{host}",
        "RCLONE_CONFIG": rclone_config_path(kind),
        "BWLIMIT": bwlimit(cfg, kind),
        "TEXTFILE_DIR": TEXTFILE_DIR,
        "PERIOD_SECONDS": str(PERIOD_SECONDS[kind]),
    }


def etcd_ship_service(cfg: StackConfig, host: str) -> str:
    env = " ".join(f"{k}={v}" for k, v in ship_env(cfg, "etcd", etcd.SNAPSHOT_DIR, "etcd-*.db", host).items())
    return f"""\
[Unit]
Description=Copy new etcd snapshots to the S3 vault (rclone)
After=network-online.target etcd-snapshot.service
Wants=network-online.target

[Service]
Type=oneshot
Environment={env}
ExecStart={SHIP_SCRIPT}
Nice=10
IOSchedulingClass=idle
"""


def etcd_ship_timer() -> str:
    # The snapshot runs on the hour (plus up to 5 minutes): ship half an hour later.
    return timer_unit("Hourly off-site copy of etcd snapshots", ETCD_SHIP_CALENDAR, "300")


def etcd_offsite(cfg: StackConfig, host: str) -> FileSet:
    """The ship script, its unit and timer on an etcd member (rclone.conf is put apart: secret)."""
    files = (
        HostFile("backup-etcd-ship-script", SHIP_SCRIPT, script("backup-ship.sh"), "0755"),
        HostFile("backup-etcd-service", unit_path(ETCD_SERVICE), etcd_ship_service(cfg, host)),
        HostFile("backup-etcd-timer", unit_path(ETCD_TIMER), etcd_ship_timer()),
    )
    return timers("backup-etcd-timers", files, [ETCD_TIMER])


# -- the Ceph bootstrap host: snapshot, export and ship the named RBD images ------------------------

CEPH_SERVICE = "seoul-backup-ceph.service"
CEPH_TIMER = "seoul-backup-ceph.timer"
CEPH_CALENDAR = "*-*-* 02:00:00"  # systemd OnCalendar


def ceph_backup_host(cfg: StackConfig) -> HostSpec | None:
    """Where the RBD exports run: the first storage host (it holds the admin keyring,
    components/ceph.py), or None when there is no storage host or no image to back up."""
    built = cfg.as_built
    return built.storage_hosts[0] if built.storage_hosts and cfg.backup.ceph_images else None


def ceph_env(cfg: StackConfig, host: str) -> dict[str, str]:
    """Parameters of scripts/backup-ceph.sh (and the ship's) on the Ceph bootstrap `host`."""
    return {
        "IMAGES": " ".join(cfg.backup.ceph_images),
        "EXPORT_DIR": CEPH_EXPORT_DIR,
        "KEEP_DAYS": str(CEPH_KEEP_DAYS),
        "FULL_EVERY": str(cfg.backup.ceph_full_every_days),
        "SHIP": SHIP_SCRIPT,
        **ship_env(cfg, "ceph", CEPH_EXPORT_DIR, "*.rbd", host),
    }


def ceph_service(cfg: StackConfig, host: str) -> str:
    lines = "\n".join(f'Environment="{k}={v}"' for k, v in ceph_env(cfg, host).items())
    return f"""\
[Unit]
Description=Snapshot, export and copy the named RBD images to the S3 vault
After=network-online.target ceph.target
Wants=network-online.target

[Service]
Type=oneshot
{lines}
ExecStart={CEPH_SCRIPT}
Nice=10
IOSchedulingClass=idle
"""


def ceph_timer() -> str:
    # After the day's PostgreSQL full (01:00), so the two share the uplink less.
    return timer_unit("Daily RBD snapshot export and off-site copy", CEPH_CALENDAR, "600")


def ceph_offsite(cfg: StackConfig, host: str) -> FileSet:
    """On the Ceph bootstrap host (admin keyring, `rbd`): the scripts, unit and daily timer,
    and the restore script (README, "Backups and restores")."""
    files = (
        HostFile("backup-ceph-ship-script", SHIP_SCRIPT, script("backup-ship.sh"), "0755"),
        HostFile("backup-ceph-script", CEPH_SCRIPT, script("backup-ceph.sh"), "0755"),
        HostFile("backup-ceph-restore-script", CEPH_RESTORE_SCRIPT, script("backup-ceph-restore.sh"), "0755"),
        HostFile("backup-ceph-service", unit_path(CEPH_SERVICE), ceph_service(cfg, host)),
        HostFile("backup-ceph-timer", unit_path(CEPH_TIMER), ceph_timer()),
    )
    return timers("backup-ceph-timers", files, [CEPH_TIMER])
