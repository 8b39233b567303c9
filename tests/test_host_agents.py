"""What the hosts run for observability, judged by the real tools.

The firewall: scripts/firewalld.sh, rendered for a host, runs against firewalld's own code
(`firewall-offline-cmd` edits the permanent config without a daemon) in a private mount
namespace whose /etc/firewalld is a scratch copy; the zone is read back with the same tool.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

from model import load_config
from model.schema import StackConfig
from offline.stackfile import read_stack_file
from render import hosts, monitoring
from tests.stacks import altered_stack, key
from tests.tools import REPO, require_tool

# firewall-cmd as scripts/firewalld.sh calls it, mapped onto firewall-offline-cmd: every
# change the script makes is permanent (`--permanent`), the reload has no daemon to load,
# the offline tool refuses `-q` on list options (it prints `success` on changes instead), and
# firewall-cmd turns ZONE_ALREADY_SET into a warning with status 0 (FirewallCommand's
# exception_handler in firewall/command.py) where the offline tool fails.
FIREWALL_CMD_SHIM = """\
#!/bin/bash
args=()
for arg in "$@"; do
  case "$arg" in
    --permanent|-q) ;;
    --reload) exit 0 ;;
    --set-default-zone=*)
      if [[ "$(firewall-offline-cmd --get-default-zone)" == "${arg#*=}" ]]; then exit 0; fi
      args+=("$arg") ;;
    *) args+=("$arg") ;;
  esac
done
exec firewall-offline-cmd "${args[@]}"
"""


def stack(path: Path) -> StackConfig:
    return load_config(read_stack_file(path).lookup)


@pytest.fixture(scope="module")
def prod() -> StackConfig:
    return stack(REPO / "Pulumi.seoul-prod.yaml")


def firewall_env(cfg: StackConfig, name: str) -> dict[str, str]:
    host = next(h for h in cfg.hosts if h.name == name)
    step = next(s for s in hosts.preparation(cfg, host).steps if s.step == "firewalld")
    return dict(step.env)


class OfflineFirewalld:
    """A scratch /etc/firewalld (the package's firewalld.conf, no zone edits yet) and shims."""

    def __init__(self, root: Path):
        self.offline = require_tool("firewall-offline-cmd")
        self.unshare = require_tool("unshare")
        self.etc = root / "etc-firewalld"
        self.etc.mkdir()
        conf = Path("/etc/firewalld/firewalld.conf")
        if conf.exists():
            shutil.copy(conf, self.etc / "firewalld.conf")
        self.shims = root / "bin"
        self.shims.mkdir()
        (self.shims / "firewall-cmd").write_text(FIREWALL_CMD_SHIM)
        (self.shims / "systemctl").write_text("#!/bin/sh\nexit 0\n")  # `enable --now firewalld`: no daemon here
        for shim in self.shims.iterdir():
            shim.chmod(0o755)

    def run(self, command: list[str], env: dict[str, str] | None = None) -> str:
        """`command` with /etc/firewalld bound to the scratch copy, in its own mount namespace."""
        wrapped = [self.unshare, "--mount", "bash", "-c", 'mount --bind "$0" /etc/firewalld && exec "$@"',
                   str(self.etc), *command]
        path = f"{self.shims}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        proc = subprocess.run(wrapped, env={"PATH": path, **(env or {})}, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def converge(self, env: dict[str, str]) -> str:
        return self.run(["bash", str(REPO / "scripts/firewalld.sh")], env)

    def query(self, *args: str) -> list[str]:
        return self.run([self.offline, *args]).split("\n")


def rich_rule(source: str, port: str) -> str:
    # firewalld's canonical form of the rule, as --list-rich-rules prints it.
    return f'rule family="ipv4" source address="{source}" port port="{port}" protocol="tcp" accept'


def test_metrics_ports_accepted_only_from_the_cluster_and_stale_sources_removed(tmp_path, prod):
    fw = OfflineFirewalld(tmp_path)
    env = firewall_env(prod, "etcd-1")
    fw.converge(env)

    assert fw.query("--get-default-zone") == ["drop", ""]
    open_ports = set(fw.query("--zone=drop", "--list-ports")[0].split())
    assert "22/tcp" in open_ports and "2379-2380/tcp" in open_ports
    assert "9100/tcp" not in open_ports  # not from anywhere ...
    rules = {r for r in fw.query("--zone=drop", "--list-rich-rules") if r}
    sources = monitoring.scrape_sources(prod)
    assert rules == {rich_rule(s, "9100") for s in sources}  # ... only from the cluster
    assert "10.0.1.31/32" not in sources  # etcd-1 itself is no Kubernetes node
    assert {"10.0.1.21/32", str(prod.network.pod_cidr)} <= set(sources)

    # A worker leaves the inventory: its rule goes on the next run, nothing else changes.
    gone = next(h for h in prod.kubernetes_nodes if h.has("worker"))
    smaller = stack(altered_stack(tmp_path, "seoul-prod", lambda c: c[key("hosts")].remove(
        next(h for h in c[key("hosts")] if h["name"] == gone.name))))
    fw.converge(firewall_env(smaller, "etcd-1"))
    after = {r for r in fw.query("--zone=drop", "--list-rich-rules") if r}
    assert after == rules - {rich_rule(f"{gone.address}/32", "9100")}
    assert set(fw.query("--zone=drop", "--list-ports")[0].split()) == open_ports


def test_a_control_plane_limits_each_exporter_port_and_trusts_the_pods(tmp_path, prod):
    fw = OfflineFirewalld(tmp_path)
    env = firewall_env(prod, "cp-1")
    assert set(env["METRICS_PORTS"].split()) == {"9100", "8405"}
    fw.converge(env)
    fw.converge(env)  # a re-run converges to the same zone
    rules = [r for r in fw.query("--zone=drop", "--list-rich-rules") if r]
    sources = monitoring.scrape_sources(prod)
    assert sorted(rules) == sorted(rich_rule(s, p) for s in sources for p in ("9100", "8405"))
    assert not {"9100/tcp", "8405/tcp"} & set(fw.query("--zone=drop", "--list-ports")[0].split())
    assert fw.query("--zone=trusted", "--list-sources")[0] == str(prod.network.pod_cidr)
