"""What the drill puts on its lab hosts before the steps: the offline plan's files, the
project's install and certificate scripts, and the stand-ins for what does not run here.

The rendered files come from `python -m offline.plan --stack <stack> --out <dir>`
(`<dir>/artifacts/hosts/<host>/<path>`), not from the render functions, so the drill tests
exactly what the plan would put on the hosts.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from drill.lab import Lab

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
STANDINS = Path(__file__).resolve().parent / "standins"
CONFIG_NS = "seoul-cluster:"
# CentOS Stream 9 packages these units; the drill writes equivalents (same ExecStart and
# ExecReload), except that Keepalived stays in the foreground and logs to its output so
# the drill keeps its log (the package runs it with -D as a forking daemon).
HAPROXY_UNIT = """[Unit]
Description=HAProxy Load Balancer (drill copy of the CentOS Stream 9 unit)
[Service]
EnvironmentFile=-/etc/sysconfig/haproxy
Environment="CONFIG=/etc/haproxy/haproxy.cfg" "PIDFILE=/run/haproxy.pid"
ExecStart=/usr/sbin/haproxy -Ws -f $CONFIG -p $PIDFILE $OPTIONS
ExecReload=/bin/kill -USR2 $MAINPID
Type=notify
"""
KEEPALIVED_UNIT = """[Unit]
Description=LVS and VRRP High Availability Monitor (drill copy, foreground)
[Service]
ExecStart=/usr/sbin/keepalived --dont-fork --log-console --log-detail -D
ExecReload=/bin/kill -HUP $MAINPID
"""


class DrillError(RuntimeError):
    """The drill cannot run (bad input, missing tool, plan failed); the message says why."""


@dataclass(frozen=True)
class Inventory:
    """The stack's hosts as the drill needs them: {name: (address, roles)} and the node prefix."""

    environment: str
    hosts: dict[str, tuple[str, tuple[str, ...]]]
    prefix_len: int

    def with_role(self, role: str) -> list[str]:
        return sorted(name for name, (_, roles) in self.hosts.items() if role in roles)

    def address(self, name: str) -> str:
        return self.hosts[name][0]


def read_inventory(stack_file: Path) -> Inventory:
    """Hosts, environment and node network of a `Pulumi.<stack>.yaml` (keys as the stack
    config contract names them). Raises DrillError naming the missing key."""
    try:
        config = yaml.safe_load(stack_file.read_text())["config"]
        hosts = {h["name"]: (h["address"], tuple(h["roles"])) for h in config[CONFIG_NS + "hosts"]}
        prefix = ipaddress.ip_network(config[CONFIG_NS + "network"]["nodeCidr"]).prefixlen
        environment = config[CONFIG_NS + "environment"]
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise DrillError(f"{stack_file}: cannot read the inventory ({exc})") from None
    return Inventory(environment, hosts, prefix)


def plan_artifacts(stack: str, out: Path) -> Path:
    """Run the offline plan for `stack` into `out`; returns `out/artifacts/hosts`."""
    proc = subprocess.run(
        [sys.executable, "-m", "offline.plan", "--stack", stack, "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    hosts = out / "artifacts" / "hosts"
    if proc.returncode != 0 or not hosts.is_dir():
        raise DrillError(f"offline plan for {stack} failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
    return hosts


def file_mode(path: str, content: bytes) -> int:
    """The mode the program installs a file with: scripts 0755, keys and env files 0600, else 0644
    (as the components' `install -m` calls do)."""
    if content.startswith(b"#!"):
        return 0o755
    if path.endswith((".key", ".env")):
        return 0o600
    return 0o644


def install_plan_files(lab: Lab, host: str, artifacts: Path) -> list[str]:
    """Copy every file the plan puts on `host`, byte for byte, to the same path on the lab host.
    Secrets the offline plan withholds (the etcd CA key copies) are skipped: the drill makes
    them with the project's own scripts. Returns the paths written."""
    written = []
    root = artifacts / host
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        content = file.read_bytes()
        if content.startswith(b"[secret]"):
            continue
        path = "/" + file.relative_to(root).as_posix()
        lab.write(host, path, content, file_mode(path, content))
        written.append(path)
    return written


def install_standins(lab: Lab, host: str) -> None:
    """The systemctl stand-in on every host (no systemd runs in the lab)."""
    lab.write(host, "/usr/sbin/systemctl", (STANDINS / "systemctl").read_bytes(), 0o755)


def script(lab: Lab, host: str, name: str, env: dict[str, str], timeout: float = 120) -> str:
    """Run the project's scripts/<name> on `host` with `env` as its parameters; stdout."""
    return lab.run(host, ["bash", "-s"], env=env, timeout=timeout, stdin=(SCRIPTS / name).read_text()).stdout


def env_file(text: str) -> dict[str, str]:
    """KEY=value lines of an EnvironmentFile as systemd reads them (no quotes used here)."""
    return dict(line.split("=", 1) for line in text.splitlines() if re.match(r"^[A-Za-z_]\w*=", line))


def unit_exec(unit_text: str) -> tuple[list[str], dict[str, str], list[str]]:
    """(ExecStart lines, Environment= assignments, EnvironmentFile= paths) of a unit's text."""
    execs, env, files = [], {}, []
    for line in unit_text.splitlines():
        key, _, value = line.partition("=")
        if key == "ExecStart":
            execs.append(value)
        elif key == "Environment":
            for word in value.split():
                name, _, val = word.strip('"').partition("=")
                env[name] = val
        elif key == "EnvironmentFile":
            files.append(value)
    return execs, env, files


def run_unit(lab: Lab, host: str, unit: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run a oneshot unit's ExecStart lines on `host` as systemd would: with the unit's
    Environment= and EnvironmentFile= values (read on the host) and no other environment."""
    text = lab.hosts[host].path(f"/etc/systemd/system/{unit}").read_text()
    execs, env, files = unit_exec(text)
    for name in files:
        optional = name.startswith("-")
        path = lab.hosts[host].path(name.lstrip("-"))
        if path.exists():
            env.update(env_file(path.read_text()))
        elif not optional:
            raise DrillError(f"{host}: {unit} needs {name}, which is not there")
    proc = None
    for line in execs:
        proc = lab.run(host, ["env", "-i", *(f"{k}={v}" for k, v in env.items()),
                              "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                              *line.split()], timeout=timeout, check=False)
        if proc.returncode != 0:
            break
    if proc is None:
        raise DrillError(f"{host}: {unit} has no ExecStart")
    return proc


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
