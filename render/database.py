"""The application's PostgreSQL: the Percona operator's release and the PerconaPGCluster.

Pure functions of the model. The pgBackRest settings (`pgbackrest_global`, `repo1`) are
the single source both for the operator's cluster resource and for the restore test,
which runs real pgBackRest with them. pgBackRest option names: pgbackrest.org
"Configuration Reference"; the CR's fields: the perconapgclusters CRD (pgv2.percona.com/v2).
"""

from model import releases
from model.schema import Database, StackConfig
from render import backup
from render.helm import HelmRelease, Manifest, manifest

OPERATOR_NAMESPACE = "pg-operator"
CIPHER_TYPE = "aes-256-cbc"
# The Secret the operator mounts into pgBackRest's config: credentials and the passphrase.
S3_SECRET_KEY = "s3.conf"
HOSTNAME_TOPOLOGY = "kubernetes.io/hostname"


def s3_endpoint(region: str) -> str:
    """The regional S3 endpoint (AWS "Amazon S3 endpoints and quotas")."""
    return f"s3.{region}.amazonaws.com"


def secret_name(db: Database) -> str:
    return f"{db.name}-pgbackrest-secrets"


def repo_path(db: Database) -> str:
    """Where repo1 lives in the vault: under the postgresql prefix."""
    return f"/{backup.prefix('postgresql')}{db.name}/repo1"


def pgbackrest_global(db: Database) -> dict[str, str]:
    """pgBackRest options for repo1 (the CR's `backups.pgbackrest.global`; values are strings)."""
    return {
        "repo1-path": repo_path(db),
        "repo1-retention-full": str(db.retention_full),
        "repo1-retention-full-type": "count",
        "repo1-cipher-type": CIPHER_TYPE,
        "repo1-s3-uri-style": "host",
        # Several streams reach the S3 endpoint's throughput; compression saves uplink.
        "process-max": "2",
        "compress-type": "zst",
    }


def repo1(cfg: StackConfig, db: Database) -> dict:
    """The CR's repo1: the vault bucket in the stack's region, the full and incremental schedules."""
    return {
        "name": "repo1",
        "s3": {"bucket": cfg.backup_bucket, "endpoint": s3_endpoint(cfg.aws_region), "region": cfg.aws_region},
        "schedules": {"full": db.full_schedule, "incremental": db.incremental_schedule},
    }


def s3_conf(access_key_id: str, secret_access_key: str, cipher_pass: str) -> str:
    """The `s3.conf` the operator mounts: repo1's credentials and encryption passphrase."""
    return (f"[global]\nrepo1-s3-key={access_key_id}\nrepo1-s3-key-secret={secret_access_key}\n"
            f"repo1-cipher-pass={cipher_pass}\n")


def operator_release() -> HelmRelease:
    """The operator, watching its own namespace and the database's (the chart's default)."""
    return HelmRelease("pg-operator", releases.PG_OPERATOR, OPERATOR_NAMESPACE,
                       {"watchAllNamespaces": True, "disableTelemetry": True})


def _spread(db: Database) -> dict:
    """At most one instance per node (required anti-affinity on the hostname)."""
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "topologyKey": HOSTNAME_TOPOLOGY,
        "labelSelector": {"matchLabels": {"postgres-operator.crunchydata.com/cluster": db.name,
                                          "postgres-operator.crunchydata.com/instance-set": "instance1"}},
    }]}}


def repo1_options(cfg: StackConfig, db: Database) -> dict[str, str]:
    """pgBackRest's repo1 options as the operator gives them to every pgBackRest it runs (the
    cluster's `backups.pgbackrest.global` and `repos[0].s3`): what a restore outside the
    cluster needs in its pgbackrest.conf `[global]`, beside `s3_conf`'s secrets. All of them
    belong in the file: pgBackRest writes the restore_command without command-line repo
    options such as the cipher type, and recovery's archive-get would fail without them."""
    spec = cluster(cfg, db)["spec"]["backups"]["pgbackrest"]
    [repo] = spec["repos"]
    return {"repo1-type": "s3", **spec["global"], "repo1-s3-bucket": repo["s3"]["bucket"],
            "repo1-s3-region": repo["s3"]["region"], "repo1-s3-endpoint": repo["s3"]["endpoint"]}


def cluster(cfg: StackConfig, db: Database) -> Manifest:
    """The PerconaPGCluster: `instances` Patroni members on `ceph-rbd`, pgBackRest repo1 in the vault."""
    return manifest(
        "pgv2.percona.com/v2", "PerconaPGCluster", db.name, db.namespace,
        spec={
            "crVersion": releases.PG_CR_VERSION,
            "image": releases.PG_IMAGE,
            "postgresVersion": db.postgres_version,
            "instances": [{
                "name": "instance1",
                "replicas": db.instances,
                "affinity": _spread(db),
                "dataVolumeClaimSpec": {
                    "storageClassName": db.storage_class,
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": db.storage_size}},
                },
            }],
            "proxy": {"pgBouncer": {"replicas": 2, "image": releases.PG_BOUNCER_IMAGE, "affinity": {
                "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                    "weight": 1, "podAffinityTerm": {"topologyKey": HOSTNAME_TOPOLOGY, "labelSelector": {
                        "matchLabels": {"postgres-operator.crunchydata.com/cluster": db.name,
                                        "postgres-operator.crunchydata.com/role": "pgbouncer"}}}}]}}}},
            "backups": {"pgbackrest": {
                "image": releases.PG_BACKREST_IMAGE,
                "configuration": [{"secret": {"name": secret_name(db)}}],
                "global": pgbackrest_global(db),
                "manual": {"repoName": "repo1", "options": ["--type=full"]},
                "repos": [repo1(cfg, db)],
            }},
        },
    )
