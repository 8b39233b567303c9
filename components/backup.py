"""The backup vault: one S3 bucket in Seoul, locked, encrypted with our own key, private.

Ceph snapshots (rclone), PostgreSQL (pgBackRest) and etcd snapshots land here under
their own prefixes. Everything goes through an explicit provider pinned to the
configured region, so no resource can drift to the engine's default region.
"""

import json

import pulumi
import pulumi_aws as aws

from model.schema import StackConfig


def tls_only_policy(bucket: str) -> str:
    arn = f"arn:aws:s3:::{bucket}"
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyPlainHttp",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [arn, f"{arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    })


class BackupVault(pulumi.ComponentResource):
    def __init__(self, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("seoul:backup:BackupVault", "backup", None, opts)
        prod = cfg.environment == "prod"
        tags = {"project": "seoul-cluster", "environment": cfg.environment, "backup": "true"}
        provider = aws.Provider("seoul", region=cfg.aws_region, default_tags={"tags": tags},
                                opts=pulumi.ResourceOptions(parent=self))
        child = pulumi.ResourceOptions(parent=self, provider=provider)

        key = aws.kms.Key(
            "backup-key",
            description=f"seoul-cluster {cfg.environment} backups",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=tags,
            opts=child.merge(pulumi.ResourceOptions(protect=prod)),
        )
        name = cfg.backup_bucket
        # The bucket holds the only off-site copy: in prod Pulumi refuses to delete it.
        bucket = aws.s3.Bucket("backups", bucket=name, object_lock_enabled=True, tags=tags,
                               opts=child.merge(pulumi.ResourceOptions(protect=prod)))
        aws.s3.BucketVersioning("backups", bucket=bucket.id,
                                versioning_configuration={"status": "Enabled"}, opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            "backups",
            bucket=bucket.id,
            rules=[{
                "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms",
                                                            "kms_master_key_id": key.arn},
                "bucket_key_enabled": True,
            }],
            opts=child,
        )
        aws.s3.BucketPublicAccessBlock("backups", bucket=bucket.id, block_public_acls=True,
                                       block_public_policy=True, ignore_public_acls=True,
                                       restrict_public_buckets=True, opts=child)
        aws.s3.BucketObjectLockConfiguration(
            "backups",
            bucket=bucket.id,
            # COMPLIANCE: not even the account root can shorten retention (ransomware).
            rule={"default_retention": {"mode": "COMPLIANCE" if prod else "GOVERNANCE",
                                        "days": cfg.backup.retention_days}},
            opts=child,
        )
        aws.s3.BucketPolicy("backups", bucket=bucket.id, policy=tls_only_policy(name), opts=child)
        self.bucket = bucket
        self.register_outputs({"bucket": name, "region": cfg.aws_region})
