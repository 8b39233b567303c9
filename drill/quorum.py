"""Step 1: etcd quorum with the rendered member configs, Debian's etcd and the project's
TLS scripts. Writes go through etcdctl on the first control plane with kube-apiserver's
etcd client certificate and endpoints, as its kubeadm-config.yaml names them."""

from __future__ import annotations

import re
import time

import yaml

from drill.lab import Lab
from drill.report import Report, Step
from drill.setup import digest, env_file, script

ETCD_BINARIES = ("etcd", "etcdctl", "etcdutl")
SOON_DAYS = "2"  # certificates made to expire soon, for step 3
QUORUM_LOST = ("context deadline exceeded", "request timed out", "no leader", "failed to commit proposal")


class Etcd:
    """The etcd members and one client host of the lab, with the paths their files name."""

    def __init__(self, lab: Lab, members: list[str], client: str, environment: str):
        self.lab, self.members, self.client, self.environment = lab, members, client, environment
        self.conf = {m: yaml.safe_load(lab.hosts[m].path("/etc/etcd/etcd.conf.yml").read_text()) for m in members}
        kubeadm = lab.hosts[client].path("/etc/kubernetes/kubeadm-config.yaml").read_text()
        cluster = next(d for d in yaml.safe_load_all(kubeadm) if d and d.get("kind") == "ClusterConfiguration")
        self.external = cluster["etcd"]["external"]
        self.acked: dict[str, str] = {}
        self.version = ""
        unit = lab.hosts[members[0]].path("/etc/systemd/system/etcd.service").read_text()
        pinned = re.search(r"etcd (\d+\.\d+\.\d+)", unit.splitlines()[0])
        self.pinned = pinned.group(1) if pinned else ""

    # -- setup ------------------------------------------------------------------------

    def install(self) -> None:
        """etcd-install.sh on each member (Debian's etcd linked where the unit expects it,
        ETCD_VERSION set to it so nothing is downloaded), the CA on the first member with
        etcd-ca.sh, copied to the others and the control planes as the program copies it,
        and every certificate with etcd-certs.sh and the rendered env files, valid for
        SOON_DAYS days. Then etcd-start.sh on each member and etcd-health.sh."""
        lab = self.lab
        version = lab.run(self.members[0], ["/usr/bin/etcd", "--version"]).stdout.split("\n")[0].split()[-1]
        self.version = version
        first = self.conf[self.members[0]]["client-transport-security"]
        ca_cert, ca_key = first["trusted-ca-file"], first["trusted-ca-file"].replace(".crt", ".key")
        for m in self.members:
            for binary in ETCD_BINARIES:
                if lab.run(m, ["test", "-x", f"/usr/bin/{binary}"], check=False).returncode == 0:
                    lab.run(m, ["ln", "-sf", f"/usr/bin/{binary}", f"/usr/local/bin/{binary}"])
            script(lab, m, "etcd-install.sh", {
                "ETCD_VERSION": version, "ETCD_URL": "unused", "ETCD_SHA256": "unused", "BIN_DIR": "/usr/local/bin",
                "DATA_DIR": self.conf[m]["data-dir"], "SNAPSHOT_DIR": "/var/lib/etcd-snapshots",
                "PKI_DIR": ca_cert.rsplit("/", 1)[0],
            })
        script(lab, self.members[0], "etcd-ca.sh",
               {"CA_CERT": ca_cert, "CA_KEY": ca_key, "CA_DAYS": "3650", "CA_CN": f"seoul-{self.environment}-etcd-ca"})
        pair = {p: lab.hosts[self.members[0]].path(p).read_bytes() for p in (ca_cert, ca_key)}
        for m in self.members[1:]:
            lab.write(m, ca_cert, pair[ca_cert], 0o644)
            lab.write(m, ca_key, pair[ca_key], 0o600)
        lab.write(self.client, self.external["caFile"], pair[ca_cert], 0o644)
        lab.write(self.client, self.external["caFile"].replace(".crt", ".key"), pair[ca_key], 0o600)
        for m in self.members:
            env = env_file(lab.hosts[m].path("/etc/etcd/certs.env").read_text())
            script(lab, m, "etcd-certs.sh", {**env, "DAYS": SOON_DAYS})
        env = env_file(lab.hosts[self.client].path("/etc/kubernetes/seoul-etcd-client.env").read_text())
        script(lab, self.client, "etcd-certs.sh", {**env, "DAYS": SOON_DAYS})
        for m in self.members:
            self.start(m)
        self.wait_healthy(self.members, 90)

    def start(self, member: str) -> str:
        """The project's etcd-start.sh for `member` (through the systemctl stand-in)."""
        conf = self.conf[member]
        tls = conf["client-transport-security"]
        others = [self.conf[o]["advertise-client-urls"] for o in self.members if o != member]
        return script(self.lab, member, "etcd-start.sh", {
            "NAME": conf["name"], "PEER_URL": conf["initial-advertise-peer-urls"], "CONF": "/etc/etcd/etcd.conf.yml",
            "DATA_DIR": conf["data-dir"], "CA_CERT": tls["trusted-ca-file"], "CERT": tls["cert-file"],
            "KEY": tls["key-file"], "BIN_DIR": "/usr/local/bin", "OTHER_ENDPOINTS": ",".join(others),
            "FINGERPRINT": digest(self.lab.hosts[member].path("/etc/etcd/etcd.conf.yml").read_text()),
        }, timeout=200)

    def wait_healthy(self, members: list[str], timeout: int) -> None:
        """etcd-health.sh against `members`' client URLs, from the first of them."""
        tls = self.conf[members[0]]["client-transport-security"]
        script(self.lab, members[0], "etcd-health.sh", {
            "ENDPOINTS": ",".join(self.conf[m]["advertise-client-urls"] for m in members),
            "CA_CERT": tls["trusted-ca-file"], "CERT": tls["cert-file"], "KEY": tls["key-file"],
            "BIN_DIR": "/usr/local/bin", "TIMEOUT_SECONDS": str(timeout),
        }, timeout=timeout + 30)

    # -- client -----------------------------------------------------------------------

    def ctl(self, *args: str, timeout: str = "3s"):
        """etcdctl on the client host with kube-apiserver's etcd settings."""
        ext = self.external
        return self.lab.run(self.client, [
            "/usr/bin/etcdctl", "--endpoints", ",".join(ext["endpoints"]), "--cacert", ext["caFile"],
            "--cert", ext["certFile"], "--key", ext["keyFile"], "--dial-timeout=2s", f"--command-timeout={timeout}",
            *args], env={"ETCDCTL_API": "3"}, timeout=30, check=False)

    def put(self, key: str, value: str, timeout: str = "3s"):
        """etcdctl put; an acknowledged key is remembered to be checked after healing."""
        proc = self.ctl("put", key, value, timeout=timeout)
        if proc.returncode == 0:
            self.acked[key] = value
        return proc

    def write_batch(self, tag: str, count: int) -> tuple[int, list[str], float]:
        """`count` puts; (how many were acknowledged, the errors, the slowest put in s)."""
        ok, errors, slowest = 0, [], 0.0
        for i in range(count):
            t0 = time.monotonic()
            proc = self.put(f"/drill/{tag}/{i:03d}", f"{tag}-{i}")
            slowest = max(slowest, time.monotonic() - t0)
            if proc.returncode == 0:
                ok += 1
            else:
                errors.append(proc.stderr.strip())
        return ok, errors, slowest

    def systemctl(self, member: str, *args: str) -> None:
        self.lab.run(member, ["systemctl", *args], timeout=30)

    def pid(self, member: str) -> str:
        """Main pid of `member`'s etcd unit ("" when it is not running)."""
        return self.lab.run(member, ["cat", "/run/drill-units/etcd.pid"], check=False).stdout.strip()


