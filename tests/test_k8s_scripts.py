"""Scripts of the Kubernetes core: shellcheck, strict mode, and the ones that can run here.

The certificate scripts run for real with openssl in a temp dir; the join script runs
against a stand-in `kubeadm` that records what it was given; the rest need systemd and
a cluster and are exercised on the hosts.
"""

import base64
import contextlib
import hashlib
import os
import re
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from model import load_config
from offline.stackfile import read_stack_file
from render import apivip, kubeadm
from tests.tools import REPO, require_loopback_ports, require_tool

K8S_SCRIPTS = [
    "admin-kubeconfig.sh",
    "apivip-install.sh",
    "apivip-start.sh",
    "apivip-stop.sh",
    "cert-expiry.sh",
    "check_apiserver.sh",
    "enable-units.sh",
    "disable-units.sh",
    "etcd-ca-export.sh",
    "etcd-ca.sh",
    "etcd-certs.sh",
    "etcd-health.sh",
    "etcd-install.sh",
    "etcd-member-gone.sh",
    "etcd-remove.sh",
    "etcd-snapshot.sh",
    "etcd-start.sh",
    "kube-certs-renew.sh",
    "kubeadm-init.sh",
    "kubeadm-join-token.sh",
    "kubeadm-join.sh",
    "kubeadm-reset.sh",
    "node-drain.sh",
    "node-gone.sh",
    "node-register.sh",
    "runtime-install.sh",
]
SCRIPTS = REPO / "scripts"


def run(script: str, env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPTS / script)],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def test_every_script_render_names_exists():
    used = set()
    for module in ("etcd", "apivip", "kubeadm", "certs", "runtime"):
        text = (REPO / "render" / f"{module}.py").read_text()
        used |= set(re.findall(r'"([a-z_-]+\.sh)"', text))
    assert used, "no script names found"
    assert used <= set(K8S_SCRIPTS), used - set(K8S_SCRIPTS)
    assert set(K8S_SCRIPTS) <= {p.name for p in SCRIPTS.glob("*.sh")}


