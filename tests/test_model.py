"""Every rule of the contract's 'invalid config' list, and the shape of its messages."""

import copy
import json
from collections.abc import Callable

import pytest

from model import ConfigError, load_config
from offline.stackfile import StackFile, stack_from_config
from tests.stacks import Config, key, stack_config


def load(config: Config):
    stack = stack_from_config("test", config)
    return load_config(stack.lookup, stack.config)


def changed(change: Callable[[Config], None], stack: str = "seoul-prod") -> Config:
    config = copy.deepcopy(stack_config(stack))
    change(config)
    return config


def hosts(c: Config) -> list[dict]:
    return c[key("hosts")]


def host(c: Config, name: str) -> dict:
    return next(h for h in hosts(c) if h["name"] == name)


def network(c: Config) -> dict:
    return c[key("network")]


def pools(c: Config) -> list[dict]:
    return c[key("ceph")]["pools"]


def backup(c: Config) -> dict:
    return c[key("backup")]


INVALID: dict[str, tuple[Callable[[Config], None], str]] = {
    "duplicate address": (lambda c: host(c, "cp-2").update(address=host(c, "cp-1")["address"]),
                          "hosts[0].address: 10.0.1.21 is used by 2 hosts"),
    "duplicate name": (lambda c: host(c, "cp-2").update(name="cp-1"), "hosts[1].name: cp-1 is used by 2 hosts"),
    "address outside node CIDR": (lambda c: hosts(c)[4].update(address="10.9.0.5"),
                                  "hosts[4].address: 10.9.0.5 is outside network.nodeCidr 10.0.0.0/16"),
    "overlapping pod and service CIDRs": (lambda c: network(c).update(serviceCidr="10.244.128.0/20"),
                                          "network.serviceCidr: 10.244.128.0/20 overlaps network.podCidr"),
    "pod CIDR overlaps node CIDR": (lambda c: network(c).update(podCidr="10.0.128.0/17"),
                                    "network.podCidr: 10.0.128.0/17 overlaps network.nodeCidr"),
    "API VIP equal to a host": (lambda c: network(c).update(apiVip="10.0.1.21"),
                                "network.apiVip: 10.0.1.21 is the address of host cp-1"),
    "two etcd members": (lambda c: hosts(c).remove(host(c, "etcd-3")), "hosts: 2 etcd members"),
    "four etcd members": (lambda c: host(c, "cp-1")["roles"].append("etcd"), "hosts: 4 etcd members"),
    "no control plane": (lambda c: [h["roles"].remove("control-plane") or h["roles"].append("worker")
                                    for h in hosts(c) if "control-plane" in h["roles"]],
                         "hosts: no live host has the role control-plane"),
    "unknown role": (lambda c: hosts(c)[6].update(roles=["database"]), "hosts[6].roles[0]: 'database'"),
    "malformed version": (lambda c: c[key("kubernetes")].update(version="1.29"), "kubernetes.version: '1.29'"),
    "minSize above size": (lambda c: pools(c)[0].update(minSize=4), "ceph.pools[0]: minSize 4 is above size 3"),
    "EC pool with k=0": (lambda c: pools(c)[1].update(k=0), "ceph.pools[1].k: 0"),
    "EC pool with m=0": (lambda c: pools(c)[1].update(m=0), "ceph.pools[1].m: 0"),
    "EC pool without k": (lambda c: pools(c)[1].pop("k"), "ceph.pools[1]: an erasure-coded pool needs k and m"),
    "storage host without disks": (lambda c: host(c, "osd-3").pop("disks"),
                                   "storage host osd-3 lists no OSD disks"),
    "disks on a host without storage": (lambda c: host(c, "worker-1").update(disks=["/dev/nvme0n1"]),
                                        "worker-1 lists disks but has no storage role"),
    "unknown environment": (lambda c: c.update({key("environment"): "production"}), "environment: 'production'"),
    "bad IP": (lambda c: hosts(c)[2].update(address="10.0.300.1"), "hosts[2].address: '10.0.300.1'"),
    "no hosts": (lambda c: c.update({key("hosts"): []}), "hosts: "),
    "a /33": (lambda c: network(c).update(nodeCidr="10.0.0.0/33"), "network.nodeCidr: '10.0.0.0/33'"),
    "host bits set in a CIDR": (lambda c: network(c).update(podCidr="10.244.0.1/16"), "network.podCidr"),
    "bad host name": (lambda c: hosts(c)[0].update(name="CP_1"), "hosts[0].name: 'CP_1'"),
    "missing required key": (lambda c: c.pop(key("etcd")), "etcd: required key is missing"),
    "unknown key (a typo)": (lambda c: network(c).update(apiVIP="10.0.1.10"), "network.apiVIP"),
    "port out of range": (lambda c: c[key("f5")].update(port=70000), "f5.port: 70000"),
    "host key not in known_hosts form": (lambda c: hosts(c)[0].update(hostKey="AAAAC3Nza"), "hosts[0].hostKey"),
    "init node that is no control plane": (lambda c: c[key("kubernetes")].update(initNode="worker-1"),
                                           "kubernetes.initNode: worker-1 is not a host with the role control-plane"),
    "CA member that is not an etcd host": (lambda c: c[key("etcd")].update(caMember="etcd-9"),
                                           "etcd.caMember: etcd-9 is not a host with the role etcd"),
    "BGP AS zero": (lambda c: network(c)["torPeers"][0].update(asNumber=0), "network.torPeers[0].asNumber: 0"),
}

