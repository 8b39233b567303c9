"""Resilience rules: etcd quorum, control-plane HA behind the VIP, F5 pools and TLS, Ceph pools."""

from __future__ import annotations

import re

from pulumi_policy import (
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from .shapes import (
    CEPH_CLUSTER_TYPE,
    F5_CLIENT_SSL_TYPE,
    F5_POOL_ATTACHMENT_TYPE,
    F5_POOL_TYPE,
    REMOTE_COMMAND_TYPE,
    UNKNOWN,
    Deferred,
    as_list,
    get,
    host_has_role,
    hosts,
    parse_script_env,
    remote_steps,
    resources_of,
)

ETCD_CONFIG_PATH = "/etc/etcd/etcd.conf.yml"
HAPROXY_CONFIG_PATH = "/etc/haproxy/haproxy.cfg"
KUBE_API_PORT = "6443"

_INITIAL_CLUSTER_RE = re.compile(r"^\s*initial-cluster\s*:\s*[\"']?([^\"'\n#]*)", re.MULTILINE)


# --- etcd ------------------------------------------------------------------------------------------
def etcd_member_names(config_text: str) -> list[str] | None:
    match = _INITIAL_CLUSTER_RE.search(config_text)
    if match is None:
        return None
    return [entry.split("=", 1)[0].strip() for entry in match.group(1).split(",") if entry.strip()]


def _etcd_validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    steps = remote_steps(args.resources, Deferred())
    files = [s for s in steps if s.file is not None and s.file.path == ETCD_CONFIG_PATH]
    pending: UnknownValueError | None = None

    def bad(count: int) -> bool:
        return count < 3 or count % 2 == 0

    for step in files:
        if step.stdin is UNKNOWN:
            pending = pending or step.errors[0]
            continue
        members = etcd_member_names(step.stdin or "")
        if members is None:
            report_violation(f"{ETCD_CONFIG_PATH} ({step.name}) has no initial-cluster; list every member.", step.urn)
        elif bad(len(members)):
            report_violation(
                f"{ETCD_CONFIG_PATH} ({step.name}) lists {len(members)} members in initial-cluster; "
                "run an odd number of etcd members, at least 3 (3 or 5).",
                step.urn,
            )
    member_hosts = {s.host for s in files if isinstance(s.host, str)}
    if files and not any(s.host is UNKNOWN for s in files) and bad(len(member_hosts)):
        report_violation(
            f"{ETCD_CONFIG_PATH} is put on {len(member_hosts)} distinct host(s); run etcd on an odd "
            "number of hosts, at least 3.",
            None,
        )
    if pending is not None:
        raise pending


etcd_odd_member_count = StackValidationPolicy(
    name="etcd-odd-member-count",
    description="The external etcd cluster must have an odd number of members, at least 3: list 3 or 5 "
    "members in initial-cluster and put /etc/etcd/etcd.conf.yml on that many hosts.",
    validate=_etcd_validate,
    severity=Severity.CRITICAL,
    tags=["resilience", "etcd"],
)


# --- control planes behind the VIP -----------------------------------------------------------
def haproxy_backends(config_text: str) -> dict[str, list[str]]:
    """backend/listen section name -> server addresses (`host:port`)."""
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for raw in config_text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] in ("backend", "listen") and len(words) > 1:
            current = words[1]
            sections.setdefault(current, [])
        elif words[0] in ("frontend", "global", "defaults", "resolvers", "peers", "userlist"):
            current = None
        elif words[0] == "server" and current is not None and len(words) > 2:
            sections[current].append(words[2])
    return sections


def api_backend_servers(config_text: str) -> list[str] | None:
    for name, servers in haproxy_backends(config_text).items():
        lowered = name.lower()
        if "api" in lowered or "kube" in lowered or any(s.endswith(":" + KUBE_API_PORT) for s in servers):
            return servers
    return None


