"""The failover times the rendered HAProxy and Keepalived files promise (pure functions).

Sources: HAProxy 2.x configuration manual (`inter`, `fall`, `rise`, `timeout check`,
`timeout connect`, `retries`, `option redispatch`); RFC 5798 section 6.1 (VRRPv3:
Skew_Time = ((256 - Priority) * Advertisement_Interval) / 256, Master_Down_Interval =
3 * Advertisement_Interval + Skew_Time), which Keepalived implements with `advert_int`
as the advertisement interval. All times are in seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def haproxy_time(text: str) -> float:
    """HAProxy time value ("3s", "500ms", "2m"; bare numbers are milliseconds) in seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(us|ms|s|m|h|d)?", text.strip())
    if not match:
        raise ValueError(f"not a HAProxy time: {text!r}")
    return float(match.group(1)) * (_UNITS[match.group(2)] if match.group(2) else 1e-3)


@dataclass(frozen=True)
class HaproxyTimers:
    """Health-check timers of one backend server line and the defaults around it."""

    inter: float
    fall: int
    rise: int
    timeout_check: float
    timeout_connect: float
    retries: int

    @property
    def check_connect_timeout(self) -> float:
        """A check's connect timeout: min(timeout connect, inter) once `timeout check` is set."""
        return min(self.timeout_connect, self.inter)

    @property
    def refused_detection_bound(self) -> float:
        """Latest time until a backend whose process died (connections refused at once) is
        marked DOWN: the next check within `inter`, then `fall` - 1 more, `inter` apart."""
        return self.fall * self.inter

    @property
    def silent_detection_bound(self) -> float:
        """Latest time until a backend whose host vanished (no answer at all) is marked DOWN:
        each of the `fall` checks waits its connect timeout, and the next starts `inter` later."""
        return self.fall * (self.inter + self.check_connect_timeout)

    @property
    def recovery_bound(self) -> float:
        """Latest time after a backend answers again until it is UP (`rise` passing checks)."""
        return self.rise * self.inter + self.timeout_check


def haproxy_timers(cfg: str, backend: str = "apiserver") -> HaproxyTimers:
    """Timers of the first `server` line in `backend` of a haproxy.cfg text.

    Server keywords default as HAProxy documents (inter 2s, fall 3, rise 2); `timeout check`
    defaults to `timeout connect` as HAProxy does when unset. Raises ValueError when the
    backend or a server line is missing.
    """
    section, defaults, server = None, {}, None
    for raw in cfg.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] in ("global", "defaults", "frontend", "backend", "listen"):
            section = (words[0], words[1] if len(words) > 1 else "")
            continue
        if section and section[0] in ("defaults", "backend") and words[0] in ("timeout", "retries"):
            key = f"timeout {words[1]}" if words[0] == "timeout" else "retries"
            if section[0] == "defaults" or section == ("backend", backend):
                defaults[key] = words[-1]
        if section == ("backend", backend) and words[0] == "server" and server is None:
            server = words
    if server is None:
        raise ValueError(f"no server line in backend {backend}")

    def option(name: str, default: str) -> str:
        return server[server.index(name) + 1] if name in server else default

    connect = haproxy_time(defaults.get("timeout connect", "5s"))
    return HaproxyTimers(
        inter=haproxy_time(option("inter", "2s")),
        fall=int(option("fall", "3")),
        rise=int(option("rise", "2")),
        timeout_check=haproxy_time(defaults["timeout check"]) if "timeout check" in defaults else connect,
        timeout_connect=connect,
        retries=int(defaults.get("retries", "3")),
    )


@dataclass(frozen=True)
class VrrpTimers:
    """VRRP timers of one keepalived `vrrp_instance` and its tracking script."""

    advert_int: float
    priority: int
    script_interval: float
    script_fall: int
    script_timeout: float

    @property
    def skew(self) -> float:
        """RFC 5798 Skew_Time for this router's priority."""
        return (256 - self.priority) * self.advert_int / 256

    @property
    def master_down_interval(self) -> float:
        """RFC 5798 Master_Down_Interval: how long this backup waits after the last advert
        before it takes over when the master vanishes without a word."""
        return 3 * self.advert_int + self.skew

    @property
    def script_detection_bound(self) -> float:
        """Latest time until the track script has failed `fall` times in a row."""
        return self.script_fall * self.script_interval + self.script_timeout


def _block(conf: str, header: str) -> str:
    """The text between `header {` and its matching `}`."""
    start = conf.index(header)
    depth, i = 0, conf.index("{", start)
    for j in range(i, len(conf)):
        depth += {"{": 1, "}": -1}.get(conf[j], 0)
        if depth == 0:
            return conf[i + 1 : j]
    raise ValueError(f"unbalanced block {header}")


def _value(block: str, key: str, default: str | None = None) -> str:
    match = re.search(rf"^\s*{key}\s+(\S+)", block, re.M)
    if match:
        return match.group(1)
    if default is None:
        raise ValueError(f"{key} missing")
    return default


def vrrp_timers(conf: str) -> VrrpTimers:
    """Timers of the first `vrrp_instance` and first `vrrp_script` of a keepalived.conf text.

    Defaults as Keepalived documents: advert_int 1, script interval 1, fall 1, timeout =
    interval. Raises ValueError when the instance is missing.
    """
    instance = _block(conf, "vrrp_instance")
    script = _block(conf, "vrrp_script") if "vrrp_script" in conf else ""
    interval = float(_value(script, "interval", "1"))
    return VrrpTimers(
        advert_int=float(_value(instance, "advert_int", "1")),
        priority=int(_value(instance, "priority", "100")),
        script_interval=interval,
        script_fall=int(_value(script, "fall", "1")),
        script_timeout=float(_value(script, "timeout", str(interval))),
    )
