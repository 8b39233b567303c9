"""Observability as `make plan` writes it, judged by the real tools.

promtool checks every rule file and runs unit tests of the key rules (firing and not);
amtool checks Alertmanager's config and its routing; every Grafana dashboard loads in the
Foundation SDK's model and every panel query parses with promtool; outside hosts get a
pinned node_exporter and the exporter ports. Each checker has a negative control.
"""

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from grafana_foundation_sdk.models.dashboard import Dashboard

from model import SECRET_PLACEHOLDER, load_config
from model.releases import NODE_EXPORTER_SHA256, NODE_EXPORTER_VERSION
from offline.stackfile import read_stack_file
from render import alerts, dashboards, hosts, logging, monitoring
from tests.network_checks import crd_schemas, object_problems
from tests.planning import run_plan
from tests.stacks import altered_stack, key
from tests.tools import REPO, require_shared, require_tool


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    run = run_plan(REPO / "Pulumi.seoul-prod.yaml", tmp_path_factory.mktemp("obs-prod"))
    assert run.returncode == 0, run.stderr
    return run


@pytest.fixture(scope="module")
def cfg():
    return load_config(read_stack_file(REPO / "Pulumi.seoul-prod.yaml").lookup)


def rule_files(plan) -> list[Path]:
    return sorted((plan.out / "artifacts/prometheus/rules").glob("*.yaml"))


