"""External etcd: member config file, systemd units, and the facts the scripts share.

Pure functions of the model. Paths and ports are defined here once; the
components pass them to scripts as `K=V` parameters.
"""

import re

import yaml

from model import releases
from model.schema import HostSpec, StackConfig
from render.files import FileSet, HostFile, ScriptRun, digest, script, timer_unit, timers, unit_path

CLIENT_PORT = 2379
PEER_PORT = 2380
METRICS_PORT = 2381

CONF_PATH = "/etc/etcd/etcd.conf.yml"
PKI_DIR = "/etc/etcd/pki"
CA_CERT = f"{PKI_DIR}/ca.crt"
CA_KEY = f"{PKI_DIR}/ca.key"
# One key pair per member serves both the client (2379) and the peer (2380) listener:
# its certificate carries serverAuth and clientAuth and the member's IP and name as SANs.
MEMBER_CERT = f"{PKI_DIR}/member.crt"
MEMBER_KEY = f"{PKI_DIR}/member.key"
DATA_DIR = "/var/lib/etcd"  # the NVMe RAID mount on etcd hosts
SNAPSHOT_DIR = "/var/lib/etcd-snapshots"
SNAPSHOT_KEEP = 48  # hourly snapshots kept locally: two days
BIN_DIR = "/usr/local/bin"
UNIT_PATH = unit_path("etcd.service")
SNAPSHOT_SCRIPT = "/usr/local/sbin/seoul-etcd-snapshot"
CERTS_SCRIPT = "/usr/local/sbin/seoul-etcd-certs"
CERT_ENV_PATH = "/etc/etcd/certs.env"
# How long the health step waits for every member to answer healthy.
HEALTH_TIMEOUT_SECONDS = 600

CERT_DAYS = 365
CERT_RENEW_DAYS = 90  # the monthly timer re-issues a certificate with less left than this
CA_DAYS = 3650

# TLS 1.2 suites with forward secrecy and AEAD; TLS 1.3 suites are not configurable.
CIPHER_SUITES = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
]


def peer_url(host: HostSpec) -> str:
    return f"https://{host.address}:{PEER_PORT}"


def client_url(host: HostSpec) -> str:
    return f"https://{host.address}:{CLIENT_PORT}"


def client_endpoints(cfg: StackConfig) -> list[str]:
    return [client_url(h) for h in cfg.etcd_members]


def initial_cluster(cfg: StackConfig) -> str:
    return ",".join(f"{h.name}={peer_url(h)}" for h in cfg.etcd_members)


def cluster_token(cfg: StackConfig) -> str:
    return f"seoul-{cfg.environment}-etcd"


# Keys that only matter on a member's very first start (etcd ignores them once the
# data dir holds a member). A change to them alone must not restart running members.
BOOTSTRAP_ONLY_KEYS = ("initial-cluster", "initial-cluster-state", "initial-cluster-token")


def config(cfg: StackConfig, host: HostSpec) -> dict:
    """The member's config-file settings (etcd's YAML keys, as `etcd --config-file` reads them)."""
    tls = {
        "cert-file": MEMBER_CERT,
        "key-file": MEMBER_KEY,
        "client-cert-auth": True,
        "trusted-ca-file": CA_CERT,
        "auto-tls": False,
    }
    return {
        "name": host.name,
        "data-dir": DATA_DIR,
        "listen-peer-urls": peer_url(host),
        "listen-client-urls": f"{client_url(host)},https://127.0.0.1:{CLIENT_PORT}",
        "advertise-client-urls": client_url(host),
        "initial-advertise-peer-urls": peer_url(host),
        "initial-cluster": initial_cluster(cfg),
        "initial-cluster-token": cluster_token(cfg),
        "initial-cluster-state": "new",
        "client-transport-security": dict(tls),
        "peer-transport-security": dict(tls),
        "cipher-suites": CIPHER_SUITES,
        "listen-metrics-urls": f"http://127.0.0.1:{METRICS_PORT}",
        "metrics": "basic",
        "heartbeat-interval": 100,
        "election-timeout": 1000,
        "snapshot-count": 10000,
        # kube-apiserver compacts every 5 minutes; 8 GiB is etcd's recommended maximum.
        "quota-backend-bytes": 8 * 1024**3,
        "strict-reconfig-check": True,
        "pre-vote": True,
        "enable-v2": False,
        "enable-pprof": False,
        "experimental-initial-corrupt-check": True,
        "logger": "zap",
        "log-level": "info",
        "log-outputs": ["stderr"],
    }


def config_yaml(cfg: StackConfig, host: HostSpec) -> str:
    header = (
        f"# etcd member {host.name}: rendered by seoul-cluster (render/etcd.py). Do not edit.\n"
        "# initial-cluster* keys are read only on the first start of an empty data dir.\n"
    )
    body = yaml.safe_dump(config(cfg, host), sort_keys=False, default_flow_style=False, width=1000)
    # Quote the member list as operators (and the policy pack) read it: one string.
    members_line = f"initial-cluster: {initial_cluster(cfg)}\n"
    assert members_line in body
    return header + body.replace(members_line, f'initial-cluster: "{initial_cluster(cfg)}"\n')


