"""End to end: a small program written with the real SDKs, recorded at the monitor, then analyzed.

The registrations come from the RegisterResource requests the Pulumi SDK sends (under mocks,
in preview), so this checks the rules against the SDKs' real wire shapes: camelCase inputs,
secret-wrapped connections, unknown ids/ARNs at preview and recorded property dependencies.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_command as command
import pulumi_f5bigip as f5
import pulumi_kubernetes as k8s
import pytest

from offline.engine import RecordingMonitor
from offline.policy import analyze, is_preview_unknown
from offline.registry import Registration
from tests.policy_fixtures import (
    HARDENED_SSHD,
    PROD_CONFIG,
    STAGE_CONFIG,
    etcd_config,
    file_put,
    haproxy_config,
    kubeadm_config,
    script_run,
)

PROJECT = "seoul-cluster"
STACK = "sdk"
# pulumi_aws warns about its own deprecated aliases on import.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class Host(pulumi.ComponentResource):
    def __init__(self, name: str, address: str, roles: list[str], *, firewall_zone: str = "drop") -> None:
        super().__init__("seoul:hosts:Host", name, {"address": address, "roles": roles, "cisLevel": 1})
        conn = command.remote.ConnectionArgs(
            host=address, user="deploy", private_key=pulumi.Output.secret("-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n")
        )
        self.connection = conn
        opts = pulumi.ResourceOptions(parent=self)
        command.remote.Command(
            f"{name}-sshd",
            connection=conn,
            create=file_put("/etc/ssh/sshd_config.d/50-hardening.conf", "0600"),
            stdin=HARDENED_SSHD,
            opts=opts,
        )
        command.remote.Command(
            f"{name}-selinux", connection=conn, create=script_run(SELINUX_MODE="enforcing"), stdin="true\n", opts=opts
        )
        command.remote.Command(
            f"{name}-firewalld",
            connection=conn,
            create=script_run(DEFAULT_ZONE=firewall_zone, TCP_PORTS="22 6443"),
            stdin="true\n",
            opts=opts,
        )
        command.remote.Command(
            f"{name}-k8s-packages",
            connection=conn,
            create=script_run(KUBERNETES_VERSION="1.29.6"),
            stdin="true\n",
            opts=opts,
        )
        self.register_outputs({"address": address, "roles": roles})

    def put(self, step: str, path: str, content: pulumi.Input[str]) -> command.remote.Command:
        return command.remote.Command(
            f"{self._name}-{step}",
            connection=self.connection,
            create=file_put(path, "0600"),
            stdin=content,
            opts=pulumi.ResourceOptions(parent=self),
        )


def program(storage_firewall_zone: str) -> None:
    cps = {"cp-1": "10.0.1.11", "cp-2": "10.0.1.12", "cp-3": "10.0.1.13"}
    etcd = {"etcd-1": "10.0.1.31", "etcd-2": "10.0.1.32", "etcd-3": "10.0.1.33"}
    for name, ip in cps.items():
        Host(name, ip, ["control-plane"]).put("haproxy", "/etc/haproxy/haproxy.cfg", haproxy_config(cps))
    for name, ip in etcd.items():
        Host(name, ip, ["etcd"]).put("etcd-config", "/etc/etcd/etcd.conf.yml", etcd_config(name, ip, etcd))
    Host("storage-1", "10.0.1.41", ["storage"], firewall_zone=storage_firewall_zone).put(
        "kubeadm-config", "/etc/kubernetes/kubeadm-config.yaml", pulumi.Output.secret(kubeadm_config())
    )

    provider = aws.Provider("seoul", region="ap-northeast-2")
    key = aws.kms.Key("backup-key", enable_key_rotation=True, opts=pulumi.ResourceOptions(provider=provider))
    bucket = aws.s3.Bucket(
        "backups",
        bucket="seoul-cluster-backups",
        object_lock_enabled=True,
        tags={"backup": "true"},
        opts=pulumi.ResourceOptions(provider=provider, protect=True),
    )
    child = pulumi.ResourceOptions(provider=provider)
    aws.s3.BucketVersioning("backups", bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=child)
    aws.s3.BucketServerSideEncryptionConfiguration(
        "backups",
        bucket=bucket.id,
        rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": key.arn}}],
        opts=child,
    )
    aws.s3.BucketPublicAccessBlock(
        "backups",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    aws.s3.BucketObjectLockConfiguration(
        "backups",
        bucket=bucket.id,
        rule={"default_retention": {"mode": "COMPLIANCE", "days": 30}},
        opts=child,
    )
    aws.s3.BucketPolicy(
        "backups",
        bucket=bucket.id,
        policy=pulumi.Output.json_dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            }
        ),
        opts=child,
    )

    pool = f5.ltm.Pool("k8s-ingress", name="/Common/k8s-ingress", monitors=["/Common/https_443"])
    for i, node in enumerate(["/Common/10.0.1.51:443", "/Common/10.0.1.52:443"], start=1):
        f5.ltm.PoolAttachment(f"k8s-ingress-{i}", pool=pool.name, node=node)
    f5.ltm.ProfileClientSsl(
        "k8s-clientssl",
        name="/Common/k8s-clientssl",
        tm_options=["dont-insert-empty-fragments", "no-sslv3", "no-tlsv1", "no-tlsv1.1"],
    )

    labels = {"app": "shop-api"}
    deployment = k8s.apps.v1.Deployment(
        "shop-api",
        metadata={"namespace": "apps"},
        spec={
            "selector": {"match_labels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "registry.local/shop-api:1.4.2",
                            "resources": {
                                "requests": {"cpu": "250m", "memory": "256Mi"},
                                "limits": {"cpu": "1", "memory": "512Mi"},
                            },
                        }
                    ]
                },
            },
        },
    )
    k8s.autoscaling.v2.HorizontalPodAutoscaler(
        "shop-api",
        metadata={"namespace": "apps"},
        spec={
            "scale_target_ref": {"api_version": "apps/v1", "kind": "Deployment", "name": deployment.metadata.name},
            "min_replicas": 3,
            "max_replicas": 10,
        },
    )
    k8s.policy.v1.PodDisruptionBudget(
        "shop-api", metadata={"namespace": "apps"}, spec={"min_available": 2, "selector": {"match_labels": labels}}
    )


def record(storage_firewall_zone: str = "drop") -> list[Registration]:
    monitor = RecordingMonitor()
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=STACK, preview=True, monitor=monitor)

    @pulumi.runtime.test
    def run_program() -> None:
        program(storage_firewall_zone)

    run_program()
    return monitor.registrations


@pytest.fixture(scope="module")
def policy_sdk_registrations() -> list[Registration]:
    return record()


def test_sdk_program_shapes(policy_sdk_registrations: list[Registration]) -> None:
    by_name = {(r.type, r.name): r for r in policy_sdk_registrations}
    versioning = by_name[("aws:s3/bucketVersioning:BucketVersioning", "backups")]
    assert versioning.inputs["bucket"] == pulumi.runtime.rpc.UNKNOWN
    assert any(u.endswith("::backups") for u in versioning.property_dependencies["bucket"])
    sshd = by_name[("command:remote:Command", "cp-1-sshd")]
    assert sshd.parent.endswith("seoul:hosts:Host::cp-1")
    assert "4dabf18193072939515e22adb298388d" in sshd.inputs["connection"]


def test_sdk_program_passes_except_preview_unknowns(policy_sdk_registrations: list[Registration]) -> None:
    violations = analyze(policy_sdk_registrations, project=PROJECT, stack=STACK, config_file=PROD_CONFIG)
    # The bucket policy embeds bucket.arn, unknown before the first deployment: reported, not guessed.
    assert [(v["policy"], v["level"]) for v in violations] == [("backup-bucket-tls-only", "advisory")]
    assert is_preview_unknown(violations[0])


def test_sdk_program_violation() -> None:
    violations = analyze(record("public"), project=PROJECT, stack=STACK, config_file=STAGE_CONFIG)
    fired = [(v["policy"], v["level"], v["urn"].rsplit("::", 1)[-1]) for v in violations if not is_preview_unknown(v)]
    assert fired == [("hosts-firewalld-default-zone-drop", "advisory", "storage-1-firewalld")]
