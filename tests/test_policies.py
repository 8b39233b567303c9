"""Each policy: one compliant and one non-compliant change to a compliant cluster.

Everything runs through `offline.policy.analyze`, i.e. the analyzer's Configure, Analyze and
AnalyzeStack RPCs with registrations in the recorded wire form.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from offline.policy import analyze
from policies.hosts import secret_findings
from policies.pack import POLICIES
from policies.shapes import FilePut, command_env, parse_file_put, parse_script_env
from render.files import FileSet, HostFile, ScriptRun, file_set_script
from tests.policy_fixtures import (
    FORTIOS_POLICY,
    HARDENED_SSHD,
    PROD_CONFIG,
    PROJECT,
    STACK,
    UNKNOWN,
    Cluster,
    Secret,
    add_app,
    add_host,
    add_host_step,
    compliant_cluster,
    etcd_config,
    file_put,
    haproxy_config,
    host_step,
    script_run,
)

Mutation = Callable[[Cluster], None]


def run(c: Cluster, config=PROD_CONFIG) -> list[dict[str, str]]:
    return analyze(c.registrations(), project=PROJECT, stack=STACK, config_file=config)


def urn_of(c: Cluster, name: str, type_: str | None = None) -> str:
    return c.urn(c.find(name, type_))


# --- mutations ---------------------------------------------------------------------------------
def set_stdin(host: str, step: str, text: str) -> Mutation:
    def mutate(c: Cluster) -> None:
        host_step(c, host, step).inputs["stdin"] = text

    return mutate


def ceph_workload(retention_days: int) -> Mutation:
    """The archive pool (EC 2+2, 5 hosts of 61.44 TB) holds the workload: 104.45 TB re-heal-safe, 10.4 days."""

    def mutate(c: Cluster) -> None:
        c.add("seoul:ceph:CephCluster", "ceph", {
            "hostRawTb": {f"storage-{i}": 61.44 for i in range(1, 6)},
            "nearfullRatio": 0.85,
            "dailyIngestTb": 10,
            "retentionDays": retention_days,
        }, custom=False)
        set_create("storage-1", "ceph-pool-archive",
                   script_run(POOL_NAME="archive", POOL_TYPE="erasure", K="2", M="2", WORKLOAD="true"))(c)

    return mutate


def set_create(host: str, step: str, create: str) -> Mutation:
    def mutate(c: Cluster) -> None:
        host_step(c, host, step).inputs["create"] = create

    return mutate


def set_input(name: str, type_: str, path: list[str], value: object) -> Mutation:
    def mutate(c: Cluster) -> None:
        target = c.find(name, type_).inputs
        for key in path[:-1]:
            target = target[key] if not isinstance(target, list) else target[int(key)]
        if isinstance(target, list):
            target[int(path[-1])] = value
        elif value is None:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = value

    return mutate


def chain(*mutations: Mutation) -> Mutation:
    def mutate(c: Cluster) -> None:
        for m in mutations:
            m(c)

    return mutate


def noop(c: Cluster) -> None:
    return None


BUCKET = "aws:s3/bucket:Bucket"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
BPOLICY = "aws:s3/bucketPolicy:BucketPolicy"
REPL = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
KEY = "aws:kms/key:Key"
POOL = "f5bigip:ltm/pool:Pool"
ATTACH = "f5bigip:ltm/poolAttachment:PoolAttachment"
CLIENTSSL = "f5bigip:ltm/profileClientSsl:ProfileClientSsl"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
B = "seoul-cluster-backups"
HOST = "seoul:hosts:Host"


def literal_versioning_link(c: Cluster) -> None:
    res = c.find(f"{B}-versioning", VERSIONING)
    res.inputs["bucket"] = B
    res.property_dependencies = {}
    res.dependencies = []


def literal_cmk(c: Cluster) -> None:
    res = c.find(f"{B}-sse", SSE)
    res.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] = (
        "arn:aws:kms:ap-northeast-2:111122223333:key/0c7a1f6e-1111-2222-3333-444455556666"
    )
    res.property_dependencies = {"bucket": res.property_dependencies["bucket"]}


def policy_without_tls_condition(c: Cluster) -> None:
    doc = json.loads(c.find(f"{B}-policy", BPOLICY).inputs["policy"])
    del doc["Statement"][0]["Condition"]
    c.find(f"{B}-policy", BPOLICY).inputs["policy"] = json.dumps(doc)


def policy_alternate_tls_form(c: Cluster) -> None:
    doc = json.loads(c.find(f"{B}-policy", BPOLICY).inputs["policy"])
    stmt = doc["Statement"][0]
    stmt["Principal"] = {"AWS": "*"}
    stmt["Action"] = ["s3:*"]
    stmt["Condition"] = {"Bool": {"aws:SecureTransport": False}}
    c.find(f"{B}-policy", BPOLICY).inputs["policy"] = json.dumps(doc)


def five_etcd_members(c: Cluster) -> None:
    members = {f"etcd-{i}": f"10.0.1.{30 + i}" for i in range(1, 6)}
    for name, ip in list(members.items())[3:]:
        add_host(c, name, ip, ["etcd"])
        add_host_step(c, name, "etcd-config", file_put("/etc/etcd/etcd.conf.yml", "0600"), "")
    for name, ip in members.items():
        host_step(c, name, "etcd-config").inputs["stdin"] = etcd_config(name, ip, members)


def four_etcd_members(c: Cluster) -> None:
    members = {f"etcd-{i}": f"10.0.1.{30 + i}" for i in range(1, 5)}
    add_host(c, "etcd-4", members["etcd-4"], ["etcd"])
    add_host_step(c, "etcd-4", "etcd-config", file_put("/etc/etcd/etcd.conf.yml", "0600"), "")
    for name, ip in members.items():
        host_step(c, name, "etcd-config").inputs["stdin"] = etcd_config(name, ip, members)


def single_api_backend(c: Cluster) -> None:
    for cp in ("cp-1", "cp-2", "cp-3"):
        host_step(c, cp, "haproxy").inputs["stdin"] = haproxy_config({"cp-1": "10.0.1.11"})


def attachment_by_name(c: Cluster) -> None:
    att = c.find("k8s-ingress-member-1", ATTACH)
    att.inputs["pool"] = "/Common/k8s-ingress"
    att.property_dependencies = {}
    att.dependencies = []


def autonamed_app_with_dependent_hpa(c: Cluster) -> None:
    dep = c.find("shop-api", DEPLOYMENT)
    del dep.inputs["metadata"]["name"]
    hpa = c.find("shop-api-hpa", HPA)
    hpa.inputs["spec"]["scaleTargetRef"]["name"] = UNKNOWN
    hpa.property_dependencies = {"spec": [dep]}


def system_app_without_resources(c: Cluster) -> None:
    c.add(
        DEPLOYMENT,
        "grafana",
        {
            "metadata": {"name": "grafana", "namespace": "monitoring"},
            "spec": {"template": {"spec": {"containers": [{"name": "grafana", "image": "grafana/grafana:10.4.2"}]}}},
        },
    )


def privileged_in(namespace: str) -> Mutation:
    def mutate(c: Cluster) -> None:
        dep = add_app(c, "node-agent", namespace)
        dep.inputs["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {"privileged": True}

    return mutate


def replicate_outside_stack(c: Cluster) -> None:
    repl = c.find("backups-replication", REPL)
    repl.property_dependencies = {"bucket": repl.property_dependencies["bucket"]}
    repl.inputs["rules"][0]["destination"]["bucket"] = "arn:aws:s3:::partner-dr-us-east-1"


# --- the table: policy -> (compliant change, non-compliant change, resource the violation names) ---
@dataclass(frozen=True)
class Case:
    ok: Mutation
    bad: Mutation
    urn: Callable[[Cluster], str] | None  # None: stack-wide (empty URN)
    also: frozenset[str] = frozenset()  # other policies the bad change legitimately trips


def _host(name: str) -> Callable[[Cluster], str]:
    return lambda c: urn_of(c, name, "seoul:hosts:Host")


def offsite_copies(hours: float) -> Mutation:
    """The OffsiteCopies component as components/backup.py registers it (render.backup.uplink_verdict)."""
    def mutate(c: Cluster) -> None:
        c.add("seoul:backup:OffsiteCopies", "offsite", {
            "uplinkGbps": 1, "sharePercent": 30, "hoursPerDay": hours,
            "dailyOffsiteGb": {"ceph": 10000.0, "postgresql": 234.7, "etcd": 144.0}}, custom=False)
    return mutate


def _step(host: str, step: str) -> Callable[[Cluster], str]:
    return lambda c: c.urn(host_step(c, host, step))


def _res(name: str, type_: str) -> Callable[[Cluster], str]:
    return lambda c: urn_of(c, name, type_)


CASES: dict[str, Case] = {
    "hosts-ssh-password-auth-off": Case(
        ok=set_stdin("cp-1", "sshd", "passwordauthentication=no\npermitrootlogin  no\n"),
        bad=set_stdin("cp-1", "sshd", "PasswordAuthentication yes\nPasswordAuthentication no\nPermitRootLogin no\n"),
        urn=_host("cp-1"),
    ),
    "hosts-ssh-root-login-off": Case(
        ok=lambda c: add_host_step(
            c, "cp-2", "sshd-late", file_put("/etc/ssh/sshd_config.d/90-late.conf"), "PermitRootLogin yes\n"
        ),
        bad=set_stdin("cp-2", "sshd", "PasswordAuthentication no\nPermitRootLogin prohibit-password\n"),
        urn=_host("cp-2"),
    ),
    "hosts-selinux-enforcing": Case(
        ok=set_create("cp-1", "selinux", script_run(SELINUX_MODE="Enforcing")),
        bad=set_create("cp-1", "selinux", script_run(SELINUX_MODE="permissive")),
        urn=_step("cp-1", "selinux"),
    ),
    "hosts-firewalld-default-zone-drop": Case(
        ok=set_create("storage-2", "firewalld", script_run(DEFAULT_ZONE="drop", TCP_PORTS="22 6800-7300")),
        bad=set_create("storage-2", "firewalld", script_run(DEFAULT_ZONE="public", TCP_PORTS="22")),
        urn=_step("storage-2", "firewalld"),
    ),
    "hosts-cis-level": Case(
        ok=set_input("cp-1", HOST, ["cisLevel"], 2),
        bad=set_input("cp-1", HOST, ["cisLevel"], None),
        urn=_res("cp-1", HOST),
    ),
    "hosts-no-secrets-in-commands": Case(
        ok=lambda c: add_host_step(
            c,
            "cp-2",
            "join",
            script_run(CONTROL_PLANE_ENDPOINT="10.0.1.10:8443"),
            Secret("kubeadm join --token abcdef.0123456789abcdef\n"),
        ),
        bad=lambda c: add_host_step(
            c, "cp-2", "join", script_run(JOIN_TOKEN="abcdef.0123456789abcdef"), 'kubeadm join --token "$JOIN_TOKEN"\n'
        ),
        urn=_step("cp-2", "join"),
    ),
    "residency-aws-region-seoul": Case(
        ok=set_input("backup-key", KEY, ["region"], "ap-northeast-2"),
        bad=set_input("backup-key", KEY, ["region"], "us-east-1"),
        urn=_res("backup-key", KEY),
    ),
    "residency-s3-replication-korea": Case(
        ok=set_input(f"{B}-replica", BUCKET, ["region"], "ap-northeast-2"),
        bad=replicate_outside_stack,
        urn=_res("backups-replication", REPL),
    ),
    "backup-bucket-versioning": Case(
        ok=literal_versioning_link,
        bad=set_input(f"{B}-versioning", VERSIONING, ["versioningConfiguration", "status"], "Suspended"),
        urn=_res(B, BUCKET),
    ),
    "backup-bucket-sse-kms-cmk": Case(
        ok=literal_cmk,
        bad=set_input(f"{B}-sse", SSE, ["rules", "0", "applyServerSideEncryptionByDefault", "sseAlgorithm"], "AES256"),
        urn=_res(B, BUCKET),
    ),
    "backup-bucket-public-access-block": Case(
        ok=set_input(f"{B}-public-access-block", PAB, ["blockPublicAcls"], True),
        bad=set_input(f"{B}-public-access-block", PAB, ["restrictPublicBuckets"], False),
        urn=_res(B, BUCKET),
    ),
    "backup-bucket-object-lock": Case(
        ok=set_input(f"{B}-object-lock", LOCK, ["rule", "defaultRetention"], {"mode": "GOVERNANCE", "years": 1}),
        bad=set_input(f"{B}-object-lock", LOCK, ["rule"], None),
        urn=_res(B, BUCKET),
    ),
    "backup-bucket-tls-only": Case(
        ok=policy_alternate_tls_form,
        bad=policy_without_tls_condition,
        urn=_res(B, BUCKET),
    ),
    "backup-kms-key-rotation": Case(
        ok=chain(
            set_input("backup-key", KEY, ["customerMasterKeySpec"], "RSA_4096"),
            set_input("backup-key", KEY, ["keyUsage"], "SIGN_VERIFY"),
            set_input("backup-key", KEY, ["enableKeyRotation"], None),
        ),
        bad=set_input("backup-key", KEY, ["enableKeyRotation"], False),
        urn=_res("backup-key", KEY),
    ),
    "backup-bucket-protected": Case(
        ok=lambda c: setattr(c.find(f"{B}-replica", BUCKET), "protect", True),
        bad=lambda c: setattr(c.find(B, BUCKET), "protect", False),
        urn=_res(B, BUCKET),
    ),
    "backup-offsite-fits-uplink": Case(
        ok=offsite_copies(hours=7.7),
        bad=offsite_copies(hours=76.9),
        urn=_res("offsite", "seoul:backup:OffsiteCopies"),
    ),
    "etcd-odd-member-count": Case(
        ok=five_etcd_members,
        bad=four_etcd_members,
        urn=_step("etcd-1", "etcd-config"),
    ),
    "controlplane-ha-behind-vip": Case(
        ok=set_stdin("cp-1", "haproxy", haproxy_config({"cp-1": "10.0.1.11", "cp-2": "10.0.1.12"})),
        bad=single_api_backend,
        urn=_step("cp-1", "haproxy"),
    ),
    "f5-pool-min-members": Case(
        ok=attachment_by_name,
        bad=lambda c: c.remove(c.find("k8s-ingress-member-2", ATTACH)),
        urn=_res("k8s-ingress", POOL),
    ),
    "f5-pool-health-monitor": Case(
        ok=set_input("k8s-ingress", POOL, ["monitors"], ["/Common/tcp"]),
        bad=set_input("k8s-ingress", POOL, ["monitors"], ["/Common/none"]),
        urn=_res("k8s-ingress", POOL),
    ),
    "f5-client-ssl-min-tls12": Case(
        ok=chain(
            set_input("k8s-clientssl", CLIENTSSL, ["tmOptions"], ["dont-insert-empty-fragments"]),
            set_input("k8s-clientssl", CLIENTSSL, ["ciphers"], "ECDHE+AES-GCM:!SSLv3:!TLSv1:!TLSv1_1"),
        ),
        bad=set_input(
            "k8s-clientssl", CLIENTSSL, ["tmOptions"], ["dont-insert-empty-fragments", "no-sslv3", "no-tlsv1"]
        ),
        urn=_res("k8s-clientssl", CLIENTSSL),
    ),
    "ceph-replicated-pool-size": Case(
        ok=set_create(
            "storage-1", "ceph-pool-rbd", script_run(POOL_NAME="rbd", POOL_TYPE="replicated", SIZE="4", MIN_SIZE="2")
        ),
        bad=set_create(
            "storage-1", "ceph-pool-rbd", script_run(POOL_NAME="rbd", POOL_TYPE="replicated", SIZE="2", MIN_SIZE="1")
        ),
        urn=_step("storage-1", "ceph-pool-rbd"),
    ),
    "ceph-ec-pool-profile": Case(
        ok=set_create(
            "storage-1", "ceph-pool-archive", script_run(POOL_NAME="archive", POOL_TYPE="erasure", K="1", M="3")
        ),
        bad=set_create(
            "storage-1", "ceph-pool-archive", script_run(POOL_NAME="archive", POOL_TYPE="erasure", K="3", M="2")
        ),
        urn=_step("storage-1", "ceph-pool-archive"),
    ),
    "ceph-pool-survives-host-loss": Case(
        ok=set_create(
            "storage-1", "ceph-pool-rbd", script_run(POOL_NAME="rbd", POOL_TYPE="replicated", SIZE="4", MIN_SIZE="3")
        ),
        bad=set_create(
            "storage-1", "ceph-pool-rbd", script_run(POOL_NAME="rbd", POOL_TYPE="replicated", SIZE="3", MIN_SIZE="3")
        ),
        urn=_step("storage-1", "ceph-pool-rbd"),
    ),
    "ceph-workload-retention": Case(
        ok=ceph_workload(retention_days=7),
        bad=ceph_workload(retention_days=14),
        urn=_step("storage-1", "ceph-pool-archive"),
    ),
    "k8s-version-pinned": Case(
        ok=set_create("cp-2", "k8s-packages", script_run(KUBERNETES_VERSION="v1.29.6")),
        bad=set_create("cp-2", "k8s-packages", script_run(KUBERNETES_VERSION="1.29.7")),
        urn=_step("cp-2", "k8s-packages"),
    ),
    "k8s-workload-requests": Case(
        ok=system_app_without_resources,
        bad=set_input(
            "shop-api",
            DEPLOYMENT,
            ["spec", "template", "spec", "containers", "0", "resources", "requests", "memory"],
            None,
        ),
        urn=_res("shop-api", DEPLOYMENT),
    ),
    "k8s-workload-limits": Case(
        ok=set_input("shop-api", DEPLOYMENT, ["spec", "replicas"], 5),
        bad=set_input(
            "shop-api", DEPLOYMENT, ["spec", "template", "spec", "containers", "0", "resources", "limits"], None
        ),
        urn=_res("shop-api", DEPLOYMENT),
    ),
    "k8s-workload-hpa": Case(
        ok=autonamed_app_with_dependent_hpa,
        bad=lambda c: c.remove(c.find("shop-api-hpa", HPA)),
        urn=_res("shop-api", DEPLOYMENT),
    ),
    "k8s-workload-pdb": Case(
        ok=set_input("shop-api-pdb", PDB, ["spec", "selector", "matchLabels"], {"app": "shop-api"}),
        bad=set_input("shop-api-pdb", PDB, ["spec", "selector", "matchLabels"], {"app": "shop-web"}),
        urn=_res("shop-api", DEPLOYMENT),
    ),
    "k8s-no-privileged-containers": Case(
        ok=privileged_in("rook-ceph"),
        bad=privileged_in("apps"),
        urn=_res("node-agent", DEPLOYMENT),
    ),
    "fortigate-no-any-to-any-accept": Case(
        ok=set_input("deny-everything-else", FORTIOS_POLICY, ["services"], [{"name": "HTTPS"}]),
        bad=set_input("internet-to-f5-https", FORTIOS_POLICY, ["dstaddrs"], [{"name": "all"}]),
        urn=_res("internet-to-f5-https", FORTIOS_POLICY),
    ),
    "fortigate-policy-logging": Case(
        ok=set_input("deny-everything-else", FORTIOS_POLICY, ["logtraffic"], "utm"),
        bad=set_input("deny-everything-else", FORTIOS_POLICY, ["logtraffic"], "disable"),
        urn=_res("deny-everything-else", FORTIOS_POLICY),
    ),
    "fortigate-no-internet-ssh": Case(
        ok=set_input("bastion-ssh-to-nodes", FORTIOS_POLICY, ["srcintfs"], [{"name": "port3"}]),
        bad=set_input("bastion-ssh-to-nodes", FORTIOS_POLICY, ["srcaddrs"], [{"name": "all"}]),
        urn=_res("bastion-ssh-to-nodes", FORTIOS_POLICY),
    ),
}


def test_every_policy_has_a_case() -> None:
    assert sorted(CASES) == sorted(p.name for p in POLICIES)


def test_compliant_cluster_has_no_violations() -> None:
    assert run(compliant_cluster()) == []


@pytest.mark.parametrize("policy", sorted(CASES))
def test_compliant_change_passes(policy: str) -> None:
    c = compliant_cluster()
    CASES[policy].ok(c)
    assert run(c) == []


@pytest.mark.parametrize("policy", sorted(CASES))
def test_non_compliant_change_is_reported(policy: str) -> None:
    case = CASES[policy]
    c = compliant_cluster()
    case.bad(c)
    violations = run(c)
    fired = {v["policy"] for v in violations}
    assert policy in fired, violations
    assert fired - case.also == {policy}, violations
    mine = [v for v in violations if v["policy"] == policy]
    assert all(v["level"] == "mandatory" for v in mine)
    expected_urn = case.urn(c) if case.urn else ""
    assert expected_urn in {v["urn"] for v in mine}, mine
    description = next(p.description for p in POLICIES if p.name == policy)
    assert all(v["message"].startswith(description) for v in mine)


# --- more non-compliant variants: (change, policy that must fire alone, text in its message) ---
def drop(name: str, type_: str) -> Mutation:
    return lambda c: c.remove(c.find(name, type_))


def one_control_plane(c: Cluster) -> None:
    for cp in ("cp-2", "cp-3"):
        c.find(cp, "seoul:hosts:Host").inputs["roles"] = ["worker"]


def etcd_on_two_hosts_only(c: Cluster) -> None:
    c.remove(host_step(c, "etcd-3", "etcd-config"))


def statefulset_with_pdb_only(c: Cluster) -> None:
    labels = {"app": "ledger-db"}
    container = {
        "name": "db",
        "image": "postgres:16",
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
    }
    c.add(
        "kubernetes:apps/v1:StatefulSet",
        "ledger-db",
        {
            "metadata": {"name": "ledger-db", "namespace": "apps"},
            "spec": {"template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}},
        },
    )
    c.add(
        PDB,
        "ledger-db-pdb",
        {"metadata": {"namespace": "apps"}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}}},
    )


ROOT_LOGIN_ALLOWED = HARDENED_SSHD.replace("PermitRootLogin no", "PermitRootLogin yes")

VARIANTS: list[tuple[str, Mutation, str, str]] = [
    (
        "host-without-firewalld",
        lambda c: c.remove(host_step(c, "storage-4", "firewalld")),
        "hosts-firewalld-default-zone-drop",
        "host storage-4: no step sets",
    ),
    (
        "selinux-config-file",
        lambda c: add_host_step(
            c, "cp-1", "selinux-file", file_put("/etc/selinux/config"), "SELINUX=disabled\nSELINUXTYPE=targeted\n"
        ),
        "hosts-selinux-enforcing",
        "SELINUX=disabled",
    ),
    (
        "selinux-config-in-a-file-set",
        lambda c: add_host_step(c, "cp-1", "selinux-apply", script_run(FINGERPRINT="x"), file_set_stdin(
            "/etc/selinux/config", "SELINUX=disabled\nSELINUXTYPE=targeted\n")),
        "hosts-selinux-enforcing",
        "SELINUX=disabled",
    ),
    (
        "sshd-root-login-in-a-file-set",
        chain(lambda c: c.remove(host_step(c, "cp-1", "sshd")),
              lambda c: add_host_step(c, "cp-1", "sshd-apply", script_run(FINGERPRINT="x"), file_set_stdin(
                  "/etc/ssh/sshd_config.d/50-hardening.conf", ROOT_LOGIN_ALLOWED))),
        "hosts-ssh-root-login-off",
        "makes the effective setting 'PermitRootLogin yes'",
    ),
    (
        "firewalld-conf",
        lambda c: add_host_step(
            c, "cp-1", "fw-file", file_put("/etc/firewalld/firewalld.conf"), "DefaultZone=public\n"
        ),
        "hosts-firewalld-default-zone-drop",
        "default zone to 'public'",
    ),
    ("versioning-missing", drop(f"{B}-versioning", VERSIONING), "backup-bucket-versioning", "has no BucketVersioning"),
    (
        "sse-aws-managed-key",
        chain(
            literal_cmk,
            set_input(
                f"{B}-sse", SSE, ["rules", "0", "applyServerSideEncryptionByDefault", "kmsMasterKeyId"], "alias/aws/s3"
            ),
        ),
        "backup-bucket-sse-kms-cmk",
        "customer-managed",
    ),
    (
        "pab-missing",
        drop(f"{B}-public-access-block", PAB),
        "backup-bucket-public-access-block",
        "has no BucketPublicAccessBlock",
    ),
    (
        "bucket-without-object-lock",
        set_input(B, BUCKET, ["objectLockEnabled"], None),
        "backup-bucket-object-lock",
        "object_lock_enabled=True",
    ),
    ("bucket-policy-missing", drop(f"{B}-policy", BPOLICY), "backup-bucket-tls-only", "has no bucket policy"),
    ("etcd-two-hosts", etcd_on_two_hosts_only, "etcd-odd-member-count", "2 distinct host"),
    ("one-control-plane-role", one_control_plane, "controlplane-ha-behind-vip", "control-plane role"),
    (
        "haproxy-without-api-backend",
        set_stdin("cp-1", "haproxy", "global\n  log /dev/log local0\nbackend web\n  server w1 10.0.2.1:80 check\n"),
        "controlplane-ha-behind-vip",
        "no Kubernetes API backend",
    ),
    (
        "f5-ciphers-keep-tls11",
        chain(
            set_input("k8s-clientssl", CLIENTSSL, ["tmOptions"], None),
            set_input("k8s-clientssl", CLIENTSSL, ["ciphers"], "DEFAULT:!SSLv3:!TLSv1"),
        ),
        "f5-client-ssl-min-tls12",
        "TLS 1.1",
    ),
    (
        "f5-no-monitors",
        set_input("k8s-ingress", POOL, ["monitors"], None),
        "f5-pool-health-monitor",
        "no health monitor",
    ),
    (
        "ceph-ec-m1",
        set_create(
            "storage-1", "ceph-pool-archive", script_run(POOL_NAME="archive", POOL_TYPE="erasure", K="2", M="1")
        ),
        "ceph-ec-pool-profile",
        "M=1",
    ),
    (
        "ceph-replicated-no-min-size",
        set_create("storage-1", "ceph-pool-rbd", script_run(POOL_NAME="rbd", POOL_TYPE="replicated", SIZE="3")),
        "ceph-replicated-pool-size",
        "MIN_SIZE=<unset>",
    ),
    (
        "k8s-version-floating",
        set_stdin("cp-1", "kubeadm-config", "kind: ClusterConfiguration\nkubernetesVersion: stable-1\n"),
        "k8s-version-pinned",
        "stable-1",
    ),
    ("statefulset-without-hpa", statefulset_with_pdb_only, "k8s-workload-hpa", "StatefulSet ledger-db has no HPA"),
    (
        "secret-variable-in-a-delete",  # a file set's delete: `sudo env K=V ... bash -c '<script>' ...`
        lambda c: add_host_step(c, "cp-1", "db-apply", script_run(FINGERPRINT="x"), "echo ok\n").inputs.update(
            delete="sudo env FINGERPRINT=x DB_PASSWORD=hunter2hunter2 bash -c 'rm -f \"$1\"' seoul /etc/x"),
        "hosts-no-secrets-in-commands",
        "'delete' contains a secret-named variable DB_PASSWORD",
    ),
]


def file_set_stdin(path: str, content: str) -> str:
    """The stdin of a file set's step (render/files.py) that writes `content` to `path`."""
    return file_set_script(FileSet((HostFile("f", path, content),), ScriptRun("apply", "restart-service.sh")))