def _controlplane_validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    deferred = Deferred()
    steps = remote_steps(args.resources, deferred)
    files = [s for s in steps if s.file is not None and s.file.path == HAPROXY_CONFIG_PATH]
    pending: UnknownValueError | None = None
    for step in files:
        if step.stdin is UNKNOWN:
            pending = pending or step.errors[0]
            continue
        servers = api_backend_servers(step.stdin or "")
        if servers is None:
            report_violation(
                f"{HAPROXY_CONFIG_PATH} ({step.name}) has no Kubernetes API backend; add a backend with "
                "one `server` line per control plane.",
                step.urn,
            )
            continue
        addresses = {s.rsplit(":", 1)[0] for s in servers}
        if len(addresses) < 2:
            report_violation(
                f"{HAPROXY_CONFIG_PATH} ({step.name}) balances the API VIP over {len(addresses)} control "
                "plane(s); list at least 2 control planes (3 recommended) in the API backend.",
                step.urn,
            )
    all_hosts = hosts(args.resources, deferred)
    control_planes = [h for h in all_hosts if host_has_role(h, "control-plane")]
    if all_hosts and 0 < len(control_planes) < 2 and not any(UNKNOWN in h.roles for h in all_hosts):
        report_violation(
            f"only {len(control_planes)} host has the control-plane role; run at least 2 (3 recommended) "
            "control planes behind the API VIP.",
            control_planes[0].urn,
        )
    if pending is not None:
        raise pending


controlplane_ha_behind_vip = StackValidationPolicy(
    name="controlplane-ha-behind-vip",
    description="The Kubernetes API VIP must front at least 2 control planes: give at least 2 hosts the "
    "control-plane role and list each in the HAProxy API backend (/etc/haproxy/haproxy.cfg).",
    validate=_controlplane_validate,
    severity=Severity.CRITICAL,
    tags=["resilience", "control-plane"],
)


# --- F5 pools ----------------------------------------------------------------------------------
def _f5_pool_members_validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    attachments = resources_of(args.resources, F5_POOL_ATTACHMENT_TYPE)
    pending: UnknownValueError | None = None
    for pool in resources_of(args.resources, F5_POOL_TYPE):
        local = Deferred()
        pool_name = local.get(pool.props, "name")
        members: set[str] = set()
        maybe = False
        for att in attachments:
            linked = any(d.urn == pool.urn for d in att.property_dependencies.get("pool", []))
            if not linked:
                target = local.get(att.props, "pool")
                if target is UNKNOWN:
                    maybe = maybe or not att.property_dependencies.get("pool")
                    continue
                linked = isinstance(pool_name, str) and target == pool_name
            if linked:
                node = local.get(att.props, "node")
                members.add(node if isinstance(node, str) else att.urn)
        if len(members) >= 2:
            continue
        if maybe or pool_name is UNKNOWN:
            pending = pending or (local.errors[0] if local.errors else None)
            continue
        report_violation(
            f"F5 pool {pool.name} has {len(members)} member(s); attach at least 2 members "
            "(f5bigip.ltm.PoolAttachment) so one node can fail.",
            pool.urn,
        )
    if pending is not None:
        raise pending


f5_pool_min_members = StackValidationPolicy(
    name="f5-pool-min-members",
    description="Every F5 LTM pool must have at least 2 members: add a f5bigip.ltm.PoolAttachment per "
    "backend node (at least 2) for each pool.",
    validate=_f5_pool_members_validate,
    severity=Severity.HIGH,
    tags=["resilience", "f5"],
)


def _f5_pool_monitor_validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != F5_POOL_TYPE:
        return
    monitors = [m for m in as_list(get(args.props, "monitors")) if isinstance(m, str)]
    real = [m for m in monitors if m.strip() and m.rsplit("/", 1)[-1].lower() != "none"]
    if not real:
        report_violation(
            f"F5 pool {args.name} has no health monitor; set monitors=['/Common/<monitor>'] "
            "(e.g. an https or tcp monitor).",
            None,
        )


f5_pool_health_monitor = ResourceValidationPolicy(
    name="f5-pool-health-monitor",
    description="Every F5 LTM pool must have a health monitor: set `monitors` on f5bigip.ltm.Pool so dead "
    "members leave the pool.",
    validate=_f5_pool_monitor_validate,
    severity=Severity.HIGH,
    tags=["resilience", "f5"],
)

# protocol label, tm_options that disable it, cipher-string token that excludes it
LEGACY_PROTOCOLS: list[tuple[str, tuple[str, ...], str]] = [
    ("SSLv3", ("no-sslv3", "no-ssl"), "SSLv3"),
    ("TLS 1.0", ("no-tlsv1",), "TLSv1"),
    ("TLS 1.1", ("no-tlsv1.1",), "TLSv1_1"),
]


