"""The application's PostgreSQL on Kubernetes: Percona Operator for PostgreSQL v2.

Patroni keeps `database.instances` members (one per node) on the Ceph RBD storage class;
pgBackRest writes repo1 into the vault's postgresql prefix, encrypted client-side
(aes-256-cbc) with `database.repoCipherPass`, as the vault's postgresql writer.
"""

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.backup import BackupVault
from components.kube import apply_manifest, in_cluster, install_release
from model.schema import Database, StackConfig
from render import database as render
from render.helm import manifest


class PostgresCluster(pulumi.ComponentResource):
    """`cluster`: the PerconaPGCluster resource."""

    def __init__(self, name: str, cfg: StackConfig, db: Database, provider: pulumi.ProviderResource,
                 vault: BackupVault, after: Sequence[pulumi.Resource], opts: pulumi.ResourceOptions | None = None):
        super().__init__("seoul:database:PostgresCluster", name, None, opts)
        operator = install_release(render.operator_release(), in_cluster(self, provider, after))
        namespace = apply_manifest(manifest("v1", "Namespace", db.namespace), in_cluster(self, provider, after))
        writer = vault.writers["postgresql"]
        conf = pulumi.Output.all(writer.id, writer.secret).apply(
            lambda a: render.s3_conf(a[0], a[1], db.repo_cipher_pass.get_secret_value()))
        secret = k8s.core.v1.Secret(
            f"{db.namespace}-{render.secret_name(db)}",
            metadata={"name": render.secret_name(db), "namespace": db.namespace},
            type="Opaque",
            string_data={render.S3_SECRET_KEY: pulumi.Output.secret(conf)},
            opts=in_cluster(self, provider, [namespace]),
        )
        self.cluster = apply_manifest(render.cluster(cfg, db), in_cluster(self, provider, [operator, secret]))
        self.register_outputs({"name": db.name, "namespace": db.namespace})
