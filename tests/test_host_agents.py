"""What the hosts run for observability, judged by the real tools.

The firewall: scripts/firewalld.sh, rendered for a host, runs against firewalld's own code
(`firewall-offline-cmd` edits the permanent config without a daemon) in a private mount
namespace whose /etc/firewalld is a scratch copy; the zone is read back with the same tool.
Fluent Bit on the hosts outside the cluster: see the section below.
"""

import configparser
import re
import shutil
import subprocess
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
import yaml

from model import load_config, releases
from model.schema import StackConfig
from offline.stackfile import read_stack_file
from render import hosts, logging, monitoring
from tests.network_checks import crd_schemas, object_problems
from tests.planning import run_plan
from tests.tools import REPO, require_shared, require_tool

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
    assert sources == [str(prod.network.node_cidr), str(prod.network.pod_cidr)]

    # A rule nobody asks for any more (an old source, a hand-made exception) goes on the next
    # run; nothing else changes.
    fw.run([fw.offline, "--zone=drop", "--add-rich-rule", rich_rule("192.0.2.7/32", "9100")])
    assert rich_rule("192.0.2.7/32", "9100") in fw.query("--zone=drop", "--list-rich-rules")
    fw.converge(env)
    assert {r for r in fw.query("--zone=drop", "--list-rich-rules") if r} == rules
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


# --- Fluent Bit on the hosts outside the cluster -----------------------------------------------
# No Debian package ships the fluent-bit binary (bookworm has none), so `fluent-bit --dry-run`
# cannot check the rendered config here; the tests below check what the real tools can: the
# install step with real gpg, the Service with kubernetes-validate, the repo file with Python's
# INI parser, and that both agents' shared sections are the same text.


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    run = run_plan(REPO / "Pulumi.seoul-prod.yaml", tmp_path_factory.mktemp("agents-prod"))
    assert run.returncode == 0, run.stderr
    return run


def sections(text: str) -> list[tuple[str, dict[str, str]]]:
    """Fluent Bit's classic config as (section, {key: value}) in order (comments skipped)."""
    found: list[tuple[str, dict[str, str]]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("["):
            found.append((stripped.strip("[]"), {}))
        else:
            name, _, value = stripped.partition(" ")
            found[-1][1][name] = value.strip()
    return found


def test_outside_hosts_ship_journal_and_audit_like_the_daemonset_to_logstash(plan, prod):
    outside = monitoring.external_hosts(prod)
    installs = {r["name"].removesuffix("-fluent-bit-install") for r in plan.json("plan.json")["resources"]
                if r["name"].endswith("-fluent-bit-install")}
    assert installs == {h.name for h in outside} and installs.isdisjoint(h.name for h in prod.kubernetes_nodes)

    values = yaml.safe_load((plan.out / "artifacts/helm/fluent-bit.yaml").read_text())["config"]
    daemonset = sections(values["inputs"] + values["filters"] + values["outputs"])
    logstash = yaml.safe_load((plan.out / "artifacts/k8s/logging/Logstash-logs.yaml").read_text())
    service = logstash["spec"]["services"][0]["service"]
    address = service["metadata"]["annotations"]["metallb.universe.tf/loadBalancerIPs"]
    port = str(service["spec"]["ports"][0]["port"])

    def without_db(section: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in section.items() if k != "DB"}

    for host in outside:
        conf = sections((plan.out / f"artifacts/hosts/{host.name}/etc/fluent-bit/seoul.conf").read_text())
        dropin = plan.out / f"artifacts/hosts/{host.name}/etc/systemd/system/fluent-bit.service.d/10-seoul.conf"
        assert dropin.read_text().splitlines()[-2:] == [
            "ExecStart=", "ExecStart=/opt/fluent-bit/bin/fluent-bit -c /etc/fluent-bit/seoul.conf"]
        inputs = [without_db(s) for kind, s in conf if kind == "INPUT"]
        assert inputs == [without_db(s) for kind, s in daemonset if kind == "INPUT" and s["Tag"].startswith("host.")]
        assert [s["Tag"] for s in inputs] == ["host.journal", "host.audit"]
        assert ("FILTER", {"Name": "record_modifier", "Match": "*", "Record": f"node {host.name}"}) in conf
        outputs = [s for kind, s in conf if kind == "OUTPUT"]
        ds_output = next(s for kind, s in daemonset if kind == "OUTPUT")
        assert outputs == [{**ds_output, "Host": address, "Port": port}]
        assert all(s["DB"].startswith("/var/lib/fluent-bit/") for kind, s in conf if kind == "INPUT")


def test_logstash_has_a_load_balancer_address_only_the_outside_hosts_may_use(plan, prod):
    logstash = yaml.safe_load((plan.out / "artifacts/k8s/logging/Logstash-logs.yaml").read_text())
    template = logstash["spec"]["services"][0]["service"]
    address = ip_address(template["metadata"]["annotations"]["metallb.universe.tf/loadBalancerIPs"])
    pool = yaml.safe_load((plan.out / "artifacts/k8s/metallb-system/IPAddressPool-load-balancers.yaml").read_text())
    bgp = yaml.safe_load((plan.out / "artifacts/k8s/_cluster/BGPConfiguration-default.yaml").read_text())
    # MetalLB may hand it out, and Calico announces it to the top-of-rack switches.
    assert any(address in ip_network(cidr) for cidr in pool["spec"]["addresses"])
    assert any(address in ip_network(c["cidr"]) for c in bgp["spec"]["serviceLoadBalancerIPs"])
    assert address not in {ip_network(c).network_address for c in pool["spec"]["addresses"]}
    assert template["spec"]["type"] == "LoadBalancer"
    assert template["spec"]["loadBalancerSourceRanges"] == [f"{h.address}/32" for h in monitoring.external_hosts(prod)]
    # The Service ECK builds from the template is a valid v1 Service (strict).
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": f"{logging.LOGSTASH}-ls-http", "namespace": logging.NAMESPACE,
                            **template["metadata"]},
               "spec": {**template["spec"], "selector": {"logstash.k8s.elastic.co/name": logging.LOGSTASH}}}
    assert object_problems(service, crd_schemas()) == []
    broken = {**service, "spec": {**service["spec"], "loadBalancerSourceRange": ["10.0.1.31/32"]}}
    assert object_problems(broken, crd_schemas())  # negative control: a misspelt key is refused


