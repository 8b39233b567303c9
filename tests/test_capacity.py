"""The capacity verdict (model/capacity.py) and Ceph's invalid-config checks (model/ceph.py)."""

import copy

import pytest

from model import ConfigError, capacity, load_config
from model.capacity import PoolKind, reheal_safe_tb, usable_tb
from offline.stackfile import stack_from_config
from policies.resilience import reheal_safe_tb as policy_reheal_safe_tb
from tests.stacks import key, stack_config

SEED = [8 * 7.68] * 6  # 6 storage hosts x 8 NVMe x 7.68 TB


def load(stack: str = "seoul-prod", change=None):
    config = copy.deepcopy(stack_config(stack))
    if change:
        change(config)
    return load_config(stack_from_config("t", config).lookup)


def replicated(size: int, min_size: int = 1) -> PoolKind:
    return PoolKind("replicated", size=size, min_size=min_size)


def erasure(k: int, m: int) -> PoolKind:
    return PoolKind("erasure", k=k, m=m)


def test_seed_figures():
    assert round(sum(SEED), 2) == 368.64
    assert round(reheal_safe_tb(SEED, replicated(2), 0.85), 2) == 130.56
    assert round(reheal_safe_tb(SEED, replicated(3), 0.85), 2) == 87.04
    assert round(reheal_safe_tb(SEED, erasure(3, 2), 0.85), 2) == 156.67
    assert reheal_safe_tb(SEED, erasure(4, 2), 0.85) == 0.0  # 6 chunks, 5 hosts left
    assert round(usable_tb(SEED, replicated(3), 0.85), 2) == 104.45


def test_prod_verdict():
    v = capacity.verdict(load())
    out = v.output()
    assert out["rawTb"] == 368.64 and out["rawAfterHostLossTb"] == 307.2
    assert out["pools"]["logs-data"]["rehealSafeTb"] == 156.67 and out["pools"]["rbd"]["rehealSafeTb"] == 87.04
    assert out["daysHeldAfterHostLoss"] == 15.7 and out["holdsRetention"] is True  # 156.67 TB / 10 TB a day >= 14
    assert all(p["survivesHostLoss"] for p in out["pools"].values())


def test_stage_verdict():
    out = capacity.verdict(load("seoul-stage")).output()
    assert out["rawTb"] == 76.8  # 5 hosts x 2 x 7.68
    assert out["pools"]["logs-data"]["rehealSafeTb"] == 26.11  # 4 hosts x 15.36 x 0.85 x 2/4
    assert out["pools"]["rbd"]["rehealSafeTb"] == 17.41
    assert out["holdsRetention"] is True


def test_a_pool_that_stops_io_or_cannot_reheal_does_not_survive():
    def pools(c):
        c[key("ceph")]["pools"][0].update(size=3, minSize=3)
        c[key("ceph")]["pools"][1].update(k=4, m=2)
    out = capacity.verdict(load(change=pools)).output()
    assert out["pools"]["rbd"]["survivesHostLoss"] is False  # I/O stops at 2 of 3 copies
    assert out["pools"]["logs-data"]["survivesHostLoss"] is False and out["pools"]["logs-data"]["rehealSafeTb"] == 0
    assert out["holdsRetention"] is False


def test_retention_longer_than_held():
    out = capacity.verdict(load(change=lambda c: c[key("workload")].update(retentionDays=30))).output()
    assert out["holdsRetention"] is False


def test_plan_lines_name_the_verdict():
    lines = "\n".join(capacity.verdict(load()).lines())
    assert "raw 368.64 TB" in lines and "156.67 TB" in lines and "holds workload.retentionDays 14" in lines


@pytest.mark.parametrize("kind", [replicated(2), replicated(3), erasure(3, 2), erasure(4, 2), erasure(2, 2)])
def test_policy_pack_judges_with_the_same_rule(kind):
    env = ({"POOL_TYPE": "replicated", "SIZE": str(kind.size)} if kind.type == "replicated"
           else {"POOL_TYPE": "erasure", "K": str(kind.k), "M": str(kind.m)})
    assert policy_reheal_safe_tb(SEED, 0.85, env) == pytest.approx(reheal_safe_tb(SEED, kind, 0.85))


def pool(i: int, **values):
    return lambda c: c[key("ceph")]["pools"][i].update(**values)


INVALID = {
    "EC k+m above the storage hosts": (pool(1, k=5, m=2),
                                       "ceph.pools[1]: k=5 m=2: pool logs-data needs 7 storage hosts"),
    "replicated size above the storage hosts": (pool(0, size=7),
                                                "ceph.pools[0].size: 7: pool rbd needs 7 storage hosts"),
    "k=1": (pool(1, k=1), "ceph.pools[1].k: 1"),
    "duplicate pool name": (pool(1, name="rbd"), "ceph.pools[1].name: rbd is listed again (first at ceph.pools[0])"),
    "bootstrap host that is no storage host": (lambda c: c[key("ceph")].update(bootstrapHost="cp-1"),
                                               "ceph.bootstrapHost: cp-1 is not a host with the role storage"),
    "RBD on EC without a replicated rbd pool": (pool(0, application="rgw"),
                                                "ceph.pools[1].metadataPool: RBD on erasure-coded logs-data needs"),
    "CephFS data pool erasure-coded": (pool(3, type="erasure", k=2, m=2),
                                       "ceph.filesystem.dataPool: cephfs-data must be replicated"),
    "ratios out of order": (lambda c: c[key("ceph")].update(nearfullRatio=0.95),
                            "ceph.backfillfullRatio: ratios must rise"),
    "unreviewed Ceph release": (lambda c: c[key("ceph")].update(version="18.2.9"),
                                "ceph.version: 18.2.9: no reviewed image"),
    "not Reef": (lambda c: c[key("ceph")].update(version="17.2.7"), "ceph.version: 17.2.7: the cluster runs Ceph 18"),
}


@pytest.mark.parametrize("case", INVALID, ids=list(INVALID))
def test_invalid_ceph_config(case):
    change, expected = INVALID[case]
    with pytest.raises(ConfigError) as err:
        load(change=change)
    assert any(expected in line for line in err.value.lines), err.value.lines
