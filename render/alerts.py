"""Alerting: Prometheus alert rules (PrometheusRule objects and plain rule files) and Alertmanager's config.

Every rule carries `severity` (`critical` pages by SMS and email, `warning` emails), a
`topic` (a critical inhibits the warnings of its topic on the same instance), and the
annotations `summary` and `runbook` (the first thing an operator does).

Metric contracts with other parts of the program (node_exporter textfile collector,
render/certs.TEXTFILE_DIR):

- `seoul_cert_expiry_timestamp_seconds{path, subject}` and
  `seoul_cert_expiry_last_run_timestamp_seconds` (scripts/cert-expiry.sh, hourly);
- `seoul_backup_last_success_timestamp_seconds{backup="<name>"}` (Unix time of the last
  successful run) and `seoul_backup_period_seconds{backup="<name>"}` (how often it should
  succeed), written by each backup job. The label is `backup`, not `job`: Prometheus owns
  `job` (the scrape job) and would rename a scraped one to `exported_job`.

Alertmanager's config holds no secret: the SMTP password and the SMS gateway token are read
from files of the Secret `monitoring.ALERTMANAGER_CREDENTIALS_SECRET`, SNS signs with the AWS
credentials file there (`AWS_SHARED_CREDENTIALS_FILE`).
"""

from dataclasses import dataclass
from typing import Any

from model.schema import Observability
from render.helm import Manifest, manifest
from render.monitoring import ALERTMANAGER_CREDENTIALS_SECRET, PG_BACKUP_METRIC

CREDENTIALS_DIR = f"/etc/alertmanager/secrets/{ALERTMANAGER_CREDENTIALS_SECRET}"
SMTP_PASSWORD_KEY = "smtp-password"
SMS_TOKEN_KEY = "sms-token"
AWS_CREDENTIALS_KEY = "aws-credentials"


@dataclass(frozen=True)
class Rule:
    """One alerting rule: PromQL `expr` true for `for_` (a Prometheus duration) fires it."""

    alert: str
    expr: str
    for_: str
    severity: str
    topic: str
    summary: str
    runbook: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity, "topic": self.topic},
            "annotations": {"summary": self.summary, "runbook": self.runbook},
        }


# Disk latency: seconds spent per completed I/O (reads and writes together).
_DISK_LATENCY = (
    "(rate(node_disk_read_time_seconds_total[5m]) + rate(node_disk_write_time_seconds_total[5m]))"
    " / (rate(node_disk_reads_completed_total[5m]) + rate(node_disk_writes_completed_total[5m]))"
)
_FS = 'fstype!~"tmpfs|overlay|squashfs|nsfs"'
_INGRESS_P95 = ("histogram_quantile(0.95, sum by (le, ingress) "
                "(rate(nginx_ingress_controller_request_duration_seconds_bucket[5m])))")
_INGRESS_ERRORS = ('sum by (ingress) (rate(nginx_ingress_controller_requests{status=~"5.."}[5m]))'
                   " / sum by (ingress) (rate(nginx_ingress_controller_requests[5m]))")
_ETCD = 'job="kube-etcd"'