def test_the_repository_checks_signatures_with_the_key_the_install_step_verified(prod):
    file_set = logging.host_agent_install(prod, monitoring.external_hosts(prod)[0])
    repo_file = next(f for f in file_set.files if f.path == "/etc/yum.repos.d/fluent-bit.repo")
    parser = configparser.ConfigParser(comment_prefixes=("#",))
    parser.read_string(repo_file.content)
    env = file_set.apply.env
    repo = parser[env["REPO_ID"]]
    assert repo["gpgcheck"] == "1" and repo["repo_gpgcheck"] == "1" and repo["enabled"] == "1"
    assert repo["gpgkey"] == f"file://{env['KEY_FILE']}"  # never fetched by dnf itself
    assert repo["baseurl"].startswith("https://") and repo["exclude"] == "fluent-bit"
    assert re.fullmatch(r"[0-9A-F]{40}", env["KEY_FINGERPRINT"])
    assert env["VERSION"] == releases.FLUENT_BIT_VERSION


def test_host_agent_is_the_daemonsets_fluent_bit_version():
    chart = yaml.safe_load(require_shared(f"charts/fluent-bit-{releases.FLUENT_BIT.version}/Chart.yaml").read_text())
    assert chart["appVersion"] == releases.FLUENT_BIT_VERSION


@pytest.mark.parametrize("install", ["fluent-bit", "node-exporter"])
def test_install_steps_get_every_parameter_their_script_requires(prod, install):
    host = monitoring.external_hosts(prod)[0]
    file_set = logging.host_agent_install(prod, host) if install == "fluent-bit" else monitoring.node_exporter_install()
    step = file_set.apply
    text = (REPO / "scripts" / step.script).read_text()
    required = set(re.findall(r'"\$\{([A-Z_]+):\?\}"', text))
    assert required and required <= set(step.env), required - set(step.env)


# The install step's key check, with real gpg: throwaway keys stand in for Fluent Bit's (the
# pinned one is a parameter); curl, rpm, dnf and systemctl are shims that log their calls.
CALL_LOGGER = '#!/bin/sh\necho "$(basename "$0") $*" >> "$CALLS"\n'
CURL_SHIM = ('#!/bin/sh\necho "curl $*" >> "$CALLS"\n'
             'while [ $# -gt 1 ]; do [ "$1" = --output ] && cp "$KEY_SOURCE" "$2"; shift; done\n')
