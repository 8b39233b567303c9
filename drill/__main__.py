"""`python -m drill [--stack seoul-stage] [--out build/drill]`: the failure drills.

Builds the lab (drill.lab) from the stack's inventory, puts the offline plan's files on its
hosts, runs step 1 (etcd quorum), step 3 (certificates) and step 2 (API VIP, last because it
breaks hosts), then, with the lab gone, step 4 (the backups' restore checks, drill.backups on
this machine's loopback), prints each step and writes `<out>/report.json` (drill.report) and the
daemons' logs under `<out>/logs/<host>/`.
Exit status: 0 every step passed, 1 a step failed or the drill stopped, 2 it cannot run here
(not root, a tool missing, bad stack).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from drill import backups, certs, quorum, vip
from drill.lab import Lab, LabError
from drill.report import Report
from drill.setup import REPO, DrillError, install_plan_files, install_standins, plan_artifacts, read_inventory

# Drills that join later (none now: step 4, backups, landed with the backup work).
PENDING: tuple[str, ...] = ()
TOOLS = ("ip", "nsenter", "unshare", "setpriv", "bash", "openssl", "curl", "etcd", "etcdctl", "haproxy", "keepalived")


def missing_tools() -> list[str]:
    """Tools the drill runs that are not on PATH (or /usr/sbin); `make test-tools` installs them."""
    return [t for t in TOOLS if not (shutil.which(t) or shutil.which(t, path="/usr/sbin:/sbin"))]


def preflight() -> str:
    """Why the drill cannot run on this machine, or "" when it can."""
    if os.geteuid() != 0:
        return "the drill needs root (network namespaces, mounts)"
    missing = missing_tools()
    if missing:
        return f"missing tools: {', '.join(missing)} (run `make test-tools`)"
    return ""


def client_host(inventory) -> str:
    """A plain worker (one whose kubelet reaches the API through the VIP), else any worker."""
    workers = inventory.with_role("worker")
    plain = [w for w in workers if inventory.hosts[w][1] == ("worker",)]
    if not (plain or workers):
        raise DrillError("the stack has no worker to send requests from")
    return (plain or workers)[0]


def drill(stack: str, out: Path) -> Report:
    """Run every step; a step that cannot go on ends the drill with `report.error` set."""
    report = Report(stack, pending=list(PENDING))
    with tempfile.TemporaryDirectory(prefix="seoul-drill-plan-") as plan_dir:
        try:
            print(f"planning {stack} offline ...", flush=True)
            artifacts = plan_artifacts(stack, Path(plan_dir))
            inventory = read_inventory(REPO / f"Pulumi.{stack}.yaml")
            members, planes = inventory.with_role("etcd"), inventory.with_role("control-plane")
            if len(members) < 3 or len(planes) < 3:
                raise DrillError(f"{stack}: the drill needs 3 etcd members and 3 control planes")
            client = client_host(inventory)
            names = [*members, *planes, client]
            print(f"building the lab: {', '.join(names)} on one bridge ...", flush=True)
            with Lab({n: inventory.address(n) for n in names}, inventory.prefix_len, keep_logs=out / "logs") as lab:
                for name in names:
                    install_plan_files(lab, name, artifacts)
                    install_standins(lab, name)
                print("etcd: CA, certificates (expiring soon), members starting ...", flush=True)
                etcd = quorum.Etcd(lab, members, planes[0], inventory.environment)
                etcd.install()
                report.notes.append(f"etcd {etcd.version} from Debian (the stack pins {etcd.pinned or 'none'})")
                quorum.run(etcd, report)
                print("API VIP: stand-ins, HAProxy and Keepalived starting ...", flush=True)
                api = vip.Vip(lab, planes, client)
                api.install()
                if api.maxconn_override:
                    report.notes.append(f"HAProxy started with -n {api.maxconn_override}: this machine's hard "
                                        "open-file limit is below what the rendered maxconn needs")
                certs.run(etcd, api, report)
                vip.run(api, report)
            backups.run(report)
        except (DrillError, LabError, subprocess.TimeoutExpired, KeyboardInterrupt) as exc:
            report.error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a bug in the drill: still report it (the lab is gone by now)
            report.error = "".join(traceback.format_exception(exc)[-3:])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drill", description=__doc__.split("\n")[0])
    parser.add_argument("--stack", default="seoul-stage", help="stack whose inventory and plan to drill")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "drill", help="report and logs directory")
    args = parser.parse_args(argv)
    if not (REPO / f"Pulumi.{args.stack}.yaml").exists():
        print(f"--stack: no Pulumi.{args.stack}.yaml in {REPO}", file=sys.stderr)
        return 2
    reason = preflight()
    if reason:
        print(f"drill: cannot run here: {reason}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    report = drill(args.stack, args.out)
    report.write(args.out / "report.json")
    if report.error:
        print(f"drill stopped: {report.error}", file=sys.stderr)
    for note in report.notes:
        print(f"note: {note}")
    for item in report.pending:
        print(f"pending: {item}")
    passed = sum(s.passed for s in report.steps)
    print(f"{passed}/{len(report.steps)} steps passed{' before the drill stopped' if report.error else ''} "
          f"in {time.monotonic() - t0:.0f}s; "
          f"report: {args.out / 'report.json'}, logs: {args.out / 'logs'}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