GROUPS: dict[str, list[Rule]] = {
    "node": [
        Rule("NodeCpuHigh", '100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))) > 90',
             "5m", "critical", "cpu", "CPU above 90% on {{ $labels.instance }} for 5 minutes",
             "Find the busy pods (kubectl top pods -A --sort-by=cpu); scale the app out or add workers."),
        Rule("NodeMemoryPressure", "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes < 0.10",
             "10m", "warning", "memory", "Less than 10% memory available on {{ $labels.instance }}",
             "Check kubectl top pods on the node and the OOM kills in its journal; raise limits or add nodes."),
        Rule("NodeDiskIoLatencyHigh", f"{_DISK_LATENCY} > 0.05", "10m", "warning", "disk-latency",
             "Disk {{ $labels.device }} on {{ $labels.instance }} averages over 50 ms per I/O",
             "Check the device with iostat -x and smartctl; on storage hosts also ceph osd perf."),
        Rule("NodeFilesystemFillingUp",
             f"predict_linear(node_filesystem_avail_bytes{{{_FS}}}[6h], 24 * 3600) < 0"
             f" and node_filesystem_avail_bytes{{{_FS}}} / node_filesystem_size_bytes{{{_FS}}} < 0.20",
             "1h", "warning", "filesystem", "{{ $labels.mountpoint }} on {{ $labels.instance }} fills within a day",
             "Find what grows (du -xh --max-depth=2); prune logs or images, or grow the volume."),
        Rule("NodeFilesystemAlmostFull",
             f"node_filesystem_avail_bytes{{{_FS}}} / node_filesystem_size_bytes{{{_FS}}} < 0.05",
             "5m", "critical", "filesystem", "{{ $labels.mountpoint }} on {{ $labels.instance }} has under 5% free",
             "Free space now: auditd halts or suspends and etcd stops writing when the disk is full."),
    ],
    "etcd": [
        Rule("EtcdMemberDown", f"up{{{_ETCD}}} == 0", "3m", "warning", "etcd-member",
             "etcd member {{ $labels.instance }} is not answering",
             "systemctl status etcd on the member; etcdctl endpoint health --cluster (docs/kubernetes.md)."),
        Rule("EtcdQuorumLost", f"sum(up{{{_ETCD}}}) < floor(count(up{{{_ETCD}}}) / 2) + 1", "1m", "critical",
             "etcd-quorum", "Fewer than a majority of etcd members are up: the API cannot write",
             "Bring members back first; if data is lost, restore from the latest snapshot (docs/kubernetes.md)."),
        Rule("EtcdNoLeader", f"etcd_server_has_leader{{{_ETCD}}} == 0", "1m", "critical", "etcd-quorum",
             "etcd member {{ $labels.instance }} has no leader",
             "Check network between the etcd hosts and etcdctl endpoint status --cluster."),
        Rule("EtcdSlowFsync",
             "histogram_quantile(0.99, sum by (instance, le) "
             f"(rate(etcd_disk_wal_fsync_duration_seconds_bucket{{{_ETCD}}}[5m]))) > 0.5",
             "10m", "warning", "etcd-disk", "etcd WAL fsync p99 above 500 ms on {{ $labels.instance }}",
             "The etcd disk is too slow or shared: check iostat on the member's NVMe RAID."),
    ],
    "certificates": [
        Rule("CertificateExpiresSoon", "seoul_cert_expiry_timestamp_seconds - time() < 30 * 86400", "1h",
             "warning", "certificate", "{{ $labels.path }} on {{ $labels.instance }} expires within 30 days",
             "Run the renewal now: systemctl start kube-certs-renew (or etcd-certs-renew) on that host."),
        Rule("CertificateExpiresVerySoon", "seoul_cert_expiry_timestamp_seconds - time() < 7 * 86400", "10m",
             "critical", "certificate", "{{ $labels.path }} on {{ $labels.instance }} expires within 7 days",
             "Renew today (kube-certs-renew / etcd-certs-renew); an expired certificate stops the control plane."),
        Rule("CertificateExpiryExportStale", "time() - seoul_cert_expiry_last_run_timestamp_seconds > 3 * 3600",
             "10m", "warning", "certificate-export", "No certificate scan on {{ $labels.instance }} for 3 hours",
             "systemctl status cert-expiry.timer cert-expiry.service on that host."),
    ],
    "ceph": [
        Rule("CephHealthWarning", "ceph_health_status == 1", "15m", "warning", "ceph-health",
             "Ceph reports HEALTH_WARN", "ceph health detail on a storage host."),
        Rule("CephHealthError", "ceph_health_status == 2", "5m", "critical", "ceph-health",
             "Ceph reports HEALTH_ERR", "ceph health detail; ceph -s. Stop writes that fill the cluster."),
        Rule("CephOsdNearFull", "ceph_osd_stat_bytes_used / ceph_osd_stat_bytes > 0.85", "10m", "warning",
             "ceph-capacity", "OSD {{ $labels.ceph_daemon }} is above 85% full",
             "Add OSDs or storage hosts, or delete data; at 95% Ceph stops writes."),
    ],
    "apivip": [
        Rule("HaproxyBackendDown", 'haproxy_backend_active_servers{proxy="apiserver"} == 0', "1m", "critical",
             "haproxy", "HAProxy on {{ $labels.instance }} has no live kube-apiserver",
             "Check the API servers (crictl ps on the control planes) and HAProxy's health checks."),
        Rule("HaproxyServerDown", 'haproxy_server_status{proxy="apiserver", state="DOWN"} == 1', "5m", "warning",
             "haproxy", "kube-apiserver {{ $labels.server }} is DOWN in HAProxy on {{ $labels.instance }}",
             "crictl logs of kube-apiserver on that control plane."),
        Rule("ApiVipNotHeld", 'up{job="apivip"} == 0 or absent(up{job="apivip"})', "1m", "critical", "apivip",
             "No control plane answers on the API VIP",
             "systemctl status keepalived haproxy on the control planes; journalctl -u keepalived."),
    ],
    "backups": [
        Rule("BackupTooOld",
             "time() - seoul_backup_last_success_timestamp_seconds > 1.5 * seoul_backup_period_seconds",
             "10m", "critical", "backup", "Backup {{ $labels.backup }} has not succeeded within its period",
             "journalctl -u of the backup's service on {{ $labels.instance }}; run it by hand once fixed."),
        Rule("BackupNeverSucceeded", "seoul_backup_period_seconds unless seoul_backup_last_success_timestamp_seconds",
             "2h", "critical", "backup", "Backup {{ $labels.backup }} has never succeeded",
             "journalctl -u of the backup's service on {{ $labels.instance }}."),

        # pgBackRest runs in the operator's Jobs, not under node_exporter: kube-state-metrics
        # exports each PerconaPGBackup's completion time (render/monitoring.py PG_BACKUP_METRIC).
        # The seed's daily full is the period; the incrementals between only make it fresher.
        Rule("PostgresBackupTooOld",
             f"time() - max by (namespace, cluster) ({PG_BACKUP_METRIC}{{state=\"Succeeded\"}}) > 1.5 * 86400",
             "10m", "critical", "backup",
             "PostgreSQL {{ $labels.namespace }}/{{ $labels.cluster }} has no successful backup for 36 hours",
             "kubectl -n {{ $labels.namespace }} get perconapgbackups; the last backup Job's log; pgbackrest info."),
    ],
    "ingress": [
        Rule("IngressLatencyHigh", f"{_INGRESS_P95} > 0.3", "10m", "critical", "ingress-latency",
             "p95 response time of {{ $labels.ingress }} above 300 ms for 10 minutes",
             "Check the app's pods and HPA (kubectl get hpa -A); scale out; check Ceph and database latency."),
        Rule("IngressErrorRatio", f"{_INGRESS_ERRORS} > 0.05", "5m", "critical", "ingress-errors",
             "More than 5% of requests to {{ $labels.ingress }} fail with 5xx",
             "kubectl logs of the app; roll back the last deployment if it started with it."),
        Rule("IngressErrorRatioElevated", f"{_INGRESS_ERRORS} > 0.01", "10m", "warning", "ingress-errors",
             "More than 1% of requests to {{ $labels.ingress }} fail with 5xx",
             "kubectl logs of the app and ingress-nginx."),
    ],
}