# Issue 8, items 5-8: cross-key rules. Each numbered input first, then more of its kind.
INVALID_CROSS_KEY: dict[str, tuple[Callable[[Config], None], str]] = {
    # 5. every address usable and distinct, ranges disjoint
    "host at the node network's own address": (lambda c: hosts(c)[4].update(address="10.0.0.0"),
                                               "hosts[4].address: 10.0.0.0 is the network address of "
                                               "network.nodeCidr 10.0.0.0/16"),
    "ToR peer at a host's address": (lambda c: network(c)["torPeers"][1].update(address="10.0.1.21"),
                                     "network.torPeers[1].address: 10.0.1.21 is the address of host cp-1"),
    "F5 virtual address equal to the API VIP": (lambda c: c[key("f5")].update(virtualAddress="10.0.1.10"),
                                                "f5.virtualAddress: 10.0.1.10 is also network.apiVip"),
    "host at the broadcast address": (lambda c: hosts(c)[2].update(address="10.0.255.255"),
                                      "hosts[2].address: 10.0.255.255 is the broadcast address"),
    "API VIP at the network address": (lambda c: network(c).update(apiVip="10.0.0.0"),
                                       "network.apiVip: 10.0.0.0 is the network address"),
    "ToR peer on loopback": (lambda c: network(c)["torPeers"][0].update(address="127.0.0.1"),
                             "network.torPeers[0].address: 127.0.0.1 is not a unicast address"),
    "F5 management at a host's address": (lambda c: c[key("f5")]["management"].update(address="10.0.1.31"),
                                           "f5.management.address: 10.0.1.31 is the address of host etcd-1"),
    "F5 virtual address inside the LoadBalancer range": (
        lambda c: c[key("f5")].update(virtualAddress="10.10.0.7"),
        "f5.virtualAddress: 10.10.0.7 is inside network.loadBalancerCidr 10.10.0.0/24"),
    "NTP server given as a multicast address": (lambda c: network(c).update(ntpServers=["224.0.0.1"]),
                                                "network.ntpServers[0]: 224.0.0.1 is not a unicast address"),
    "NTP server at the API VIP": (lambda c: network(c).update(ntpServers=["10.0.1.10"]),
                                  "network.ntpServers[0]: 10.0.1.10 is network.apiVip, a virtual address"),
    "NTP server inside the service range": (lambda c: network(c).update(ntpServers=["10.96.0.10"]),
                                            "network.ntpServers[0]: 10.96.0.10 is inside network.serviceCidr"),
    "LoadBalancer range overlapping the node network": (
        lambda c: network(c).update(loadBalancerCidr="10.0.200.0/24"),
        "network.loadBalancerCidr: 10.0.200.0/24 overlaps network.nodeCidr"),
    # 6. unique entries in lists keyed by a name or address
    "two Ceph pools named rbd": (lambda c: pools(c)[2].update(name="rbd"),
                                 "ceph.pools[2].name: rbd is listed again (first at ceph.pools[0])"),
    "two ToR peers at one address": (lambda c: network(c)["torPeers"][1].update(address="10.0.1.1"),
                                     "network.torPeers[1].address: 10.0.1.1 is listed again"),
    "an NTP server listed twice": (lambda c: network(c).update(ntpServers=["ntp1.example", "NTP1.example"]),
                                   "network.ntpServers[1]: ntp1.example is listed again"),
    "a role listed twice": (lambda c: hosts(c)[0].update(roles=["control-plane", "control-plane"]),
                            "hosts[0].roles[1]: control-plane is listed again"),
    "true for a whole number": (lambda c: backup(c).update(cephFullEveryDays=True),
                                "backup.cephFullEveryDays: True: a number is required, not true or false"),
    "false for a number": (lambda c: network(c).update(uplinkGbps=False),
                           "network.uplinkGbps: False: a number is required, not true or false"),
    "a Ceph image backed up twice": (lambda c: backup(c).update(cephImages=["rbd/shop-media", "rbd/shop-media"]),
                                     "backup.cephImages[1]: rbd/shop-media is listed again "
                                     "(first at backup.cephImages[0])"),
    # 7. pools that cannot be placed (one replica or chunk per storage host)
    "replicated pool of size 7 on 6 storage hosts": (lambda c: pools(c)[0].update(size=7),
                                                     "ceph.pools[0].size: 7: pool rbd needs 7 storage hosts "
                                                     "(one per replica), there are 6 storage hosts"),
    "EC pool k=4 m=3 on 6 storage hosts": (lambda c: pools(c)[1].update(k=4, m=3),
                                           "ceph.pools[1]: k=4 m=3: pool logs-data needs 7 storage hosts"),
    "pools with 2 storage hosts left": (
        lambda c: c.update({key("hosts"): [h for h in hosts(c) if h["name"] not in ("osd-3", "osd-4", "osd-5",
                                                                                     "osd-6")]}),
        "ceph.pools[0].size: 3: pool rbd needs 3 storage hosts (one per replica), there are 2 storage hosts"),
    # Issue 11: the Ceph backup's images live in the stack's replicated rbd pools.
    "a Ceph image in a pool the stack lacks": (lambda c: backup(c).update(cephImages=["rbd/a", "media/shop"]),
                                               "backup.cephImages[1]: media/shop: pool media is not in ceph.pools"),
    "a Ceph image named by its erasure-coded pool": (
        lambda c: backup(c).update(cephImages=["logs-data/logs"]),
        "backup.cephImages[0]: logs-data/logs: pool logs-data is erasure-coded and holds no RBD image headers: "
        "name the image by its metadata pool (rbd/...)"),
    "a Ceph image in a CephFS pool": (lambda c: backup(c).update(cephImages=["cephfs-data/x"]),
                                      "backup.cephImages[0]: cephfs-data/x: pool cephfs-data is a cephfs pool"),
    # 8. a deploy that locks itself out or takes a port its own daemons need
    "root deploy with root login off": (lambda c: c[key("ssh")].update(user="root"),
                                        "ssh.user: root: hardening.permitRootLogin is false"),
    "root deploy with hardening left to its defaults": (
        lambda c: (c[key("ssh")].update(user="root"), c.pop(key("hardening"))),
        "ssh.user: root: hardening.permitRootLogin is false"),
    "SSH on the kube-apiserver port": (lambda c: c[key("ssh")].update(port=6443),
                                       "ssh.port: 6443 is taken by kube-apiserver on control-plane hosts"),
    "API VIP port on the kube-apiserver port": (lambda c: network(c).update(apiVipPort=6443),
                                                "network.apiVipPort: 6443 is taken by kube-apiserver"),
    "API VIP port equal to the SSH port": (lambda c: network(c).update(apiVipPort=22),
                                           "network.apiVipPort: 22 is ssh.port"),
}


