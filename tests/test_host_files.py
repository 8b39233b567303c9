"""Host scripts and rendered host files, checked by the real tools that read them."""

import re
import subprocess
from pathlib import Path

import pytest

from model.schema import Hardening
from render import cis, hosts
from render.hosts import sshd_dropin
from tests.cis_root import effective_sysctls, sysctl_files_in_order
from tests.tools import REPO, require_tool

SCRIPTS = sorted((REPO / "scripts").glob("*.sh"))

# Hostile neighbours: what CentOS Stream 9 ships (50-redhat.conf) and what cloud-init writes
# when an image allows password login (50-cloud-init.conf), both beside our drop-in.
DISTRO_DROPIN = "UsePAM yes\nX11Forwarding yes\nPasswordAuthentication yes\n"
CLOUD_INIT_DROPIN = "PasswordAuthentication yes\nPermitRootLogin yes\nMaxAuthTries 10\n"


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


def effective_sshd_config(tmp_path: Path, dropin: str, name: str = Path(hosts.SSHD_DROPIN).name) -> dict[str, str]:
    """`sshd -t` then `sshd -T` on a main config that includes the drop-ins as CentOS does,
    our drop-in (as `name`) beside CentOS's 50-redhat.conf and cloud-init's 50-cloud-init.conf."""
    sshd = require_tool("sshd")
    keygen = require_tool("ssh-keygen")
    confd = tmp_path / "sshd_config.d"
    confd.mkdir()
    (confd / name).write_text(dropin)
    (confd / "50-redhat.conf").write_text(DISTRO_DROPIN)
    (confd / "50-cloud-init.conf").write_text(CLOUD_INIT_DROPIN)
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


def test_hardening_dropin_passes_sshd_and_wins_over_distro_and_cloud_init(tmp_path):
    effective = effective_sshd_config(tmp_path, sshd_dropin(Hardening()))
    assert effective["passwordauthentication"] == "no"
    assert effective["kbdinteractiveauthentication"] == "no"
    assert effective["permitrootlogin"] == "no"
    assert effective["x11forwarding"] == "no"
    assert effective["authenticationmethods"] == "publickey"
    assert effective["maxauthtries"] == "3"


def test_old_dropin_name_loses_to_cloud_init(tmp_path):
    """Negative control (issue 13): as 50-hardening.conf, cloud-init's file is read first."""
    effective = effective_sshd_config(tmp_path, sshd_dropin(Hardening()), name="50-hardening.conf")
    assert effective["passwordauthentication"] == "yes"
    assert effective["permitrootlogin"] == "yes"


def test_stage_style_relaxed_dropin_is_still_valid(tmp_path):
    relaxed = Hardening(ssh_password_authentication=True, permit_root_login=True)
    effective = effective_sshd_config(tmp_path, sshd_dropin(relaxed))
    assert effective["passwordauthentication"] == "yes"
    assert effective["permitrootlogin"] == "yes"
    assert effective["authenticationmethods"] == "any"


# --- every drop-in wins over what the distribution or a cloud image ships beside it (issue 13) ---
STOCK = REPO / "tests/fixtures/centos-stream-9"
NODE = ["worker"]
STORAGE = ["storage"]


def our_sysctls(roles: list) -> dict[str, str]:
    wanted = {k: str(v) for k, v in cis.sysctls_for(roles).items()}
    if "worker" in roles:
        wanted["net.bridge.bridge-nf-call-iptables"] = "1"
    return wanted


def sysctl_key(line: str) -> str:
    return line.lstrip("-").split("=")[0].strip()


def sysctl_tree(root: Path, roles: list, names: tuple[str, str] | None = None, only=lambda key: True) -> None:
    """CentOS's and a cloud image's sysctl files, ours beside them as `names` (default: ours)."""
    hardening, kubernetes = names or (hosts.SYSCTL_HARDENING, hosts.SYSCTL_KUBERNETES)
    files = {
        "usr/lib/sysctl.d/50-default.conf": (STOCK / "usr/lib/sysctl.d/50-default.conf").read_text(),
        # Cloud images put their own settings in /etc/sysctl.conf and in a 99- file.
        "etc/sysctl.conf": "net.ipv4.conf.all.accept_redirects = 1\nnet.ipv4.conf.all.send_redirects = 1\n"
        "net.ipv4.ip_forward = 0\nkernel.randomize_va_space = 1\n",
        "etc/sysctl.d/99-cloudimg.conf": "net.ipv4.conf.default.rp_filter = 2\nnet.ipv6.conf.all.accept_ra = 1\n"
        "net.ipv4.ip_forward = 0\n",
        hardening.lstrip("/"): hosts.hardening_sysctls(roles),
    }
    if "worker" in roles:
        files[kubernetes.lstrip("/")] = hosts.kubernetes_sysctls()
    for path, text in files.items():
        lines = [line for line in text.splitlines() if line.startswith("#") or only(sysctl_key(line))]
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("\n".join(lines) + "\n")
    (root / "etc/sysctl.d/99-sysctl.conf").symlink_to("../sysctl.conf")  # as CentOS ships it


