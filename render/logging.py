"""Logging: Fluent Bit on every host -> Logstash -> Elasticsearch, Kibana; all through ECK.

Fluent Bit (a DaemonSet, every node, control planes and ingress hosts included) tails the
container logs, reads the journal and tails the audit log, and posts JSON to Logstash's HTTP
input; Logstash writes the data stream `logs-seoul-default` in Elasticsearch. On the hosts
that are not Kubernetes nodes (etcd, storage) Fluent Bit is a pinned package
(`host_agent_install`) with the same journal and audit sections, posting to Logstash's
LoadBalancer address (`logstash_address`). Fluent Bit over Fluentd as the agent: a C binary
of a few MB per host rather than a Ruby runtime, with the same inputs; Logstash is the
aggregation tier the seed names.

Elasticsearch, Kibana and Logstash are ECK custom resources (operator 2.16.1, Elastic
License 2.0: free for internal use, not to be offered as a managed service). Data nodes
keep their volumes on `observability.storageClass` (Ceph RBD).

Retention (PIPA safety-measure standard: access logs kept at least a year, two years for
large processors): the ILM policy keeps indices `logging.hotDays` on the hot nodes, then
deletes them from the cluster only once the snapshot lifecycle policy has a snapshot of
them (`wait_for_snapshot`); those daily snapshots go to an S3 repository in ap-northeast-2
and expire after `logging.snapshotRetentionDays` (at least 365). The repository lives in
the backup vault bucket (Object Lock: a deleted snapshot object stays as a locked version
for the vault's retention) unless `logging.snapshotBucket` names another.
Elasticsearch has no API object for ILM or SLM under the basic licence, so a Job applies
them through the REST API (`lifecycle_job`), again whenever their bodies change.
"""

import json
from ipaddress import IPv4Address
from typing import Any

from model import releases
from model.schema import HostSpec, Logging, StackConfig
from render import addons, monitoring
from render.files import FileSet, HostFile, ScriptRun, digest, fingerprint, unit_path
from render.helm import HelmRelease, Manifest, manifest
from render.hosts import HEADER

NAMESPACE = "logging"
OPERATOR_NAMESPACE = "elastic-system"
ES = "logs"  # the Elasticsearch cluster (ECK names its Services and Secrets after it)
KIBANA = "logs"
LOGSTASH = "logs"
LOGSTASH_HTTP_PORT = 8080
LOGSTASH_SERVICE = f"{LOGSTASH}-ls-http"  # ECK names a Logstash service <name>-ls-<service>
DAEMONSET_DB_PREFIX = "/var/log/fluent-bit-"
REPOSITORY = "s3-archive"
ILM_POLICY = "seoul-logs"
SLM_POLICY = "seoul-logs-daily"
DATA_STREAM = "logs-seoul-default"
S3_SECRET = "es-s3-credentials"
KIBANA_TLS_SECRET = "kibana-tls"
LIFECYCLE_CONFIG = "es-lifecycle"


def _logging(cfg: StackConfig) -> Logging:
    if cfg.observability is None or cfg.observability.logging is None:
        raise ValueError("the stack has no observability.logging section")
    return cfg.observability.logging


def snapshot_bucket(cfg: StackConfig) -> str:
    """The S3 bucket of the snapshot repository: `logging.snapshotBucket` or the backup vault."""
    return _logging(cfg).snapshot_bucket or cfg.backup_bucket