def test_rule_files_match_prometheus_rules_and_pass_promtool(plan):
    promtool = require_tool("promtool")
    files = rule_files(plan)
    assert [f.stem for f in files] == sorted(f"seoul-{g}" for g in alerts.GROUPS)
    for path in files:
        obj = yaml.safe_load((plan.out / f"artifacts/k8s/monitoring/PrometheusRule-{path.stem}.yaml").read_text())
        assert yaml.safe_load(path.read_text()) == obj["spec"]
    proc = subprocess.run([promtool, "check", "rules", *map(str, files)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_rule_has_severity_summary_and_runbook(plan):
    for path in rule_files(plan):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
                assert rule["labels"]["topic"] and rule["annotations"]["summary"], rule["alert"]
                assert rule["annotations"]["runbook"], rule["alert"]


def test_promtool_notices_a_broken_rule(tmp_path):
    promtool = require_tool("promtool")
    broken = alerts.rule_file("node")
    broken["groups"][0]["rules"][0]["expr"] = "rate(node_cpu_seconds_total[5m] > 90"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    assert subprocess.run([promtool, "check", "rules", str(path)], capture_output=True).returncode != 0


def _rule(name: str) -> alerts.Rule:
    return next(r for rules in alerts.GROUPS.values() for r in rules if r.alert == name)


def _summary(name: str, labels: dict[str, str]) -> str:
    text = _rule(name).summary
    for label, value in labels.items():
        text = text.replace(f"{{{{ $labels.{label} }}}}", value)
    return text


def _runbook_for(name: str, labels: dict[str, str]) -> str:
    text = _rule(name).runbook
    for label, value in labels.items():
        text = text.replace(f"{{{{ $labels.{label} }}}}", value)
    return text


def _expected(name: str, labels: dict[str, str]) -> dict:
    rule = _rule(name)
    return {"exp_labels": {**labels, "severity": rule.severity, "topic": rule.topic},
            "exp_annotations": {"summary": _summary(name, labels), "runbook": _runbook_for(name, labels)}}


DAY = 86400
# promtool evaluates from Unix time 0: the cert "expires" at an absolute time.
UNIT_TESTS = [
    {   # CPU: 95% busy for 10 minutes fires after 5; 50% never does.
        "interval": "1m",
        "input_series": [
            {"series": 'node_cpu_seconds_total{mode="idle", instance="hot:9100", cpu="0"}', "values": "0+3x20"},
            {"series": 'node_cpu_seconds_total{mode="idle", instance="calm:9100", cpu="0"}', "values": "0+30x20"},
        ],
        "alert_rule_test": [
            {"eval_time": "4m", "alertname": "NodeCpuHigh", "exp_alerts": []},
            {"eval_time": "15m", "alertname": "NodeCpuHigh",
             "exp_alerts": [_expected("NodeCpuHigh", {"instance": "hot:9100"})]},
        ],
    },
    {   # Certificates: one expiring in 20 days warns, one in 200 days does not, one in 3 days pages
        # (and warns: Alertmanager's inhibition, not the rules, silences that warning).
        "interval": "1m",
        "input_series": [
            {"series": 'seoul_cert_expiry_timestamp_seconds{instance="cp-1", path="/a.crt"}',
             "values": f"{20 * DAY}x180"},
            {"series": 'seoul_cert_expiry_timestamp_seconds{instance="cp-1", path="/b.crt"}',
             "values": f"{200 * DAY}x180"},
            {"series": 'seoul_cert_expiry_timestamp_seconds{instance="cp-2", path="/c.crt"}',
             "values": f"{3 * DAY}x180"},
        ],
        "alert_rule_test": [
            {"eval_time": "2h", "alertname": "CertificateExpiresSoon", "exp_alerts": [
                _expected("CertificateExpiresSoon", {"instance": "cp-1", "path": "/a.crt"}),
                _expected("CertificateExpiresSoon", {"instance": "cp-2", "path": "/c.crt"})]},
            {"eval_time": "2h", "alertname": "CertificateExpiresVerySoon", "exp_alerts": [
                _expected("CertificateExpiresVerySoon", {"instance": "cp-2", "path": "/c.crt"})]},
        ],
    },
    {   # etcd: one of three down is a warning, not a quorum loss; two of three down is.
        "interval": "1m",
        "input_series": [
            {"series": 'up{job="kube-etcd", instance="etcd-1"}', "values": "1x20"},
            {"series": 'up{job="kube-etcd", instance="etcd-2"}', "values": "1x5 0x15"},
            {"series": 'up{job="kube-etcd", instance="etcd-3"}', "values": "1x10 0x10"},
        ],
        "alert_rule_test": [
            {"eval_time": "9m", "alertname": "EtcdQuorumLost", "exp_alerts": []},
            {"eval_time": "9m", "alertname": "EtcdMemberDown",
             "exp_alerts": [_expected("EtcdMemberDown", {"job": "kube-etcd", "instance": "etcd-2"})]},
            {"eval_time": "13m", "alertname": "EtcdQuorumLost", "exp_alerts": [_expected("EtcdQuorumLost", {})]},
        ],
    },
    {   # Backups: a daily job last good 2 days ago fires; one good an hour ago does not.
        "interval": "1m",
        "input_series": [
            {"series": 'seoul_backup_last_success_timestamp_seconds{instance="etcd-1", backup="etcd-snapshot"}',
             "values": "0x3000"},
            {"series": 'seoul_backup_period_seconds{instance="etcd-1", backup="etcd-snapshot"}',
             "values": f"{DAY}x3000"},
            {"series": 'seoul_backup_last_success_timestamp_seconds{instance="pg-1", backup="postgres"}',
             "values": "0+60x3000"},
            {"series": 'seoul_backup_period_seconds{instance="pg-1", backup="postgres"}', "values": f"{DAY}x3000"},
        ],
        "alert_rule_test": [
            {"eval_time": "30h", "alertname": "BackupTooOld", "exp_alerts": []},
            {"eval_time": "48h", "alertname": "BackupTooOld", "exp_alerts": [
                _expected("BackupTooOld", {"instance": "etcd-1", "backup": "etcd-snapshot"})]},
        ],
    },
    {   # PostgreSQL (kube-state-metrics from PerconaPGBackup objects): shop-db's last good backup
        # is from time 0 and a later one failed: pages after 36 h; orders-db backs up hourly: never.
        "interval": "1m",
        "input_series": [
            {"series": f'{monitoring.PG_BACKUP_METRIC}{{namespace="databases", cluster="shop-db", name="b1", '
                       'state="Succeeded"}', "values": "0x3000"},
            {"series": f'{monitoring.PG_BACKUP_METRIC}{{namespace="databases", cluster="shop-db", name="b2", '
                       'state="Failed"}', "values": f"{DAY}x3000"},
            {"series": f'{monitoring.PG_BACKUP_METRIC}{{namespace="databases", cluster="orders-db", name="b3", '
                       'state="Succeeded"}', "values": "0+60x3000"},
        ],
        "alert_rule_test": [
            {"eval_time": "30h", "alertname": "PostgresBackupTooOld", "exp_alerts": []},
            {"eval_time": "40h", "alertname": "PostgresBackupTooOld", "exp_alerts": [
                _expected("PostgresBackupTooOld", {"namespace": "databases", "cluster": "shop-db"})]},
        ],
    },
]


def test_promtool_unit_tests_of_cpu_certificates_etcd_quorum_and_backups(plan, tmp_path):
    promtool = require_tool("promtool")
    for path in rule_files(plan):
        (tmp_path / path.name).write_text(path.read_text())
    test_file = tmp_path / "tests.yaml"
    test_file.write_text(yaml.safe_dump({
        "rule_files": [p.name for p in rule_files(plan)],
        "evaluation_interval": "1m",
        "tests": UNIT_TESTS,
    }, sort_keys=False))
    proc = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Negative control: expecting the calm host to fire fails the run.
    wrong = yaml.safe_load(test_file.read_text())
    wrong["tests"][0]["alert_rule_test"][1]["exp_alerts"] = [_expected("NodeCpuHigh", {"instance": "calm:9100"})]
    test_file.write_text(yaml.safe_dump(wrong, sort_keys=False))
    proc = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode != 0


def _routes(amtool: str, config: Path, *labels: str) -> str:
    proc = subprocess.run([amtool, "config", "routes", "test", "--config.file", str(config), *labels],
                          capture_output=True, text=True)
    return proc.stdout.strip()


def test_alertmanager_config_passes_amtool_and_routes_by_severity(plan):
    amtool = require_tool("amtool")
    config = plan.out / "artifacts/alertmanager/alertmanager.yaml"
    proc = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _routes(amtool, config, "severity=critical", "alertname=NodeCpuHigh") == "sms,email"
    assert _routes(amtool, config, "severity=warning", "alertname=NodeMemoryPressure") == "email"
    assert _routes(amtool, config, "severity=none", "alertname=Watchdog") == "null"
    text = config.read_text()
    assert SECRET_PLACEHOLDER not in text and "password_file" in text
    # The same config is what the release carries.
    values = yaml.safe_load((plan.out / "artifacts/helm/kube-prometheus-stack.yaml").read_text())
    assert values["alertmanager"]["config"] == yaml.safe_load(text)


def test_criticals_inhibit_warnings_of_their_topic(cfg):
    config = alerts.alertmanager_config(cfg.observability)
    [rule] = config["inhibit_rules"]
    assert rule["source_matchers"] == ['severity="critical"'] and rule["target_matchers"] == ['severity="warning"']
    assert "topic" in rule["equal"]
    topics = {r.topic for rules in alerts.GROUPS.values() for r in rules if r.severity == "critical"}
    assert {"certificate", "filesystem", "ingress-errors"} <= topics


def test_webhook_sms_receiver_passes_amtool(tmp_path, cfg):
    amtool = require_tool("amtool")
    obs = cfg.observability.model_copy(update={"sms": cfg.observability.sms.model_copy(
        update={"provider": "webhook", "webhook_url": "https://sms-gateway.example.kr/v1/send"})})
    path = tmp_path / "am.yaml"
    path.write_text(yaml.safe_dump(alerts.alertmanager_config(obs)))
    assert subprocess.run([amtool, "check-config", str(path)], capture_output=True).returncode == 0
    assert _routes(amtool, path, "severity=critical") == "sms,email"
    broken = alerts.alertmanager_config(obs)
    broken["route"]["receiver"] = "pager"  # no such receiver
    path.write_text(yaml.safe_dump(broken))
    assert subprocess.run([amtool, "check-config", str(path)], capture_output=True).returncode != 0


def test_dashboards_load_in_the_sdk_and_every_query_parses(plan, tmp_path):
    promtool = require_tool("promtool")
    files = sorted((plan.out / "artifacts/grafana").glob("*.json"))
    assert [f.stem for f in files] == sorted(dashboards.DASHBOARDS)
    exprs = []
    for path in files:
        board = json.loads(path.read_text())
        model = Dashboard.from_json(board)
        assert model.uid == path.stem and len(model.panels) == len(dashboards.DASHBOARDS[path.stem][1])
        exprs += dashboards.queries(board)
    assert len(exprs) >= 20

    def check(queries: list[str]) -> int:
        rules = {"groups": [{"name": "panels", "rules": [
            {"record": f"panel:query{i}", "expr": q} for i, q in enumerate(queries)]}]}
        (tmp_path / "panels.yaml").write_text(yaml.safe_dump(rules))
        return subprocess.run([promtool, "check", "rules", str(tmp_path / "panels.yaml")],
                              capture_output=True).returncode

    assert check(exprs) == 0
    assert check([*exprs, "sum(rate(x[5m]) by"]) != 0


def test_seed_panels_are_on_the_server_dashboard():
    titles = [t for t, _, _ in dashboards.DASHBOARDS["seoul-servers"][1]]
    assert {"CPU use", "Memory use", "Network throughput", "Disk I/O latency", "Pods running"} <= set(titles)


def test_release_keeps_data_on_ceph_with_configured_retention_and_scrapes_outside_targets(plan, cfg):
    values = yaml.safe_load((plan.out / "artifacts/helm/kube-prometheus-stack.yaml").read_text())
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["retention"] == f"{cfg.observability.retention_days}d"
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["storageClassName"] == "ceph-rbd"
    jobs = {c["job_name"]: c for c in spec["additionalScrapeConfigs"]}
    external = {t["labels"]["node"] for t in jobs["node-external"]["static_configs"]}
    assert external == {h.name for h in cfg.hosts if not h.is_kubernetes_node}
    assert jobs["apivip"]["static_configs"][0]["targets"] == [f"{cfg.network.api_vip}:8405"]
    assert values["kubeEtcd"]["endpoints"] == [str(h.address) for h in cfg.etcd_members]
    assert values["kubeEtcd"]["serviceMonitor"]["scheme"] == "https"
    assert values["grafana"]["admin"]["existingSecret"] == monitoring.GRAFANA_ADMIN_SECRET


def test_secrets_stay_secret(plan):
    resources = {r["name"]: r for r in plan.json("plan.json")["resources"]}
    for secret in (monitoring.GRAFANA_ADMIN_SECRET, monitoring.ALERTMANAGER_CREDENTIALS_SECRET):
        name = f"monitoring-{secret}"
        assert resources[name]["inputs"]["stringData"] == "[secret]"
    everything = "".join(p.read_text() for p in (plan.out / "artifacts").rglob("*") if p.is_file())
    assert SECRET_PLACEHOLDER not in everything


def test_outside_hosts_get_pinned_node_exporter_and_exporter_ports(plan, cfg):
    resources = plan.json("plan.json")["resources"]
    installs = {r["name"].removesuffix("-node-exporter-install") for r in resources
                if r["name"].endswith("-node-exporter-install")}
    assert installs == {h.name for h in cfg.hosts if not h.is_kubernetes_node}
    assert NODE_EXPORTER_VERSION in NODE_EXPORTER_SHA256
    unit = plan.out / "artifacts/hosts/etcd-1/etc/systemd/system/node_exporter.service"
    assert "--collector.textfile.directory=/var/lib/node_exporter/textfile" in unit.read_text()
    by_name = {h.name: h for h in cfg.hosts}
    assert "9100" in hosts.metrics_ports(by_name["etcd-1"]) and "9100" not in hosts.tcp_ports(cfg, by_name["etcd-1"])
    assert "8405" in hosts.metrics_ports(by_name["cp-1"]) and "8405" not in hosts.metrics_ports(by_name["etcd-1"])


def test_kubernetes_nodes_node_exporter_reads_the_certificate_expiry_export(plan):
    # The seed's outage: the chart's DaemonSet must read the textfile directory the
    # cert-expiry unit writes to on every Kubernetes node, through the host root mount.
    chart = yaml.safe_load(require_shared("charts/kube-prometheus-stack-64.0.0/values.yaml").read_text())
    sub = yaml.safe_load(require_shared(
        "charts/kube-prometheus-stack-64.0.0/charts/prometheus-node-exporter/values.yaml").read_text())
    values = yaml.safe_load((plan.out / "artifacts/helm/kube-prometheus-stack.yaml").read_text())
    args = values["prometheus-node-exporter"]["extraArgs"]
    defaults = chart["prometheus-node-exporter"]["extraArgs"]
    assert args[:len(defaults)] == defaults  # the list replaces the chart's: its excludes are kept
    [textfile] = [a.split("=", 1)[1] for a in args if a.startswith("--collector.textfile.directory=")]
    unit = (plan.out / "artifacts/hosts/cp-1/etc/systemd/system/cert-expiry.service").read_text()
    [output] = [line.split("=", 2)[2] for line in unit.splitlines() if line.startswith("Environment=OUTPUT=")]
    assert sub["hostRootFsMount"]["enabled"] and "hostRootFsMount" not in values["prometheus-node-exporter"]
    assert textfile == monitoring.NODE_EXPORTER_HOST_ROOT + output.rsplit("/", 1)[0]


def test_haproxy_serves_prometheus_metrics_and_passes_haproxy_check(plan, tmp_path):
    haproxy = require_tool("haproxy")
    cfg_file = plan.out / "artifacts/hosts/cp-1/etc/haproxy/haproxy.cfg"
    text = cfg_file.read_text()
    assert "use-service prometheus-exporter" in text and "bind *:8405" in text
    proc = subprocess.run([haproxy, "-c", "-f", str(cfg_file)], capture_output=True, text=True)
    assert proc.returncode == 0 and "WARNING" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


@pytest.mark.parametrize("change, expected", [
    (lambda c: c[key("observability")]["sms"].update(provider="webhook"), "observability.sms: provider webhook"),
    (lambda c: c[key("observability")]["logging"].update(snapshotRetentionDays=200),
     "observability.logging.snapshotRetentionDays"),
    (lambda c: c[key("observability")]["email"].update(to=["not-an-address"]), "observability.email.to[0]"),
])
def test_bad_observability_keys_are_config_errors(tmp_path, change, expected):
    from model import ConfigError
    path = altered_stack(tmp_path, "seoul-prod", change)
    with pytest.raises(ConfigError) as err:
        load_config(read_stack_file(path).lookup)
    assert any(line.startswith(expected) for line in err.value.lines), err.value.lines


def test_a_stack_without_observability_still_loads(tmp_path):
    path = altered_stack(tmp_path, "seoul-stage", lambda c: c.pop(key("observability")))
    assert load_config(read_stack_file(path).lookup).observability is None


def test_logs_stay_hot_then_leave_only_after_a_snapshot_kept_the_legal_minimum(plan, cfg):
    log = cfg.observability.logging
    config = yaml.safe_load((plan.out / "artifacts/k8s/logging/ConfigMap-es-lifecycle.yaml").read_text())
    bodies = {k: json.loads(v) for k, v in config["data"].items()}
    ilm = bodies["_ilm__policy__seoul-logs.json"]["policy"]["phases"]
    assert ilm["delete"]["min_age"] == f"{log.hot_days}d"
    assert ilm["delete"]["actions"]["wait_for_snapshot"] == {"policy": "seoul-logs-daily"}
    slm = bodies["_slm__policy__seoul-logs-daily.json"]
    assert slm["retention"]["expire_after"] == f"{log.snapshot_retention_days}d" and log.snapshot_retention_days >= 365
    repo = bodies["_snapshot__s3-archive.json"]
    assert repo["type"] == "s3" and repo["settings"]["bucket"] == cfg.backup_bucket
    es = yaml.safe_load((plan.out / "artifacts/k8s/logging/Elasticsearch-logs.yaml").read_text())
    for node_set in es["spec"]["nodeSets"]:
        assert node_set["config"]["s3.client.default.endpoint"] == "s3.ap-northeast-2.amazonaws.com"
        assert node_set["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "ceph-rbd"


def test_fluent_bit_ships_containers_journal_and_audit_from_every_node(plan):
    values = yaml.safe_load((plan.out / "artifacts/helm/fluent-bit.yaml").read_text())
    inputs = values["config"]["inputs"]
    assert "/var/log/containers/*.log" in inputs and "Name systemd" in inputs and "/var/log/audit/audit.log" in inputs
    assert values["tolerations"] == [{"operator": "Exists"}] and values["kind"] == "DaemonSet"
    assert "logs-ls-http.logging.svc" in values["config"]["outputs"]


def test_kibana_is_reached_through_ingress_with_tls(plan, cfg):
    ingress = yaml.safe_load((plan.out / "artifacts/k8s/logging/Ingress-kibana.yaml").read_text())
    assert ingress["spec"]["tls"][0]["hosts"] == [cfg.observability.logging.kibana_host]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == "HTTPS"


def test_plan_prints_the_sizing_verdict_and_says_short_when_it_is(plan, cfg):
    assert "116 MB/s mean" in plan.stdout and ": fits;" in plan.stdout
    log = cfg.observability.logging.model_copy(update={"hot_nodes": 3})
    small = cfg.model_copy(update={"observability": cfg.observability.model_copy(update={"logging": log})})
    assert any("SHORT" in line for line in logging.sizing(small))


def test_monitoring_and_logging_objects_validate_against_upstream_crds(plan):
    crds = crd_schemas()
    kinds = set()
    for folder in ("monitoring", "logging"):
        for path in sorted((plan.out / "artifacts/k8s" / folder).glob("*.yaml")):
            obj = yaml.safe_load(path.read_text())
            kinds.add(obj["kind"])
            assert object_problems(obj, crds) == [], path.name
    assert {"PrometheusRule", "ServiceMonitor", "Elasticsearch", "Kibana", "Logstash", "Job", "Ingress"} <= kinds
    es = yaml.safe_load((plan.out / "artifacts/k8s/logging/Elasticsearch-logs.yaml").read_text())
    es["spec"]["nodeSets"][0]["count"] = "three"
    assert object_problems(es, crds) != []
    rule = yaml.safe_load((plan.out / "artifacts/k8s/monitoring/PrometheusRule-seoul-node.yaml").read_text())
    rule["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    assert object_problems(rule, crds) != []
