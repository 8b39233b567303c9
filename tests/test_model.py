"""Every rule of the contract's 'invalid config' list, and the shape of its messages."""

import copy
import json
from collections.abc import Callable

import pytest

from model import ConfigError, load_config
from offline.stackfile import StackFile, stack_from_config
from tests.stacks import Config, key, stack_config


def load(config: Config):
    return load_config(stack_from_config("test", config).lookup)


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
                         "hosts: no host has the role control-plane"),
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


@pytest.mark.parametrize("case", INVALID, ids=list(INVALID))
def test_invalid_config_names_the_key_and_value(case):
    change, expected = INVALID[case]
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


def test_kubernetes_minor_derives_the_repository():
    assert load(stack_config("seoul-prod")).kubernetes.minor == "1.29"
