"""A lab of network namespaces that stand in for the stack's hosts.

One network namespace per host, each holding the host's inventory address on `eth0`,
all joined by a bridge that lives in a namespace of its own (the "switch"), so the root
namespace's network is never touched and the stage stack's 10.x addresses exist only
inside the lab. Each host also gets its own mount and UTS namespaces: private overlays on
/etc, /usr/local, /usr/sbin and /var and a tmpfs on /run and /tmp, so every host has its
own /etc/etcd, /etc/keepalived, /var/lib/etcd ... and the rendered files run with the
paths they name. Writes land in the lab's directory, never in the machine's /etc.

Every name starts with `seoul-drill-<pid>-`; `Lab.close` (also run on SIGTERM/SIGINT
through the context manager) ends every process inside the lab's namespaces and deletes
them; `remove_stale` deletes namespaces a killed drill left behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PREFIX = "seoul-drill"
OVERLAID = ("/etc", "/usr/local", "/usr/sbin", "/var")  # per-host copy-on-write views
PRIVATE = ("/run", "/tmp")  # per-host empty tmpfs
HOLDER_SECONDS = 1800  # a host's namespace holder ends by itself even if nobody stops it


class LabError(RuntimeError):
    """A lab command failed; the message says which and why."""


def ip(*args: str, timeout: float = 10) -> str:
    """`ip <args>` in the root namespace (only netns and link plumbing); stdout, or LabError."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def netns_pids(netns: str) -> list[int]:
    """Pids of the processes inside network namespace `netns` (`ip netns pids`)."""
    proc = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, timeout=10)
    return [int(p) for p in proc.stdout.split()] if proc.returncode == 0 else []


def running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie waiting for its parent counts as ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return not re.search(r"^State:\s+Z", status, re.M)


