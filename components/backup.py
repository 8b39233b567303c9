"""The backup vault: one S3 bucket in Seoul, locked, encrypted with our own key, private;
and the hosts' jobs that copy backups into it.

Ceph snapshots (rclone), PostgreSQL (pgBackRest) and etcd snapshots land here under
their own prefixes (`render.backup.KINDS`), each written by its own IAM user that can
put and list that prefix only. Everything goes through an explicit provider pinned to
the configured region, so no resource can drift to the engine's default region.
"""

import json
from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from components.remote import HostHandle, apply_file_set, child_opts, put_file, run
from model.schema import StackConfig
from render import backup as render


def tls_only_policy(bucket: str) -> str:
    """The vault's bucket policy (JSON): deny plain HTTP and TLS below 1.2."""
    return json.dumps(render.vault_policy(bucket))


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
            rule={"default_retention": render.default_retention(cfg)},
            opts=child,
        )
        aws.s3.BucketPolicy("backups", bucket=bucket.id, policy=tls_only_policy(name), opts=child)
        aws.s3.BucketLifecycleConfiguration("backups", bucket=bucket.id, rules=render.lifecycle_rules(cfg),
                                            opts=child)
        logs = self._log_bucket(cfg, bucket, tags, child.merge(pulumi.ResourceOptions(protect=prod)), child)
        aws.s3.BucketLogging("backups", bucket=bucket.id, target_bucket=logs.id, target_prefix=render.LOG_PREFIX,
                             opts=child)
        self.bucket = bucket
        self.key = key
        #: Per kind of backup (`render.backup.KINDS`): the access key of its writer.
        self.writers = {kind: self._writer(cfg, kind, key, child) for kind in render.KINDS}
        self.register_outputs({"bucket": name, "region": cfg.aws_region})

    @staticmethod
    def _log_bucket(cfg: StackConfig, source: aws.s3.Bucket, tags: dict, keep: pulumi.ResourceOptions,
                    child: pulumi.ResourceOptions) -> aws.s3.Bucket:
        """The bucket S3 writes the vault's server access logs to (SSE-S3: log delivery
        cannot use SSE-KMS), private, TLS-only, logs kept a year."""
        name = render.log_bucket(cfg)
        logs = aws.s3.Bucket("backup-logs", bucket=name, tags={**tags, "backup": "logs"}, opts=keep)
        aws.s3.BucketOwnershipControls("backup-logs", bucket=logs.id,
                                       rule={"object_ownership": "BucketOwnerEnforced"}, opts=child)
        aws.s3.BucketPublicAccessBlock("backup-logs", bucket=logs.id, block_public_acls=True,
                                       block_public_policy=True, ignore_public_acls=True,
                                       restrict_public_buckets=True, opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            "backup-logs", bucket=logs.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}], opts=child)
        aws.s3.BucketLifecycleConfiguration(
            "backup-logs", bucket=logs.id,
            rules=[{"id": "logs-retention", "status": "Enabled", "filter": {"prefix": render.LOG_PREFIX},
                    "expiration": {"days": render.LOG_RETENTION_DAYS}}],
            opts=child)
        aws.s3.BucketPolicy("backup-logs", bucket=logs.id,
                            policy=json.dumps(render.log_bucket_policy(name, cfg.backup_bucket)), opts=child)
        return logs

    @staticmethod
    def _writer(cfg: StackConfig, kind: str, key: aws.kms.Key, child: pulumi.ResourceOptions) -> aws.iam.AccessKey:
        user = aws.iam.User(f"backup-{kind}", name=f"seoul-cluster-{cfg.environment}-backup-{kind}",
                            path="/seoul-cluster/", opts=child)
        aws.iam.UserPolicy(f"backup-{kind}-s3", user=user.name,
                           policy=json.dumps(render.writer_policy(cfg.backup_bucket, kind)), opts=child)
        aws.iam.UserPolicy(f"backup-{kind}-kms", user=user.name, policy=key.arn.apply(render.kms_policy),
                           opts=child)
        return aws.iam.AccessKey(f"backup-{kind}", user=user.name,
                                 opts=child.merge(pulumi.ResourceOptions(additional_secret_outputs=["secret"])))


def rclone_config(cfg: StackConfig, vault: BackupVault, kind: str) -> pulumi.Output[str]:
    """rclone.conf for `kind`'s writer: a secret Output (it holds the access key)."""
    writer = vault.writers[kind]
    text = pulumi.Output.all(writer.id, writer.secret, vault.key.arn).apply(
        lambda a: render.rclone_config(cfg.aws_region, a[0], a[1], a[2]))
    return pulumi.Output.secret(text)


class OffsiteCopies(pulumi.ComponentResource):
    """The hosts' jobs that copy backups into the vault: the etcd members' hourly snapshots,
    and the named RBD images' daily snapshots from the Ceph bootstrap host.

    Each job writes `render.backup.METRIC{backup=<kind>}` for node_exporter when it succeeds.
    """

    def __init__(self, cfg: StackConfig, hosts: Mapping[str, HostHandle], vault: BackupVault,
                 opts: pulumi.ResourceOptions | None = None):
        # The uplink facts are its inputs: policy backup-offsite-fits-uplink judges them.
        super().__init__("seoul:backup:OffsiteCopies", "offsite", render.uplink_verdict(cfg), opts)
        built = cfg.as_built
        for member in built.etcd_members:
            self._job(hosts[member.name], "etcd", rclone_config(cfg, vault, "etcd"),
                      render.etcd_offsite(cfg, member.name))
        ceph_host = render.ceph_backup_host(cfg)
        if ceph_host:
            self._job(hosts[ceph_host.name], "ceph", rclone_config(cfg, vault, "ceph"),
                      render.ceph_offsite(cfg, ceph_host.name))
        self.register_outputs({})

    def _job(self, handle: HostHandle, kind: str, conf: pulumi.Output[str], files) -> None:
        """rclone (EPEL), the writer's rclone config (secret, on stdin), then the job's units."""
        to = handle.target
        opts = child_opts(self, [handle.ready])
        secret = put_file(f"{to.host.name}-backup-{kind}-rclone-conf", to, render.rclone_config_path(kind), conf,
                          opts, mode="0600", secret=True)
        tools = run(to, render.install(kind), opts)
        apply_file_set(self, to, files, [handle.ready], apply_after=[secret, tools])
