"""OS preparation and hardening of every host: the files, the steps that apply them, in order.

`preparation(cfg, host)` is the whole recipe; components/hosts.py only runs it.
"""

from dataclasses import dataclass

from model.schema import Hardening, HostSpec, StackConfig
from render import addons, cis, monitoring, network
from render.files import FileSet, HostFile, ScriptRun, digest

HEADER = "# Managed by seoul-cluster (Pulumi). Local edits are overwritten.\n"

# Each drop-in must win over what the distribution or a cloud-init image ships beside it;
# the name decides, by each reader's rule (tests/test_host_files.py checks with the reader):
# sshd and modprobe's `install` keep the FIRST value, so theirs sort first; sysctl.d,
# journald.conf.d and augenrules' `-e` keep the LAST, so theirs sort last (after CentOS's
# /etc/sysctl.d/99-sysctl.conf). chrony.conf and auditd.conf have no drop-ins: we own them.
SSHD_DROPIN = "/etc/ssh/sshd_config.d/00-seoul-hardening.conf"
SYSCTL_HARDENING = "/etc/sysctl.d/99-zz-seoul-hardening.conf"
SYSCTL_KUBERNETES = "/etc/sysctl.d/99-zz-seoul-kubernetes.conf"
MODPROBE_CIS = "/etc/modprobe.d/00-seoul-cis.conf"
MODULES_KUBERNETES = "/etc/modules-load.d/kubernetes.conf"
CHRONY_CONF = "/etc/chrony.conf"
JOURNALD_DROPIN = "/etc/systemd/journald.conf.d/99-zz-seoul.conf"
AUDIT_RULES = "/etc/audit/rules.d/50-seoul.rules"
AUDIT_IMMUTABLE = "/etc/audit/rules.d/99-zz-seoul-immutable.rules"
AUDITD_CONF = "/etc/audit/auditd.conf"

# Paths earlier releases wrote: each apply step removes them (REMOVE), so an old file
# can never outrank the new one. Safe to keep: removing an absent file does nothing.
RETIRED = {
    "sshd": ("/etc/ssh/sshd_config.d/50-hardening.conf",),
    "kernel": ("/etc/sysctl.d/90-hardening.conf", "/etc/sysctl.d/91-kubernetes.conf"),
    "journald": ("/etc/systemd/journald.conf.d/50-seoul.conf",),
}


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def sshd_dropin(hardening: Hardening) -> str:
    # sshd keeps the first value it reads; this file sorts before 50-redhat.conf and
    # cloud-init's 50-cloud-init.conf, so it wins over both.
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


def hardening_sysctls(roles: list) -> str:
    """CIS kernel parameters (render/cis.py, exceptions applied for `roles`) plus our own."""
    excepted = cis.exceptions_for(roles)
    lines = []
    for key, value in cis.sysctls_for(roles).items():
        exception = excepted.get(cis.sysctl_rule(key))
        if exception:
            lines.append(f"# CIS exception {exception.rule}: {exception.reason}")
        lines.append(f"{key} = {value}")
    extra = {
        "kernel.kptr_restrict": 2,
        "kernel.dmesg_restrict": 1,
        "fs.protected_hardlinks": 1,
        "fs.protected_symlinks": 1,
    }
    lines += [f"{k} = {v}" for k, v in extra.items()]
    return HEADER + "\n".join(lines) + "\n"


def kubernetes_sysctls() -> str:
    settings = {
        "net.bridge.bridge-nf-call-iptables": 1,
        "net.bridge.bridge-nf-call-ip6tables": 1,
        # Large clusters with many pods and log tailers run out of the defaults.
        "fs.inotify.max_user_watches": 1048576,
        "fs.inotify.max_user_instances": 8192,
        "vm.max_map_count": 262144,
    }
    return HEADER + "".join(f"{k} = {v}\n" for k, v in settings.items())


def disabled_modules(level: int, roles: list) -> str:
    """modprobe.d lines that keep CIS's unused filesystems and protocols from loading.

    `install <m> /bin/false` makes every load (even by a device appearing) fail; `blacklist`
    also stops aliases from pulling it in. CIS 1.1.1.x and 3.4.x ask for both.
    """
    modules = cis.modules_for(level, roles)
    return HEADER + "".join(f"install {m} /bin/false\nblacklist {m}\n" for m in modules)


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


# CIS 4.1.3 (level 2) audit rules, grouped as the benchmark groups them. Syscall rules
# cover both ABIs; `auid>=1000 auid!=unset` keeps them to people who logged in, which
# leaves out daemons and containers (no login session) and keeps busy nodes quiet.
_USER = "-F auid>=1000 -F auid!=unset"


def _syscalls(names: str, key: str, fields: str = _USER) -> list[str]:
    tail = f" {fields}" if fields else ""
    return [f"-a always,exit -F arch={arch} -S {names}{tail} -k {key}" for arch in ("b64", "b32")]