def rule_file(group: str) -> dict[str, Any]:
    """A Prometheus rule file (prometheus.io/docs, "Alerting rules") with one group `seoul-<group>`."""
    return {"groups": [{"name": f"seoul-{group}", "rules": [r.to_dict() for r in GROUPS[group]]}]}


def prometheus_rules(namespace: str) -> list[Manifest]:
    """One PrometheusRule (monitoring.coreos.com/v1) per group; its spec is the rule file."""
    return [manifest("monitoring.coreos.com/v1", "PrometheusRule", f"seoul-{group}", namespace,
                     labels={"app.kubernetes.io/part-of": "seoul-cluster"}, spec=rule_file(group))
            for group in GROUPS]


def alertmanager_config(obs: Observability) -> dict[str, Any]:
    """Alertmanager configuration (prometheus.io/docs/alerting/latest/configuration): no secret inside.

    Critical alerts go to SMS and email, warnings to email, the chart's Watchdog and
    InfoInhibitor nowhere; a critical inhibits the warnings of its topic on the same target.
    """
    email, sms = obs.email, obs.sms
    if sms.provider == "sns":
        sms_receiver = {"sns_configs": [{
            "topic_arn": sms.topic_arn,
            "sigv4": {"region": sms.region},
            "subject": "{{ .CommonLabels.alertname }}",
            "message": "[{{ .Status | toUpper }}] {{ .CommonAnnotations.summary }}",
        }]}
    else:
        sms_receiver = {"webhook_configs": [{
            "url": sms.webhook_url,
            "send_resolved": True,
            "http_config": {"authorization": {"credentials_file": f"{CREDENTIALS_DIR}/{SMS_TOKEN_KEY}"}},
        }]}
    return {
        "global": {
            "smtp_smarthost": email.smarthost,
            "smtp_from": email.sender,
            "smtp_auth_username": email.username,
            "smtp_auth_password_file": f"{CREDENTIALS_DIR}/{SMTP_PASSWORD_KEY}",
            "smtp_require_tls": True,
            "resolve_timeout": "5m",
        },
        # Replaces the chart's default (Helm merges maps): no template files are shipped.
        "templates": [],
        "route": {
            "receiver": "email",
            "group_by": ["alertname", "topic", "instance"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                {"matchers": ['alertname=~"Watchdog|InfoInhibitor"'], "receiver": "null"},
                {"matchers": ['severity="critical"'], "receiver": "sms", "repeat_interval": "1h",
                 "continue": True},
                {"matchers": ['severity=~"critical|warning"'], "receiver": "email"},
            ],
        },
        "inhibit_rules": [{
            "source_matchers": ['severity="critical"'],
            "target_matchers": ['severity="warning"'],
            "equal": ["topic", "instance"],
        }],
        "receivers": [
            {"name": "null"},
            {"name": "email", "email_configs": [{"to": ", ".join(email.to), "send_resolved": True}]},
            {"name": "sms", **sms_receiver},
        ],
    }


def aws_credentials_file(access_key_id: str, secret_access_key: str) -> str:
    """The AWS shared credentials file (profile `default`) SNS signs with."""
    return f"[default]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret_access_key}\n"