@pytest.mark.parametrize("stack", ["seoul-prod", "seoul-stage"])
def test_shipped_stacks_are_valid(stack):
    cfg = load(stack_config(stack))
    assert len(cfg.with_role("etcd")) == 3
    assert cfg.aws_region == "ap-northeast-2"


def test_prod_mirrors_the_site():
    cfg = load(stack_config("seoul-prod"))
    ingress = sorted(str(h.address) for h in cfg.with_role("ingress"))
    assert ingress == ["10.0.1.11", "10.0.1.12", "10.0.1.13"]
    assert len(cfg.with_role("control-plane")) == 3
    assert len([h for h in cfg.with_role("worker") if not h.has("ingress")]) >= 3
    storage = cfg.with_role("storage")
    assert len(storage) == 6 and all(len(h.disks) == 8 for h in storage)
    assert (str(cfg.f5.virtual_address), cfg.f5.port) == ("203.0.113.1", 443)


@pytest.mark.parametrize("case", [*INVALID, *INVALID_CROSS_KEY], ids=[*INVALID, *INVALID_CROSS_KEY])
def test_invalid_config_names_the_key_and_value(case):
    change, expected = {**INVALID, **INVALID_CROSS_KEY}[case]
    with pytest.raises(ConfigError) as err:
        load(changed(change))
    assert any(expected in line for line in err.value.lines), err.value.lines


def test_every_problem_is_reported_at_once():
    def two_faults(c: Config) -> None:
        hosts(c)[4].update(address="10.9.0.5")
        network(c).update(apiVip="10.0.1.21")

    with pytest.raises(ConfigError) as err:
        load(changed(two_faults))
    assert len(err.value.lines) == 2


