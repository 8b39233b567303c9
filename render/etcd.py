"""External etcd: member config file, systemd units, and the facts the scripts share.

Pure functions of the model. Paths and ports are defined here once; the
components pass them to scripts as `K=V` parameters.
"""

import re
from dataclasses import dataclass

import yaml

from model.schema import Host, StackConfig

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
UNIT_PATH = "/etc/systemd/system/etcd.service"

CERT_DAYS = 365
CERT_RENEW_DAYS = 90  # the monthly timer re-issues a certificate with less left than this
CA_DAYS = 3650

# sha256 of etcd-v<version>-linux-amd64.tar.gz from github.com/etcd-io/etcd/releases
# (cross-checked against kubespray's checksums.yml). A version bump in the stack
# config without a reviewed checksum here stops the run before anything is touched.
ARCHIVE_SHA256 = {
    "3.5.12": "f2ff0cb43ce119f55a85012255609b61c64263baea83aa7c8e6846c0938adca5",
}

# TLS 1.2 suites with forward secrecy and AEAD; TLS 1.3 suites are not configurable.
CIPHER_SUITES = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
]


class UnknownEtcdReleaseError(ValueError):
    pass


@dataclass(frozen=True)
class Archive:
    url: str
    sha256: str


def archive(cfg: StackConfig) -> Archive:
    version = cfg.etcd.version
    if version not in ARCHIVE_SHA256:
        raise UnknownEtcdReleaseError(
            f"etcd.version: {version!r}: no reviewed sha256 for this release in render/etcd.py "
            "ARCHIVE_SHA256; add it from the release's SHA256SUMS before deploying"
        )
    return Archive(
        url=f"https://github.com/etcd-io/etcd/releases/download/v{version}/etcd-v{version}-linux-amd64.tar.gz",
        sha256=ARCHIVE_SHA256[version],
    )


def members(cfg: StackConfig) -> list[Host]:
    """Etcd members by name (inventory order never changes anything), `etcd.caMember` first."""
    return cfg.bootstrap_order("etcd", cfg.etcd.ca_member)


def peer_url(host: Host) -> str:
    return f"https://{host.address}:{PEER_PORT}"


def client_url(host: Host) -> str:
    return f"https://{host.address}:{CLIENT_PORT}"


def client_endpoints(cfg: StackConfig) -> list[str]:
    return [client_url(h) for h in members(cfg)]


def initial_cluster(cfg: StackConfig) -> str:
    return ",".join(f"{h.name}={peer_url(h)}" for h in members(cfg))


def cluster_token(cfg: StackConfig) -> str:
    return f"seoul-{cfg.environment}-etcd"


# Keys that only matter on a member's very first start (etcd ignores them once the
# data dir holds a member). A change to them alone must not restart running members.
BOOTSTRAP_ONLY_KEYS = ("initial-cluster", "initial-cluster-state", "initial-cluster-token")


def config(cfg: StackConfig, host: Host) -> dict:
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


def config_yaml(cfg: StackConfig, host: Host) -> str:
    header = (
        f"# etcd member {host.name}: rendered by seoul-cluster (render/etcd.py). Do not edit.\n"
        "# initial-cluster* keys are read only on the first start of an empty data dir.\n"
    )
    body = yaml.safe_dump(config(cfg, host), sort_keys=False, default_flow_style=False, width=1000)
    # Quote the member list as operators (and the policy pack) read it: one string.
    members_line = f"initial-cluster: {initial_cluster(cfg)}\n"
    assert members_line in body
    return header + body.replace(members_line, f'initial-cluster: "{initial_cluster(cfg)}"\n')


def restart_fingerprint(cfg: StackConfig, host: Host) -> str:
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


def snapshot_service() -> str:
    return f"""\
[Unit]
Description=Save an etcd snapshot to {SNAPSHOT_DIR}
After=etcd.service
# Only while etcd runs; never start a stopped (e.g. removed) member for a snapshot.
Requisite=etcd.service

[Service]
Type=oneshot
Environment=SNAPSHOT_DIR={SNAPSHOT_DIR} SNAPSHOT_KEEP={SNAPSHOT_KEEP} BIN_DIR={BIN_DIR}
Environment=CA_CERT={CA_CERT} CERT={MEMBER_CERT} KEY={MEMBER_KEY} ENDPOINT=https://127.0.0.1:{CLIENT_PORT}
ExecStart=/usr/local/sbin/seoul-etcd-snapshot
Nice=10
IOSchedulingClass=idle
"""


def snapshot_timer() -> str:
    return """\
[Unit]
Description=Hourly etcd snapshot

[Timer]
OnCalendar=hourly
RandomizedDelaySec=300
Persistent=true

[Install]
WantedBy=timers.target
"""


def cert_env(host: Host) -> dict[str, str]:
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


def cert_renew_service(env_path: str) -> str:
    return f"""\
[Unit]
Description=Re-issue this etcd member's certificate when it nears expiry

[Service]
Type=oneshot
EnvironmentFile={env_path}
ExecStart=/usr/local/sbin/seoul-etcd-certs
"""


def cert_renew_timer(index: int) -> str:
    return f"""\
[Unit]
Description=Monthly etcd certificate check and renewal

[Timer]
OnCalendar={weekly_slot(index)}
Persistent=true

[Install]
WantedBy=timers.target
"""


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
