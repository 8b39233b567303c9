"""Observability: kube-prometheus-stack, alert rules, Alertmanager receivers, dashboards, outside exporters.

Order, where the real world needs it: the namespace, then the Secrets the release mounts
(Grafana admin, Alertmanager's config and credentials, the etcd client certificate copied
by the init control plane), then the release (it brings the CRDs), then the custom
resources (PrometheusRules, the ingress ServiceMonitor) and the dashboards. The agents on
each host outside the cluster (node_exporter; Fluent Bit when the stack has logging, which
ships to Logstash's LoadBalancer address and retries until it answers) wait only for their
own host.
"""

from collections.abc import Mapping, Sequence

import pulumi

from components.kube import apply_manifest, in_cluster, install_release
from components.remote import HostHandle, apply_file_set
from model.schema import StackConfig
from render import alerts, dashboards, logging, monitoring
from render.helm import manifest


class Observability(pulumi.ComponentResource):
    """`release`: the kube-prometheus-stack release; `rules`: the PrometheusRule objects."""

    release: pulumi.Resource
    rules: list[pulumi.Resource]

    def __init__(self, name: str, cfg: StackConfig, provider: pulumi.ProviderResource,
                 hosts: Mapping[str, HostHandle], after: Sequence[pulumi.Resource],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("seoul:observability:Observability", name, None, opts)
        obs = cfg.observability
        if obs is None:
            raise ValueError("Observability needs the stack's observability section")
        ns = obs.namespace
        namespace = apply_manifest(manifest("v1", "Namespace", ns), in_cluster(self, provider, after))
        in_ns = in_cluster(self, provider, [namespace])

        grafana = apply_manifest(manifest("v1", "Secret", monitoring.GRAFANA_ADMIN_SECRET, ns, type="Opaque",
                                          stringData={"admin-user": "admin", "admin-password": pulumi.Output.secret(
                                              obs.grafana_admin_password.get_secret_value())}), in_ns)
        credentials = {alerts.SMTP_PASSWORD_KEY: obs.email.password.get_secret_value()}
        if obs.sms.provider == "sns":
            credentials[alerts.AWS_CREDENTIALS_KEY] = alerts.aws_credentials_file(
                obs.sms.access_key_id or "", obs.sms.credential.get_secret_value())
        else:
            credentials[alerts.SMS_TOKEN_KEY] = obs.sms.credential.get_secret_value()
        am_credentials = apply_manifest(manifest(
            "v1", "Secret", monitoring.ALERTMANAGER_CREDENTIALS_SECRET, ns, type="Opaque",
            stringData={k: pulumi.Output.secret(v) for k, v in credentials.items()}), in_ns)

        init = hosts[cfg.init_node.name]
        etcd_secret = apply_file_set(self, init.target, monitoring.etcd_metrics_secret(cfg),
                                     after=[init.ready], apply_after=[namespace])

        self.release = install_release(monitoring.prometheus_release(cfg, alerts.alertmanager_config(obs)), in_cluster(
            self, provider, [namespace, grafana, am_credentials, etcd_secret]))
        with_crds = in_cluster(self, provider, [self.release])
        self.rules = [apply_manifest(obj, with_crds) for obj in alerts.prometheus_rules(ns)]
        apply_manifest(monitoring.ingress_service_monitor(cfg), with_crds)
        for obj in dashboards.config_maps(ns):
            apply_manifest(obj, in_ns)

        for host in monitoring.external_hosts(cfg.as_built):
            handle = hosts[host.name]
            apply_file_set(self, handle.target, monitoring.node_exporter_install(), after=[handle.ready])
            if obs.logging is not None:
                apply_file_set(self, handle.target, logging.host_agent_install(cfg, host), after=[handle.ready])

        self.register_outputs({
            "namespace": ns,
            "retention": f"{obs.retention_days}d",
            "storageClass": obs.storage_class,
        })