def end_processes(pids: list[int], grace: float = 5.0) -> None:
    """SIGTERM each pid, SIGKILL those still there after `grace` seconds."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(running(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def remove_stale() -> list[str]:
    """Delete namespaces and lab directories of drills whose process is gone (pid in the name);
    returns the namespaces' names."""
    removed = []
    for line in ip("netns", "list").splitlines():
        name = line.split()[0] if line.split() else ""
        match = re.fullmatch(rf"{PREFIX}-(\d+)-.+", name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            end_processes(netns_pids(name))
            with contextlib.suppress(LabError):
                ip("netns", "delete", name)
            removed.append(name)
    for path in Path(tempfile.gettempdir()).glob(f"{PREFIX}-*-*"):
        match = re.fullmatch(rf"{PREFIX}-(\d+)-.+", path.name)
        if match and path.is_dir() and not Path(f"/proc/{match.group(1)}").exists():
            shutil.rmtree(path, ignore_errors=True)
    return removed


@dataclass
class Host:
    """One lab host: its name and address, the namespace and the pid that holds its mounts."""

    name: str
    address: str
    netns: str
    root: Path  # the lab directory of this host (overlay upper dirs)
    holder: subprocess.Popen

    def path(self, absolute: str) -> Path:
        """Where a file written at `absolute` on this host lands (its overlay's upper dir), for
        reading what the host wrote; writes go through the host (Lab.write)."""
        for top in sorted(OVERLAID, key=len, reverse=True):
            if absolute == top or absolute.startswith(top + "/"):
                return self.root / top.strip("/").replace("/", "-") / "upper" / absolute[len(top) + 1 :]
        raise ValueError(f"{absolute} is not on a per-host filesystem of the lab")


class Lab:
    """Hosts on one bridge. Use as a context manager: everything is removed on exit.

    `hosts`: {name: IPv4 address}; `prefix_len`: the node network's prefix length (e.g. 16).
    """

    def __init__(self, hosts: dict[str, str], prefix_len: int, keep_logs: Path | None = None):
        self.id = f"{PREFIX}-{os.getpid()}"
        self.spec = hosts
        self.prefix_len = prefix_len
        self.keep_logs = keep_logs
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.id}-"))
        self.switch = f"{self.id}-switch"
        self.hosts: dict[str, Host] = {}
        self.spawned: list[subprocess.Popen] = []
        self._netns: list[str] = []

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> Lab:
        self._old = {s: signal.signal(s, self._interrupted) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        for sig, handler in self._old.items():
            signal.signal(sig, handler)

    @staticmethod
    def _interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    def _build(self) -> None:
        remove_stale()
        self._add_netns(self.switch)
        self.ns_run(self.switch, "ip", "link", "add", "br0", "type", "bridge")
        self.ns_run(self.switch, "ip", "link", "set", "br0", "up")
        for name, address in self.spec.items():
            netns = f"{self.id}-{name}"
            self._add_netns(netns)
            ip("link", "add", "eth0", "netns", netns, "type", "veth", "peer", "name", name[:15], "netns", self.switch)
            self.ns_run(self.switch, "ip", "link", "set", "dev", name[:15], "master", "br0", "up")
            self.ns_run(netns, "ip", "link", "set", "lo", "up")
            self.ns_run(netns, "ip", "addr", "add", f"{address}/{self.prefix_len}", "dev", "eth0")
            self.ns_run(netns, "ip", "link", "set", "eth0", "up")
            self.hosts[name] = self._hold(name, address, netns)

    def _add_netns(self, netns: str) -> None:
        ip("netns", "add", netns)
        self._netns.append(netns)

    def _hold(self, name: str, address: str, netns: str) -> Host:
        """Start the process whose mount and UTS namespaces are the host's filesystem and name."""
        root = self.dir / name
        mounts = []
        for top in OVERLAID:
            layer = root / top.strip("/").replace("/", "-")
            (layer / "upper").mkdir(parents=True)
            (layer / "work").mkdir()
            mounts.append(
                f"mount -t overlay overlay -o lowerdir={top},upperdir={layer}/upper,workdir={layer}/work {top}"
            )
        mounts += [f"mount -t tmpfs -o mode=1777 tmpfs {top}" for top in PRIVATE]
        script = " && ".join([*mounts, f"hostname {name}", "echo ready", f"exec sleep {HOLDER_SECONDS}"])
        holder = subprocess.Popen(
            ["ip", "netns", "exec", netns, "unshare", "--mount", "--uts", "--propagation", "private", "--",
             "sh", "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        line = holder.stdout.readline() if holder.stdout else ""
        if line.strip() != "ready":
            holder.kill()
            raise LabError(f"host {name}: could not set up its namespaces: {holder.stderr.read().strip()}")
        return Host(name, address, netns, root, holder)

    def close(self) -> None:
        """End every process in the lab's namespaces, delete them and the lab directory."""
        if self.keep_logs is not None:
            self._save_logs(self.keep_logs)
        for proc in self.spawned:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
        for netns in reversed(self._netns):
            end_processes(netns_pids(netns))
        for proc in [*self.spawned, *(h.holder for h in self.hosts.values())]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        for netns in reversed(self._netns):
            with contextlib.suppress(LabError):
                ip("netns", "delete", netns)
        self._netns.clear()
        self.hosts.clear()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _save_logs(self, dest: Path) -> None:
        shutil.rmtree(dest, ignore_errors=True)
        for name, host in self.hosts.items():
            logs = host.path("/var/log")
            if logs.exists():
                shutil.copytree(logs, dest / name, symlinks=True, dirs_exist_ok=True, ignore_dangling_symlinks=True)

    # -- running things --------------------------------------------------------------

    def ns_run(self, netns: str, *argv: str) -> str:
        """Run a plumbing command in a namespace (switch or host network only)."""
        proc = subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, timeout=10)
        if proc.returncode != 0:
            raise LabError(f"{netns}: {' '.join(argv)}: {proc.stderr.strip()}")
        return proc.stdout

    def argv(self, host: str, argv: list[str]) -> list[str]:
        """`argv` wrapped to run on `host` (its network, filesystem and host name)."""
        pid = str(self.hosts[host].holder.pid)
        return ["nsenter", "-t", pid, "-m", "-u", "-n", "--", *argv]

    def run(
        self,
        host: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        timeout: float = 60,
        check: bool = True,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess:
        """Run `argv` on `host` and wait (at most `timeout` s). Raises LabError when `check` and it fails."""
        full_env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        full_env.update(env or {})
        proc = subprocess.run(
            self.argv(host, argv), env=full_env, capture_output=True, text=True, timeout=timeout, input=stdin
        )
        if check and proc.returncode != 0:
            raise LabError(f"{host}: {' '.join(argv)} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()}")
        return proc

    def spawn(self, host: str, argv: list[str], log: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start `argv` on `host` in the background, its output appended to `log` (a path on the host)."""
        full_env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **(env or {})}
        shell = ["sh", "-c", 'mkdir -p "$(dirname "$0")" && exec "$@" >>"$0" 2>&1', log, *argv]
        proc = subprocess.Popen(self.argv(host, shell), env=full_env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.spawned.append(proc)
        return proc

    def write(self, host: str, path: str, text: str | bytes, mode: int = 0o644) -> None:
        """Put a file on `host` at `path`, root-owned with `mode`, as the program does
        (`install -D -m <mode> /dev/stdin <path>` on the host: the write goes through the
        host's overlay, never into its upper directory behind its back)."""
        data = text.encode() if isinstance(text, str) else text
        argv = ["install", "-D", "-m", f"{mode:04o}", "-o", "root", "-g", "root", "/dev/stdin", path]
        proc = subprocess.run(self.argv(host, argv), input=data, capture_output=True, timeout=30)
        if proc.returncode != 0:
            raise LabError(f"{host}: cannot write {path}: {proc.stderr.decode().strip()}")

    def addresses(self, host: str) -> list[str]:
        """IPv4 addresses on the host's eth0 (empty when its link is down and cleared)."""
        out = self.run(host, ["ip", "-o", "-4", "addr", "show", "dev", "eth0"], check=False).stdout
        return [line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3]

    def cut_links(self, host: str) -> None:
        """Take down every link of `host`: its NIC in the host and its port on the switch."""
        self.ns_run(self.switch, "ip", "link", "set", "dev", host[:15], "down")
        self.ns_run(self.hosts[host].netns, "ip", "link", "set", "eth0", "down")
