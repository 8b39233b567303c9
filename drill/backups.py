"""Step 4, backups: every kind restores, with the real tools (the restore tests, run as drill steps).

Each check is one of the backup work's restore tests, run by pytest in a child process with
CI=true (a missing tool fails the step instead of skipping it) and a time bound; the step
reports the test's verdict, its measured time and, on failure, pytest's message. They run on
this machine's loopback, not in the drill's lab: S3 is moto's API over TLS, Ceph a one-host
Pacific cluster (tests/backup_s3.py, tests/cephlab.py), so what they show is that the rendered
configs, the shipped scripts and the restore procedures work, not the uplink or AWS itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from drill.report import Report, Step
from drill.setup import REPO

RESTORE = "tests/test_backup_restore.py"
# (step id, title, expected, test node id)
CHECKS = (
    ("4.1", "etcd snapshot off site and back", "the shipped snapshot comes back byte-identical and "
     "`etcdctl snapshot restore` rebuilds a member with every key",
     f"{RESTORE}::test_etcd_snapshot_goes_off_site_and_restores_a_member_with_every_key"),
    ("4.2", "PostgreSQL full + incremental restore", "pgBackRest with the operator resource's repo1 settings "
     "backs up to S3 (aes-256-cbc) and a restore into a new data directory has every row",
     f"{RESTORE}::test_postgresql_backs_up_full_and_incremental_to_s3_and_restores_every_row"),
    ("4.3", "RBD chains off site and back", "backup-ceph.sh on real Ceph ships full, increment, new full, "
     "increment; seoul-restore-ceph rebuilds images equal to the source at each snapshot",
     "tests/test_backup_ceph.py::test_rbd_chains_go_off_site_and_restore_to_each_snapshot"),
    ("4.4", "a writer's delete leaves the locked version", "pgBackRest's expire (DeleteObjects) only adds a "
     "delete marker; the version stays readable by id and cannot be deleted under Object Lock",
     f"{RESTORE}::test_a_writers_delete_only_hides_a_locked_version_which_stays_restorable"),
)
TIMEOUT = 600  # seconds for all four (measured: see README, "Failure drills")


def outcomes(junit: Path) -> dict[str, tuple[bool, float, str]]:
    """pytest's JUnit XML -> {test name: (passed, seconds, message)}."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):  # noqa: S314 (pytest wrote it, in our temp folder)
        problem = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        message = "" if problem is None else f"{problem.tag}: {problem.get('message', '')}"[:600]
        found[case.get("name", "")] = (problem is None, float(case.get("time", 0)), message)
    return found


def run(report: Report) -> None:
    """Run the four restore checks in one pytest process and add one step per check."""
    print("backups: the restore checks (etcd, PostgreSQL, Ceph RBD, Object Lock) ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="seoul-drill-backups-") as tmp:
        junit = Path(tmp) / "junit.xml"
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
                 f"--basetemp={Path(tmp) / 'pytest'}", *(c[3] for c in CHECKS)],
                cwd=REPO, env={**os.environ, "CI": "true"}, capture_output=True, text=True, timeout=TIMEOUT)
            tail = (proc.stdout + proc.stderr)[-600:]
        except subprocess.TimeoutExpired:
            tail = f"pytest did not finish in {TIMEOUT}s"
        results = outcomes(junit) if junit.exists() else {}
    for step_id, title, expected, node in CHECKS:
        name = node.rsplit("::", 1)[1]
        passed, seconds, message = results.get(name, (False, None, f"not run: {tail}"))
        report.add(Step(step_id, title, expected, observed="restored as expected" if passed else message,
                        passed=passed, seconds=seconds, details={"test": node}))
