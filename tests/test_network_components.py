"""The network and edge components under the engine-less monitor: F5, FortiGate, scale-out, removal order."""

import copy
from dataclasses import replace

import pytest

from offline.policy import analyze
from offline.wire import SECRET, plain
from tests.planning import registrations
from tests.policy_fixtures import to_struct
from tests.provider_schemas import not_in_sdk
from tests.stacks import altered_stack, key, stack_config
from tests.test_hosts import env_of
from tests.tools import REPO

INGRESS_HOSTS = ["ingress-1", "ingress-2", "ingress-3"]


@pytest.fixture(scope="module")
def prod():
    return registrations(REPO / "Pulumi.seoul-prod.yaml")


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    def add_ingress(config):
        config[key("hosts")].append({"name": "ingress-4", "address": "10.0.1.14", "roles": ["worker", "ingress"]})

    # Same stack name, so URNs compare one to one.
    return registrations(altered_stack(tmp_path_factory.mktemp("grown"), "seoul-prod", add_ingress, "seoul-prod"))


def by_type(regs, prefix):
    return {r.name: r for r in regs if r.type.startswith(prefix)}


def test_one_pool_member_per_ingress_host_after_its_node_and_ingress_nginx(prod):
    members = {r.name: r for r in prod if r.type == "f5bigip:ltm/poolAttachment:PoolAttachment"}
    assert sorted(members) == [f"app-servers-{h}" for h in INGRESS_HOSTS]
    urns = {r.name: r.urn for r in prod}
    release = next(r.urn for r in prod if r.type == "kubernetes:helm.sh/v3:Release" and r.name == "ingress-nginx")
    for host in INGRESS_HOSTS:
        member = members[f"app-servers-{host}"]
        # Removal order: Pulumi deletes a resource before what it depends on, so the member
        # goes before `<host>-node`, whose delete drains the node.
        assert urns[f"{host}-node"] in member.dependencies
        assert release in member.dependencies
        assert plain(member.inputs)["priorityGroup"] == 10


def test_pool_ramps_new_members_slowly_and_keeps_a_minimum_active(prod):
    pool = plain(next(r for r in prod if r.type == "f5bigip:ltm/pool:Pool").inputs)
    assert pool["slowRampTime"] == 60
    assert pool["minimumActiveMembers"] == 2
    assert pool["loadBalancingMode"] == "least-connections-member"


def test_client_ssl_allows_tls_12_and_13_only(prod):
    profile = plain(next(r for r in prod if r.type == "f5bigip:ltm/profileClientSsl:ProfileClientSsl").inputs)
    assert {"no-sslv3", "no-tlsv1", "no-tlsv1.1"} <= set(profile["tmOptions"])
    assert "no-tlsv1.2" not in profile["tmOptions"] and "no-tlsv1.3" not in profile["tmOptions"]
    assert profile["cipherGroup"] == "/Common/f5-secure" and profile["ciphers"] == "none"


def test_fortigate_provider_token_is_secret_and_certificate_checked(prod):
    provider = next(r for r in prod if r.type == "pulumi:providers:fortios")
    inputs = plain(provider.inputs)
    assert inputs["token"] == SECRET and inputs["insecure"] == "false"
    assert inputs["hostname"] == "10.0.0.6"
    assert all(r.provider.startswith(provider.urn) for r in prod if r.type.startswith("fortios:"))