def eck_operator_release() -> HelmRelease:
    """The ECK operator (and its CRDs), two replicas' worth of safety: a PDB and the webhook."""
    return HelmRelease("eck-operator", releases.ECK_OPERATOR, OPERATOR_NAMESPACE, {
        "installCRDs": True,
        "resources": {"requests": {"cpu": "100m", "memory": "150Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    })


# The parts of Fluent Bit's config (classic format, docs.fluentbit.io "Configuration file")
# that the DaemonSet and the agents on the hosts outside the cluster share: one home, so a
# record from the journal or the audit log has the same tag and fields wherever it comes from.
def journal_input(db_prefix: str) -> str:
    """[INPUT] systemd: the persistent journal (render/hosts.py journald_conf), cursor in `<db_prefix>journal.db`."""
    return f"""\
[INPUT]
    Name systemd
    Path /var/log/journal
    Tag host.journal
    DB {db_prefix}journal.db
"""


def audit_input(db_prefix: str) -> str:
    """[INPUT] tail of auditd's log (render/hosts.py auditd_conf), offsets in `<db_prefix>audit.db`."""
    return f"""\
[INPUT]
    Name tail
    Path /var/log/audit/audit.log
    Tag host.audit
    DB {db_prefix}audit.db
"""


def node_filter(node: str) -> str:
    """[FILTER] adding `node`: the host's name on every record (`${NODE_NAME}` in the DaemonSet)."""
    return f"""\
[FILTER]
    Name record_modifier
    Match *
    Record node {node}
"""


def logstash_output(host: str) -> str:
    """[OUTPUT] JSON to Logstash's HTTP input at `host`:LOGSTASH_HTTP_PORT, retrying without limit."""
    return f"""\
[OUTPUT]
    Name http
    Match *
    Host {host}
    Port {LOGSTASH_HTTP_PORT}
    Format json
    Retry_Limit False
"""


def fluent_bit_release() -> HelmRelease:
    """Fluent Bit on every node: container logs, journal, audit log -> Logstash's HTTP input."""
    inputs = """\
[INPUT]
    Name tail
    Path /var/log/containers/*.log
    multiline.parser docker, cri
    Tag kube.*
    Mem_Buf_Limit 50MB
    Skip_Long_Lines On
    DB /var/log/fluent-bit-containers.db

""" + journal_input(DAEMONSET_DB_PREFIX) + "\n" + audit_input(DAEMONSET_DB_PREFIX)
    filters = """\
[FILTER]
    Name kubernetes
    Match kube.*
    Merge_Log On
    Keep_Log Off
    K8S-Logging.Parser On

""" + node_filter("${NODE_NAME}")
    return HelmRelease("fluent-bit", releases.FLUENT_BIT, NAMESPACE, {
        "kind": "DaemonSet",
        # Every node: control planes and the tainted ingress hosts too.
        "tolerations": [{"operator": "Exists"}],
        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        "config": {"inputs": inputs, "filters": filters,
                   "outputs": logstash_output(f"{LOGSTASH_SERVICE}.{NAMESPACE}.svc")},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
    })


# Fluent Bit as a package on the hosts outside the cluster (etcd, storage): the package's own
# unit runs FLUENT_BIT_BIN as root (the audit log is root's only); a drop-in points it at our
# config, a file the package does not own (so no package upgrade can put its default back).
# It only connects out, so firewalld needs no port for it.
FLUENT_BIT_BIN = "/opt/fluent-bit/bin/fluent-bit"
FLUENT_BIT_CONF = "/etc/fluent-bit/seoul.conf"
FLUENT_BIT_REPO = "/etc/yum.repos.d/fluent-bit.repo"
FLUENT_BIT_REPO_ID = "fluent-bit"
FLUENT_BIT_KEY_FILE = "/etc/pki/rpm-gpg/RPM-GPG-KEY-fluent-bit"
FLUENT_BIT_UNIT = "fluent-bit.service"
HOST_DB_PREFIX = "/var/lib/fluent-bit/"


def host_agent_dropin() -> str:
    """The package unit's drop-in: the same binary, our config."""
    return HEADER + f"""\
[Service]
ExecStart=
ExecStart={FLUENT_BIT_BIN} -c {FLUENT_BIT_CONF}
"""


def host_agent_config(cfg: StackConfig, host: HostSpec) -> str:
    """FLUENT_BIT_CONF on `host`: journal and audit log, as the DaemonSet reads
    them, to Logstash's LoadBalancer address."""
    service = """\
[SERVICE]
    Flush 5
    Log_Level info
"""
    sections = [service, journal_input(HOST_DB_PREFIX), audit_input(HOST_DB_PREFIX), node_filter(host.name),
                logstash_output(str(logstash_address(cfg)))]
    return HEADER + "\n".join(sections)


def yum_repo() -> str:
    """/etc/yum.repos.d/fluent-bit.repo: packages and metadata signature-checked with the key the
    install step verified (a local file: dnf never fetches a key itself); excluded from a plain
    `dnf upgrade`, so only the pinned version moves it."""
    return HEADER + f"""\
[{FLUENT_BIT_REPO_ID}]
name=Fluent Bit
baseurl={releases.FLUENT_BIT_YUM_BASEURL}
enabled=1
gpgcheck=1
repo_gpgcheck=1
gpgkey=file://{FLUENT_BIT_KEY_FILE}
exclude=fluent-bit
"""


def host_agent_install(cfg: StackConfig, host: HostSpec) -> FileSet:
    """The repository and config files, then scripts/fluent-bit-install.sh: verify and import the
    signing key, install the pinned package, (re)start it when a file or the version changes."""
    files = (
        HostFile("fluent-bit-repo", FLUENT_BIT_REPO, yum_repo()),
        HostFile("fluent-bit-conf", FLUENT_BIT_CONF, host_agent_config(cfg, host), "0600"),
        HostFile("fluent-bit-dropin", unit_path(f"{FLUENT_BIT_UNIT}.d/10-seoul.conf"), host_agent_dropin()),
    )
    return FileSet(files, ScriptRun("fluent-bit-install", "fluent-bit-install.sh", {
        "VERSION": releases.FLUENT_BIT_VERSION,
        "REPO_ID": FLUENT_BIT_REPO_ID,
        "KEY_URL": releases.FLUENT_BIT_KEY_URL,
        "KEY_FINGERPRINT": releases.FLUENT_BIT_KEY_FINGERPRINT,
        "KEY_FILE": FLUENT_BIT_KEY_FILE,
        "STATE_DIR": HOST_DB_PREFIX.rstrip("/"),
        "UNIT": FLUENT_BIT_UNIT,
        # disable-units.sh stops and disables it when the step leaves the stack.
        "TIMERS": FLUENT_BIT_UNIT,
        "FINGERPRINT": fingerprint(files),
    }, delete_script="disable-units.sh"))


def _volume(cfg: StackConfig, size: str) -> list[dict[str, Any]]:
    assert cfg.observability is not None
    return [{"metadata": {"name": "elasticsearch-data"}, "spec": {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": cfg.observability.storage_class,
        "resources": {"requests": {"storage": size}},
    }}]


def elasticsearch(cfg: StackConfig) -> Manifest:
    """Three dedicated masters and `logging.hotNodes` hot data nodes, S3 credentials in the keystore."""
    log = _logging(cfg)
    s3 = {"s3.client.default.endpoint": f"s3.{cfg.aws_region}.amazonaws.com"}
    return manifest("elasticsearch.k8s.elastic.co/v1", "Elasticsearch", ES, NAMESPACE, spec={
        "version": releases.ELASTIC_STACK_VERSION,
        "secureSettings": [{"secretName": S3_SECRET}],
        "nodeSets": [
            {"name": "masters", "count": 3, "config": {"node.roles": ["master"], **s3},
             "volumeClaimTemplates": _volume(cfg, "20Gi")},
            {"name": "hot", "count": log.hot_nodes,
             "config": {"node.roles": ["data_hot", "data_content", "ingest"], **s3},
             "volumeClaimTemplates": _volume(cfg, log.hot_node_storage)},
        ],
    })


def kibana(cfg: StackConfig) -> list[Manifest]:
    """Kibana (two instances) and its Ingress (class nginx, TLS from KIBANA_TLS_SECRET) at `logging.kibanaHost`."""
    log = _logging(cfg)
    objects = [manifest("kibana.k8s.elastic.co/v1", "Kibana", KIBANA, NAMESPACE, spec={
        "version": releases.ELASTIC_STACK_VERSION, "count": 2, "elasticsearchRef": {"name": ES}})]
    if log.kibana_host:
        ingress = manifest("networking.k8s.io/v1", "Ingress", "kibana", NAMESPACE, spec={
            "ingressClassName": addons.INGRESS_CLASS,
            "tls": [{"hosts": [log.kibana_host], "secretName": KIBANA_TLS_SECRET}],
            "rules": [{"host": log.kibana_host, "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": f"{KIBANA}-kb-http", "port": {"number": 5601}}}}]}}],
        })
        # ECK serves Kibana over TLS with its own CA.
        ingress["metadata"]["annotations"] = {"nginx.ingress.kubernetes.io/backend-protocol": "HTTPS"}
        objects.append(ingress)
    return objects


