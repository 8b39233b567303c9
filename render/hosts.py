"""OS preparation and hardening of every host: the files, the steps that apply them, in order.

`preparation(cfg, host)` is the whole recipe; components/hosts.py only runs it.
"""

from dataclasses import dataclass

from model.schema import Hardening, HostSpec, StackConfig
from render import addons, network
from render.files import FileSet, HostFile, ScriptRun, digest

HEADER = "# Managed by seoul-cluster (Pulumi). Local edits are overwritten.\n"

SSHD_DROPIN = "/etc/ssh/sshd_config.d/50-hardening.conf"
SYSCTL_HARDENING = "/etc/sysctl.d/90-hardening.conf"
SYSCTL_KUBERNETES = "/etc/sysctl.d/91-kubernetes.conf"
MODULES_KUBERNETES = "/etc/modules-load.d/kubernetes.conf"
CHRONY_CONF = "/etc/chrony.conf"
JOURNALD_DROPIN = "/etc/systemd/journald.conf.d/50-seoul.conf"
AUDIT_RULES = "/etc/audit/rules.d/50-seoul.rules"


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def sshd_dropin(hardening: Hardening) -> str:
    # sshd keeps the first value it reads; this file sorts before 50-redhat.conf,
    # so it wins over the distribution's defaults.
    lines = [
        f"PasswordAuthentication {yes_no(hardening.ssh_password_authentication)}",
        f"KbdInteractiveAuthentication {yes_no(hardening.ssh_password_authentication)}",
        f"PermitRootLogin {yes_no(hardening.permit_root_login)}",
        "PubkeyAuthentication yes",
        "PermitEmptyPasswords no",
        "HostbasedAuthentication no",
        "IgnoreRhosts yes",
        "PermitUserEnvironment no",
        "X11Forwarding no",
        "AllowAgentForwarding no",
        "AllowTcpForwarding no",
        "MaxAuthTries 3",
        "MaxSessions 10",
        "MaxStartups 10:30:60",
        "LoginGraceTime 30",
        "ClientAliveInterval 300",
        "ClientAliveCountMax 2",
        "LogLevel VERBOSE",
    ]
    if not hardening.ssh_password_authentication:
        lines.insert(0, "AuthenticationMethods publickey")
    return HEADER + "\n".join(lines) + "\n"


def hardening_sysctls() -> str:
    settings = {
        "net.ipv4.conf.all.accept_redirects": 0,
        "net.ipv4.conf.default.accept_redirects": 0,
        "net.ipv4.conf.all.send_redirects": 0,
        "net.ipv4.conf.all.accept_source_route": 0,
        "net.ipv4.conf.all.log_martians": 1,
        "net.ipv4.icmp_echo_ignore_broadcasts": 1,
        "net.ipv4.tcp_syncookies": 1,
        "kernel.kptr_restrict": 2,
        "kernel.dmesg_restrict": 1,
        "fs.protected_hardlinks": 1,
        "fs.protected_symlinks": 1,
    }
    return HEADER + "".join(f"{k} = {v}\n" for k, v in settings.items())


def kubernetes_sysctls() -> str:
    settings = {
        "net.bridge.bridge-nf-call-iptables": 1,
        "net.bridge.bridge-nf-call-ip6tables": 1,
        "net.ipv4.ip_forward": 1,
        # Large clusters with many pods and log tailers run out of the defaults.
        "fs.inotify.max_user_watches": 1048576,
        "fs.inotify.max_user_instances": 8192,
        "vm.max_map_count": 262144,
    }
    return HEADER + "".join(f"{k} = {v}\n" for k, v in settings.items())


def kubernetes_modules() -> str:
    return HEADER + "overlay\nbr_netfilter\n"


def chrony_conf(ntp_servers: list[str]) -> str:
    servers = "".join(f"server {s} iburst\n" for s in ntp_servers)
    return (
        HEADER
        + servers
        + "driftfile /var/lib/chrony/drift\n"
        + "makestep 1.0 3\n"
        + "rtcsync\n"
        + "keyfile /etc/chrony.keys\n"
        + "leapsectz right/UTC\n"
        + "logdir /var/log/chrony\n"
    )


def journald_conf() -> str:
    # Persistent, bounded journal that the logging stack's collectors read.
    return (
        HEADER
        + "[Journal]\n"
        + "Storage=persistent\n"
        + "Compress=yes\n"
        + "SystemMaxUse=4G\n"
        + "MaxRetentionSec=14day\n"
        + "ForwardToSyslog=yes\n"
        + "RateLimitIntervalSec=30s\n"
        + "RateLimitBurst=10000\n"
    )


def audit_rules() -> str:
    watches = [
        "-w /etc/ssh/sshd_config -p wa -k sshd",
        "-w /etc/ssh/sshd_config.d/ -p wa -k sshd",
        "-w /etc/sudoers -p wa -k privilege",
        "-w /etc/sudoers.d/ -p wa -k privilege",
        "-w /etc/passwd -p wa -k identity",
        "-w /etc/shadow -p wa -k identity",
        "-w /etc/group -p wa -k identity",
        "-w /etc/selinux/ -p wa -k selinux",
        "-w /etc/kubernetes/ -p wa -k kubernetes",
        "-w /etc/etcd/ -p wa -k etcd",
        "-w /var/log/lastlog -p wa -k logins",
        "-a always,exit -F arch=b64 -S execve -F euid=0 -F auid>=1000 -F auid!=unset -k root-commands",
    ]
    return HEADER + "\n".join(watches) + "\n"