@pytest.mark.parametrize("name", K8S_SCRIPTS)
def test_shellcheck_clean(name):
    shellcheck = require_tool("shellcheck")
    proc = subprocess.run(
        [shellcheck, "-x", "-S", "style", str(SCRIPTS / name)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("name", K8S_SCRIPTS)
def test_strict_mode_and_a_header_that_says_what_it_does(name):
    text = (SCRIPTS / name).read_text()
    lines = text.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert lines[1].startswith("# ") and len(lines[1]) > 20
    assert "set -euo pipefail" in text


# -- etcd certificates ---------------------------------------------------------------


@pytest.fixture
def ca(tmp_path) -> dict[str, str]:
    require_tool("openssl")
    env = {"CA_CERT": str(tmp_path / "ca.crt"), "CA_KEY": str(tmp_path / "ca.key")}
    proc = run("etcd-ca.sh", {**env, "CA_DAYS": "3650", "CA_CN": "test-etcd-ca"})
    assert proc.returncode == 0, proc.stderr
    return env


def x509(path: str, *args: str) -> str:
    openssl = require_tool("openssl")
    return subprocess.run([openssl, "x509", "-in", path, "-noout", *args], capture_output=True, text=True).stdout


def member_env(ca, tmp_path, ip="10.0.1.31", renew_days="90") -> dict[str, str]:
    return {
        **ca,
        "MODE": "member",
        "NAME": "etcd-1",
        "IP": ip,
        "CERT": str(tmp_path / "member.crt"),
        "KEY": str(tmp_path / "member.key"),
        "OWNER": str(os.geteuid()),
        "DAYS": "365",
        "RENEW_DAYS": renew_days,
    }


def test_etcd_ca_is_created_once_and_never_replaced(ca, tmp_path):
    before = Path(ca["CA_CERT"]).read_text()
    again = run("etcd-ca.sh", {**ca, "CA_DAYS": "3650", "CA_CN": "test-etcd-ca"})
    assert again.returncode == 0 and "exists" in again.stdout
    assert Path(ca["CA_CERT"]).read_text() == before
    assert stat.S_IMODE(Path(ca["CA_KEY"]).stat().st_mode) == 0o600
    assert "CA:TRUE" in x509(ca["CA_CERT"], "-text")


def test_etcd_ca_refuses_half_a_pair(tmp_path):
    require_tool("openssl")
    (tmp_path / "ca.crt").write_text("orphan")
    proc = run(
        "etcd-ca.sh",
        {"CA_CERT": str(tmp_path / "ca.crt"), "CA_KEY": str(tmp_path / "ca.key"), "CA_DAYS": "1", "CA_CN": "x"},
    )
    assert proc.returncode != 0 and "refusing" in proc.stderr


def test_member_certificate_is_issued_once_for_peers_and_clients(ca, tmp_path):
    env = member_env(ca, tmp_path)
    first = run("etcd-certs.sh", env)
    assert first.returncode == 0 and "issued" in first.stdout, first.stderr
    text = x509(env["CERT"], "-text")
    assert "TLS Web Server Authentication" in text and "TLS Web Client Authentication" in text
    assert "IP Address:10.0.1.31" in text and "DNS:etcd-1" in text and "IP Address:127.0.0.1" in text
    assert stat.S_IMODE(Path(env["KEY"]).stat().st_mode) == 0o600
    second = run("etcd-certs.sh", env)
    assert second.returncode == 0 and "is valid" in second.stdout


def test_member_certificate_is_reissued_when_the_address_changes_or_expiry_nears(ca, tmp_path):
    run("etcd-certs.sh", member_env(ca, tmp_path))
    serial = x509(str(tmp_path / "member.crt"), "-serial")
    moved = run("etcd-certs.sh", member_env(ca, tmp_path, ip="10.0.1.99"))
    assert "issued" in moved.stdout and "IP Address:10.0.1.99" in x509(str(tmp_path / "member.crt"), "-text")
    due = run("etcd-certs.sh", member_env(ca, tmp_path, ip="10.0.1.99", renew_days="400"))
    assert "issued" in due.stdout
    assert x509(str(tmp_path / "member.crt"), "-serial") != serial


def test_client_certificate_is_for_clients_only(ca, tmp_path):
    env = {**member_env(ca, tmp_path), "MODE": "client", "NAME": kubeadm.ETCD_CLIENT_CN}
    assert run("etcd-certs.sh", env).returncode == 0
    text = x509(env["CERT"], "-text")
    assert "TLS Web Client Authentication" in text and "TLS Web Server Authentication" not in text
    assert f"CN = {kubeadm.ETCD_CLIENT_CN}" in x509(env["CERT"], "-subject")


def test_certificates_need_the_ca_first(tmp_path):
    require_tool("openssl")
    env = member_env({"CA_CERT": str(tmp_path / "none.crt"), "CA_KEY": str(tmp_path / "none.key")}, tmp_path)
    proc = run("etcd-certs.sh", env)
    assert proc.returncode != 0 and "missing" in proc.stderr


def test_ca_export_prints_a_matching_pair_or_nothing(ca, tmp_path):
    out = run("etcd-ca-export.sh", ca)
    assert out.returncode == 0
    assert out.stdout.count("-----BEGIN") == 2 and "PRIVATE KEY" in out.stdout
    other = tmp_path / "other"
    other.mkdir()
    run("etcd-ca.sh", {"CA_CERT": str(other / "ca.crt"), "CA_KEY": str(other / "ca.key"), "CA_DAYS": "1", "CA_CN": "o"})
    mixed = run("etcd-ca-export.sh", {"CA_CERT": ca["CA_CERT"], "CA_KEY": str(other / "ca.key")})
    assert mixed.returncode != 0 and mixed.stdout == ""


# -- certificate expiry export -------------------------------------------------------

METRIC = re.compile(r'^seoul_cert_expiry_timestamp_seconds\{path="[^"]+",subject="[^"]*"\} \d+$')


def test_cert_expiry_writes_a_prometheus_textfile(ca, tmp_path):
    run("etcd-certs.sh", member_env(ca, tmp_path))
    client_pem = Path(ca["CA_CERT"]).read_bytes()
    kubeconfig = tmp_path / "admin.conf"
    kubeconfig.write_text(
        yaml.safe_dump(
            {"users": [{"name": "a", "user": {"client-certificate-data": base64.b64encode(client_pem).decode()}}]}
        )
    )
    out = tmp_path / "textfile" / "cert_expiry.prom"
    proc = run("cert-expiry.sh", {"OUTPUT": str(out), "CERT_DIRS": str(tmp_path), "KUBECONFIGS": str(kubeconfig)})
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    samples = [line for line in lines if not line.startswith("#")]
    series = [line for line in samples if line.startswith("seoul_cert_expiry_timestamp_seconds{")]
    assert all(METRIC.match(line) for line in series), series
    paths = {re.search(r'path="([^"]+)"', line).group(1) for line in series}
    assert {ca["CA_CERT"], str(tmp_path / "member.crt"), str(kubeconfig)} <= paths
    assert not any("key" in Path(p).name for p in paths)
    assert any(line.startswith("seoul_cert_expiry_last_run_timestamp_seconds ") for line in samples)
    assert "# TYPE seoul_cert_expiry_timestamp_seconds gauge" in lines
    assert not list(out.parent.glob("*.prom.*")), "temporary files left behind"


def test_cert_expiry_follows_the_kubelet_client_link_and_skips_what_is_never_renewed(ca, tmp_path):
    pki = tmp_path / "kubelet" / "pki"
    pki.mkdir(parents=True)
    dated = pki / "kubelet-client-2026-01-01-00-00-00.pem"
    dated.write_bytes(Path(ca["CA_CERT"]).read_bytes())
    (pki / "kubelet-client-current.pem").symlink_to(dated.name)
    (pki / "kubelet.crt").write_bytes(Path(ca["CA_CERT"]).read_bytes())
    out = tmp_path / "cert_expiry.prom"
    proc = run("cert-expiry.sh", {"OUTPUT": str(out), "CERT_DIRS": str(pki), "KUBECONFIGS": ""})
    assert proc.returncode == 0, proc.stderr
    paths = set(re.findall(r'path="([^"]+)"', out.read_text()))
    assert paths == {str(pki / "kubelet-client-current.pem")}


# -- kubeadm join --------------------------------------------------------------------

TOKEN = "abcdef.0123456789abcdef"
HASH = "sha256:" + "a" * 64
CERT_KEY = "0f" * 32


@pytest.fixture
def fake_kubeadm(tmp_path) -> Path:
    """A `kubeadm` that records its argv and the config it was handed."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "kubeadm"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        'printf "%s\\n" "$@" >"$FAKE_OUT/argv"\n'
        'while [[ $# -gt 0 ]]; do if [[ $1 == --config ]]; then cp "$2" "$FAKE_OUT/config"; '
        'stat -c %a "$2" >"$FAKE_OUT/mode"; fi; shift; done\n'
    )
    fake.chmod(0o755)
    return bin_dir


def join(tmp_path, fake_kubeadm, node: str, secrets: str) -> tuple[subprocess.CompletedProcess, Path]:
    cfg = load_config(read_stack_file(REPO / "Pulumi.seoul-prod.yaml").lookup)
    host = next(h for h in cfg.hosts if h.name == node)
    template = tmp_path / "kubeadm-config.yaml"
    template.write_text(kubeadm.config_yaml(cfg, host))
    secret_file = tmp_path / "join.env"
    secret_file.write_text(secrets)
    secret_file.chmod(0o600)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    env = {
        "PATH": f"{fake_kubeadm}:{os.environ['PATH']}",
        "FAKE_OUT": str(out),
        "NODE_NAME": node,
        "CONFIG": str(template),
        "SECRETS_FILE": str(secret_file),
        "CONTROL_PLANE": str(host.has("control-plane")).lower(),
        "LOG": str(tmp_path / "log" / "join.log"),
        "KUBELET_CONF": str(tmp_path / "kubelet.conf"),
        "RUN_DIR": str(tmp_path),
    }
    proc = subprocess.run(["bash", str(SCRIPTS / "kubeadm-join.sh")], env=env, capture_output=True, text=True)
    return proc, out


def test_join_fills_the_template_in_a_private_file_and_removes_the_secrets(tmp_path, fake_kubeadm):
    proc, out = join(
        tmp_path, fake_kubeadm, "cp-2", f"TOKEN={TOKEN}\nCA_CERT_HASH={HASH}\nCERTIFICATE_KEY={CERT_KEY}\n"
    )
    assert proc.returncode == 0, proc.stderr
    config = yaml.safe_load((out / "config").read_text())
    assert config["discovery"]["bootstrapToken"]["token"] == TOKEN
    assert config["discovery"]["bootstrapToken"]["caCertHashes"] == [HASH]
    assert config["controlPlane"]["certificateKey"] == CERT_KEY
    assert (out / "mode").read_text().strip() == "600"
    argv = (out / "argv").read_text()
    assert TOKEN not in argv and CERT_KEY not in argv and argv.startswith("join\n--config\n")
    assert not (tmp_path / "join.env").exists(), "secrets file left on the node"
    assert not list(tmp_path.glob("seoul-join.*")), "filled config left on the node"
    assert TOKEN not in proc.stdout + proc.stderr


def test_worker_join_needs_no_certificate_key(tmp_path, fake_kubeadm):
    proc, out = join(tmp_path, fake_kubeadm, "worker-1", f"TOKEN={TOKEN}\nCA_CERT_HASH={HASH}\n")
    assert proc.returncode == 0, proc.stderr
    assert "controlPlane" not in yaml.safe_load((out / "config").read_text())


@pytest.mark.parametrize(
    "secrets",
    [
        f"TOKEN=not-a-token\nCA_CERT_HASH={HASH}\nCERTIFICATE_KEY={CERT_KEY}\n",
        f"TOKEN={TOKEN}\nCA_CERT_HASH=md5:abc\nCERTIFICATE_KEY={CERT_KEY}\n",
        f"TOKEN={TOKEN}\nCA_CERT_HASH={HASH}\n",
        f"TOKEN={TOKEN}$(touch /tmp/pwned)\nCA_CERT_HASH={HASH}\nCERTIFICATE_KEY={CERT_KEY}\n",
    ],
    ids=["bad-token", "bad-hash", "no-cert-key", "injection"],
)
def test_join_refuses_malformed_material_without_running_kubeadm(tmp_path, fake_kubeadm, secrets):
    proc, out = join(tmp_path, fake_kubeadm, "cp-2", secrets)
    assert proc.returncode != 0
    assert not (out / "argv").exists()


def test_join_is_a_no_op_on_a_joined_node(tmp_path, fake_kubeadm):
    (tmp_path / "kubelet.conf").write_text("joined")
    proc, out = join(tmp_path, fake_kubeadm, "worker-1", f"TOKEN={TOKEN}\nCA_CERT_HASH={HASH}\n")
    assert proc.returncode == 0 and "already joined" in proc.stdout
    assert not (out / "argv").exists()


def test_keepalived_check_script_is_what_keepalived_conf_calls():
    cfg = load_config(read_stack_file(REPO / "Pulumi.seoul-prod.yaml").lookup)
    conf = apivip.keepalived_conf(cfg, cfg.control_planes[0])
    assert f'script "{apivip.CHECK_SCRIPT} {apivip.APISERVER_PORT}"' in conf
    text = (SCRIPTS / "check_apiserver.sh").read_text()
    assert "/healthz" in text and "haproxy" in text


@pytest.mark.parametrize(
    "name", ["etcd-remove.sh", "apivip-stop.sh", "kubeadm-reset.sh", "node-drain.sh", "disable-units.sh"]
)
def test_delete_scripts_parse_when_passed_inline(name):
    """Deletes travel as `bash -c '<script>'`; the shell must parse them that way."""
    proc = subprocess.run(["bash", "-n", "-c", (SCRIPTS / name).read_text()], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_join_explains_empty_material_from_an_existing_node(tmp_path, fake_kubeadm):
    proc, out = join(tmp_path, fake_kubeadm, "worker-1", "# worker-1 is already a node of the cluster\n")
    assert proc.returncode != 0 and "already has a Node named worker-1" in proc.stderr
    assert not (out / "argv").exists()


# -- join material -------------------------------------------------------------------


@pytest.fixture
def fake_control_plane(tmp_path) -> tuple[Path, Path]:
    """`kubectl` that knows no node, and a `kubeadm` that mints fixed material and keeps the config."""
    bin_dir = tmp_path / "cp-bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text("#!/usr/bin/env bash\nexit 1\n")
    (bin_dir / "kubeadm").write_text(
        "#!/usr/bin/env bash\n"
        'printf "%s\\n" "$*" >>"$FAKE_OUT/calls"\n'
        'case "$1 $2" in\n'
        f'  "token create") echo {TOKEN} ;;\n'
        f'  "certs certificate-key") echo {CERT_KEY} ;;\n'
        '  "init phase") [[ -n ${FAKE_FAIL_UPLOAD:-} ]] && { echo "upload failed" >&2; exit 1; }\n'
        '    while [[ $# -gt 0 ]]; do [[ $1 == --config ]] && cp "$2" "$FAKE_OUT/config"; shift; done ;;\n'
        "esac\n"
    )
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    out = tmp_path / "cp-out"
    out.mkdir()
    return bin_dir, out


def mint(
    tmp_path, fake_control_plane, control_plane: bool, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess, Path, Path]:
    openssl = require_tool("openssl")
    bin_dir, out = fake_control_plane
    ca_key, ca_crt = tmp_path / "k8s-ca.key", tmp_path / "k8s-ca.crt"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(ca_key),
            "-out",
            str(ca_crt),
            "-subj",
            "/CN=kubernetes",
            "-days",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    cfg = load_config(read_stack_file(REPO / "Pulumi.seoul-prod.yaml").lookup)
    config = tmp_path / "init.yaml"
    config.write_text(kubeadm.config_yaml(cfg, cfg.init_node))
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_OUT": str(out),
        "NODE_NAME": "cp-2" if control_plane else "worker-1",
        "CONTROL_PLANE": str(control_plane).lower(),
        "TTL": "2h",
        "CONFIG": str(config),
        "CA_CRT": str(ca_crt),
        "RUN_DIR": str(tmp_path),
        **(extra_env or {}),
    }
    proc = subprocess.run(["bash", str(SCRIPTS / "kubeadm-join-token.sh")], env=env, capture_output=True, text=True)
    return proc, out, ca_crt


def spki_sha256(ca_crt: Path) -> str:
    """The pin as kubeadm's documentation computes it (a different openssl pipeline)."""
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout", "-in", str(ca_crt)], capture_output=True).stdout
    der = subprocess.run(["openssl", "rsa", "-pubin", "-outform", "der"], input=pub, capture_output=True).stdout
    return hashlib.sha256(der).hexdigest()


def test_control_plane_join_material_uploads_certs_with_the_printed_key(tmp_path, fake_control_plane):
    proc, out, ca_crt = mint(tmp_path, fake_control_plane, control_plane=True)
    assert proc.returncode == 0, proc.stderr
    material = dict(line.split("=", 1) for line in proc.stdout.splitlines())
    assert material == {"TOKEN": TOKEN, "CA_CERT_HASH": f"sha256:{spki_sha256(ca_crt)}", "CERTIFICATE_KEY": CERT_KEY}
    docs = list(yaml.safe_load_all((out / "config").read_text()))
    init = next(d for d in docs if d and d["kind"] == "InitConfiguration")
    assert init["certificateKey"] == CERT_KEY
    assert any(d and d["kind"] == "ClusterConfiguration" and "external" in d["etcd"] for d in docs)
    calls = (out / "calls").read_text()
    assert CERT_KEY not in calls and "--upload-certs" in calls and "--ttl 2h" in calls
    assert not list(tmp_path.glob("seoul-upload-certs.*")), "config copy with the key left behind"


def test_a_failed_mint_prints_no_material_and_revokes_the_token(tmp_path, fake_control_plane):
    """The provider copies a failed step's output into its error: nothing secret may be in it."""
    proc, out, _ = mint(tmp_path, fake_control_plane, control_plane=True, extra_env={"FAKE_FAIL_UPLOAD": "1"})
    assert proc.returncode != 0
    assert TOKEN not in proc.stdout + proc.stderr and CERT_KEY not in proc.stdout + proc.stderr
    assert f"token delete {TOKEN}" in (out / "calls").read_text()


def test_worker_join_material_has_no_certificate_key(tmp_path, fake_control_plane):
    proc, out, _ = mint(tmp_path, fake_control_plane, control_plane=False)
    assert proc.returncode == 0, proc.stderr
    assert set(dict(line.split("=", 1) for line in proc.stdout.splitlines())) == {"TOKEN", "CA_CERT_HASH"}
    assert "upload-certs" not in (out / "calls").read_text()


# -- etcd membership, for real: start, add, restart, remove -------------------------

FAKE_SYSTEMCTL = """#!/usr/bin/env bash
# Stand-in for systemctl on one etcd "host": runs $BIN_DIR/etcd in the background.
units=(); now=0; for a in "$@"; do case $a in --now) now=1 ;; --*) ;; *) units+=("$a") ;; esac; done
cmd=${units[0]}; units=("${units[@]:1}")
pidfile="$FAKE_STATE/etcd.pid"
alive() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
start() {
  alive || { "$BIN_DIR/etcd" --config-file "$FAKE_CONF" >>"$FAKE_STATE/etcd.log" 2>&1 & echo $! >"$pidfile"; }
}
stop() {
  if alive; then pid=$(cat "$pidfile"); kill "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done; fi
  rm -f "$pidfile"
}
has_etcd() { for u in "${units[@]}"; do [[ $u == etcd || $u == etcd.service ]] && return 0; done; return 1; }
case $cmd in
  is-active) has_etcd && alive ;;
  start) has_etcd && start ;;
  restart) has_etcd && { stop; start; } ;;
  stop) has_etcd && stop ;;
  disable) if ((now)) && has_etcd; then stop; fi ;;
  *) ;;
esac
"""


class EtcdHosts:
    """Loopback etcd "hosts" 127.0.0.1-5, each a folder with its config, certs and state."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        (self.bin / "systemctl").write_text(FAKE_SYSTEMCTL)
        (self.bin / "journalctl").write_text("#!/usr/bin/env bash\nexit 0\n")
        for tool in self.bin.iterdir():
            tool.chmod(0o755)
        self.etcd_bin = Path(require_tool("etcd")).parent
        assert (self.etcd_bin / "etcdctl").exists() or require_tool("etcdctl")
        self.ca = {"CA_CERT": str(tmp_path / "ca.crt"), "CA_KEY": str(tmp_path / "ca.key")}
        assert run("etcd-ca.sh", {**self.ca, "CA_DAYS": "2", "CA_CN": "test-ca"}).returncode == 0

    def cfg(self, count: int):
        from render import etcd as _etcd  # noqa: F401 - imported for the renderer below

        base = load_config(read_stack_file(REPO / "Pulumi.seoul-prod.yaml").lookup)
        data = base.model_dump(mode="json", by_alias=True)
        data["network"]["nodeCidr"] = "127.0.0.0/8"
        data["network"]["apiVip"] = "127.0.1.10"
        others = [h for h in data["hosts"] if "etcd" not in h["roles"]]
        for i, host in enumerate(others):
            host["address"] = f"127.0.2.{i + 1}"
        members = [{"name": f"etcd-{i}", "address": f"127.0.0.{i}", "roles": ["etcd"]} for i in range(1, count + 1)]
        data["hosts"] = others + members
        from model import StackConfig

        return StackConfig.model_validate(data)

    def home(self, name: str) -> Path:
        return self.tmp / name

    def env(self, cfg, name: str) -> dict[str, str]:
        from render import etcd as render_etcd
        from render.files import digest

        member = next(m for m in cfg.etcd_members if m.name == name)
        home = self.home(name)
        others = [render_etcd.client_url(m) for m in cfg.etcd_members if m.name != name]
        return {
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "BIN_DIR": str(self.etcd_bin),
            "FAKE_STATE": str(home),
            "FAKE_CONF": str(home / "etcd.conf.yml"),
            "NAME": name,
            "PEER_URL": render_etcd.peer_url(member),
            "CONF": str(home / "etcd.conf.yml"),
            "DATA_DIR": str(home / "data"),
            "CA_CERT": self.ca["CA_CERT"],
            "CERT": str(home / "member.crt"),
            "KEY": str(home / "member.key"),
            "OTHER_ENDPOINTS": ",".join(others),
            "FINGERPRINT": digest(render_etcd.restart_fingerprint(cfg, member)),
            "STAMP": str(home / "stamp"),
            "LOCAL_ENDPOINT": render_etcd.client_url(member),
        }

    def prepare(self, cfg, name: str) -> None:
        """What the Pulumi steps before etcd-start do: certificate and rendered config."""
        from render import etcd as render_etcd

        member = next(m for m in cfg.etcd_members if m.name == name)
        home = self.home(name)
        home.mkdir(exist_ok=True)
        cert_env = {
            **render_etcd.cert_env(member),
            **self.ca,
            "CERT": str(home / "member.crt"),
            "KEY": str(home / "member.key"),
            "OWNER": str(os.geteuid()),
        }
        assert run("etcd-certs.sh", cert_env).returncode == 0
        text = (
            render_etcd.config_yaml(cfg, member)
            .replace(render_etcd.MEMBER_CERT, str(home / "member.crt"))
            .replace(render_etcd.MEMBER_KEY, str(home / "member.key"))
            .replace(render_etcd.CA_CERT, self.ca["CA_CERT"])
            .replace(render_etcd.DATA_DIR, str(home / "data"))
        )
        # Five members share one loopback host: each listens on its own address only.
        text = text.replace(f",https://127.0.0.1:{render_etcd.CLIENT_PORT}", "")
        text = text.replace(f"http://127.0.0.1:{render_etcd.METRICS_PORT}", f"http://{member.address}:2381")
        (home / "etcd.conf.yml").write_text(text)

    def script(self, name: str, cfg, member: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(SCRIPTS / name)], env=self.env(cfg, member), capture_output=True, text=True, timeout=240
        )

    def members(self, cfg, via: str) -> list[list[str]]:
        env = self.env(cfg, via)
        out = subprocess.run(
            [
                str(self.etcd_bin / "etcdctl"),
                "--cacert",
                env["CA_CERT"],
                "--cert",
                env["CERT"],
                "--key",
                env["KEY"],
                "--endpoints",
                env["LOCAL_ENDPOINT"],
                "member",
                "list",
                "-w",
                "simple",
            ],
            env={**os.environ, "ETCDCTL_API": "3"},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0, out.stderr
        return [line.split(", ") for line in out.stdout.splitlines()]

    def stop_all(self) -> None:
        for pidfile in self.tmp.glob("etcd-*/etcd.pid"):
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pidfile.read_text()), 15)
        for pidfile in self.tmp.glob("etcd-*/etcd.pid"):
            for _ in range(100):
                try:
                    os.kill(int(pidfile.read_text()), 0)
                except (ProcessLookupError, ValueError):
                    break
                time.sleep(0.1)


def test_etcd_members_bootstrap_grow_restart_and_shrink_safely(tmp_path):
    """The start/health/remove scripts against real etcd members on loopback (systemctl faked):
    3 members bootstrap; 2 more join one at a time through `member add`; a settings change
    restarts one member; one member leaves through `member remove`; quorum holds throughout."""
    require_tool("openssl")
    require_tool("etcdctl")
    require_loopback_ports(5, (2379, 2380, 2381))
    hosts = EtcdHosts(tmp_path)
    try:
        three = hosts.cfg(3)
        for name in ("etcd-1", "etcd-2", "etcd-3"):
            hosts.prepare(three, name)
        for name in ("etcd-1", "etcd-2", "etcd-3"):  # chained, as the components run them
            proc = hosts.script("etcd-start.sh", three, name)
            assert proc.returncode == 0, proc.stdout + proc.stderr
        health_env = {
            **hosts.env(three, "etcd-1"),
            "ENDPOINTS": ",".join(hosts.env(three, n)["LOCAL_ENDPOINT"] for n in ("etcd-1", "etcd-2", "etcd-3")),
            "TIMEOUT_SECONDS": "60",
        }
        health = subprocess.run(
            ["bash", str(SCRIPTS / "etcd-health.sh")], env=health_env, capture_output=True, text=True, timeout=120
        )
        assert health.returncode == 0, health.stderr
        assert len(hosts.members(three, "etcd-1")) == 3

        # Running again changes nothing.
        again = hosts.script("etcd-start.sh", three, "etcd-2")
        assert again.returncode == 0 and "running with the current settings" in again.stdout

        # Grow to five: each new member is added, then started with the live member list.
        five = hosts.cfg(5)
        for name in ("etcd-4", "etcd-5"):
            hosts.prepare(five, name)
            proc = hosts.script("etcd-start.sh", five, name)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert f"adding {name}" in proc.stdout and "is healthy" in proc.stdout
            assert "initial-cluster-state: existing" in (hosts.home(name) / "etcd.conf.yml").read_text()
        listed = hosts.members(five, "etcd-1")
        assert sorted(m[2] for m in listed) == ["etcd-1", "etcd-2", "etcd-3", "etcd-4", "etcd-5"]
        assert all(m[1] == "started" for m in listed)

        # A settings change restarts a member only after checking the others, and waits for it.
        env = {**hosts.env(five, "etcd-2"), "FINGERPRINT": "changed-settings"}
        restart = subprocess.run(
            ["bash", str(SCRIPTS / "etcd-start.sh")], env=env, capture_output=True, text=True, timeout=240
        )
        assert restart.returncode == 0 and "is healthy" in restart.stdout, restart.stderr

        # Shrink: etcd-5 leaves through member remove; its data is kept aside.
        gone = hosts.script("etcd-remove.sh", five, "etcd-5")
        assert gone.returncode == 0 and "removed etcd member etcd-5" in gone.stdout, gone.stderr
        assert sorted(m[2] for m in hosts.members(five, "etcd-1")) == ["etcd-1", "etcd-2", "etcd-3", "etcd-4"]
        assert list(hosts.home("etcd-5").glob("data/member.removed-*"))
        assert not (hosts.home("etcd-5") / "data" / "member").exists()
    finally:
        hosts.stop_all()


def etcdctl(hosts: EtcdHosts, cfg, via: str, *args: str) -> subprocess.CompletedProcess:
    env = hosts.env(cfg, via)
    tls = ["--cacert", env["CA_CERT"], "--cert", env["CERT"], "--key", env["KEY"]]
    return subprocess.run(
        [str(hosts.etcd_bin / "etcdctl"), *tls, "--endpoints", env["LOCAL_ENDPOINT"], *args],
        env={**os.environ, "ETCDCTL_API": "3"}, capture_output=True, text=True, timeout=60,
    )


def started_three(hosts: EtcdHosts):
    """Three members prepared and started one after another, as the components run them."""
    three = hosts.cfg(3)
    for name in ("etcd-1", "etcd-2", "etcd-3"):
        hosts.prepare(three, name)
    for name in ("etcd-1", "etcd-2", "etcd-3"):
        proc = hosts.script("etcd-start.sh", three, name)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return three


def put_when_ready(hosts: EtcdHosts, cfg, key: str, value: str) -> None:
    """Write through etcd-1, waiting (bounded) while the third member settles into quorum."""
    for _ in range(30):
        if etcdctl(hosts, cfg, "etcd-1", "put", key, value).returncode == 0:
            return
        time.sleep(1)
    pytest.fail(f"could not write {key}")


def test_a_member_whose_data_was_wiped_rejoins_as_a_new_member(tmp_path):
    """Disk replaced or host reinstalled: the remove step finds no data, the start step
    removes the stale member through a survivor, adds it again and starts it `existing`;
    the cluster ends healthy with three members and every key (issue 13, fault 1)."""
    require_tool("openssl")
    require_tool("etcdctl")
    require_loopback_ports(3, (2379, 2380, 2381))
    hosts = EtcdHosts(tmp_path)
    try:
        three = started_three(hosts)
        keys = {f"/drill/key-{i}": f"value-{i}" for i in range(20)}
        for k, v in keys.items():
            put_when_ready(hosts, three, k, v)
        old_id = next(m[0] for m in hosts.members(three, "etcd-1") if m[2] == "etcd-3")

        # etcd-3's disk is replaced: the process dies, the data is gone, the member stays listed.
        stop = subprocess.run(["systemctl", "stop", "etcd"], env=hosts.env(three, "etcd-3"), timeout=60)
        assert stop.returncode == 0
        shutil.rmtree(hosts.home("etcd-3") / "data")
        hosts.prepare(three, "etcd-3")  # the config as rendered: initial-cluster-state new
        assert any(m[2] == "etcd-3" and m[1] == "started" for m in hosts.members(three, "etcd-1"))

        # `pulumi up --replace` on its start step: the delete, then the create.
        removed = hosts.script("etcd-remove.sh", three, "etcd-3")
        assert removed.returncode == 0 and "holds no data" in removed.stdout, removed.stderr
        started = hosts.script("etcd-start.sh", three, "etcd-3")
        assert started.returncode == 0, started.stdout + started.stderr
        assert "removing the stale member" in started.stdout and "adding etcd-3" in started.stdout
        assert "is healthy" in started.stdout

        listed = hosts.members(three, "etcd-1")
        assert sorted(m[2] for m in listed) == ["etcd-1", "etcd-2", "etcd-3"]
        assert all(m[1] == "started" for m in listed)
        assert next(m[0] for m in listed if m[2] == "etcd-3") != old_id
        for k, v in keys.items():  # served by etcd-3 itself, from its own rebuilt data
            got = etcdctl(hosts, three, "etcd-3", "get", k, "--consistency=s", "--print-value-only")
            assert got.returncode == 0 and got.stdout.strip() == v, (k, got.stdout, got.stderr)
    finally:
        hosts.stop_all()


def test_waiting_for_health_is_bounded_by_the_clock(tmp_path):
    """The wait says 120 s; it took 17 minutes when each try hung (60 tries of up to 17 s).
    With tries of 4 s and a 6 s bound, at most two tries fit, not sixty."""
    hosts = EtcdHosts(tmp_path)
    cfg = hosts.cfg(3)
    hosts.prepare(cfg, "etcd-1")
    (hosts.home("etcd-1") / "data" / "member").mkdir(parents=True)  # "has data": the restart path
    fake_etcd = tmp_path / "fake-bin"
    fake_etcd.mkdir()
    (fake_etcd / "etcd").write_text("#!/usr/bin/env bash\nexec sleep 600\n")
    tries = tmp_path / "tries"
    # Every health try hangs for 4 s, then fails; each one leaves a line in `tries`.
    (fake_etcd / "etcdctl").write_text(f"#!/usr/bin/env bash\necho try >>{tries}; sleep 4; exit 1\n")
    for tool in fake_etcd.iterdir():
        tool.chmod(0o755)
    env = {**hosts.env(cfg, "etcd-1"), "BIN_DIR": str(fake_etcd), "OTHER_ENDPOINTS": "", "HEALTHY_WITHIN": "6"}
    try:
        proc = subprocess.run(["bash", str(SCRIPTS / "etcd-start.sh")], env=env, capture_output=True, text=True,
                              timeout=120)
    finally:
        hosts.stop_all()
    assert proc.returncode != 0 and "did not become healthy within 6s" in proc.stderr
    assert 1 <= len(tries.read_text().splitlines()) <= 2


def test_a_failed_member_is_removed_through_a_survivor(tmp_path):
    """etcd-3's machine is dead: etcd-member-gone.sh on etcd-1 removes it by peer URL
    (issue 13, fault 2); the two survivors keep quorum and every key; a second run is a no-op."""
    require_tool("openssl")
    require_tool("etcdctl")
    require_loopback_ports(3, (2379, 2380, 2381))
    hosts = EtcdHosts(tmp_path)
    try:
        three = started_three(hosts)
        put_when_ready(hosts, three, "/drill/before", "kept")
        dead = subprocess.run(["systemctl", "stop", "etcd"], env=hosts.env(three, "etcd-3"), timeout=60)
        assert dead.returncode == 0

        dead_env = hosts.env(three, "etcd-3")
        env = {**hosts.env(three, "etcd-1"), "NAME": "etcd-3", "PEER_URL": dead_env["PEER_URL"]}
        for expected in ("removed failed etcd member etcd-3", "is not in the cluster"):
            proc = subprocess.run(["bash", str(SCRIPTS / "etcd-member-gone.sh")], env=env, capture_output=True,
                                  text=True, timeout=120)
            assert proc.returncode == 0 and expected in proc.stdout, proc.stdout + proc.stderr
        assert sorted(m[2] for m in hosts.members(three, "etcd-1")) == ["etcd-1", "etcd-2"]
        assert etcdctl(hosts, three, "etcd-2", "put", "/drill/after", "written").returncode == 0
        got = etcdctl(hosts, three, "etcd-2", "get", "/drill/before", "--print-value-only")
        assert got.stdout.strip() == "kept"
    finally:
        hosts.stop_all()
