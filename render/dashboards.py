"""Grafana dashboards as code, built with the Grafana Foundation SDK (github.com/grafana/grafana-foundation-sdk).

Each dashboard is a list of time-series panels of PromQL queries against the chart's
Prometheus data source (uid `prometheus`, kube-prometheus-stack's default). They ship as
ConfigMaps labelled for the chart's Grafana sidecar (`monitoring.DASHBOARD_LABEL`), one
JSON file each, and the offline plan writes them to artifacts/grafana/.
"""

import json
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos

from render.helm import Manifest, manifest
from render.monitoring import DASHBOARD_LABEL

DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")

# (title, unit, [(PromQL, legend)]) per panel; Grafana unit ids (percent, Bps, s, short).
Panel = tuple[str, str, list[tuple[str, str]]]

DASHBOARDS: dict[str, tuple[str, list[Panel]]] = {
    "seoul-servers": ("Seoul: server health", [
        ("CPU use", "percent", [
            ('100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])))', "{{instance}}")]),
        ("Memory use", "percent", [
            ("100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)", "{{instance}}")]),
        ("Network throughput", "Bps", [
            ('sum by (instance) (rate(node_network_receive_bytes_total{device!~"lo|cali.*|vxlan.*"}[5m]))',
             "{{instance}} in"),
            ('sum by (instance) (rate(node_network_transmit_bytes_total{device!~"lo|cali.*|vxlan.*"}[5m]))',
             "{{instance}} out")]),
        ("Disk I/O latency", "s", [
            ("(rate(node_disk_read_time_seconds_total[5m]) + rate(node_disk_write_time_seconds_total[5m]))"
             " / (rate(node_disk_reads_completed_total[5m]) + rate(node_disk_writes_completed_total[5m]))",
             "{{instance}} {{device}}")]),
        ("Pods running", "short", [
            ('sum(kube_pod_status_phase{phase="Running"})', "running"),
            ('sum by (node) (kube_pod_info{node!=""})', "{{node}}")]),
    ]),
    "seoul-etcd": ("Seoul: etcd", [
        ("Members up", "short", [('sum(up{job="kube-etcd"})', "up")]),
        ("Has leader", "short", [('etcd_server_has_leader{job="kube-etcd"}', "{{instance}}")]),
        ("WAL fsync p99", "s", [
            ('histogram_quantile(0.99, sum by (instance, le) '
             '(rate(etcd_disk_wal_fsync_duration_seconds_bucket{job="kube-etcd"}[5m])))', "{{instance}}")]),
        ("Database size", "bytes", [('etcd_mvcc_db_total_size_in_bytes{job="kube-etcd"}', "{{instance}}")]),
    ]),
    "seoul-ceph": ("Seoul: Ceph", [
        ("Health (0 ok, 1 warn, 2 error)", "short", [("ceph_health_status", "health")]),
        ("OSD use", "percentunit", [("ceph_osd_stat_bytes_used / ceph_osd_stat_bytes", "{{ceph_daemon}}")]),
        ("Client throughput", "Bps", [("sum(rate(ceph_pool_rd_bytes[5m]))", "read"),
                                      ("sum(rate(ceph_pool_wr_bytes[5m]))", "write")]),
    ]),
    "seoul-apivip": ("Seoul: HAProxy and the API VIP", [
        ("VIP answers", "short", [('up{job="apivip"}', "vip")]),
        ("Live API servers per HAProxy", "short", [
            ('haproxy_backend_active_servers{proxy="apiserver"}', "{{instance}}")]),
        ("API connections", "short", [('haproxy_frontend_current_sessions{proxy="apiserver"}', "{{instance}}")]),
    ]),
    "seoul-ingress": ("Seoul: ingress", [
        ("Request latency p95", "s", [
            ("histogram_quantile(0.95, sum by (le, ingress) "
             "(rate(nginx_ingress_controller_request_duration_seconds_bucket[5m])))", "{{ingress}}")]),
        ("Requests per second", "reqps", [
            ("sum by (ingress) (rate(nginx_ingress_controller_requests[5m]))", "{{ingress}}")]),
        ("5xx ratio", "percentunit", [
            ('sum by (ingress) (rate(nginx_ingress_controller_requests{status=~"5.."}[5m]))'
             " / sum by (ingress) (rate(nginx_ingress_controller_requests[5m]))", "{{ingress}}")]),
    ]),
}


def build(uid: str) -> dict[str, Any]:
    """The dashboard `uid` as Grafana's JSON model (a dict); KeyError for an unknown uid."""
    title, panels = DASHBOARDS[uid]
    board = (dash.Dashboard(title).uid(uid).tags(["seoul-cluster"]).refresh("30s")
             .time("now-6h", "now").timezone("Asia/Seoul"))
    for i, (panel_title, unit, queries) in enumerate(panels):
        panel = (timeseries.Panel().title(panel_title).unit(unit).datasource(DATASOURCE)
                 .grid_pos(dash_grid(i)))
        for ref, (expr, legend) in zip("ABCDEFGH", queries, strict=False):
            panel = panel.with_target(prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref))
        board = board.with_panel(panel)
    return json.loads(json.dumps(board.build(), cls=JSONEncoder))


def dash_grid(index: int) -> GridPos:
    """Two panels per row, 12 columns wide and 8 high each."""
    return GridPos(h=8, w=12, x=12 * (index % 2), y=8 * (index // 2))


def queries(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard's panels."""
    return [t["expr"] for p in board.get("panels", []) for t in p.get("targets", [])]


def config_maps(namespace: str) -> list[Manifest]:
    """One ConfigMap per dashboard, labelled for the Grafana sidecar, data `<uid>.json`."""
    return [manifest("v1", "ConfigMap", f"dashboard-{uid}", namespace, labels={DASHBOARD_LABEL: "1"},
                     data={f"{uid}.json": json.dumps(build(uid), indent=2, sort_keys=True) + "\n"})
            for uid in DASHBOARDS]