@pytest.mark.parametrize("roles", [NODE, STORAGE], ids=["node", "storage"])
def test_sysctl_files_win_in_systemd_order(tmp_path, roles):
    """systemd-sysctl at boot: the files in the order `systemd-analyze cat-config` prints, last value wins."""
    analyze = require_tool("systemd-analyze")
    sysctl_tree(tmp_path, roles)
    effective = effective_sysctls(sysctl_files_in_order(tmp_path, analyze))
    wanted = our_sysctls(roles)
    assert {k: effective.get(k) for k in wanted} == wanted


def test_old_sysctl_names_lose_to_the_image(tmp_path):
    """Negative control: as 90-hardening.conf, /etc/sysctl.conf (99-sysctl.conf) comes later."""
    analyze = require_tool("systemd-analyze")
    sysctl_tree(tmp_path, NODE, names=("/etc/sysctl.d/90-hardening.conf", "/etc/sysctl.d/91-kubernetes.conf"))
    effective = effective_sysctls(sysctl_files_in_order(tmp_path, analyze))
    assert effective["net.ipv4.conf.all.accept_redirects"] == "1"
    assert effective["net.ipv4.ip_forward"] == "0"


def is_per_netns(key: str) -> bool:
    return key.startswith(("net.ipv4.", "net.ipv6."))