def restart_fingerprint(cfg: StackConfig, host: HostSpec) -> str:
    """What, when changed, needs the member restarted: the config minus bootstrap-only keys."""
    settings = {k: v for k, v in config(cfg, host).items() if k not in BOOTSTRAP_ONLY_KEYS}
    return yaml.safe_dump(settings, sort_keys=True) + unit(cfg)


def unit(cfg: StackConfig) -> str:
    return f"""\
# Rendered by seoul-cluster (render/etcd.py), etcd {cfg.etcd.version}.
[Unit]
Description=etcd key-value store (Kubernetes external etcd)
Documentation=https://etcd.io/docs/v3.5/op-guide/configuration/
After=network-online.target local-fs.target time-sync.target
Wants=network-online.target
RequiresMountsFor={DATA_DIR}

[Service]
Type=notify
User=etcd
Group=etcd
ExecStart={BIN_DIR}/etcd --config-file {CONF_PATH}
Restart=always
RestartSec=5s
TimeoutStartSec=0
LimitNOFILE=65536
Nice=-10
IOSchedulingClass=best-effort
IOSchedulingPriority=0
NoNewPrivileges=true
ProtectSystem=full
ProtectHome=true
PrivateTmp=true
ReadWritePaths={DATA_DIR}

[Install]
WantedBy=multi-user.target
"""


def snapshot_service(host: HostSpec) -> str:
    """The snapshot unit; files are named `etcd-<inventory name>-<UTC time>.db`."""
    return f"""\
[Unit]
Description=Save an etcd snapshot to {SNAPSHOT_DIR}
After=etcd.service
# Only while etcd runs; never start a stopped (e.g. removed) member for a snapshot.
Requisite=etcd.service

[Service]
Type=oneshot
Environment=MEMBER={host.name} SNAPSHOT_DIR={SNAPSHOT_DIR} SNAPSHOT_KEEP={SNAPSHOT_KEEP} BIN_DIR={BIN_DIR}
Environment=CA_CERT={CA_CERT} CERT={MEMBER_CERT} KEY={MEMBER_KEY} ENDPOINT=https://127.0.0.1:{CLIENT_PORT}
ExecStart={SNAPSHOT_SCRIPT}
Nice=10
IOSchedulingClass=idle
"""


def snapshot_timer() -> str:
    return timer_unit("Hourly etcd snapshot", "hourly", "300")


def cert_env(host: HostSpec) -> dict[str, str]:
    """Parameters of scripts/etcd-certs.sh for a member's server+peer certificate."""
    return {
        "MODE": "member",
        "NAME": host.name,
        "IP": str(host.address),
        "CA_CERT": CA_CERT,
        "CA_KEY": CA_KEY,
        "CERT": MEMBER_CERT,
        "KEY": MEMBER_KEY,
        "OWNER": "etcd",
        "DAYS": str(CERT_DAYS),
        "RENEW_DAYS": str(CERT_RENEW_DAYS),
    }


def env_file(values: dict[str, str]) -> str:
    """A systemd EnvironmentFile; values are plain words (names, IPs, paths, numbers)."""
    for key, value in values.items():
        if not value or any(c in value for c in " \t\n\"'\\$`"):
            raise ValueError(f"{key}={value!r} is not a plain word")
    return "".join(f"{k}={v}\n" for k, v in values.items())


def weekly_slot(index: int) -> str:
    """Monthly calendar slot at 03:30, four days apart: distinct for up to 7 members."""
    day = 1 + (3 + 4 * index) % 28
    return f"*-*-{day:02d} 03:30:00"


def cert_renew_service() -> str:
    return f"""\
[Unit]
Description=Re-issue this etcd member's certificate when it nears expiry

[Service]
Type=oneshot
EnvironmentFile={CERT_ENV_PATH}
ExecStart={CERTS_SCRIPT}
"""


def cert_renew_timer(index: int) -> str:
    return timer_unit("Monthly etcd certificate check and renewal", weekly_slot(index))


def split_ca_bundle(bundle: str) -> tuple[str, str]:
    """(certificate PEM, private key PEM) from scripts/etcd-ca-export.sh output."""
    blocks = re.findall(r"-----BEGIN ([A-Z ]+)-----\n.*?\n-----END \1-----\n?", bundle, flags=re.DOTALL)
    starts = [m.start() for m in re.finditer(r"-----BEGIN ", bundle)]
    if len(blocks) != 2 or len(starts) != 2:
        # Under `pulumi preview` the bundle is unknown; an empty pair is never written.
        return "", ""
    first, second = bundle[starts[0] : starts[1]], bundle[starts[1] :]
    cert, key = (first, second) if "CERTIFICATE" in blocks[0] else (second, first)
    return cert.strip() + "\n", key.strip() + "\n"


