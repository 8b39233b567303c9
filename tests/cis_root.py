"""A host's root filesystem as the program would leave it, built offline for OpenSCAP.

`build_root` lays out, in this order (later layers win):
1. minimal stock CentOS Stream 9 files (tests/fixtures/centos-stream-9, each names its package);
2. every file the offline plan puts on the host (`artifacts/hosts/<host>/...`);
3. the effects of the project's scripts that can be stated precisely, with the parameters
   the plan gives them (`plan.json`):
   - selinux.sh: `SELINUX=<SELINUX_MODE>` in /etc/selinux/config (its sed);
   - firewalld.sh: `DefaultZone=<DEFAULT_ZONE>` in /etc/firewalld/firewalld.conf (what
     `firewall-cmd --set-default-zone` writes);
   - apply-kernel.sh: the values systemd-sysctl leaves (every sysctl.d file in the order
     systemd-analyze cat-config prints, last value winning) are returned for the caller to
     check; OpenSCAP cannot read them offline;
   - the packages the host's scripts install with dnf, plus a minimal base, recorded in an
     rpm database (`rpm --initdb`, then `rpm -i --justdb` of empty generated packages), so
     package-gated rules are evaluated rather than passing vacuously.
   Not emulated: `systemctl enable` (OpenSCAP's unit probes ask systemd over D-Bus, which
   an offline root does not have), swap, kernel modules actually loaded, files scripts
   write that no CIS rule reads.
"""

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from tests.tools import REPO

STOCK = REPO / "tests/fixtures/centos-stream-9"

# A minimal CentOS Stream 9 install (what the @core group brings that CIS rules ask about).
BASE_PACKAGES = (
    "setup", "bash", "centos-stream-release", "systemd", "kernel", "grub2-common", "sudo",
    "openssh-server", "libselinux", "selinux-policy-targeted", "pam", "crypto-policies",
    "audit-libs", "dnf", "procps-ng",
)

_DNF_LINE = re.compile(r"^\s*dnf\b[^\n]*\binstall\b([^\n<]*)", re.MULTILINE)
_ARRAY = re.compile(r"^\s*packages=\(([^)]*)\)", re.MULTILINE)


def commands(plan: dict, host: str) -> dict[str, dict]:
    """The host's remote commands in plan.json, by step name (`<host>-<step>` minus the host)."""
    prefix = f"{host}-"
    return {
        r["name"][len(prefix):]: r["inputs"]
        for r in plan["resources"]
        if r["type"] == "command:remote:Command" and r["name"].startswith(prefix)
    }


def script_env(create: str) -> dict[str, str]:
    """`sudo env K=V ... bash -s` -> {K: V}; {} for `sudo bash -s`."""
    words = shlex.split(create)
    return dict(w.split("=", 1) for w in words[2:-2]) if words[:2] == ["sudo", "env"] else {}


def installed_packages(plan: dict, host: str) -> list[str]:
    """Names every `dnf ... install` in the host's scripts installs (versions and options dropped)."""
    names: list[str] = []
    for inputs in commands(plan, host).values():
        text = (inputs.get("stdin") or "").replace("\\\n", " ")  # join continued lines
        if not inputs.get("create", "").endswith("bash -s"):
            continue
        env = script_env(inputs["create"])
        array = _ARRAY.search(text)
        for args in _DNF_LINE.findall(text):
            for word in shlex.split(args):
                if word == '${packages[@]}' and array:
                    words = shlex.split(array.group(1))
                elif word.startswith("-") or word.startswith("$"):
                    continue
                elif (var := re.search(r"\$\{?(\w+)", word)) and not env.get(var.group(1)):
                    continue  # pinned to a parameter this host's step does not get: guarded out
                else:
                    words = [word]
                names += [re.sub(r"-\$\{?\w+\}?$", "", w) for w in words if not w.startswith("-")]
    return list(dict.fromkeys(names))


def _spec(name: str) -> str:
    return (
        f"Name: {name}\nVersion: 1.0\nRelease: 1.el9\nSummary: stand-in for {name}\n"
        "License: none\nBuildArch: noarch\n\n%description\nstand-in\n\n%files\n"
    )


def build_packages(names: list[str], out: Path) -> dict[str, Path]:
    """Empty noarch packages named `names` (rpmbuild), for an rpm database that lists them."""
    rpmbuild = shutil.which("rpmbuild")
    assert rpmbuild, "rpmbuild is missing"
    built = {}
    for name in names:
        top = out / "build" / name
        (top / "SPECS").mkdir(parents=True, exist_ok=True)
        spec = top / "SPECS" / f"{name}.spec"
        spec.write_text(_spec(name))
        subprocess.run(
            [rpmbuild, "-bb", "--quiet", "--define", f"_topdir {top}", "--define", "_build_id_links none", str(spec)],
            check=True, capture_output=True,
        )
        [rpm] = (top / "RPMS" / "noarch").glob("*.rpm")
        built[name] = rpm
    return built