def applied_in_a_network_namespace(root: Path, keys: list[str], applier: str) -> dict[str, str]:
    """Run `applier` in a throwaway network and mount namespace over the sysctl tree at `root`,
    then read `keys` back. Only per-namespace keys (net.ipv4, net.ipv6) are in the tree, so
    nothing reaches this machine's kernel; /etc/sysctl.d, /usr/lib/sysctl.d and
    /etc/sysctl.conf are the tree's, bind-mounted over the real ones."""
    unshare = require_tool("unshare")
    require_tool("sysctl")
    script = "\n".join([
        "set -eu",
        f"mount --bind {root}/etc/sysctl.d /etc/sysctl.d",
        f"mount --bind {root}/usr/lib/sysctl.d /usr/lib/sysctl.d",
        f"mount --bind {root}/etc/sysctl.conf /etc/sysctl.conf",
        f"{applier} >&2",
        f"sysctl {' '.join(keys)}",
    ])
    proc = subprocess.run([unshare, "--net", "--mount", "sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return dict(line.split(" = ", 1) for line in proc.stdout.splitlines())


@pytest.mark.parametrize("roles", [NODE, STORAGE], ids=["node", "storage"])
def test_systemd_sysctl_applies_ours_last(tmp_path, roles):
    """systemd-sysctl itself (what scripts/apply-kernel.sh and the boot run) leaves our values."""
    require_tool("systemd-analyze")  # same package as systemd-sysctl
    sysctl_tree(tmp_path, roles, only=is_per_netns)
    wanted = {k: v for k, v in our_sysctls(roles).items() if is_per_netns(k)}
    assert applied_in_a_network_namespace(tmp_path, list(wanted), "/usr/lib/systemd/systemd-sysctl") == wanted


def test_procps_sysctl_system_lets_sysctl_conf_win(tmp_path):
    """Why apply-kernel.sh does not run `sysctl --system`: procps applies /etc/sysctl.conf last."""
    sysctl_tree(tmp_path, NODE, only=is_per_netns)
    effective = applied_in_a_network_namespace(tmp_path, ["net.ipv4.conf.all.accept_redirects"], "sysctl --system")
    assert effective["net.ipv4.conf.all.accept_redirects"] == "1"


def journald_settings(root: Path, name: str) -> dict[str, str]:
    analyze = require_tool("systemd-analyze")
    (root / "etc/systemd/journald.conf.d").mkdir(parents=True)
    (root / "etc/systemd/journald.conf").write_text((STOCK / "etc/systemd/journald.conf").read_text())
    (root / "etc/systemd/journald.conf.d" / name).write_text(hosts.journald_conf())
    # An image that keeps the journal in memory and away from syslog.
    hostile = "[Journal]\nStorage=volatile\nForwardToSyslog=no\n"
    (root / "etc/systemd/journald.conf.d/60-cloudimg.conf").write_text(hostile)
    out = subprocess.run([analyze, f"--root={root}", "--no-pager", "cat-config", "systemd/journald.conf"],
                         capture_output=True, text=True, check=True).stdout
    settings = {}
    for line in out.splitlines():  # systemd: main file, then drop-ins by name; the last value wins
        if "=" in line and not line.startswith(("#", ";")):
            k, _, v = line.partition("=")
            settings[k.strip()] = v.strip()
    return settings


def test_journald_dropin_wins(tmp_path):
    settings = journald_settings(tmp_path, Path(hosts.JOURNALD_DROPIN).name)
    assert settings["Storage"] == "persistent" and settings["ForwardToSyslog"] == "yes"
    assert settings["SystemMaxUse"] == "4G"


def test_old_journald_name_loses(tmp_path):
    assert journald_settings(tmp_path, "50-seoul.conf")["Storage"] == "volatile"


def modprobe_install(tmp_path: Path, name: str, module: str) -> str:
    """What `modprobe -n -v` would run to load `module` with our file (as `name`) beside an image's."""
    modprobe = require_tool("modprobe")
    confd = tmp_path / "modprobe.d"
    confd.mkdir()
    (confd / name).write_text(hosts.disabled_modules(2, STORAGE))
    (confd / "10-cloudimg.conf").write_text(f"install {module} /sbin/modprobe --ignore-install {module}\n")
    (tmp_path / "lib/modules/5.14.0").mkdir(parents=True)
    proc = subprocess.run([modprobe, "-d", str(tmp_path), "-S", "5.14.0", "-C", str(confd), "-n", "-v", module],
                          capture_output=True, text=True, check=True)
    return proc.stdout.strip()


@pytest.mark.parametrize("module", cis.modules_for(2, STORAGE))
def test_modprobe_install_false_wins(tmp_path, module):
    """modprobe uses the first `install` line it reads for a module: ours sorts first."""
    assert modprobe_install(tmp_path, Path(hosts.MODPROBE_CIS).name, module) == "install /bin/false"


def test_modprobe_later_file_loses(tmp_path):
    assert "--ignore-install" in modprobe_install(tmp_path, "99-seoul-cis.conf", "usb-storage")


def compiled_audit_rules(tmp_path: Path, immutable_name: str) -> list[str]:
    """The ruleset augenrules (auditd's own tool) compiles from rules.d, in a private mount namespace."""
    unshare = require_tool("unshare")
    require_tool("augenrules")
    rules_d = tmp_path / "audit/rules.d"
    rules_d.mkdir(parents=True)
    (rules_d / "audit.rules").write_text((STOCK / "etc/audit/rules.d/audit.rules").read_text())
    (rules_d / Path(hosts.AUDIT_RULES).name).write_text(hosts.audit_rules(2))
    (rules_d / immutable_name).write_text(hosts.audit_immutable())
    (rules_d / "90-agent.rules").write_text("-e 1\n")  # an image's agent that wants mutable rules
    script = f"set -eu\nmount --bind {tmp_path}/audit /etc/audit\naugenrules\n"
    proc = subprocess.run([unshare, "--mount", "sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    compiled = (tmp_path / "audit/audit.rules").read_text().splitlines()
    return [line for line in compiled if line and not line.startswith("#")]


def test_audit_rules_end_immutable(tmp_path):
    compiled = compiled_audit_rules(tmp_path, Path(hosts.AUDIT_IMMUTABLE).name)
    assert compiled[-1] == "-e 2"
    ours = [line for line in hosts.audit_rules(2).splitlines() if line.startswith("-")]
    assert set(ours) <= set(compiled) and len(ours) > 50


def test_immutable_rule_sorting_early_loses(tmp_path):
    assert compiled_audit_rules(tmp_path, "50-seoul-immutable.rules")[-1] == "-e 1"


def test_chrony_reads_only_our_file(tmp_path):
    """chronyd -p prints the configuration it would use: our servers, nothing included from beside it."""
    chronyd = require_tool("chronyd")
    conf = tmp_path / "chrony.conf"
    conf.write_text(hosts.chrony_conf(["10.0.0.1", "10.0.0.2"]))
    printed = subprocess.run([chronyd, "-p", "-f", str(conf)], capture_output=True, text=True, check=True).stdout
    assert [line for line in printed.splitlines() if line.startswith(("server", "pool", "peer"))] == [
        "server 10.0.0.1 iburst", "server 10.0.0.2 iburst"]
    assert not re.search(r"^(include|confdir|sourcedir)\b", printed, re.MULTILINE)