def logstash_address(cfg: StackConfig) -> IPv4Address:
    """The LoadBalancer address of Logstash's HTTP input for the hosts outside the cluster:
    the last usable address of `network.loadBalancerCidr`, at the far end from where MetalLB's
    automatic assignment starts (a Service that already holds it leaves Logstash's pending)."""
    return cfg.network.load_balancer_cidr.broadcast_address - 1


def _http_service(cfg: StackConfig) -> dict[str, Any]:
    """Logstash's HTTP Service: ClusterIP for the DaemonSet, and a LoadBalancer address for the
    hosts outside the cluster when there are any.

    MetalLB assigns `logstash_address` and Calico announces it over BGP (render/network.py);
    kube-proxy accepts only the outside hosts' addresses there (loadBalancerSourceRanges).
    Plain HTTP inside the data-center network (no TLS on this input yet: docs/observability.md).
    """
    ports = [{"name": "http", "port": LOGSTASH_HTTP_PORT, "targetPort": LOGSTASH_HTTP_PORT, "protocol": "TCP"}]
    outside = monitoring.external_hosts(cfg)
    if not outside:
        return {"spec": {"ports": ports}}
    return {
        "metadata": {"annotations": {"metallb.universe.tf/loadBalancerIPs": str(logstash_address(cfg))}},
        "spec": {"type": "LoadBalancer", "ports": ports,
                 "loadBalancerSourceRanges": [f"{h.address}/32" for h in outside]},
    }


