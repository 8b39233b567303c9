"""Host scripts and rendered host files, checked by the real tools that read them."""

import subprocess
from pathlib import Path

import pytest

from model.schema import Hardening
from render.hosts import sshd_dropin
from tests.tools import REPO, require_tool

SCRIPTS = sorted((REPO / "scripts").glob("*.sh"))

# What CentOS Stream 9 ships after our drop-in (it sorts after 50-hardening.conf).
DISTRO_DROPIN = "UsePAM yes\nX11Forwarding yes\nPasswordAuthentication yes\n"


def test_there_are_scripts():
    assert len(SCRIPTS) >= 5


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_scripts_are_shellcheck_clean(script: Path):
    shellcheck = require_tool("shellcheck")
    proc = subprocess.run([shellcheck, "-x", "-S", "style", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_scripts_stop_on_first_error(script: Path):
    assert "set -euo pipefail" in script.read_text()


def effective_sshd_config(tmp_path: Path, dropin: str) -> dict[str, str]:
    """`sshd -t` then `sshd -T` on a main config that includes the drop-ins as CentOS does."""
    sshd = require_tool("sshd")
    keygen = require_tool("ssh-keygen")
    confd = tmp_path / "sshd_config.d"
    confd.mkdir()
    (confd / "50-hardening.conf").write_text(dropin)
    (confd / "50-redhat.conf").write_text(DISTRO_DROPIN)
    host_key = tmp_path / "host_ed25519"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    main = tmp_path / "sshd_config"
    main.write_text(f"Include {confd}/*.conf\nHostKey {host_key}\nPidFile none\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd -t insists on its privilege separation dir

    checked = subprocess.run([sshd, "-t", "-f", str(main)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    dumped = subprocess.run(
        [sshd, "-T", "-f", str(main), "-C", "user=deploy,host=ops,addr=127.0.0.1"],
        capture_output=True, text=True, check=True,
    )
    return dict(line.split(" ", 1) for line in dumped.stdout.splitlines() if " " in line)


def test_hardening_dropin_passes_sshd_and_wins_over_distro_defaults(tmp_path):
    effective = effective_sshd_config(tmp_path, sshd_dropin(Hardening()))
    assert effective["passwordauthentication"] == "no"
    assert effective["kbdinteractiveauthentication"] == "no"
    assert effective["permitrootlogin"] == "no"
    assert effective["x11forwarding"] == "no"
    assert effective["authenticationmethods"] == "publickey"
    assert effective["maxauthtries"] == "3"


def test_stage_style_relaxed_dropin_is_still_valid(tmp_path):
    relaxed = Hardening(ssh_password_authentication=True, permit_root_login=True)
    effective = effective_sshd_config(tmp_path, sshd_dropin(relaxed))
    assert effective["passwordauthentication"] == "yes"
    assert effective["permitrootlogin"] == "yes"
    assert effective["authenticationmethods"] == "any"
