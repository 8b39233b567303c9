"""The capacity verdict: what the Ceph cluster holds, and what it still holds after losing a host.

Units: TB = 10^12 bytes, as disks are sold (the seed's NVMe are 7.68 TB). Figures:

- raw: every OSD disk of every storage host;
- usable (per pool kind): raw x nearfull ratio / overhead, where overhead is `size` for a
  replicated pool and (k+m)/k for an erasure-coded one (docs.ceph.com/en/reef/rados/operations/
  erasure-code: "the raw storage required is (k+m)/k times the data");
- re-heal-safe: after losing the largest storage host, the data must fit on the remaining
  hosts under the nearfull ratio, with every copy or chunk on its own host (failure domain
  host). A pool whose size (or k+m) exceeds the remaining host count cannot re-heal: 0.
- survives a host loss: it keeps serving I/O (replicated: size-1 >= minSize; erasure: m >= 2,
  as Ceph's EC min_size is k+1) and re-heals on the remaining hosts.
- days held: re-heal-safe capacity of a workload pool (`ceph.pools[].workload`) over
  `workload.dailyIngestTb`, judged per workload pool as if it alone took the whole ingest
  (the config does not split the ingest), against `workload.retentionDays`.

Seed (6 hosts x 8 x 7.68 TB, nearfull 0.85): raw 368.64 TB; re-heal-safe 130.56 TB at size 2,
87.04 TB at size 3, 156.67 TB for EC 3+2; EC 4+2 cannot re-heal on 6 hosts.
"""

from dataclasses import dataclass
from typing import Any

from model.schema import CephPool, StackConfig


@dataclass(frozen=True)
class PoolKind:
    """Replicated (`size`, `min_size`) or erasure-coded (`k`, `m`)."""

    type: str
    size: int = 0
    min_size: int = 0
    k: int = 0
    m: int = 0

    @classmethod
    def of(cls, pool: CephPool) -> "PoolKind":
        if pool.type == "replicated":
            return cls("replicated", size=pool.size or 0, min_size=pool.min_size or 0)
        return cls("erasure", k=pool.k or 0, m=pool.m or 0)

    @property
    def label(self) -> str:
        return f"replicated x{self.size}" if self.type == "replicated" else f"erasure {self.k}+{self.m}"

    @property
    def overhead(self) -> float:
        """Raw bytes stored per byte of data."""
        return float(self.size) if self.type == "replicated" else (self.k + self.m) / self.k

    @property
    def hosts_needed(self) -> int:
        """Distinct hosts one object's copies or chunks need (failure domain host)."""
        return self.size if self.type == "replicated" else self.k + self.m

    @property
    def serves_io_after_host_loss(self) -> bool:
        """I/O continues with one copy or chunk gone (EC min_size is k+1)."""
        return self.size - 1 >= self.min_size if self.type == "replicated" else self.m >= 2


def usable_tb(host_raw_tb: list[float], kind: PoolKind, nearfull: float) -> float:
    """Data (TB) the pool kind holds on all hosts before the nearfull warning."""
    if kind.hosts_needed > len(host_raw_tb):
        return 0.0
    return sum(host_raw_tb) * nearfull / kind.overhead


def reheal_safe_tb(host_raw_tb: list[float], kind: PoolKind, nearfull: float) -> float:
    """Data (TB) that still re-heals after losing the largest host; 0 when the rest cannot place it."""
    if not host_raw_tb or kind.hosts_needed > len(host_raw_tb) - 1:
        return 0.0
    return (sum(host_raw_tb) - max(host_raw_tb)) * nearfull / kind.overhead


@dataclass(frozen=True)
class PoolVerdict:
    name: str
    kind: PoolKind
    usable_tb: float
    reheal_safe_tb: float
    survives_host_loss: bool
    workload: bool
    days_held: float | None  # workload pools only

    @property
    def can_reheal(self) -> bool:
        return self.reheal_safe_tb > 0


