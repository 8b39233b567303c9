"""The backup vault under the engine-less monitor."""

import json

import pytest

from offline.wire import plain
from policies.shapes import bundled_files
from render import backup
from render.files import unit_path
from tests.planning import registrations
from tests.stacks import altered_stack
from tests.tools import REPO


def vault(regs):
    """The vault bucket's resources by type (name `backups`), and the provider and key."""
    return {r.type.rsplit(":", 1)[1]: r for r in regs
            if r.type.startswith(("aws:", "pulumi:providers:aws")) and r.name in ("backups", "seoul", "backup-key")}


def by_name(regs, kind: str):
    return {r.name: r for r in regs if r.type.rsplit(":", 1)[1] == kind}


@pytest.fixture(scope="module")
def prod_regs():
    return registrations(REPO / "Pulumi.seoul-prod.yaml")


@pytest.fixture(scope="module")
def prod(prod_regs):
    return vault(prod_regs)


def test_everything_goes_through_the_seoul_provider(prod, prod_regs):
    provider = prod["aws"]
    assert plain(provider.inputs)["region"] == "ap-northeast-2"
    for reg in prod_regs:
        if reg.type.startswith("aws:"):
            assert reg.provider.startswith(provider.urn + "::"), reg.urn


def test_companions_attach_to_the_bucket(prod):
    bucket = prod["Bucket"]
    for kind in ("BucketVersioning", "BucketServerSideEncryptionConfiguration", "BucketPublicAccessBlock",
                 "BucketObjectLockConfiguration", "BucketPolicy"):
        assert prod[kind].property_dependencies["bucket"] == [bucket.urn], kind