def logstash(cfg: StackConfig) -> Manifest:
    """Logstash (two instances): HTTP input for Fluent Bit, output to the data stream DATA_STREAM."""
    pipeline = f"""\
input {{ http {{ port => {LOGSTASH_HTTP_PORT} }} }}
output {{
  elasticsearch {{
    hosts => ["${{LOGS_ES_HOSTS}}"]
    user => "${{LOGS_ES_USER}}"
    password => "${{LOGS_ES_PASSWORD}}"
    ssl_certificate_authorities => "${{LOGS_ES_SSL_CERTIFICATE_AUTHORITY}}"
    data_stream => true
    data_stream_type => "logs"
    data_stream_dataset => "seoul"
    data_stream_namespace => "default"
  }}
}}
"""
    return manifest("logstash.k8s.elastic.co/v1alpha1", "Logstash", LOGSTASH, NAMESPACE, spec={
        "version": releases.ELASTIC_STACK_VERSION,
        "count": 2,
        "elasticsearchRefs": [{"name": ES, "clusterName": "logs"}],
        "pipelines": [{"pipeline.id": "main", "config.string": pipeline}],
        "services": [{"name": "http", "service": _http_service(cfg)}],
    })


def lifecycle_bodies(cfg: StackConfig) -> dict[str, dict[str, Any]]:
    """REST path -> JSON body: the S3 repository, ILM and SLM policies, the data stream's template."""
    log = _logging(cfg)
    return {
        f"_snapshot/{REPOSITORY}": {"type": "s3", "settings": {
            "bucket": snapshot_bucket(cfg), "base_path": f"elasticsearch/{ES}", "client": "default"}},
        f"_slm/policy/{SLM_POLICY}": {
            "schedule": "0 30 1 * * ?",  # daily 01:30
            "name": "<seoul-logs-{now/d}>",
            "repository": REPOSITORY,
            "config": {"indices": ["logs-seoul-*"], "include_global_state": False},
            "retention": {"expire_after": f"{log.snapshot_retention_days}d", "min_count": 1},
        },
        f"_ilm/policy/{ILM_POLICY}": {"policy": {"phases": {
            "hot": {"actions": {"rollover": {"max_age": "1d", "max_primary_shard_size": "50gb"}}},
            # Leaves the cluster after hotDays, never before a snapshot holds it.
            "delete": {"min_age": f"{log.hot_days}d", "actions": {
                "wait_for_snapshot": {"policy": SLM_POLICY}, "delete": {}}},
        }}},
        "_index_template/logs-seoul": {
            "index_patterns": ["logs-seoul-*"],
            "data_stream": {},
            "priority": 200,  # above the built-in `logs` template (100)
            "composed_of": ["logs-mappings", "logs-settings"],
            "template": {"settings": {"index.lifecycle.name": ILM_POLICY}},
        },
    }


