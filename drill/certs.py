"""Step 3: certificates made to expire soon (drill.quorum issues every etcd certificate for
SOON_DAYS days), then the rendered expiry-export and renewal units run as systemd would
run them (drill.setup.run_unit): the export shows the date, the renewal renews, and
nothing restarts that should not (the systemctl stand-in records every call)."""

from __future__ import annotations

import re
import subprocess
import time
from datetime import datetime

from drill.lab import Lab
from drill.quorum import Etcd
from drill.report import Report, Step
from drill.setup import run_unit
from drill.vip import Vip

DAY = 86400
STATIC_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
HEALTH_PORTS = {"kube-controller-manager": 10257, "kube-scheduler": 10259}


def not_after(lab: Lab, host: str, cert: str) -> int:
    """Unix time at which `cert` on `host` expires (openssl x509 -enddate)."""
    out = lab.run(host, ["openssl", "x509", "-in", cert, "-noout", "-enddate"]).stdout.strip()
    return int(datetime.strptime(out.split("=", 1)[1], "%b %d %H:%M:%S %Y %Z").timestamp())


def serial(lab: Lab, host: str, cert: str) -> str:
    return lab.run(host, ["openssl", "x509", "-in", cert, "-noout", "-serial"]).stdout.strip().split("=")[-1]


def exported(lab: Lab, host: str, unit_text: str) -> dict[str, int]:
    """{path: expiry} from the textfile the export unit writes (its OUTPUT)."""
    output = lab.hosts[host].path(re.search(r"OUTPUT=(\S+)", unit_text).group(1))
    text = output.read_text() if output.exists() else ""
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r'^seoul_cert_expiry_timestamp_seconds\{path="([^"]+)",[^}]*\} (\d+)$', text, re.M)}


def log_lines(lab: Lab, host: str, path: str) -> list[str]:
    file = lab.hosts[host].path(path)
    return file.read_text().splitlines() if file.exists() else []


def served_serial(lab: Lab, host: str, address: str, port: int, cert: str, key: str, ca: str) -> str:
    """Serial of the certificate a TLS server presents on a new connection (openssl s_client)."""
    proc = lab.run(host, ["openssl", "s_client", "-connect", f"{address}:{port}", "-cert", cert, "-key", key,
                          "-CAfile", ca], stdin="", check=False, timeout=20)
    pem = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", proc.stdout, re.S)
    if not pem:
        return ""
    out = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem.group(0), capture_output=True,
                         text=True, timeout=10)
    return out.stdout.strip().split("=")[-1]