@pytest.mark.parametrize(("label", "mutation", "policy", "fragment"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_non_compliant_variants(label: str, mutation: Mutation, policy: str, fragment: str) -> None:
    c = compliant_cluster()
    mutation(c)
    violations = run(c)
    assert {v["policy"] for v in violations} == {policy}, violations
    assert any(fragment in v["message"] for v in violations), violations


# --- command readers (policies/shapes.py): shlex.split's words, read only as far as needed ------
@pytest.mark.parametrize(("command", "script_env", "any_env"), [
    ("sudo env A=1 B='x y' C= bash -s", {"A": "1", "B": "x y", "C": ""}, {"A": "1", "B": "x y", "C": ""}),
    ("sudo env bash -s", {}, {}),
    ("sudo env A=1 bash -s extra", None, {"A": "1"}),
    ("sudo env A=1 nice bash -s", None, {"A": "1"}),
    ("sudo env A=1 bash -s 'unbalanced", None, None),
    ("sudo env A='unbalanced bash -s", None, None),
    ("sudo env A=1 bash -c 'rm -f \"$1\"' seoul /etc/x", None, {"A": "1"}),
    ("sudo env A=1 bash -c 'a script whose quote never closes", None, {"A": "1"}),  # never read past -c
    ("sudo bash -s", None, None),
    ("env A=1 bash -s", None, None),
])
def test_command_env_readers(command: str, script_env: dict | None, any_env: dict | None) -> None:
    assert parse_script_env(command) == script_env
    assert command_env(command) == any_env


@pytest.mark.parametrize(("command", "put"), [
    ("sudo install -D -m 0644 -o root -g root /dev/stdin /etc/x.conf", FilePut("0644", "/etc/x.conf")),
    ("sudo install -D -m 0600 -o root -g root /dev/stdin '/etc/a b'", FilePut("0600", "/etc/a b")),
    ("sudo install -D -m 0644 -o root -g root /dev/stdin /etc/x.conf /etc/y", None),
    ("sudo install -D -m 0644 -o root -g root /dev/stdin /etc/x 'unbalanced", None),
    ("sudo install -D -m 0644 -o root -g root /dev/stdin relative", None),
    ("sudo install -D -m 0644 -o deploy -g root /dev/stdin /etc/x.conf", None),
])
def test_file_put_reader(command: str, put: FilePut | None) -> None:
    assert parse_file_put(command) == put


# A token counts only where a word starts: the patterns check that boundary in a lookbehind after
# their literal (policies/hosts.py), so a word character right before must still hide the match.
_JWT = "eyJhbGciOiJIUzI1.eyJzdWIiOiIxMjM0.c2lnbmF0dXJl"
_GITHUB = "ghp_" + "a1B2" * 9


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("AKIAIOSFODNN7EXAMPLE", "an AWS access key id"),
        ("export K=ASIAIOSFODNN7EXAMPLE", "an AWS access key id"),
        ("_AKIAIOSFODNN7EXAMPLE", None),
        ("\u00e9AKIAIOSFODNN7EXAMPLE", None),  # a non-ASCII letter is a word character too
        ("kubeadm join 10.0.1.10:6443 abcdef.0123456789abcdef", "a kubeadm bootstrap token"),
        ("xabcdef.0123456789abcdef", None),
        ("abcdef.0123456789abcdefx", None),
        (_GITHUB, "a GitHub token"),
        ("x" + _GITHUB, None),
        ("curl -H 'Authorization: Bearer xoxb-1234567890ab'", "a Slack token"),
        ("axoxb-1234567890ab", None),
        (_JWT, "a JSON web token"),
        ("a" + _JWT, None),
    ],
)
def test_secret_tokens_start_at_a_word_boundary(text: str, found: str | None) -> None:
    assert secret_findings(text) == ([found] if found else [])
