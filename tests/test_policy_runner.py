"""The runner: pack config handling, unknowns at preview, secrets in wire form, both hosting modes."""

from __future__ import annotations

import json
import pathlib
import re

import pytest

from offline.policy import (
    PolicyConfigError,
    analyze,
    is_preview_unknown,
    load_policy_pack_config,
    split_preview_unknowns,
)
from policies import backups, hosts, kubernetes, network, pack, residency, resilience
from tests.policy_fixtures import (
    PROD_CONFIG,
    PROJECT,
    REPO_ROOT,
    STACK,
    STAGE_CONFIG,
    UNKNOWN,
    Cluster,
    Secret,
    add_host_step,
    compliant_cluster,
    file_put,
    host_step,
    script_run,
)


def run(c: Cluster, config: pathlib.Path = PROD_CONFIG, **kwargs: object) -> list[dict[str, str]]:
    return analyze(c.registrations(), project=PROJECT, stack=STACK, config_file=config, **kwargs)


def write_config(tmp_path: pathlib.Path, data: object) -> pathlib.Path:
    path = tmp_path / "policy-config.json"
    path.write_text(json.dumps(data))
    return path


def broken_cluster() -> Cluster:
    c = compliant_cluster()
    host_step(c, "cp-1", "selinux").inputs["create"] = script_run(SELINUX_MODE="permissive")
    host_step(c, "cp-2", "sshd").inputs["stdin"] = "PasswordAuthentication yes\n"
    c.find("seoul-cluster-backups", "aws:s3/bucket:Bucket").protect = False
    return c


# --- basics -------------------------------------------------------------------------------------
def test_empty_stack_reports_nothing() -> None:
    assert analyze([], project=PROJECT, stack=STACK, config_file=PROD_CONFIG) == []


def test_stack_without_cluster_resources_reports_nothing() -> None:
    c = Cluster()
    c.add("pulumi:pulumi:Stack", "seoul-cluster-prod", {}, custom=False)
    c.add("random:index/randomPet:RandomPet", "pet", {"length": 2})
    assert run(c) == []


def test_results_are_sorted_and_repeatable() -> None:
    first = run(broken_cluster())
    assert first == run(broken_cluster())
    assert first == sorted(first, key=lambda v: (v["policy"], v["urn"], v["level"], v["message"]))
    assert all(set(v) == {"policy", "level", "urn", "message"} for v in first)


def test_subprocess_mode_matches_inprocess() -> None:
    c = broken_cluster()
    host_step(c, "cp-3", "firewalld").inputs["create"] = UNKNOWN
    inprocess = run(c)
    assert inprocess, "the broken cluster must produce violations"
    assert run(c, mode="subprocess") == inprocess


# --- pack config ----------------------------------------------------------------------------------
def test_stage_is_advisory_and_prod_is_mandatory() -> None:
    stage = run(broken_cluster(), STAGE_CONFIG)
    prod = run(broken_cluster(), PROD_CONFIG)
    assert {v["level"] for v in stage} == {"advisory"}
    assert {v["level"] for v in prod} == {"mandatory"}
    # protect on backup buckets is a prod-only requirement (pack config, not stack name)
    assert "backup-bucket-protected" in {v["policy"] for v in prod}
    assert "backup-bucket-protected" not in {v["policy"] for v in stage}
    assert {v["policy"] for v in stage} == {v["policy"] for v in prod} - {"backup-bucket-protected"}


def test_config_files_use_the_cli_format() -> None:
    for path, level, protect in ((STAGE_CONFIG, "advisory", False), (PROD_CONFIG, "mandatory", True)):
        data = json.loads(path.read_text())
        assert data["all"] == level
        assert data["backup-bucket-protected"] == {"requireProtect": protect}
        assert set(data) - {"all"} <= {p.name for p in pack.POLICIES}


def test_per_policy_levels_override_all(tmp_path: pathlib.Path) -> None:
    config = write_config(
        tmp_path,
        {
            "all": "mandatory",
            "hosts-selinux-enforcing": "disabled",
            "hosts-ssh-password-auth-off": {"enforcementLevel": "advisory"},
        },
    )
    levels = {v["policy"]: v["level"] for v in run(broken_cluster(), config)}
    assert "hosts-selinux-enforcing" not in levels
    assert levels["hosts-ssh-password-auth-off"] == "advisory"
    # without config the requireProtect default (false) applies
    assert "backup-bucket-protected" not in levels