def run(etcd: Etcd, report: Report, batch: int = 10, attempts: int = 2) -> None:
    """Write, lose one member, lose two, heal: the quorum behaves as Raft says."""
    _, m2, m3 = etcd.members[:3]
    ok, errors, slowest = etcd.write_batch("all-up", batch)
    report.add(Step("1.1", "etcd: writes with every member up", f"{batch}/{batch} writes acknowledged",
                    f"{ok}/{batch} acknowledged" + (f"; first error: {errors[0]}" if errors else ""),
                    ok == batch, round(slowest, 3), details={"slowest_put_s": round(slowest, 3)}))

    t0 = time.monotonic()
    etcd.systemctl(m3, "stop", "etcd")
    ok, errors, slowest = etcd.write_batch("one-down", batch)
    report.add(Step("1.2", f"etcd: {m3} stopped, writes go on (2 of 3 is a quorum)",
                    f"{batch}/{batch} writes acknowledged",
                    f"{ok}/{batch} acknowledged, slowest put {slowest:.2f}s"
                    + (f"; first error: {errors[0]}" if errors else ""),
                    ok == batch, round(time.monotonic() - t0, 2), details={"slowest_put_s": round(slowest, 3)}))

    etcd.systemctl(m2, "stop", "etcd")
    t0 = time.monotonic()
    refused, errors = 0, []
    for i in range(attempts):
        # A command timeout longer than the server's own request timeout (5s + 2 elections),
        # so the answer is the server's, not the client giving up.
        proc = etcd.put(f"/drill/no-quorum/{i:03d}", f"no-quorum-{i}", timeout="12s")
        if proc.returncode != 0:
            refused += 1
            errors.append(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}")
    health = etcd.ctl("endpoint", "health", timeout="3s")
    why = sorted(line.strip() for line in (health.stdout + health.stderr).splitlines() if "health" in line)
    told = bool(errors) and all(any(word in e.lower() for word in QUORUM_LOST) for e in errors)
    report.add(Step("1.3", f"etcd: {m2} stopped too, writes refused (1 of 3 is no quorum)",
                    "every write refused, etcdctl saying why (request timed out / no leader)",
                    f"{refused}/{attempts} refused: {sorted(set(errors))}; endpoint health: {why}",
                    refused == attempts and told, round(time.monotonic() - t0, 2),
                    details={"errors": errors, "endpoint_health": why}))

    t0 = time.monotonic()
    for m in (m2, m3):
        etcd.systemctl(m, "start", "etcd")
    etcd.wait_healthy(etcd.members, 90)
    healed = time.monotonic() - t0
    ok, errors, _ = etcd.write_batch("healed", batch)
    got = etcd.ctl("get", "/drill/", "--prefix", "-w", "json", timeout="10s")
    present = _kvs(got.stdout) if got.returncode == 0 else {}
    lost = sorted(k for k, v in etcd.acked.items() if present.get(k) != v)
    report.add(Step("1.4", f"etcd: {m2} and {m3} started again, the cluster heals",
                    "all members healthy, writes acknowledged, every acknowledged key there with its value",
                    f"healthy after {healed:.2f}s; {ok}/{batch} new writes acknowledged; "
                    f"{len(etcd.acked) - len(lost)}/{len(etcd.acked)} acknowledged keys present"
                    + (f"; lost: {lost[:5]}" if lost else ""),
                    ok == batch and not lost and got.returncode == 0, round(healed, 2),
                    details={"acknowledged": len(etcd.acked), "lost": lost}))


def _kvs(text: str) -> dict[str, str]:
    """{key: value} of `etcdctl get -w json` output (base64 in the JSON)."""
    import base64
    import json

    data = json.loads(text) if text.strip() else {}
    return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"]).decode() for kv in data.get("kvs", [])}
