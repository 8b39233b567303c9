"""Step 2: the API VIP. The rendered haproxy.cfg, keepalived.conf and check_apiserver.sh on
the control planes, started by the project's apivip-start.sh, in front of TLS stand-ins for
kube-apiserver; a client on a worker sends a bounded stream of requests to the VIP while
the drill kills a backend, stops Keepalived on the VIP holder, then cuts the links of the
next holder. Times are measured against the bounds the rendered timers give (drill.timers).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import dataclass

from drill import timers
from drill.lab import Lab, ip
from drill.report import Report, Step
from drill.setup import HAPROXY_UNIT, KEEPALIVED_UNIT, STANDINS, DrillError, digest, script

POLL = 0.05  # seconds between two looks at the VIP or HAProxy's state
TOLERANCE = 1.0  # seconds allowed over a timer bound for polling and scheduling on a busy machine
CLIENT_INTERVAL = 0.1  # seconds between two requests of the client
CLIENT_TIMEOUT = 2.0  # seconds a request may take before the client counts it failed
CERT_DIR = "/run/drill"  # the stand-ins' serving certificates (not kubeadm's PKI)
STAT_QUERY = (
    "import socket,sys;s=socket.socket(socket.AF_UNIX);s.settimeout(2);s.connect(sys.argv[1]);"
    "s.sendall(b'show stat\\n');d=b''\n"
    "while (c:=s.recv(65536)): d+=c\n"
    "sys.stdout.write(d.decode())"
)


@dataclass
class Vip:
    """The control planes, the client host and the VIP as the rendered files name them."""

    lab: Lab
    planes: list[str]
    client: str
    address: str = ""
    port: int = 0

    def __post_init__(self):
        cfg = self.path(self.planes[0], "/etc/haproxy/haproxy.cfg").read_text()
        bind = _bind_of(cfg, "apiserver")
        self.address, port = bind.rsplit(":", 1)
        self.port = int(port)
        self.haproxy = timers.haproxy_timers(cfg)
        self.vrrp = {p: timers.vrrp_timers(self.path(p, "/etc/keepalived/keepalived.conf").read_text())
                     for p in self.planes}
        self.stats_socket = next(line.split()[2] for line in cfg.splitlines() if "stats socket" in line)
        self.backends: dict[str, object] = {}
        self.maxconn_override = maxconn_override(cfg, resource.getrlimit(resource.RLIMIT_NOFILE)[1])

    def path(self, host: str, absolute: str):
        return self.lab.hosts[host].path(absolute)

    # -- setup ------------------------------------------------------------------------

    def install(self) -> None:
        """Units, stand-ins and host settings apivip-install.sh would make, then apivip-start.sh."""
        for p in self.planes:
            lab = self.lab
            lab.write(p, "/etc/systemd/system/haproxy.service", HAPROXY_UNIT)
            lab.write(p, "/etc/systemd/system/keepalived.service", KEEPALIVED_UNIT)
            if self.maxconn_override:
                lab.write(p, "/etc/sysconfig/haproxy", f'OPTIONS="-n {self.maxconn_override}"\n')
            for tool in ("kubeadm", "crictl"):
                lab.write(p, f"/usr/local/bin/{tool}", (STANDINS / tool).read_bytes(), 0o755)
            # apivip-install.sh: the sysctl that lets HAProxy bind the VIP it does not hold;
            # the package's state directory for the stats socket.
            lab.run(p, ["sysctl", "-q", "-w", "net.ipv4.ip_nonlocal_bind=1"])
            lab.run(p, ["install", "-d", "-m", "0755", self.stats_socket.rsplit("/", 1)[0]])
            lab.run(p, ["install", "-d", "-m", "0755", CERT_DIR])
            lab.run(p, ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-days", "30", "-subj", f"/CN={p}", "-keyout", f"{CERT_DIR}/serving.key",
                        "-out", f"{CERT_DIR}/serving.crt"])
            self.start_backend(p)
        for p in self.planes:
            self.wait(lambda p=p: self.curl(p, "127.0.0.1", 6443), 15, f"{p}: no answer from the apiserver stand-in")
        for p in self.planes:
            script(self.lab, p, "apivip-start.sh", {
                "ADDRESS": self.lab.hosts[p].address, "IFACE_CONF": "/etc/keepalived/interface.conf",
                "HAPROXY_CFG": "/etc/haproxy/haproxy.cfg", "KEEPALIVED_CONF": "/etc/keepalived/keepalived.conf",
                "CHECK_SCRIPT": "/etc/keepalived/check_apiserver.sh",
                "FINGERPRINT": digest(self.path(p, "/etc/keepalived/keepalived.conf").read_text()),
            })
        self.ready = self.wait(lambda: len(self.holders()) == 1, 30, "no control plane took the VIP within 30s")

    def start_backend(self, plane: str, port: int = 6443, component: str = "kube-apiserver") -> None:
        self.backends[(plane, port)] = self.lab.spawn(
            plane, [sys.executable, str(STANDINS / "apiserver.py"), f"{component}@{plane}", str(port),
                    f"{CERT_DIR}/serving.crt", f"{CERT_DIR}/serving.key"],
            f"/var/log/drill-{component}.log")

    def kill_backend(self, plane: str, port: int = 6443) -> None:
        proc = self.backends.pop((plane, port))
        proc.kill()
        proc.wait(timeout=10)

    # -- observing --------------------------------------------------------------------

    def curl(self, host: str, address: str, port: int, path: str = "/healthz") -> bool:
        return self.lab.run(host, ["curl", "-skf", "--max-time", "2", "-o", "/dev/null",
                                   f"https://{address}:{port}{path}"], check=False, timeout=10).returncode == 0

    def holders(self) -> list[str]:
        """Control planes whose eth0 carries the VIP now."""
        found = []
        for p in self.planes:
            out = ip("-n", self.lab.hosts[p].netns, "-o", "-4", "addr", "show", "dev", "eth0")
            if f" {self.address}/" in out:
                found.append(p)
        return found

    def server_states(self, plane: str) -> dict[str, str]:
        """{server name: status} of the apiserver backend in `plane`'s HAProxy ("UP", "DOWN", ...)."""
        proc = self.lab.run(plane, [sys.executable, "-c", STAT_QUERY, self.stats_socket], check=False, timeout=10)
        lines = proc.stdout.splitlines()
        if not lines or not lines[0].startswith("# "):
            return {}
        header = lines[0][2:].split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
        return {r["svname"]: r["status"] for r in rows
                if r.get("pxname") == "apiserver" and r["svname"] not in ("FRONTEND", "BACKEND")}

    @staticmethod
    def wait(check, seconds: float, message: str, since: float | None = None) -> float:
        """Poll `check()` every POLL s until `seconds` after `since` (a time.time(); default: now).

        Returns the seconds from `since` until `check()` held, or raises DrillError. Steps pass
        the moment they caused the fault as `since`, so the time the fault itself took (killing
        and reaping a process) is part of what is measured.
        """
        start = time.time() if since is None else since
        while True:
            if check():
                return time.time() - start
            if time.time() - start > seconds:
                raise DrillError(message)
            time.sleep(POLL)