# -- the steps components/etcd.py runs, in order -----------------------------------------


def install(cfg: StackConfig) -> ScriptRun:
    """Download the pinned release (checksum verified), create the etcd user and directories."""
    archive = releases.etcd_archive(cfg.etcd.version)
    return ScriptRun("etcd-install", "etcd-install.sh", {
        "ETCD_VERSION": cfg.etcd.version,
        "ETCD_URL": archive.url,
        "ETCD_SHA256": archive.sha256,
        "BIN_DIR": BIN_DIR,
        "DATA_DIR": DATA_DIR,
        "SNAPSHOT_DIR": SNAPSHOT_DIR,
        "PKI_DIR": PKI_DIR,
    })


def create_ca(cfg: StackConfig) -> ScriptRun:
    """Make the etcd CA on `etcd.caMember` (once: the script keeps an existing CA)."""
    return ScriptRun("etcd-ca", "etcd-ca.sh", {
        "CA_CERT": CA_CERT,
        "CA_KEY": CA_KEY,
        "CA_DAYS": str(CA_DAYS),
        "CA_CN": f"seoul-{cfg.environment}-etcd-ca",
    })


def export_ca() -> ScriptRun:
    """Print the CA certificate and key (a secret output) so the other members get copies."""
    return ScriptRun("etcd-ca-export", "etcd-ca-export.sh", {"CA_CERT": CA_CERT, "CA_KEY": CA_KEY})


def member_cert(host: HostSpec) -> ScriptRun:
    """Issue (or renew when near expiry) the member's server+peer certificate."""
    return ScriptRun("etcd-certs", "etcd-certs.sh", cert_env(host))


def member(cfg: StackConfig, host: HostSpec) -> FileSet:
    """Config and unit, then start (or restart) the member; removal takes it out of the cluster."""
    files = (
        HostFile("etcd-config", CONF_PATH, config_yaml(cfg, host)),
        HostFile("etcd-unit", UNIT_PATH, unit(cfg)),
    )
    others = [client_url(m) for m in cfg.etcd_members if m.name != host.name]
    env = {
        "NAME": host.name,
        "PEER_URL": peer_url(host),
        "CONF": CONF_PATH,
        "DATA_DIR": DATA_DIR,
        "CA_CERT": CA_CERT,
        "CERT": MEMBER_CERT,
        "KEY": MEMBER_KEY,
        "BIN_DIR": BIN_DIR,
        "OTHER_ENDPOINTS": ",".join(others),
        # Only what needs a restart: bootstrap-only keys change without restarting members.
        "FINGERPRINT": digest(restart_fingerprint(cfg, host)),
    }
    return FileSet(files, ScriptRun("etcd-start", "etcd-start.sh", env, delete_script="etcd-remove.sh"))


def maintenance(cfg: StackConfig, host: HostSpec) -> FileSet:
    """Hourly snapshots kept locally and the monthly certificate renewal, as timers."""
    index = [m.name for m in cfg.etcd_members].index(host.name)
    files = (
        HostFile("etcd-snapshot-script", SNAPSHOT_SCRIPT, script("etcd-snapshot.sh"), "0755"),
        HostFile("etcd-snapshot-service", unit_path("etcd-snapshot.service"), snapshot_service(host)),
        HostFile("etcd-snapshot-timer", unit_path("etcd-snapshot.timer"), snapshot_timer()),
        HostFile("etcd-certs-script", CERTS_SCRIPT, script("etcd-certs.sh"), "0755"),
        HostFile("etcd-certs-env", CERT_ENV_PATH, env_file(cert_env(host))),
        HostFile("etcd-certs-service", unit_path("etcd-certs-renew.service"), cert_renew_service()),
        HostFile("etcd-certs-timer", unit_path("etcd-certs-renew.timer"), cert_renew_timer(index)),
    )
    return timers("etcd-timers", files, ["etcd-snapshot.timer", "etcd-certs-renew.timer"])


def member_gone(host: HostSpec) -> ScriptRun:
    """Run on a live member: remove `host`, marked failed, from the cluster by its peer URL."""
    return ScriptRun("etcd-gone", "etcd-member-gone.sh", {
        "NAME": host.name,
        "PEER_URL": peer_url(host),
        "CA_CERT": CA_CERT,
        "CERT": MEMBER_CERT,
        "KEY": MEMBER_KEY,
        "BIN_DIR": BIN_DIR,
    })


def health(cfg: StackConfig) -> ScriptRun:
    """Wait until every member answers healthy; re-run when the member list changes."""
    endpoints = ",".join(client_endpoints(cfg))
    return ScriptRun("etcd-health", "etcd-health.sh", {
        "ENDPOINTS": endpoints,
        "CA_CERT": CA_CERT,
        "CERT": MEMBER_CERT,
        "KEY": MEMBER_KEY,
        "BIN_DIR": BIN_DIR,
        "TIMEOUT_SECONDS": str(HEALTH_TIMEOUT_SECONDS),
    }, triggers=(endpoints,))