def test_default_levels_without_all_are_advisory(tmp_path: pathlib.Path) -> None:
    config = write_config(tmp_path, {"backup-bucket-protected": {"requireProtect": True}})
    levels = {v["policy"]: v["level"] for v in run(broken_cluster(), config)}
    assert levels["backup-bucket-protected"] == "advisory"
    assert levels["hosts-selinux-enforcing"] == "advisory"


def test_empty_config_file_is_accepted(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text("  \n")
    assert load_policy_pack_config(path) == {}
    assert {v["level"] for v in run(broken_cluster(), path)} == {"advisory"}


@pytest.mark.parametrize(
    "data",
    [
        {"all": "fatal"},
        {"hosts-selinux-enforcing": {"enforcementLevel": 3}},
        {"hosts-selinux-enforcing": 1},
        {"backup-bucket-protected": {"requireProtect": "yes"}},
        {"k8s-no-privileged-containers": {"privilegedNamespaces": "kube-system"}},
    ],
)
def test_invalid_config_is_refused(tmp_path: pathlib.Path, data: object) -> None:
    with pytest.raises(PolicyConfigError):
        run(compliant_cluster(), write_config(tmp_path, data))


def test_policy_config_properties_reach_the_policy(tmp_path: pathlib.Path) -> None:
    c = compliant_cluster()
    dep = c.find("calico-node", "kubernetes:apps/v1:DaemonSet")
    assert dep.inputs["metadata"]["namespace"] == "calico-system"
    config = write_config(
        tmp_path, {"all": "mandatory", "k8s-no-privileged-containers": {"privilegedNamespaces": ["kube-system"]}}
    )
    assert [v["policy"] for v in run(c, config)] == ["k8s-no-privileged-containers"]
    assert run(c, PROD_CONFIG) == []


# --- unknown values at preview ----------------------------------------------------------------------
def test_unknown_command_line_is_reported_not_guessed() -> None:
    c = compliant_cluster()
    step = host_step(c, "cp-3", "firewalld")
    step.inputs["create"] = UNKNOWN
    violations = run(c)
    assert violations, "an unknown command line must be surfaced"
    assert all(is_preview_unknown(v) for v in violations)
    assert {v["level"] for v in violations} == {"advisory"}
    assert {(v["policy"], v["urn"]) for v in violations} == {
        # resource policies cannot read this command's create
        ("hosts-selinux-enforcing", c.urn(step)),
        ("hosts-no-secrets-in-commands", c.urn(step)),
        ("ceph-replicated-pool-size", c.urn(step)),
        # cp-3 has no other firewalld step, so the stack policy cannot tell its default zone
        ("hosts-firewalld-default-zone-drop", ""),
    }
    assert all("can't be known during preview" in v["message"] for v in violations)


def test_unknown_sshd_content_makes_the_host_check_unknown() -> None:
    c = compliant_cluster()
    host_step(c, "cp-1", "sshd").inputs["stdin"] = Secret(UNKNOWN)
    violations = run(c)
    assert {v["policy"] for v in violations} == {"hosts-ssh-password-auth-off", "hosts-ssh-root-login-off"}
    assert all(is_preview_unknown(v) and v["level"] == "advisory" for v in violations)


def test_known_violations_are_kept_next_to_unknowns() -> None:
    c = compliant_cluster()
    host_step(c, "cp-1", "sshd").inputs["stdin"] = UNKNOWN
    host_step(c, "cp-2", "sshd").inputs["stdin"] = "PasswordAuthentication yes\nPermitRootLogin no\n"
    violations = [v for v in run(c) if v["policy"] == "hosts-ssh-password-auth-off"]
    real, unknown = split_preview_unknowns(violations)
    assert [v["level"] for v in real] == ["mandatory"] and [v["level"] for v in unknown] == ["advisory"]
    assert [v["level"] for v in violations] == ["advisory", "mandatory"]
    assert violations[0]["urn"] == "" and is_preview_unknown(violations[0])
    assert violations[1]["urn"] == c.urn(c.find("cp-2", "seoul:hosts:Host"))


def test_unknown_etcd_config_and_bucket_policy() -> None:
    c = compliant_cluster()
    host_step(c, "etcd-2", "etcd-config").inputs["stdin"] = Secret(UNKNOWN)
    c.find("seoul-cluster-backups-policy", "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"] = UNKNOWN
    violations = run(c)
    assert {v["policy"] for v in violations} == {"etcd-odd-member-count", "backup-bucket-tls-only"}
    assert all(is_preview_unknown(v) for v in violations)


def test_unknown_link_values_use_dependencies_instead() -> None:
    # companions point at `bucket.id` (unknown at preview); the property dependency links them.
    c = compliant_cluster()
    versioning = c.find("seoul-cluster-backups-versioning", "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["bucket"] == UNKNOWN
    assert run(c) == []
    versioning.property_dependencies = {}
    violations = run(c)
    assert [(v["policy"], is_preview_unknown(v)) for v in violations] == [("backup-bucket-versioning", True)]


# --- secrets ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("prop", "text"),
    [
        ("create", Secret(script_run(JOIN_TOKEN="abcdef.0123456789abcdef"))),
        ("create", "echo '-----BEGIN RSA PRIVATE KEY-----' | sudo tee /root/.ssh/id_rsa"),
        ("update", "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE aws s3 ls"),
        ("delete", "mysql --password=hunter2hunter2 -e 'drop database app'"),
        ("create", script_run(DB_PASSWORD="correct horse battery staple")),
    ],
)
def test_secret_text_in_command_lines(prop: str, text: object) -> None:
    c = compliant_cluster()
    step = add_host_step(c, "cp-1", "leaky", script_run(STEP="leaky"), "true\n")
    step.inputs[prop] = text
    violations = run(c)
    assert [(v["policy"], v["urn"]) for v in violations] == [("hosts-no-secrets-in-commands", c.urn(step))]
    assert f"'{prop}'" in violations[0]["message"]


def test_private_key_of_the_connection_in_a_command() -> None:
    c = compliant_cluster()
    step = host_step(c, "cp-1", "selinux")
    key = step.inputs["connection"].value["privateKey"]
    step.inputs["delete"] = Secret(f"printf %s '{key.splitlines()[1]}' > /tmp/k")
    assert [v["policy"] for v in run(c)] == ["hosts-no-secrets-in-commands"]


# --- hosts edge cases -----------------------------------------------------------------------------
def test_host_without_sshd_hardening() -> None:
    c = compliant_cluster()
    c.remove(host_step(c, "storage-3", "sshd"))
    violations = run(c)
    assert {(v["policy"], v["urn"]) for v in violations} == {
        ("hosts-ssh-password-auth-off", c.urn(c.find("storage-3", "seoul:hosts:Host"))),
        ("hosts-ssh-root-login-off", c.urn(c.find("storage-3", "seoul:hosts:Host"))),
    }


def test_sshd_files_without_host_components_are_judged_alone() -> None:
    c = Cluster()
    ok = c.add(
        "command:remote:Command",
        "ok",
        {
            "create": file_put("/etc/ssh/sshd_config.d/50-hardening.conf"),
            "stdin": "PasswordAuthentication no\nPermitRootLogin no\n",
        },
    )
    bad = c.add(
        "command:remote:Command", "bad", {"create": file_put("/etc/ssh/sshd_config"), "stdin": "PermitRootLogin yes\n"}
    )
    violations = run(c)
    assert [(v["policy"], v["urn"]) for v in violations] == [("hosts-ssh-root-login-off", c.urn(bad))]
    assert c.urn(ok) not in {v["urn"] for v in violations}


def test_sshd_match_blocks_do_not_count() -> None:
    c = compliant_cluster()
    host_step(c, "cp-1", "sshd").inputs["stdin"] = (
        "Match User backup\n    PasswordAuthentication no\n    PermitRootLogin no\n"
    )
    assert {v["policy"] for v in run(c)} == {"hosts-ssh-password-auth-off", "hosts-ssh-root-login-off"}


def test_steps_are_matched_to_hosts_by_address_too() -> None:
    c = compliant_cluster()
    sshd = host_step(c, "cp-1", "sshd")
    sshd.parent = None
    assert run(c) == []
    sshd.inputs["connection"].value["host"] = "10.0.9.99"
    assert {v["policy"] for v in run(c)} == {"hosts-ssh-password-auth-off", "hosts-ssh-root-login-off"}


# --- residency edge cases ---------------------------------------------------------------------------
def test_aws_provider_without_region() -> None:
    c = compliant_cluster()
    del c.find("seoul", "pulumi:providers:aws").inputs["region"]
    violations = run(c)
    assert [(v["policy"], v["urn"]) for v in violations] == [
        ("residency-aws-region-seoul", c.urn(c.find("seoul", "pulumi:providers:aws")))
    ]


def test_default_provider_region_is_judged_on_its_resources() -> None:
    c = compliant_cluster()
    default = c.add("pulumi:providers:aws", "default_7_51_1", {"region": "us-west-2"})
    key = c.add("aws:kms/key:Key", "stray-key", {"enableKeyRotation": True}, provider=default)
    urns = {v["urn"] for v in run(c) if v["policy"] == "residency-aws-region-seoul"}
    assert urns == {c.urn(default), c.urn(key)}


def test_replication_to_a_bucket_in_another_region() -> None:
    c = compliant_cluster()
    tokyo = c.add("pulumi:providers:aws", "tokyo", {"region": "ap-northeast-1"})
    c.find("seoul-cluster-backups-replica", "aws:s3/bucket:Bucket").provider = tokyo
    violations = [v for v in run(c) if v["policy"] == "residency-s3-replication-korea"]
    assert len(violations) == 1
    assert "ap-northeast-1" in violations[0]["message"]


# --- pack structure -----------------------------------------------------------------------------------
def test_policy_metadata() -> None:
    modules = {"hosts": hosts, "residency": residency, "backup": backups, "resilience": resilience, "k8s": kubernetes,
               "fortigate": network}
    names = [p.name for p in pack.POLICIES]
    assert len(names) == len(set(names))
    assert names == [p.name for m in (hosts, residency, backups, resilience, kubernetes, network) for p in m.POLICIES]
    prefixes = set(modules) | {"etcd", "controlplane", "f5", "ceph"}
    for policy in pack.POLICIES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", policy.name), policy.name
        assert policy.name.split("-", 1)[0] in prefixes, policy.name
        assert policy.severity is not None, policy.name
        assert len(policy.description) > 40, policy.name


def test_pack_files() -> None:
    policy_yaml = (REPO_ROOT / "policies" / "PulumiPolicy.yaml").read_text()
    assert re.search(r"^version: (\S+)$", policy_yaml, re.MULTILINE).group(1) == pack.PACK_VERSION
    assert re.search(r"^\s+name: python$", policy_yaml, re.MULTILINE)
    requirements = (REPO_ROOT / "policies" / "requirements.txt").read_text().split()
    assert "pulumi-policy==1.21.0" in requirements and "pulumi==3.272.0" in requirements
    main = (REPO_ROOT / "policies" / "__main__.py").read_text()
    assert "PolicyPack(" in main and "from policies.pack import" in main


@pytest.mark.parametrize(
    "create",
    [
        script_run(DISCOVERY_TOKEN_CA_CERT_HASH="sha256:" + "ab" * 32, CONTROL_PLANE_ENDPOINT="10.0.1.10:8443"),
        script_run(TOKEN_TTL="2h", JOIN_TOKEN_FILE="/run/kubeadm/token"),
        file_put("/etc/kubernetes/pki/ca.key", "0600"),
        "sudo kubeadm token create --ttl 2h --print-join-command > /dev/null",
    ],
)
def test_command_lines_without_secrets_pass(create: str) -> None:
    c = compliant_cluster()
    add_host_step(c, "cp-1", "clean", create, Secret("secret material only on stdin\n"))
    assert run(c) == []


def test_each_resource_is_converted_once_per_call_not_once_per_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process host hands every policy of one Analyze/AnalyzeStack call the same view
    (offline/policy_host.py: marshalling_once), and restores pulumi_policy's names afterwards."""
    import pulumi_policy.policy as sdk

    c = broken_cluster()
    conversions: list[int] = []
    real = sdk.deserialize_properties

    def counting(props, *args, **kwargs):  # the servicer's conversion step, counted
        conversions.append(len(props))
        return real(props, *args, **kwargs)

    monkeypatch.setattr(sdk, "deserialize_properties", counting)
    found = run(c)
    memoized = len(conversions)
    assert found == run_without_memo(c)
    unmemoized = len(conversions) - memoized
    resources = len(c.registrations())
    providers = sum(r.provider != "" for r in c.registrations())
    # Analyze: each resource and its provider once; AnalyzeStack: each resource and provider reference once.
    assert memoized <= 2 * (resources + providers) < unmemoized, (memoized, unmemoized, resources)
    assert sdk.deserialize_properties is counting and sdk.unknown_checking_proxy.__module__ == "pulumi_policy.proxy"


def run_without_memo(c: Cluster) -> list[dict[str, str]]:
    from offline import policy_host

    saved = policy_host.marshalling_once
    policy_host.marshalling_once = lambda servicer: servicer
    try:
        return run(c)
    finally:
        policy_host.marshalling_once = saved