def test_private_key_never_in_an_error_message():
    config = changed(lambda c: None)
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    raw[key("ssh")] = json.dumps({"user": "Bad User", "privateKey": "-----BEGIN OPENSSH PRIVATE KEY----- xyz"})
    with pytest.raises(ConfigError) as err:
        load_config(StackFile("test", raw, []).lookup)
    assert "ssh.user" in str(err.value)
    assert "BEGIN" not in str(err.value)


def test_root_deploy_allowed_when_root_login_stays_on():
    def root_with_root_login(c: Config) -> None:
        c[key("ssh")].update(user="root")
        c[key("hardening")].update(permitRootLogin=True)

    assert load(changed(root_with_root_login)).ssh.user == "root"


def test_addresses_on_a_31_are_usable():
    # RFC 3021: a /31 has no network or broadcast address.
    def tiny(c: Config) -> None:
        network(c).update(nodeCidr="10.0.1.20/31", apiVip="10.0.1.21")
        c.update({key("hosts"): [h for h in hosts(c) if h["name"] == "cp-1"]})

    with pytest.raises(ConfigError) as err:
        load(changed(tiny))
    assert not any("network address" in line or "broadcast" in line for line in err.value.lines)


SECRET = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----\n"
NEEDLE = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU"

# Issue 8, item 1: secrets under keys the model does not know, or in values of the wrong shape.
SECRET_LEAKS: dict[str, Callable[[Config], None]] = {
    "ssh.privatekey (lower-case k)": lambda c: c[key("ssh")].update(privatekey=SECRET),
    "unknown top-level key": lambda c: c.update({key("deployKey"): SECRET}),
    "unknown key under f5.management": lambda c: c[key("f5")]["management"].update(passwd=NEEDLE),
    "the whole ssh block as a string": lambda c: c.update({key("ssh"): SECRET}),
    "a key pasted as the user": lambda c: c[key("ssh")].update(user=SECRET),
    "a token in an unknown host field": lambda c: hosts(c)[0].update(token=NEEDLE),
}


@pytest.mark.parametrize("case", SECRET_LEAKS, ids=list(SECRET_LEAKS))
def test_no_error_quotes_a_secret(case):
    with pytest.raises(ConfigError) as err:
        load(changed(SECRET_LEAKS[case]))
    assert NEEDLE not in str(err.value) and "BEGIN" not in str(err.value), err.value.lines


def test_unknown_keys_are_named_with_a_suggestion():
    with pytest.raises(ConfigError) as err:
        load(changed(SECRET_LEAKS["ssh.privatekey (lower-case k)"]))
    assert "ssh.privatekey: unknown key (value not shown); did you mean privateKey?" in err.value.lines


# Issue 8, item 4: keys of the project's namespace that the model does not know.
UNKNOWN_KEYS: dict[str, tuple[Callable[[Config], None], str]] = {
    "hardenning": (lambda c: c.update({key("hardenning"): {"permitRootLogin": True}}),
                   "seoul-cluster:hardenning: unknown key (value not shown); did you mean seoul-cluster:hardening?"),
    "a scalar key": (lambda c: c.update({key("enviroment"): "prod"}), "seoul-cluster:enviroment: unknown key"),
    "a misspelled namespace": (lambda c: c.update({"seoul-clustr:network": {}}),
                               "seoul-clustr:network: unknown namespace 'seoul-clustr'"),
}


@pytest.mark.parametrize("case", UNKNOWN_KEYS, ids=list(UNKNOWN_KEYS))
def test_unknown_keys_in_the_namespace_are_refused(case):
    change, expected = UNKNOWN_KEYS[case]
    with pytest.raises(ConfigError) as err:
        load(changed(change))
    assert any(expected in line for line in err.value.lines), err.value.lines


def test_other_namespaces_are_left_to_their_providers():
    cfg = load(changed(lambda c: c.update({"aws:profile": "seoul", "kubernetes:context": "x"})))
    assert cfg.environment == "prod"


def test_a_value_that_is_not_json_is_refused_not_raised():
    stack = stack_from_config("test", stack_config("seoul-prod"))
    config = {**stack.config, key("network"): "{not json"}
    with pytest.raises(ConfigError) as err:
        load_config(StackFile("test", config, []).lookup, config)
    assert any(line.startswith("network: not valid JSON") for line in err.value.lines), err.value.lines


def test_kubernetes_minor_derives_the_repository():
    assert load(stack_config("seoul-prod")).kubernetes.minor == "1.29"