CIS_AUDIT_RULES: dict[str, list[str]] = {
    "sudoers (4.1.3.1)": ["-w /etc/sudoers -p wa -k scope", "-w /etc/sudoers.d/ -p wa -k scope"],
    "time changes (4.1.3.4)": [
        "-a always,exit -F arch=b64 -S adjtimex,settimeofday -k time-change",
        "-a always,exit -F arch=b32 -S adjtimex,settimeofday,stime -k time-change",
        # a0=0: CLOCK_REALTIME, the wall clock (other clock ids are per-device clocks).
        *_syscalls("clock_settime", "time-change", "-F a0=0x0"),
        "-w /etc/localtime -p wa -k time-change",
    ],
    "network configuration (4.1.3.5)": [
        *_syscalls("sethostname,setdomainname", "system-locale", ""),
        "-w /etc/issue -p wa -k system-locale",
        "-w /etc/issue.net -p wa -k system-locale",
        "-w /etc/hosts -p wa -k system-locale",
        "-w /etc/hostname -p wa -k system-locale",
        "-w /etc/sysconfig/network -p wa -k system-locale",
        "-w /etc/sysconfig/network-scripts/ -p wa -k system-locale",
        "-w /etc/NetworkManager/ -p wa -k system-locale",
    ],
    "unsuccessful file access (4.1.3.7)": [
        *_syscalls("creat,open,openat,truncate,ftruncate", "access", f"-F exit=-EACCES {_USER}"),
        *_syscalls("creat,open,openat,truncate,ftruncate", "access", f"-F exit=-EPERM {_USER}"),
    ],
    "identity (4.1.3.8)": [
        f"-w {path} -p wa -k identity"
        for path in ("/etc/group", "/etc/passwd", "/etc/gshadow", "/etc/shadow", "/etc/security/opasswd")
    ],
    "permission changes (4.1.3.9)": [
        *_syscalls("chmod,fchmod,fchmodat", "perm_mod"),
        *_syscalls("chown,fchown,fchownat,lchown", "perm_mod"),
        *_syscalls("setxattr,lsetxattr,fsetxattr,removexattr,lremovexattr,fremovexattr", "perm_mod"),
        # Extended attributes carry SELinux labels: root's changes too.
        *_syscalls("setxattr,lsetxattr,fsetxattr,removexattr,lremovexattr,fremovexattr", "perm_mod", "-F auid=0"),
    ],
    "mounts (4.1.3.10)": _syscalls("mount", "mounts"),
    "session (4.1.3.11)": [
        "-w /var/run/utmp -p wa -k session",
        "-w /var/log/wtmp -p wa -k session",
        "-w /var/log/btmp -p wa -k session",
    ],
    # pam_faillock writes /var/run/faillock on CentOS; the benchmark names /var/log/faillock.
    "logins (4.1.3.12)": [
        "-w /var/log/lastlog -p wa -k logins",
        "-w /var/run/faillock -p wa -k logins",
        "-w /var/log/faillock -p wa -k logins",
    ],
    "deletions (4.1.3.13)": _syscalls("unlink,unlinkat,rename,renameat", "delete"),
    "SELinux policy (4.1.3.14)": ["-w /etc/selinux/ -p wa -k MAC-policy", "-w /usr/share/selinux/ -p wa -k MAC-policy"],
    "kernel modules (4.1.3.19)": _syscalls("init_module,finit_module,delete_module", "kernel_modules"),
}