def legacy_protocols_enabled(tm_options: list[str], ciphers: str) -> list[str]:
    options = {o.strip().lower() for o in tm_options}
    excluded = {t.strip()[1:] for t in re.split(r"[:\s]+", ciphers) if t.strip()[:1] in ("!", "-")}
    return [
        label
        for label, disabling, token in LEGACY_PROTOCOLS
        if not (options & set(disabling)) and token not in excluded
    ]


def _client_ssl_validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != F5_CLIENT_SSL_TYPE:
        return
    tm_options = [o for o in as_list(get(args.props, "tmOptions")) if isinstance(o, str)]
    ciphers = get(args.props, "ciphers")
    enabled = legacy_protocols_enabled(tm_options, ciphers if isinstance(ciphers, str) else "")
    if enabled:
        report_violation(
            f"client SSL profile {args.name} still allows {', '.join(enabled)}; add 'no-sslv3', "
            "'no-tlsv1' and 'no-tlsv1.1' to tm_options (or exclude them in ciphers with "
            "'!SSLv3:!TLSv1:!TLSv1_1').",
            None,
        )


f5_client_ssl_min_tls12 = ResourceValidationPolicy(
    name="f5-client-ssl-min-tls12",
    description="F5 client SSL profiles must not accept anything below TLS 1.2: disable SSLv3, TLS 1.0 and "
    "TLS 1.1 via tm_options (no-sslv3, no-tlsv1, no-tlsv1.1) or the cipher string.",
    validate=_client_ssl_validate,
    severity=Severity.HIGH,
    tags=["resilience", "f5", "tls"],
)


# --- Ceph pools -----------------------------------------------------------------------------------
def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _ceph_replicated_validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != REMOTE_COMMAND_TYPE:
        return
    create = get(args.props, "create")
    env = parse_script_env(create) if isinstance(create, str) else None
    if not env or env.get("POOL_TYPE") != "replicated":
        return
    size, min_size = _int(env.get("SIZE")), _int(env.get("MIN_SIZE"))
    pool = env.get("POOL_NAME", args.name)
    problems = []
    if size is None or size < 3:
        problems.append(f"SIZE={env.get('SIZE', '<unset>')} (needs >= 3)")
    if min_size is None or min_size < 2:
        problems.append(f"MIN_SIZE={env.get('MIN_SIZE', '<unset>')} (needs >= 2)")
    if problems:
        report_violation(f"replicated Ceph pool {pool}: {', '.join(problems)}; use SIZE=3 MIN_SIZE=2.", None)


ceph_replicated_pool_size = ResourceValidationPolicy(
    name="ceph-replicated-pool-size",
    description="Replicated Ceph pools must keep 3 copies and refuse writes below 2: run the pool step "
    "with SIZE>=3 and MIN_SIZE>=2.",
    validate=_ceph_replicated_validate,
    severity=Severity.HIGH,
    tags=["resilience", "ceph"],
)


def _ceph_ec_validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    deferred = Deferred()
    steps = remote_steps(args.resources, deferred)
    storage_hosts = [h for h in hosts(args.resources, deferred) if host_has_role(h, "storage")]
    for step in steps:
        env = step.env
        if not env or env.get("POOL_TYPE") != "erasure":
            continue
        k, m = _int(env.get("K")), _int(env.get("M"))
        pool = env.get("POOL_NAME", step.name)
        problems = []
        if m is None or m < 2:
            problems.append(f"M={env.get('M', '<unset>')} (needs >= 2 so two failures are survivable)")
        if k is None or k < 1:
            problems.append(f"K={env.get('K', '<unset>')} (needs >= 1)")
        elif m is not None and storage_hosts and k + m >= len(storage_hosts):
            problems.append(
                f"K+M={k + m} is not below the {len(storage_hosts)} storage hosts (a host failure "
                "would leave the pool unable to recover)"
            )
        if problems:
            report_violation(f"erasure-coded Ceph pool {pool}: {'; '.join(problems)}.", step.urn)


ceph_ec_pool_profile = StackValidationPolicy(
    name="ceph-ec-pool-profile",
    description="Erasure-coded Ceph pools need M>=2 and K+M below the number of storage hosts: choose K "
    "and M accordingly (e.g. K=2 M=2 needs at least 5 storage hosts) or add storage hosts.",
    validate=_ceph_ec_validate,
    severity=Severity.HIGH,
    tags=["resilience", "ceph"],
)