@dataclass(frozen=True)
class CapacityVerdict:
    """The verdict for one stack: per-host raw TB, per-pool figures, the workload's retention."""

    host_raw_tb: dict[str, float]
    nearfull_ratio: float
    pools: tuple[PoolVerdict, ...]
    daily_ingest_tb: float
    retention_days: int

    @property
    def raw_tb(self) -> float:
        return sum(self.host_raw_tb.values())

    @property
    def raw_after_host_loss_tb(self) -> float:
        return self.raw_tb - max(self.host_raw_tb.values(), default=0.0)

    @property
    def days_held(self) -> float | None:
        """The fewest days any workload pool holds after a host loss; None without workload pools."""
        days = [p.days_held for p in self.pools if p.days_held is not None]
        return min(days) if days else None

    @property
    def holds_retention(self) -> bool | None:
        days = self.days_held
        return None if days is None else days >= self.retention_days

    def output(self) -> dict[str, Any]:
        """The stack output `cephCapacity` (TB rounded to 0.01, days to 0.1)."""
        return {
            "rawTb": round(self.raw_tb, 2),
            "rawAfterHostLossTb": round(self.raw_after_host_loss_tb, 2),
            "nearfullRatio": self.nearfull_ratio,
            "dailyIngestTb": self.daily_ingest_tb,
            "retentionDays": self.retention_days,
            "daysHeldAfterHostLoss": None if self.days_held is None else round(self.days_held, 1),
            "holdsRetention": self.holds_retention,
            "pools": {
                p.name: {
                    "kind": p.kind.label,
                    "usableTb": round(p.usable_tb, 2),
                    "rehealSafeTb": round(p.reheal_safe_tb, 2),
                    "survivesHostLoss": p.survives_host_loss,
                    "workload": p.workload,
                    **({"daysHeld": round(p.days_held, 1)} if p.days_held is not None else {}),
                }
                for p in self.pools
            },
        }

    def lines(self) -> list[str]:
        """The verdict as the plan prints it."""
        hosts = len(self.host_raw_tb)
        out = [f"Ceph capacity: raw {self.raw_tb:.2f} TB on {hosts} storage hosts; "
               f"{self.raw_after_host_loss_tb:.2f} TB after losing one, filled to nearfull {self.nearfull_ratio}"]
        for p in self.pools:
            loss = "survives a host loss" if p.survives_host_loss else (
                "CANNOT re-heal after a host loss" if not p.can_reheal else "stops I/O after a host loss")
            line = (f"  {p.name:<18} {p.kind.label:<14} usable {p.usable_tb:8.2f} TB  "
                    f"re-heal-safe {p.reheal_safe_tb:8.2f} TB  {loss}")
            if p.days_held is not None:
                line += f"; holds {p.days_held:.1f} days of {self.daily_ingest_tb:g} TB/day"
            out.append(line)
        if self.days_held is None:
            out.append("  no pool is marked workload: retention not judged")
        else:
            verdict = "holds" if self.holds_retention else "DOES NOT hold"
            out.append(f"  after losing a host the workload pools hold {self.days_held:.1f} days: "
                       f"{verdict} workload.retentionDays {self.retention_days}")
        return out


def host_raw_tb(cfg: StackConfig) -> dict[str, float]:
    """Raw TB per storage host: its disks x `ceph.diskSizeTb`."""
    return {h.name: len(h.disks) * cfg.ceph.disk_size_tb for h in cfg.storage_hosts}


def verdict(cfg: StackConfig) -> CapacityVerdict:
    """The capacity verdict for a validated config."""
    raw = list(host_raw_tb(cfg).values())
    nearfull = cfg.ceph.nearfull_ratio
    ingest = cfg.workload.daily_ingest_tb
    pools = []
    for pool in cfg.ceph.pools:
        kind = PoolKind.of(pool)
        safe = reheal_safe_tb(raw, kind, nearfull)
        pools.append(PoolVerdict(
            name=pool.name,
            kind=kind,
            usable_tb=usable_tb(raw, kind, nearfull),
            reheal_safe_tb=safe,
            survives_host_loss=safe > 0 and kind.serves_io_after_host_loss,
            workload=pool.workload,
            days_held=safe / ingest if pool.workload else None,
        ))
    return CapacityVerdict(host_raw_tb(cfg), nearfull, tuple(pools), ingest, cfg.workload.retention_days)