def audit_rules(level: int) -> str:
    """Our watches on every host, plus CIS's groups at level 2 (an exact duplicate is left
    out: auditctl refuses a rule it already has)."""
    rules = [
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
    if level >= 2:
        for group, lines in CIS_AUDIT_RULES.items():
            rules += [f"## CIS {group}", *(line for line in lines if line not in rules)]
    return HEADER + "\n".join(rules) + "\n"


def audit_immutable() -> str:
    # augenrules moves the last `-e` it reads to the end: this file sorts last, so its
    # `-e 2` is the one kept. Rule changes then need a reboot (scripts/apply-audit.sh).
    return HEADER + "-e 2\n"


# auditd.conf(5) actions, by hardening level. The README says what each costs an operator.
AUDITD_ACTIONS: dict[int, dict[str, str]] = {
    1: {
        "max_log_file": "32",
        "num_logs": "8",
        "max_log_file_action": "ROTATE",
        "space_left": "25%",
        "space_left_action": "SYSLOG",
        "admin_space_left": "10%",
        "admin_space_left_action": "SUSPEND",
        "disk_full_action": "SUSPEND",
        "disk_error_action": "SYSLOG",
    },
    2: {
        "max_log_file": "32",
        "num_logs": "8",
        "max_log_file_action": "KEEP_LOGS",
        "space_left": "25%",
        "space_left_action": "EMAIL",
        "admin_space_left": "10%",
        "admin_space_left_action": "HALT",
        "disk_full_action": "HALT",
        "disk_error_action": "SYSLOG",
    },
}


def auditd_conf(level: int) -> str:
    """/etc/audit/auditd.conf: CentOS Stream 9's shipped settings with our actions (no drop-ins)."""
    settings = {
        "local_events": "yes",
        "write_logs": "yes",
        "log_file": "/var/log/audit/audit.log",
        "log_group": "root",
        "log_format": "ENRICHED",
        "flush": "INCREMENTAL_ASYNC",
        "freq": "50",
        "priority_boost": "4",
        "name_format": "NONE",
        "verify_email": "yes",
        "action_mail_acct": "root",
        **AUDITD_ACTIONS[level],
        "use_libwrap": "yes",
        "tcp_listen_queue": "5",
        "tcp_max_per_addr": "1",
        "tcp_client_max_idle": "0",
        "transport": "TCP",
        "krb5_principal": "auditd",
        "distribute_network": "no",
        "q_depth": "2000",
        "overflow_action": "SYSLOG",
        "max_restarts": "10",
        "plugin_dir": "/etc/audit/plugins.d",
        "end_of_event_timeout": "2",
    }
    return HEADER + "".join(f"{k} = {v}\n" for k, v in settings.items())


def tcp_ports(cfg: StackConfig, host: HostSpec) -> list[str]:
    """The only TCP ports a host accepts from anywhere, by role (its metrics ports: `metrics_ports`)."""
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


def metrics_ports(host: HostSpec) -> list[str]:
    """TCP ports a host accepts only from `monitoring.scrape_sources` (Prometheus), not from anywhere."""
    return [str(p) for p in monitoring.exporter_ports(host)]


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


def _applied(step: str, script: str, files: list[HostFile], env: dict[str, str] | None = None,
             remove: tuple[str, ...] = ()) -> FileSet:
    # Re-run whenever a file it applies changes; REMOVE: files it deletes first.
    env = dict(env or {})
    if remove:
        env["REMOVE"] = " ".join(remove)
    return FileSet(tuple(files), ScriptRun(f"{step}-apply", script, env, tuple(digest(f.content) for f in files)))


def _file(step: str, path: str, content: str, mode: str = "0644") -> HostFile:
    return HostFile(f"{step}-file", path, content, mode)


def file_sets(cfg: StackConfig, host: HostSpec) -> tuple[FileSet, ...]:
    """Every file OS preparation puts on `host`, grouped with the step that applies it."""
    level = cfg.hardening.level
    kernel = [
        _file("sysctl-hardening", SYSCTL_HARDENING, hardening_sysctls(host.roles)),
        _file("modprobe-cis", MODPROBE_CIS, disabled_modules(level, host.roles)),
    ]
    if host.is_kubernetes_node:
        kernel += [
            _file("sysctl-kubernetes", SYSCTL_KUBERNETES, kubernetes_sysctls()),
            _file("modules", MODULES_KUBERNETES, kubernetes_modules()),
        ]
    audit = [
        _file("auditd-conf", AUDITD_CONF, auditd_conf(level), "0640"),
        _file("audit", AUDIT_RULES, audit_rules(level), "0600"),
    ]
    if level >= 2:
        audit.append(_file("audit-immutable", AUDIT_IMMUTABLE, audit_immutable(), "0600"))
    return (
        _applied("sshd", "apply-sshd.sh", [_file("sshd", SSHD_DROPIN, sshd_dropin(cfg.hardening), "0600")],
                 remove=RETIRED["sshd"]),
        _applied("chrony", "restart-service.sh", [_file("chrony", CHRONY_CONF, chrony_conf(cfg.network.ntp_servers))],
                 {"SERVICE": "chronyd"}),
        _applied("journald", "apply-journald.sh", [_file("journald", JOURNALD_DROPIN, journald_conf())],
                 remove=RETIRED["journald"]),
        # Going back to level 1 removes the immutable rule (it lifts after the next reboot).
        _applied("audit", "apply-audit.sh", audit, remove=() if level >= 2 else (AUDIT_IMMUTABLE,)),
        _applied("kernel", "apply-kernel.sh", kernel, remove=RETIRED["kernel"]),
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
        "METRICS_PORTS": " ".join(metrics_ports(host)),
        "METRICS_SOURCES": " ".join(monitoring.scrape_sources(cfg)),
    }
    return Preparation(
        packages=ScriptRun("packages", "prepare-os.sh", packages),
        file_sets=file_sets(cfg, host),
        steps=(
            ScriptRun("selinux", "selinux.sh", {"SELINUX_MODE": cfg.hardening.selinux}),
            ScriptRun("firewalld", "firewalld.sh", firewall),
        ),
    )