# The pools' fate after one storage host is lost. Ceph places one copy (or chunk) per host
# (failure domain host): a replicated pool re-heals only when size < hosts and keeps serving
# I/O only when size-1 >= min_size; EC pools are judged by ceph-ec-pool-profile.
def _ceph_host_loss_validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    deferred = Deferred()
    storage_hosts = [h for h in hosts(args.resources, deferred) if host_has_role(h, "storage")]
    for step in remote_steps(args.resources, deferred):
        env = step.env
        if not env or env.get("POOL_TYPE") != "replicated":
            continue
        size, min_size = _int(env.get("SIZE")), _int(env.get("MIN_SIZE"))
        pool = env.get("POOL_NAME", step.name)
        problems = []
        if size is not None and storage_hosts and size >= len(storage_hosts):
            problems.append(f"SIZE={size} copies cannot re-heal on the {len(storage_hosts) - 1} storage hosts left "
                            "after one is lost")
        if size is not None and min_size is not None and size - 1 < min_size:
            problems.append(f"MIN_SIZE={min_size} stops I/O as soon as one of its {size} copies is on a lost host")
        if problems:
            report_violation(f"replicated Ceph pool {pool}: {'; '.join(problems)}.", step.urn)


ceph_pool_survives_host_loss = StackValidationPolicy(
    name="ceph-pool-survives-host-loss",
    description="Every replicated Ceph pool must survive losing one storage host: SIZE below the storage host "
    "count (so it re-heals) and MIN_SIZE at most SIZE-1 (so I/O continues).",
    validate=_ceph_host_loss_validate,
    severity=Severity.HIGH,
    tags=["resilience", "ceph"],
)


def reheal_safe_tb(host_raw_tb: list[float], nearfull: float, env: dict[str, str]) -> float | None:
    """TB a pool still holds after losing the largest host (model/capacity.py, same rule); None if unreadable."""
    if env.get("POOL_TYPE") == "replicated":
        size = _int(env.get("SIZE"))
        need, overhead = size, float(size) if size else None
    else:
        k, m = _int(env.get("K")), _int(env.get("M"))
        need, overhead = (k + m, (k + m) / k) if k and m else (None, None)
    if need is None or overhead is None:
        return None
    if need > len(host_raw_tb) - 1:
        return 0.0
    return (sum(host_raw_tb) - max(host_raw_tb)) * nearfull / overhead


def _ceph_retention_validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    deferred = Deferred()
    clusters = resources_of(args.resources, CEPH_CLUSTER_TYPE)
    if not clusters:
        return
    props = clusters[0].props
    raw = deferred.get(props, "hostRawTb")
    nearfull = deferred.get(props, "nearfullRatio")
    ingest = deferred.get(props, "dailyIngestTb")
    retention = deferred.get(props, "retentionDays")
    if UNKNOWN in (raw, nearfull, ingest, retention) or not raw or not ingest:
        deferred.raise_first()
        return
    host_raw = [float(raw[k]) for k in raw]
    for step in remote_steps(args.resources, deferred):
        env = step.env
        if not env or env.get("WORKLOAD") != "true" or "POOL_TYPE" not in env:
            continue
        safe = reheal_safe_tb(host_raw, float(nearfull), env)
        if safe is None:
            continue
        days = safe / float(ingest)
        if days < float(retention):
            report_violation(
                f"workload Ceph pool {env.get('POOL_NAME', step.name)} holds {days:.1f} days of "
                f"{float(ingest):g} TB/day after losing a storage host ({safe:.2f} TB re-heal-safe under nearfull "
                f"{float(nearfull)}); workload.retentionDays needs {int(retention)}: add storage hosts or disks, or "
                "lower the pool's overhead.",
                step.urn,
            )


ceph_workload_retention = StackValidationPolicy(
    name="ceph-workload-retention",
    description="Ceph pools marked `workload: true` must hold workload.retentionDays of workload.dailyIngestTb "
    "after losing the largest storage host, filled no further than the nearfull ratio.",
    validate=_ceph_retention_validate,
    severity=Severity.HIGH,
    tags=["resilience", "ceph", "capacity"],
)

POLICIES: list[Policy] = [
    etcd_odd_member_count,
    controlplane_ha_behind_vip,
    f5_pool_min_members,
    f5_pool_health_monitor,
    f5_client_ssl_min_tls12,
    ceph_replicated_pool_size,
    ceph_ec_pool_profile,
    ceph_pool_survives_host_loss,
    ceph_workload_retention,
]