def tcp_ports(cfg: StackConfig, host: HostSpec) -> list[str]:
    """The only TCP ports a host accepts, by role."""
    ports = [str(cfg.ssh.port)]
    if host.is_kubernetes_node:
        ports += ["10250", *network.node_firewall(cfg)[0]]  # kubelet; Calico BGP and Typha
    if host.has("control-plane"):
        ports += ["6443", str(cfg.network.api_vip_port)]
    if host.has("etcd"):
        ports += ["2379-2380"]
    if host.has("ingress"):
        ports += [*(str(p) for p in addons.INGRESS_PORTS), str(addons.INGRESS_WEBHOOK_PORT)]
    if host.has("storage"):
        ports += ["3300", "6789", "6800-7300"]
    return list(dict.fromkeys(ports))


def udp_ports(cfg: StackConfig, host: HostSpec) -> list[str]:
    """The only UDP ports a host accepts: Calico's VXLAN between Kubernetes nodes, when in use."""
    return network.node_firewall(cfg)[1] if host.is_kubernetes_node else []


def protocols(cfg: StackConfig, host: HostSpec) -> list[str]:
    # Keepalived speaks VRRP (IP protocol 112) between control planes; Calico's IP-in-IP is protocol 4.
    found = ["vrrp"] if host.has("control-plane") else []
    return found + (network.node_firewall(cfg)[2] if host.is_kubernetes_node else [])


def trusted_sources(cfg: StackConfig, host: HostSpec) -> list[str]:
    # Pods reach their node (kubelet, DNS via host network) from the pod CIDR.
    return [str(cfg.network.pod_cidr)] if host.is_kubernetes_node else []


@dataclass(frozen=True)
class Preparation:
    """A host's preparation: `packages` first, then each file set and each step after it."""

    packages: ScriptRun
    file_sets: tuple[FileSet, ...]
    steps: tuple[ScriptRun, ...]


def _applied(step: str, script: str, files: list[HostFile], env: dict[str, str] | None = None) -> FileSet:
    # Re-run whenever a file it applies changes.
    return FileSet(tuple(files), ScriptRun(f"{step}-apply", script, env or {}, tuple(digest(f.content) for f in files)))


def _file(step: str, path: str, content: str, mode: str = "0644") -> HostFile:
    return HostFile(f"{step}-file", path, content, mode)


def file_sets(cfg: StackConfig, host: HostSpec) -> tuple[FileSet, ...]:
    """Every file OS preparation puts on `host`, grouped with the step that applies it."""
    kernel = [_file("sysctl-hardening", SYSCTL_HARDENING, hardening_sysctls())]
    if host.is_kubernetes_node:
        kernel += [
            _file("sysctl-kubernetes", SYSCTL_KUBERNETES, kubernetes_sysctls()),
            _file("modules", MODULES_KUBERNETES, kubernetes_modules()),
        ]
    return (
        _applied("sshd", "apply-sshd.sh", [_file("sshd", SSHD_DROPIN, sshd_dropin(cfg.hardening), "0600")]),
        _applied("chrony", "restart-service.sh", [_file("chrony", CHRONY_CONF, chrony_conf(cfg.network.ntp_servers))],
                 {"SERVICE": "chronyd"}),
        _applied("journald", "restart-service.sh", [_file("journald", JOURNALD_DROPIN, journald_conf())],
                 {"SERVICE": "systemd-journald"}),
        _applied("audit", "apply-audit.sh", [_file("audit", AUDIT_RULES, audit_rules(), "0600")]),
        _applied("kernel", "apply-kernel.sh", kernel),
    )


def preparation(cfg: StackConfig, host: HostSpec) -> Preparation:
    """Packages (pinned Kubernetes packages on nodes), hardening files, SELinux, firewalld."""
    packages = {}
    if host.is_kubernetes_node:
        packages = {"KUBERNETES_VERSION": cfg.kubernetes.version, "KUBERNETES_MINOR": cfg.kubernetes.minor}
    firewall = {
        "DEFAULT_ZONE": "drop",
        "TCP_PORTS": " ".join(tcp_ports(cfg, host)),
        "UDP_PORTS": " ".join(udp_ports(cfg, host)),
        "PROTOCOLS": " ".join(protocols(cfg, host)),
        "TRUSTED_SOURCES": " ".join(trusted_sources(cfg, host)),
    }
    return Preparation(
        packages=ScriptRun("packages", "prepare-os.sh", packages),
        file_sets=file_sets(cfg, host),
        steps=(
            ScriptRun("selinux", "selinux.sh", {"SELINUX_MODE": cfg.hardening.selinux}),
            ScriptRun("firewalld", "firewalld.sh", firewall),
        ),
    )
