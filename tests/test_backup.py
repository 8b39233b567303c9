"""The backup vault under the engine-less monitor."""

import json

import pytest

from offline.wire import plain
from tests.planning import registrations
from tests.stacks import altered_stack
from tests.tools import REPO


def vault(regs):
    return {r.type.rsplit(":", 1)[1]: r for r in regs if r.type.startswith(("aws:", "pulumi:providers:aws"))}


@pytest.fixture(scope="module")
def prod():
    return vault(registrations(REPO / "Pulumi.seoul-prod.yaml"))


def test_everything_goes_through_the_seoul_provider(prod):
    provider = prod["aws"]
    assert plain(provider.inputs)["region"] == "ap-northeast-2"
    for kind, reg in prod.items():
        if kind != "aws":
            assert reg.provider.startswith(provider.urn + "::"), kind


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
