"""Logging: the ECK operator, Elasticsearch, Kibana (with its Ingress), Logstash, Fluent Bit, ILM/SLM.

Order: the operator (it brings the CRDs) and the S3 keystore Secret, then the Elastic custom
resources, then Fluent Bit (its output is Logstash) and the lifecycle Job (it waits, retrying,
for Elasticsearch itself).
"""

from collections.abc import Sequence

import pulumi

from components.kube import apply_manifest, in_cluster, install_release
from model.schema import StackConfig
from render import logging
from render.helm import manifest


class LoggingStack(pulumi.ComponentResource):
    """`elasticsearch`: the Elasticsearch custom resource."""

    elasticsearch: pulumi.Resource

    def __init__(self, name: str, cfg: StackConfig, provider: pulumi.ProviderResource,
                 after: Sequence[pulumi.Resource], opts: pulumi.ResourceOptions | None = None):
        super().__init__("seoul:logging:LoggingStack", name, None, opts)
        log = cfg.observability.logging if cfg.observability else None
        if log is None:
            raise ValueError("LoggingStack needs observability.logging")
        operator = install_release(logging.eck_operator_release(), in_cluster(self, provider, after))
        namespace = apply_manifest(manifest("v1", "Namespace", logging.NAMESPACE), in_cluster(self, provider, after))
        s3 = apply_manifest(manifest("v1", "Secret", logging.S3_SECRET, logging.NAMESPACE, type="Opaque", stringData={
            "s3.client.default.access_key": pulumi.Output.secret(log.snapshot_access_key_id),
            "s3.client.default.secret_key": pulumi.Output.secret(log.snapshot_secret_access_key.get_secret_value()),
        }), in_cluster(self, provider, [namespace]))
        elastic = in_cluster(self, provider, [operator, namespace, s3])
        self.elasticsearch = apply_manifest(logging.elasticsearch(cfg), elastic)
        stack = [self.elasticsearch,
                 *(apply_manifest(o, elastic) for o in [*logging.kibana(cfg), logging.logstash(cfg)])]
        install_release(logging.fluent_bit_release(), in_cluster(self, provider, stack))
        for obj in logging.lifecycle_objects(cfg):
            apply_manifest(obj, in_cluster(self, provider, [self.elasticsearch]))
        self.register_outputs({
            "hotDays": log.hot_days,
            "snapshotRetentionDays": log.snapshot_retention_days,
            "snapshotRepository": f"s3://{logging.snapshot_bucket(cfg)}/elasticsearch/{logging.ES}",
            "kibana": f"https://{log.kibana_host}" if log.kibana_host else None,
        })