def test_fortigate_policies_internet_only_to_the_f5_vip_bastion_only_to_ssh_and_api(prod):
    services = {r.name: plain(r.inputs) for r in prod if r.type == "fortios:firewall/service/custom:Custom"}
    policies = {r.name: plain(r.inputs) for r in prod if r.type == "fortios:firewall/policy:Policy"}
    addresses = {r.name: plain(r.inputs).get("subnet") for r in prod if r.type == "fortios:firewall/address:Address"}
    assert addresses["seoul-f5-vip"] == "203.0.113.1 255.255.255.255"
    assert addresses["seoul-bastion"] == "10.250.0.0 255.255.255.0"
    ordered = sorted(policies.values(), key=lambda p: p["policyid"])
    assert [p["name"] for p in ordered] == ["internet-to-f5-https", "bastion-ssh-to-nodes", "bastion-to-k8s-api",
                                            "nodes-to-backup-vault", "nodes-to-internet", "deny-everything-else"]
    assert all(p["logtraffic"] == "all" for p in ordered)
    internet = ordered[0]
    assert internet["srcintfs"] == [{"name": "wan1"}] and internet["dstaddrs"] == [{"name": "seoul-f5-vip"}]
    assert internet["services"] == [{"name": "seoul-https"}, {"name": "seoul-http"}]
    assert (services["seoul-https"]["tcpPortrange"], services["seoul-http"]["tcpPortrange"]) == ("443", "80")
    for rule in ordered[1:3]:
        assert rule["srcaddrs"] == [{"name": "seoul-bastion"}] and rule["action"] == "accept"
    assert all(p["nat"] == "disable" for p in ordered if not p["name"].startswith("nodes-to-"))
    # The cluster's own traffic out (images, packages, SNS, NTP, the smarthost), NATed; the
    # vault's shaped policy comes first, so uploads there never bypass the shaper.
    vault, egress = ordered[3], ordered[4]
    assert vault["dstaddrs"] == [{"name": "seoul-backup-vault"}] and vault["trafficShaper"]
    assert "trafficShaper" not in egress
    assert (egress["srcintfs"], egress["dstintfs"]) == ([{"name": "port3"}], [{"name": "wan1"}])
    assert egress["srcaddrs"] == [{"name": "seoul-node-network"}] and egress["nat"] == "enable"
    smtp_port = stack_config("seoul-prod")[key("observability")]["email"]["smarthost"].rsplit(":", 1)[1]
    assert services["seoul-egress"]["tcpPortrange"] == f"443 {smtp_port}"
    assert services["seoul-egress"]["udpPortrange"] == "123"
    assert ordered[-1]["action"] == "deny" and ordered[-1]["services"] == [{"name": "ALL"}]


def test_policies_are_moved_into_policyid_order_on_the_fortigate(prod):
    # FortiOS appends a new policy at the end: each rule is moved before its successor,
    # the last pair first, after every policy exists.
    from itertools import pairwise

    from pulumiverse_fortios.firewall import PolicyMoveArgs

    policies = sorted(plain(r.inputs)["policyid"] for r in prod if r.type == "fortios:firewall/policy:Policy")
    moves = [r for r in prod if r.type == "fortios:firewall/policyMove:PolicyMove"]
    pairs = [(plain(m.inputs)["policyidSrc"], plain(m.inputs)["policyidDst"]) for m in moves]
    assert pairs == list(reversed(list(pairwise(policies))))
    assert all(plain(m.inputs)["move"] == "before" for m in moves)
    policy_urns = {r.urn for r in prod if r.type == "fortios:firewall/policy:Policy"}
    assert policy_urns & set(moves[0].dependencies)  # after the last policy ...
    assert all(later.dependencies == [earlier.urn] for earlier, later in pairwise(moves))  # ... one by one
    # The trimmed fortios schema in ../shared lacks this type: its inputs are the pinned SDK's.
    assert not_in_sdk(PolicyMoveArgs, plain(moves[0].inputs)) == set()
    assert not_in_sdk(PolicyMoveArgs, {"policyidSource": 1}) == {"policyidSource"}  # the check can fail