def run(etcd: Etcd, vip: Vip, report: Report) -> None:
    """3.1 export on an etcd member; 3.2 its renewal without a restart; 3.3 the control plane's
    renewal (etcd client certificate, kubeadm, static pods one by one) with no unit restarted."""
    lab = etcd.lab
    member = etcd.members[0]
    conf = etcd.conf[member]["client-transport-security"]
    cert, key, ca = conf["cert-file"], conf["key-file"], conf["trusted-ca-file"]
    expiry_unit = lab.hosts[member].path("/etc/systemd/system/cert-expiry.service").read_text()

    # 3.1 the export shows the soon expiry
    now = time.time()
    end = not_after(lab, member, cert)
    proc = run_unit(lab, member, "cert-expiry.service")
    shown = exported(lab, member, expiry_unit) if proc.returncode == 0 else {}
    report.add(Step("3.1", f"certs: expiry export on {member}",
                    f"{cert} listed with its expiry, {(end - now) / DAY:.1f} days away",
                    f"exit {proc.returncode}; {cert} -> {shown.get(cert)} "
                    f"({(shown.get(cert, 0) - now) / DAY:.1f} days); {len(shown)} certificates listed",
                    proc.returncode == 0 and shown.get(cert) == end and end - now < 7 * DAY,
                    details={"listed": sorted(shown)}))

    # 3.2 the member's renewal renews, etcd keeps running and serves the new certificate
    pid, calls = etcd.pid(member), log_lines(lab, member, "/var/log/drill-systemctl.log")
    old_serial = serial(lab, member, cert)
    t0 = time.monotonic()
    proc = run_unit(lab, member, "etcd-certs-renew.service")
    took = time.monotonic() - t0
    new_end, new_serial = not_after(lab, member, cert), serial(lab, member, cert)
    address = lab.hosts[member].address
    presented = served_serial(lab, member, address, 2379, cert, key, ca)
    etcd.wait_healthy(etcd.members, 30)
    after = run_unit(lab, member, "cert-expiry.service")
    shown = exported(lab, member, expiry_unit) if after.returncode == 0 else {}
    same_pid = etcd.pid(member) == pid and pid != ""
    new_calls = log_lines(lab, member, "/var/log/drill-systemctl.log")[len(calls):]
    report.add(Step("3.2", f"certs: etcd-certs-renew on {member}",
                    "a new certificate (a year), etcd not restarted and serving it on new connections, "
                    "the export showing the new date",
                    f"exit {proc.returncode} ({proc.stdout.strip()[:70]}...); expires in "
                    f"{(new_end - time.time()) / DAY:.0f} days; etcd pid {'unchanged' if same_pid else 'CHANGED'}; "
                    f"systemctl calls: {new_calls}; "
                    f"served serial {'new' if presented == new_serial else presented or 'none'}; "
                    f"export {'shows' if shown.get(cert) == new_end else 'does not show'} the new date",
                    proc.returncode == 0 and new_serial != old_serial and new_end - time.time() > 300 * DAY
                    and same_pid and not new_calls and presented == new_serial and shown.get(cert) == new_end,
                    round(took, 2)))

    # 3.3 the control plane's monthly renewal
    plane = etcd.client
    for pod in STATIC_PODS:
        lab.write(plane, f"/etc/kubernetes/manifests/{pod}.yaml", f"# stand-in for kubeadm's {pod} manifest\n")
    for pod, port in HEALTH_PORTS.items():
        vip.start_backend(plane, port, pod)
    vip.wait(lambda: all(vip.curl(plane, "127.0.0.1", p) for p in HEALTH_PORTS.values()), 15,
             f"{plane}: controller-manager and scheduler stand-ins did not answer")
    client_cert = etcd.external["certFile"]
    old_end = not_after(lab, plane, client_cert)
    pids = {u: lab.run(plane, ["cat", f"/run/drill-units/{u}.pid"], check=False).stdout.strip()
            for u in ("haproxy", "keepalived")}
    holders, calls = vip.holders(), log_lines(lab, plane, "/var/log/drill-systemctl.log")
    t0 = time.monotonic()
    proc = run_unit(lab, plane, "kube-certs-renew.service", timeout=600)
    took = time.monotonic() - t0
    new_end = not_after(lab, plane, client_cert)
    kubeadm = [line.split(" ", 1)[1] for line in log_lines(lab, plane, "/var/log/drill-kubeadm.log")]
    restarted = re.findall(r"^(\S+) restarted with renewed certificates$", proc.stdout, re.M)
    back = all(lab.hosts[plane].path(f"/etc/kubernetes/manifests/{p}.yaml").exists() for p in STATIC_PODS)
    unchanged = {u: lab.run(plane, ["cat", f"/run/drill-units/{u}.pid"], check=False).stdout.strip() == pid != ""
                 for u, pid in pids.items()}
    new_calls = log_lines(lab, plane, "/var/log/drill-systemctl.log")[len(calls):]
    cp_unit = lab.hosts[plane].path("/etc/systemd/system/cert-expiry.service").read_text()
    shown = exported(lab, plane, cp_unit)
    put = etcd.put("/drill/after-renewal", "renewed-client-cert")
    report.add(Step("3.3", f"certs: kube-certs-renew on {plane}",
                    "the etcd client certificate renewed (a year) and still accepted by etcd; kubeadm asked to "
                    "renew; the three static pods restarted one by one; HAProxy, Keepalived and the VIP untouched",
                    f"exit {proc.returncode}; client cert {(old_end - time.time()) / DAY:.1f} -> "
                    f"{(new_end - time.time()) / DAY:.0f} days; etcd put with it: exit {put.returncode}; "
                    f"kubeadm calls {kubeadm}; restarted {restarted}; manifests back: {back}; "
                    f"pids unchanged {unchanged}; systemctl calls: {new_calls}; VIP {holders} -> {vip.holders()}; "
                    f"export shows the new date: {shown.get(client_cert) == new_end}",
                    proc.returncode == 0 and new_end - time.time() > 300 * DAY and put.returncode == 0
                    and kubeadm == ["certs renew all", "certs check-expiration"] and restarted == list(STATIC_PODS)
                    and back and all(unchanged.values()) and not new_calls
                    and bool(holders) and vip.holders() == holders
                    and shown.get(client_cert) == new_end,
                    round(took, 2), details={"stderr": proc.stderr.strip()[-400:]}))
