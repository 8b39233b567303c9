"""The failure drills (drill/): the timer arithmetic and helpers everywhere; the whole drill,
with the real daemons in network namespaces, under CI=true (`make drill` runs it by hand)."""

import json
import os
import subprocess
import sys
import time

import pytest

from drill import timers
from drill.__main__ import missing_tools, preflight
from drill.setup import DrillError, env_file, file_mode, unit_exec
from drill.vip import Vip, maxconn_override
from tests.tools import REPO, in_ci, require_tool, unavailable

HAPROXY_CFG = """
defaults
    timeout connect 5s
    timeout check 10s
    retries 1
backend apiserver
    server cp-1 10.0.0.1:6443 check inter 3s fall 3 rise 2
    server cp-2 10.0.0.2:6443 check inter 9s fall 9 rise 9
"""


def test_haproxy_timers_follow_the_server_line_and_defaults():
    t = timers.haproxy_timers(HAPROXY_CFG)
    assert (t.inter, t.fall, t.rise, t.timeout_connect, t.timeout_check, t.retries) == (3, 3, 2, 5, 10, 1)
    assert t.check_connect_timeout == 3  # min(timeout connect, inter), HAProxy's rule for checks
    assert t.refused_detection_bound == 9
    assert t.silent_detection_bound == 18


def test_wait_times_from_the_fault_not_from_when_polling_began():
    """A fault that takes time itself (systemctl stop waits for Keepalived to exit) counts:
    the drill once timed the VIP move from the stop's return and saw 0.01 s for ~0.5 s."""
    fault = time.time() - 1.5
    assert Vip.wait(lambda: True, 5, "never", since=fault) >= 1.5
    assert Vip.wait(lambda: True, 5, "never") < 1.0
    with pytest.raises(DrillError, match="never held"):
        Vip.wait(lambda: False, 1.0, "never held", since=fault)  # its deadline is past already


def test_haproxy_timers_use_haproxy_defaults_and_units():
    t = timers.haproxy_timers("defaults\n    timeout connect 1500\nbackend apiserver\n    server a 1.2.3.4:1 check\n")
    assert (t.inter, t.fall, t.rise) == (2, 3, 2)
    assert t.timeout_connect == 1.5 and t.timeout_check == 1.5  # bare numbers are milliseconds
    assert timers.haproxy_time("250ms") == 0.25 and timers.haproxy_time("2m") == 120
    with pytest.raises(ValueError):
        timers.haproxy_timers("backend other\n    server a 1.2.3.4:1\n")


def test_vrrp_timers_follow_rfc_5798():
    conf = """vrrp_script chk {
    interval 3
    timeout 5
    fall 3
}
vrrp_instance v {
    priority 149
    advert_int 1
    unicast_peer {
        10.0.0.1
    }
}
"""
    t = timers.vrrp_timers(conf)
    assert t.skew == pytest.approx((256 - 149) / 256)
    assert t.master_down_interval == pytest.approx(3 + 107 / 256)
    assert t.script_detection_bound == 14
    assert timers.vrrp_timers("vrrp_instance v {\n priority 200\n}\n").master_down_interval == pytest.approx(3.21875)


def test_haproxy_maxconn_is_lowered_only_when_the_open_file_limit_cannot_hold_it():
    cfg = "global\n    maxconn 20000\n"
    assert maxconn_override(cfg, 524288) is None
    assert maxconn_override(cfg, 20000) == 9950
    assert maxconn_override("global\n", 1024) is None


def test_units_run_with_their_environment_as_systemd_reads_it():
    execs, env, files = unit_exec(
        '[Service]\nEnvironment="A=1" "B=two"\nEnvironmentFile=-/etc/x.env\nExecStart=/bin/x --y\n'
    )
    assert execs == ["/bin/x --y"] and env == {"A": "1", "B": "two"} and files == ["-/etc/x.env"]
    assert env_file("# c\nMODE=client\nNAME=a=b\n") == {"MODE": "client", "NAME": "a=b"}


def test_files_get_the_modes_the_program_installs_them_with():
    assert file_mode("/usr/local/sbin/x", b"#!/usr/bin/env bash\n") == 0o755
    assert file_mode("/etc/kubernetes/seoul-etcd-client.env", b"MODE=client\n") == 0o600
    assert file_mode("/etc/haproxy/haproxy.cfg", b"global\n") == 0o644


@pytest.mark.parametrize("name", ["systemctl", "kubeadm", "crictl"])
def test_shell_stand_ins_are_shellcheck_clean(name):
    shellcheck = require_tool("shellcheck")
    path = REPO / "drill" / "standins" / name
    proc = subprocess.run([shellcheck, "-S", "style", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout


def test_preflight_names_what_is_missing(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "root" in preflight()
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr("shutil.which", lambda *a, **k: None)
    assert "keepalived" in preflight() and "make test-tools" in preflight()


STEPS = {"1.1", "1.2", "1.3", "1.4", "2.1", "2.2", "2.3", "2.4", "3.1", "3.2", "3.3", "4.1", "4.2", "4.3", "4.4"}


def test_the_drill_passes_with_the_real_daemons(tmp_path):
    """`python -m drill` end to end: every step passes and every measured time is within its bound."""
    if not in_ci():
        pytest.skip("the drill (about 3 minutes, root) runs with CI=true; run it by hand with `make drill`")
    if os.geteuid() != 0:
        unavailable("the drill needs root (network namespaces)")
    if missing_tools():
        unavailable(f"the drill needs {', '.join(missing_tools())} (run `make test-tools`)")
    proc = subprocess.run(
        [sys.executable, "-m", "drill", "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=1500
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert proc.returncode == 0 and report["passed"], proc.stdout[-4000:] + proc.stderr[-2000:]
    steps = {s["id"]: s for s in report["steps"]}
    assert set(steps) == STEPS
    for step in steps.values():
        if step["seconds"] is not None and step["bound"] is not None:
            assert step["seconds"] <= step["bound"] + 1.0, step
    assert not list_lab_namespaces(), "the drill left network namespaces behind"


def list_lab_namespaces() -> list[str]:
    """Drill namespaces whose drill process is gone (another drill running now keeps its own)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    names = [line.split()[0] for line in out.splitlines() if line.startswith("seoul-drill-")]
    return [n for n in names if not os.path.exists(f"/proc/{n.split('-')[2]}")]