def record_packages(root: Path, rpms: list[Path]) -> list[str]:
    """An rpm database in root/var/lib/rpm listing `rpms` (metadata only); returns `rpm -qa`."""
    rpm = shutil.which("rpm")
    assert rpm, "rpm is missing"
    dbpath = ["--root", str(root), "--dbpath", "/var/lib/rpm"]
    subprocess.run([rpm, *dbpath, "--initdb"], check=True, capture_output=True)
    subprocess.run(
        [rpm, *dbpath, "-i", "--justdb", "--nodeps", "--noscripts", "--nosignature", "--nodigest",
         *map(str, rpms)],
        check=True, capture_output=True,
    )
    listed = subprocess.run([rpm, *dbpath, "-qa", "--qf", "%{NAME}\n"], check=True, capture_output=True, text=True)
    return sorted(listed.stdout.split())


def sysctl_files_in_order(root: Path, tool: str) -> list[tuple[str, str]]:
    """(path, text) of every sysctl.d file under `root` in the order systemd-sysctl applies them.

    The order is the one `systemd-analyze --root=<root> cat-config sysctl.d` prints (sysctl.d(5):
    files sorted by name across /etc, /run, /usr/local/lib, /usr/lib; a name in /etc hides the
    same name below it). CentOS links /etc/sysctl.conf in as /etc/sysctl.d/99-sysctl.conf.
    scripts/apply-kernel.sh runs systemd-sysctl too, so the running values are these.
    """
    out = subprocess.run(
        [tool, f"--root={root}", "--no-pager", "cat-config", "sysctl.d"],
        check=True, capture_output=True, text=True,
    ).stdout
    files: list[tuple[str, list[str]]] = []
    for line in out.splitlines():
        if line.startswith(f"# {root}/"):
            files.append((line[2 + len(str(root)):], []))
        elif files:
            files[-1][1].append(line)
    return [(path, "\n".join(lines)) for path, lines in files]


# Interfaces a glob like net.ipv4.conf.*.rp_filter reaches on every host.
CONF_INTERFACES = ("all", "default", "lo")


def effective_sysctls(files: list[tuple[str, str]]) -> dict[str, str]:
    """Key -> value after applying `files` in order: last assignment wins (sysctl.d(5)).

    Globs in the key are expanded over CONF_INTERFACES; a `-key` line with no value
    excludes that key from later globs (systemd 245+ syntax), `-key = value` ignores failures.
    """
    values: dict[str, str] = {}
    excluded: set[str] = set()
    for _, text in files:
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            key, sep, value = line.partition("=")
            key = key.strip().replace("/", ".")
            if key.startswith("-"):
                key = key[1:]
                if not sep:
                    excluded.add(key)
                    continue
            if "*" in key or "?" in key:
                targets = [key.replace("*", i).replace("?", i) for i in CONF_INTERFACES]
                targets = [t for t in targets if fnmatch.fnmatch(t, key) and t not in excluded]
            else:
                targets = [key]
            for target in targets:
                values[target] = value.strip()
    return values


def _copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, dirs_exist_ok=True, symlinks=True, ignore=shutil.ignore_patterns("README.md"))


def _set_line(path: Path, key: str, value: str) -> None:
    text = path.read_text()
    text, n = re.subn(rf"^{key}=.*$", f"{key}={value}", text, flags=re.MULTILINE)
    path.write_text(text if n else text + f"{key}={value}\n")


def build_root(plan_out: Path, host: str, root: Path, rpms: dict[str, Path], analyze: str) -> dict:
    """Lay out `root` for `host` from the plan in `plan_out`; returns what was emulated."""
    plan = json.loads((plan_out / "plan.json").read_text())
    _copy_tree(STOCK, root)
    (root / "etc/sysctl.d").mkdir(parents=True, exist_ok=True)  # git keeps no empty folder in the fixture
    (root / "etc/sysctl.d/99-sysctl.conf").symlink_to("../sysctl.conf")
    (root / "etc/ssh/sshd_config").chmod(0o600)  # as openssh-server ships it
    _copy_tree(plan_out / "artifacts/hosts" / host, root)

    steps = commands(plan, host)
    selinux = script_env(steps["selinux"]["create"])["SELINUX_MODE"]
    _set_line(root / "etc/selinux/config", "SELINUX", selinux)
    zone = script_env(steps["firewalld"]["create"])["DEFAULT_ZONE"]
    _set_line(root / "etc/firewalld/firewalld.conf", "DefaultZone", zone)

    # OpenSCAP 1.3.7's sysctl probe has no offline mode (the runtime half of each sysctl rule
    # is "not applicable"): the caller checks these values, what systemd-sysctl leaves.
    sysctls = effective_sysctls(sysctl_files_in_order(root, analyze))

    packages = list(dict.fromkeys([*BASE_PACKAGES, *installed_packages(plan, host)]))
    listed = record_packages(root, [rpms[p] for p in packages])
    return {"selinux": selinux, "zone": zone, "sysctls": sysctls, "packages": listed}