def lifecycle_objects(cfg: StackConfig) -> list[Manifest]:
    """A ConfigMap of the bodies and a Job that PUTs each, as the `elastic` user, verifying ECK's CA."""
    bodies = lifecycle_bodies(cfg)
    data = {path.replace("/", "__") + ".json": json.dumps(body, indent=2, sort_keys=True) + "\n"
            for path, body in bodies.items()}
    script = (
        "set -eu\n"
        f"for path in {' '.join(bodies)}; do\n"
        '  file="/bodies/$(echo "$path" | sed \'s#/#__#g\').json"\n'
        f'  curl --fail-with-body -sS --cacert /ca/ca.crt -u "elastic:$ELASTIC_PASSWORD" '
        f'-H "Content-Type: application/json" -X PUT --data-binary "@$file" '
        f'"https://{ES}-es-http.{NAMESPACE}.svc:9200/$path"\n'
        "  echo\n"
        "done\n"
    )
    # A new name when a body changes: a Job's pod template cannot be updated in place.
    job_name = f"es-lifecycle-{digest(json.dumps(bodies, sort_keys=True))}"
    container = {
        "name": "apply",
        "image": releases.CURL_IMAGE,
        "command": ["sh", "-c", script],
        "env": [{"name": "ELASTIC_PASSWORD", "valueFrom": {"secretKeyRef": {
            "name": f"{ES}-es-elastic-user", "key": "elastic"}}}],
        "volumeMounts": [{"name": "bodies", "mountPath": "/bodies"}, {"name": "ca", "mountPath": "/ca"}],
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                            "capabilities": {"drop": ["ALL"]}},
    }
    return [
        manifest("v1", "ConfigMap", LIFECYCLE_CONFIG, NAMESPACE, data=data),
        manifest("batch/v1", "Job", job_name, NAMESPACE, spec={
            "backoffLimit": 20,
            "ttlSecondsAfterFinished": 7 * 86400,
            "template": {"spec": {
                "restartPolicy": "OnFailure",
                "containers": [container],
                "volumes": [
                    {"name": "bodies", "configMap": {"name": LIFECYCLE_CONFIG}},
                    {"name": "ca", "secret": {"secretName": f"{ES}-es-http-certs-public"}},
                ],
            }},
        }),
    ]



# Sizing assumptions (rules of thumb, to be replaced by a measured benchmark): an index on
# disk is about the raw size, one replica, 15% headroom below Elasticsearch's 85% low disk
# watermark, one hot node indexes about 20 MB/s sustained, promotions peak at 4x the mean.
REPLICAS = 1
DISK_USABLE = 0.85
NODE_INGEST_MB_S = 20.0
PEAK_FACTOR = 4.0
_QUANTITY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def _bytes(quantity: str) -> float:
    for suffix, factor in _QUANTITY.items():
        if quantity.endswith(suffix):
            return float(quantity.removesuffix(suffix)) * factor
    return float(quantity)


def sizing(cfg: StackConfig) -> list[str]:
    """The plan's sizing verdict for the Elasticsearch hot tier from `workload.dailyIngestTb` (TB = 10^12 bytes)."""
    log = _logging(cfg)
    daily = cfg.workload.daily_ingest_tb * 1e12
    mean = daily / 86400 / 1e6
    peak = mean * PEAK_FACTOR
    need = daily * log.hot_days * (1 + REPLICAS)
    have = log.hot_nodes * _bytes(log.hot_node_storage) * DISK_USABLE
    nodes = -(-peak // NODE_INGEST_MB_S)
    disk_ok, rate_ok = have >= need, log.hot_nodes >= nodes
    verdict = "fits" if disk_ok and rate_ok else "SHORT"
    return [
        f"logging sizing: {cfg.workload.daily_ingest_tb:g} TB/day = {mean:.0f} MB/s mean, "
        f"{peak:.0f} MB/s at a {PEAK_FACTOR:g}x peak -> {nodes:.0f}+ hot nodes at {NODE_INGEST_MB_S:g} MB/s each",
        f"logging sizing: hot tier {log.hot_days} days x {1 + REPLICAS} copies = {need / 1e12:.0f} TB needed, "
        f"{log.hot_nodes} x {log.hot_node_storage} at {DISK_USABLE:.0%} = {have / 1e12:.0f} TB usable: {verdict}; "
        f"then S3 snapshots kept {log.snapshot_retention_days} days",
    ]