def _bind_of(cfg: str, frontend: str) -> str:
    """The `bind` address:port of `frontend <name>` in an haproxy.cfg (other frontends listen too)."""
    section = None
    for line in cfg.splitlines():
        words = line.split()
        if words and not line[:1].isspace():
            section = words[:2]
        elif words and words[0] == "bind" and section == ["frontend", frontend]:
            return words[1]
    raise DrillError(f"haproxy.cfg has no bind in frontend {frontend}")


def maxconn_override(cfg: str, hard_nofile: int) -> int | None:
    """A `-n` (maxconn) for HAProxy when this machine's hard open-file limit is below what the
    rendered `maxconn` needs (HAProxy wants about 2 x maxconn + its own files and refuses to
    start otherwise); None when the rendered value fits. On the hosts systemd's default hard
    limit (524288) fits; a container here may be capped lower and unable to raise it."""
    line = next((ln.split() for ln in cfg.splitlines() if ln.strip().startswith("maxconn ")), None)
    if line is None or 2 * int(line[1]) + 100 <= hard_nofile:
        return None
    return (hard_nofile - 100) // 2


class Stream:
    """The client's request log (JSON lines written by standins/client.py on the client host)."""

    def __init__(self, vip: Vip, max_seconds: float):
        self.vip = vip
        self.log = "/var/log/drill-client.jsonl"
        self.stop_file = "/var/log/drill-client.stop"
        url = f"https://{vip.address}:{vip.port}/healthz"
        count = int(max_seconds / CLIENT_INTERVAL) + 1
        self.proc = vip.lab.spawn(vip.client, [sys.executable, str(STANDINS / "client.py"), url, self.log,
                                               str(CLIENT_INTERVAL), str(CLIENT_TIMEOUT), str(count),
                                               str(max_seconds), self.stop_file], "/var/log/drill-client.out")

    def records(self) -> list[dict]:
        path = self.vip.path(self.vip.client, self.log)
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]

    def between(self, start: float, end: float) -> list[dict]:
        return [r for r in self.records() if start <= r["start"] < end]

    def stop(self) -> None:
        self.vip.lab.write(self.vip.client, self.stop_file, "stop")
        try:
            self.proc.wait(timeout=CLIENT_TIMEOUT + 5)
        except Exception:
            self.proc.kill()