def test_one_more_ingress_host_adds_one_pool_member_and_changes_nothing_else(prod, grown):
    before = {r.urn: plain(r.inputs) for r in prod}
    after = {r.urn: plain(r.inputs) for r in grown}
    added = {urn.rsplit("::", 1)[1] for urn in set(after) - set(before)}
    assert set(before) <= set(after)
    f5_added = {n for n in added if n.startswith("app-servers-")}
    assert f5_added == {"app-servers-ingress-4"}
    assert all(n == "app-servers-ingress-4" or n.startswith("ingress-4") for n in added), added
    changed = {urn.rsplit("::", 1)[1]: (before[urn], after[urn]) for urn in before if before[urn] != after[urn]}
    # ingress-nginx runs one controller per ingress host: its count and PDB follow.
    assert set(changed) == {"ingress-nginx"}
    old, new = (v["values"]["controller"] for v in changed["ingress-nginx"])
    assert (old["replicaCount"], new["replicaCount"]) == (3, 4)
    assert {k for k in new if new[k] != old.get(k)} == {"replicaCount", "minAvailable"}
    for name, reg in by_type(grown, "f5bigip:").items():
        if name != "app-servers-ingress-4":
            assert plain(reg.inputs) == before[reg.urn]
    for reg in grown:
        if reg.type.startswith("fortios:"):
            assert plain(reg.inputs) == before[reg.urn]


# --- the FortiGate policies of the pack ---------------------------------------------------------
def fortigate_violations(regs) -> list[tuple[str, str]]:
    subset = [r for r in regs if r.type.startswith(("fortios:", "pulumi:providers:fortios"))]
    found = analyze(subset, project="seoul-cluster", stack="seoul-prod",
                    config_file=REPO / "policies/config/prod.json")
    return sorted((v["policy"], v["urn"].rsplit("::", 1)[1]) for v in found if v["policy"].startswith("fortigate-"))


def mutated(regs, name, change):
    out = []
    for reg in regs:
        if reg.name == name and reg.type == "fortios:firewall/policy:Policy":
            inputs = copy.deepcopy(plain(reg.inputs))
            change(inputs)
            reg = replace(reg, inputs=to_struct(inputs))
        out.append(reg)
    return out


def test_the_shipped_rule_base_passes_the_fortigate_policies(prod):
    assert fortigate_violations(prod) == []


@pytest.mark.parametrize(
    ("rule", "change", "policies"),
    [
        # An accept-all from any address also lets SSH in from the internet.
        ("deny-everything-else", lambda p: p.update(action="accept"),
         {"fortigate-no-any-to-any-accept", "fortigate-no-internet-ssh"}),
        ("bastion-to-k8s-api", lambda p: p.update(logtraffic="disable"), {"fortigate-policy-logging"}),
        ("deny-everything-else", lambda p: p.pop("logtraffic"), {"fortigate-policy-logging"}),
        ("bastion-ssh-to-nodes", lambda p: p.update(srcaddrs=[{"name": "all"}]), {"fortigate-no-internet-ssh"}),
        ("bastion-ssh-to-nodes", lambda p: p.update(srcintfs=[{"name": "wan1"}]), {"fortigate-no-internet-ssh"}),
        ("internet-to-f5-https", lambda p: p.update(services=[{"name": "SSH"}]), {"fortigate-no-internet-ssh"}),
    ],
)
def test_each_fortigate_policy_notices_its_mistake(prod, rule, change, policies):
    found = fortigate_violations(mutated(prod, rule, change))
    assert found == sorted((policy, rule) for policy in policies)


def firewall_env(regs, host: str) -> dict[str, str]:
    return env_of(plain(next(r for r in regs if r.name == f"{host}-firewalld").inputs)["create"])


@pytest.mark.parametrize("host", ["cp-1", "ingress-1", "worker-1"])
def test_kubernetes_nodes_open_bgp_typha_and_vxlan(prod, host):
    env = firewall_env(prod, host)
    assert {"179", "5473"} <= set(env["TCP_PORTS"].split())
    assert env["UDP_PORTS"] == "4789"


def test_storage_and_etcd_hosts_open_nothing_for_calico(prod):
    for host in ("osd-1", "etcd-1"):
        env = firewall_env(prod, host)
        assert not {"179", "5473"} & set(env["TCP_PORTS"].split()) and env["UDP_PORTS"] == ""


def test_ingress_hosts_open_http_https_and_the_webhook(prod):
    assert {"80", "443", "8444"} <= set(firewall_env(prod, "ingress-1")["TCP_PORTS"].split())
    assert "8444" not in firewall_env(prod, "worker-1")["TCP_PORTS"].split()