def test_bucket_is_locked_encrypted_and_tls_only(prod):
    bucket = plain(prod["Bucket"].inputs)
    assert bucket["objectLockEnabled"] is True and bucket["tags"]["backup"] == "true"
    lock = plain(prod["BucketObjectLockConfiguration"].inputs)["rule"]["defaultRetention"]
    assert lock == {"mode": "COMPLIANCE", "days": 35}
    sse = plain(prod["BucketServerSideEncryptionConfiguration"].inputs)["rules"][0]
    assert sse["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert prod["BucketServerSideEncryptionConfiguration"].property_dependencies["rules"] == [prod["Key"].urn]
    statement = json.loads(plain(prod["BucketPolicy"].inputs)["policy"])["Statement"][0]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == [f"arn:aws:s3:::{bucket['bucket']}", f"arn:aws:s3:::{bucket['bucket']}/*"]


def test_prod_protects_the_bucket_and_stage_does_not(prod):
    stage = vault(registrations(REPO / "Pulumi.seoul-stage.yaml"))
    assert prod["Bucket"].protect and prod["Key"].protect
    assert not stage["Bucket"].protect
    assert plain(stage["BucketObjectLockConfiguration"].inputs)["rule"]["defaultRetention"]["mode"] == "GOVERNANCE"


def test_bucket_name_and_retention_come_from_config(tmp_path):
    def custom(c):
        c["seoul-cluster:backup"] = {"bucket": "shop-kr-backups-7f3a", "retentionDays": 90}

    regs = vault(registrations(altered_stack(tmp_path, "seoul-stage", custom)))
    assert plain(regs["Bucket"].inputs)["bucket"] == "shop-kr-backups-7f3a"
    assert plain(regs["BucketObjectLockConfiguration"].inputs)["rule"]["defaultRetention"]["days"] == 90


def test_tls_below_1_2_is_denied_as_well_as_plain_http(prod, prod_regs):
    for policy in (prod["BucketPolicy"], by_name(prod_regs, "BucketPolicy")["backup-logs"]):
        statements = json.loads(plain(policy.inputs)["policy"])["Statement"]
        tls = [s for s in statements if s["Effect"] == "Deny" and "NumericLessThan" in s["Condition"]]
        assert [s["Condition"]["NumericLessThan"] for s in tls] == [{"s3:TlsVersion": 1.2}], policy.name


def test_lifecycle_never_removes_a_version_before_object_lock_releases_it(prod):
    lock_days = plain(prod["BucketObjectLockConfiguration"].inputs)["rule"]["defaultRetention"]["days"]
    lifecycle = prod["BucketLifecycleConfiguration"]
    assert lifecycle.property_dependencies["bucket"] == [prod["Bucket"].urn]
    rules = plain(lifecycle.inputs)["rules"]
    assert sorted(r["filter"]["prefix"] for r in rules) == ["ceph/", "etcd/", "postgresql/"]
    for rule in rules:
        # A noncurrent version was written before it became noncurrent: its age is past the lock.
        assert rule["noncurrentVersionExpiration"]["noncurrentDays"] >= lock_days, rule["id"]
        assert rule.get("expiration", {}).get("days", lock_days) >= lock_days, rule["id"]
        assert "newerNoncurrentVersions" not in rule["noncurrentVersionExpiration"]


def test_access_logs_go_to_a_private_log_bucket(prod, prod_regs):
    buckets = by_name(prod_regs, "Bucket")
    logs = buckets["backup-logs"]
    logging = plain(prod["BucketLogging"].inputs)
    assert prod["BucketLogging"].property_dependencies["bucket"] == [prod["Bucket"].urn]
    assert prod["BucketLogging"].property_dependencies["targetBucket"] == [logs.urn]
    assert logging["targetPrefix"] == "s3-access/"
    block = plain(by_name(prod_regs, "BucketPublicAccessBlock")["backup-logs"].inputs)
    assert all(block[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    grant = json.loads(plain(by_name(prod_regs, "BucketPolicy")["backup-logs"].inputs)["policy"])["Statement"][-1]
    assert grant["Principal"] == {"Service": "logging.s3.amazonaws.com"} and grant["Action"] == "s3:PutObject"
    assert grant["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:s3:::{plain(prod['Bucket'].inputs)['bucket']}"
    assert logs.protect


def test_one_writer_per_kind_puts_and_lists_its_own_prefix_and_never_removes_a_version(prod, prod_regs):
    bucket = plain(prod["Bucket"].inputs)["bucket"]
    policies = by_name(prod_regs, "UserPolicy")
    users = by_name(prod_regs, "User")
    for kind in ("postgresql", "ceph", "etcd"):
        user = users[f"backup-{kind}"]
        s3 = policies[f"backup-{kind}-s3"]
        assert s3.property_dependencies["user"] == [user.urn]
        statements = json.loads(plain(s3.inputs)["policy"])["Statement"]
        assert all(s["Effect"] == "Allow" for s in statements)
        actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
        assert not any(a.endswith("*") or "Version" in a or "Bypass" in a or (a.startswith("s3:Put") and
                       a != "s3:PutObject") for a in actions), actions
        if kind != "postgresql":  # rclone: put and list only
            assert actions == {"s3:PutObject", "s3:ListBucket"}, kind
        else:  # pgBackRest reads for restore and retires by delete marker
            assert actions == {"s3:PutObject", "s3:ListBucket", "s3:GetObject", "s3:DeleteObject"}
        for statement in statements:
            if statement["Action"] == "s3:ListBucket":
                assert statement["Resource"] == f"arn:aws:s3:::{bucket}"
                assert statement["Condition"]["StringLike"]["s3:prefix"] == [f"{kind}/", f"{kind}/*"]
            else:
                assert statement["Resource"] == f"arn:aws:s3:::{bucket}/{kind}/*"
        kms = policies[f"backup-{kind}-kms"]
        assert kms.property_dependencies["policy"] == [prod["Key"].urn]


def test_writer_keys_are_secret_and_reach_hosts_only_on_stdin(prod_regs):
    keys = by_name(prod_regs, "AccessKey")
    assert sorted(keys) == ["backup-ceph", "backup-etcd", "backup-postgresql"]
    assert all("secret" in k.additional_secret_outputs for k in keys.values())
    confs = [r for r in prod_regs if r.name.endswith("-rclone-conf")]
    assert sorted(r.name for r in confs) == ["etcd-1-backup-etcd-rclone-conf", "etcd-2-backup-etcd-rclone-conf",
                                             "etcd-3-backup-etcd-rclone-conf", "osd-1-backup-ceph-rclone-conf"]
    for conf in confs:
        inputs = plain(conf.inputs)
        assert inputs["stdin"] == "[secret]" and "secret" not in inputs["create"]
        assert inputs["create"].startswith("sudo install -D -m 0600 ")


def test_etcd_members_ship_their_snapshots_hourly_and_the_ceph_bootstrap_host_its_images(prod_regs):
    names = {r.name: r for r in prod_regs}

    def writes(name: str) -> set[str]:
        return {put.path for put, _ in bundled_files(plain(names[name].inputs)["stdin"])}
    for member in ("etcd-1", "etcd-2", "etcd-3"):
        assert f"{member}-backup-etcd-install" in names
        assert unit_path(backup.ETCD_TIMER) in writes(f"{member}-backup-etcd-timers")
    assert "osd-1-backup-ceph-install" in names
    assert unit_path(backup.CEPH_TIMER) in writes("osd-1-backup-ceph-timers")
    commands = [r.name for r in prod_regs if r.type == "command:remote:Command"]
    assert [n for n in commands if "backup-ceph" in n and not n.startswith("osd-1-")] == []


def test_stage_buckets_are_not_protected_and_prod_ones_are(prod_regs):
    stage = by_name(registrations(REPO / "Pulumi.seoul-stage.yaml"), "Bucket")
    assert not any(b.protect for b in stage.values())
    assert all(b.protect for b in by_name(prod_regs, "Bucket").values())