def _failures(records: list[dict]) -> list[dict]:
    return [r for r in records if not r["ok"]]


def _resume(records: list[dict], event: float, moved: float) -> float | None:
    """Seconds from `event` until the first successful request started after the VIP moved."""
    ok = [r for r in records if r["ok"] and r["start"] >= moved]
    return (ok[0]["end"] - event) if ok else None


def run(vip: Vip, report: Report, settle: float = 3.0) -> None:
    """2.1 steady stream; 2.2 kill a backend; 2.3 stop Keepalived on the holder; 2.4 cut the
    next holder's links. Each step's expectation and bound are in its Step."""
    lab = vip.lab
    t_ready = vip.ready
    first = vip.holders()[0]
    top = max(vip.planes, key=lambda p: vip.vrrp[p].priority)
    budget = 120.0
    stream = Stream(vip, budget)
    try:
        t0 = time.time()
        time.sleep(settle)
        recs = stream.between(t0, time.time())
        served = sorted({r["body"].split("@")[-1] for r in recs if r["ok"]})
        report.add(Step("2.1", "API VIP: steady stream through HAProxy on the VIP holder",
                        f"the VIP on {top} (highest priority), every request answered, every backend serving",
                        f"VIP on {first} {t_ready:.2f}s after the start; "
                        f"{len(recs) - len(_failures(recs))}/{len(recs)} ok; "
                        f"served by {served}",
                        first == top and bool(recs) and not _failures(recs) and served == sorted(vip.planes),
                        round(t_ready, 2), details={"requests": len(recs)}))

        # 2.2 kill one backend (not on the holder, so only HAProxy's check is at work)
        victim = [p for p in vip.planes if p != first][-1]
        t_kill = time.time()
        vip.kill_backend(victim)
        bound = vip.haproxy.refused_detection_bound
        detect = vip.wait(lambda: vip.server_states(first).get(victim) == "DOWN", bound + 5,
                          f"HAProxy on {first} never marked {victim} DOWN", since=t_kill)
        t_down = t_kill + detect
        time.sleep(settle)
        before = stream.between(t_kill, t_down)
        after = stream.between(t_down, time.time())
        report.add(Step("2.2", f"API VIP: kube-apiserver on {victim} killed",
                        f"HAProxy marks it DOWN within fall x inter = {bound:.1f}s; "
                        "no request fails after that",
                        f"DOWN after {detect:.2f}s; after: {len(_failures(after))}/{len(after)} failed; "
                        f"before detection: {len(_failures(before))}/{len(before)} failed (retries+redispatch)",
                        detect <= bound + TOLERANCE and bool(after) and not _failures(after),
                        round(detect, 2), bound, details={"failed_before_detection": len(_failures(before)),
                                                          "requests_after": len(after)}))
        vip.start_backend(victim)
        back = vip.wait(lambda: vip.server_states(first).get(victim) == "UP", vip.haproxy.recovery_bound + 5,
                        f"HAProxy on {first} never saw {victim} UP again")
        # its Keepalived check must pass again too (rise x interval), or it would stay demoted
        time.sleep(vip.vrrp[victim].script_interval * 2 + 1)

        # 2.3 stop Keepalived on the VIP holder
        others = [p for p in vip.planes if p != first]
        expect = max(others, key=lambda p: vip.vrrp[p].priority)
        bound = vip.vrrp[expect].master_down_interval
        # systemctl stop returns only once Keepalived has exited (~1 s after it gave the VIP
        # up): watch the VIP while it runs, or the move would be timed from its return
        t_stop = time.time()
        stopping = lab.spawn(first, ["systemctl", "stop", "keepalived"], "/var/log/drill-stop.out")
        moved = vip.wait(lambda: vip.holders() == [expect], bound + 5, f"the VIP did not move to {expect}",
                         since=t_stop)
        if stopping.wait(timeout=30) != 0:
            raise DrillError(f"{first}: systemctl stop keepalived exited {stopping.returncode}")
        time.sleep(settle)
        recs = stream.between(t_stop - CLIENT_TIMEOUT, time.time())
        resume = _resume(recs, t_stop, t_stop + moved)
        late = _failures(stream.between(t_stop + moved + CLIENT_TIMEOUT, time.time()))
        resume_bound = bound + CLIENT_INTERVAL + CLIENT_TIMEOUT
        report.add(Step("2.3", f"API VIP: Keepalived stopped on the holder {first}",
                        f"the VIP moves to {expect} within Master_Down_Interval = 3 x advert_int + skew = "
                        f"{bound:.2f}s; requests resume within {resume_bound:.2f}s and none fails after",
                        f"VIP on {expect} after {moved:.2f}s (UP again after {back:.2f}s before); requests resumed "
                        f"after {resume if resume is None else round(resume, 2)}s; "
                        f"{len(_failures(recs))}/{len(recs)} failed around the move, {len(late)} after",
                        moved <= bound + TOLERANCE and resume is not None and resume <= resume_bound + TOLERANCE
                        and not late, round(moved, 2), bound,
                        details={"vip_move_s": round(moved, 3), "resume_s": resume and round(resume, 3),
                                 "resume_bound_s": round(resume_bound, 3), "failed": len(_failures(recs)),
                                 "failure_kinds": sorted({r["error"].split(":")[0] for r in _failures(recs)})}))

        # 2.4 cut every link of the new holder (a dead host: no goodbye from Keepalived)
        dead = expect
        rest = [p for p in others if p != dead]
        expect = max(rest, key=lambda p: vip.vrrp[p].priority)
        bound = vip.vrrp[expect].master_down_interval
        t_cut = time.time()
        lab.cut_links(dead)
        moved = vip.wait(lambda: vip.holders() == [expect], bound + 5, f"the VIP did not move to {expect}",
                         since=t_cut)
        limit = vip.haproxy.silent_detection_bound + 5
        detect = vip.wait(lambda: vip.server_states(expect).get(dead) == "DOWN", limit,
                          f"HAProxy on {expect} never marked {dead} DOWN", since=t_cut)
        time.sleep(settle)
        recs = stream.between(t_cut - CLIENT_TIMEOUT, time.time())
        resume = _resume(recs, t_cut, t_cut + moved)
        settled = t_cut + max(moved, detect) + CLIENT_TIMEOUT
        late = _failures(stream.between(settled, time.time()))
        resume_bound = bound + CLIENT_INTERVAL + 2 * CLIENT_TIMEOUT
        failed = _failures(recs)
        report.add(Step("2.4", f"API VIP: every link of the new holder {dead} cut",
                        f"the VIP moves to {expect} within Master_Down_Interval = {bound:.2f}s; requests resume "
                        f"within {resume_bound:.2f}s; after HAProxy marks {dead} DOWN "
                        f"(<= fall x (inter + check connect timeout) = {vip.haproxy.silent_detection_bound:.1f}s) "
                        "none fails",
                        f"VIP on {expect} after {moved:.2f}s; requests resumed after "
                        f"{resume if resume is None else round(resume, 2)}s; {dead} DOWN in HAProxy after "
                        f"{detect:.2f}s; {len(failed)}/{len(recs)} failed until then, {len(late)} after",
                        moved <= bound + TOLERANCE and resume is not None and resume <= resume_bound + TOLERANCE
                        and detect <= vip.haproxy.silent_detection_bound + TOLERANCE and not late,
                        round(moved, 2), bound,
                        details={"vip_move_s": round(moved, 3), "resume_s": resume and round(resume, 3),
                                 "resume_bound_s": round(resume_bound, 3), "backend_down_s": round(detect, 3),
                                 "failed": len(failed),
                                 "failure_kinds": sorted({r["error"].split(":")[0] for r in failed})}))
    finally:
        stream.stop()