RPM_SHIM = '#!/bin/sh\necho "rpm $*" >> "$CALLS"\n[ "$1" = -q ] && exit 1\nexit 0\n'


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """Two throwaway signing keys: name -> (armoured public key file, fingerprint)."""
    gpg = require_tool("gpg")
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    made = {}
    for name in ("pinned", "other"):
        subprocess.run([gpg, "--homedir", str(home), "--batch", "--passphrase", "", "--quick-gen-key",
                        f"{name} <{name}@example.invalid>", "ed25519", "sign", "never"],
                       check=True, capture_output=True, timeout=60)
        listing = subprocess.run([gpg, "--homedir", str(home), "--with-colons", "--list-keys",
                                  f"{name}@example.invalid"], check=True, capture_output=True, text=True).stdout
        fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
        path = home / f"{name}.asc"
        path.write_bytes(subprocess.run([gpg, "--homedir", str(home), "--armor", "--export", fingerprint],
                                        check=True, capture_output=True).stdout)
        made[name] = (path, fingerprint)
    return made


def run_install(tmp_path: Path, prod: StackConfig, key_source: Path,
                pinned: str) -> tuple[subprocess.CompletedProcess, list[str], Path]:
    """scripts/fluent-bit-install.sh with `key_source` served as the key and `pinned` as the fingerprint:
    (the run, the shims' calls, where the key file would be)."""
    shims = tmp_path / "bin"
    shims.mkdir()
    for name, text in {"curl": CURL_SHIM, "rpm": RPM_SHIM, "dnf": CALL_LOGGER, "systemctl": CALL_LOGGER}.items():
        (shims / name).write_text(text)
        (shims / name).chmod(0o755)
    env = dict(logging.host_agent_install(prod, monitoring.external_hosts(prod)[0]).apply.env)
    key_file = tmp_path / "rpm-gpg/RPM-GPG-KEY-fluent-bit"
    env.update(KEY_FINGERPRINT=pinned, KEY_FILE=str(key_file), STATE_DIR=str(tmp_path / "state"))
    calls = tmp_path / "calls"
    calls.touch()
    proc = subprocess.run(["bash", str(REPO / "scripts/fluent-bit-install.sh")], capture_output=True, text=True,
                          timeout=60, env={**env, "PATH": f"{shims}:/usr/sbin:/usr/bin:/sbin:/bin",
                                           "CALLS": str(calls), "KEY_SOURCE": str(key_source)})
    return proc, calls.read_text().splitlines(), key_file


def test_install_imports_the_key_only_when_it_is_the_pinned_one(tmp_path, prod, keys):
    key, fingerprint = keys["pinned"]
    proc, calls, key_file = run_install(tmp_path, prod, key, fingerprint)
    assert proc.returncode == 0, proc.stderr
    assert key_file.read_bytes() == key.read_bytes()
    assert calls[0].startswith("curl ") and releases.FLUENT_BIT_KEY_URL in calls[0]
    version = releases.FLUENT_BIT_VERSION
    assert calls[1:] == [f"rpm --import {key_file}", "rpm -q --queryformat %{VERSION} fluent-bit",
                         f"dnf -y -q install --disableexcludes=fluent-bit fluent-bit-{version}",
                         "systemctl daemon-reload", "systemctl enable fluent-bit.service",
                         "systemctl restart fluent-bit.service"]


@pytest.mark.parametrize("served", ["other", "both"])
def test_install_refuses_any_other_key_and_imports_nothing(tmp_path, prod, keys, served):
    pinned = keys["pinned"][1]
    source = keys["other"][0]
    if served == "both":  # the pinned key with another beside it is refused too
        source = tmp_path / "both.asc"
        source.write_bytes(keys["pinned"][0].read_bytes() + keys["other"][0].read_bytes())
    proc, calls, key_file = run_install(tmp_path, prod, source, pinned)
    assert proc.returncode == 1
    assert f"not the pinned {pinned}" in proc.stderr and keys["other"][1] in proc.stderr
    assert [c.split()[0] for c in calls] == ["curl"] and not key_file.exists()
