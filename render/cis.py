"""The CIS benchmark for RHEL 9 as the hosts apply it, and every place the cluster departs from it.

Rule ids and values are those of the SCAP Security Guide 0.1.65 CentOS Stream 9 content
(profiles `cis_server_l1` and `cis`, rule `xccdf_org.ssgproject.content_rule_<id>`), which
tests/test_cis.py evaluates against each role's root. `EXCEPTIONS` is the one home of every
departure: render/hosts.py applies it, the test accepts a failure only for a rule named
here, and the README lists it.
"""

from dataclasses import dataclass

from model.schema import KUBERNETES_NODE_ROLES, Role

# Kernel parameters of CIS 3.2/3.3 (level 1) and their benchmark values.
SYSCTLS: dict[str, int] = {
    "kernel.randomize_va_space": 2,
    **{
        f"net.ipv4.conf.{scope}.{name}": value
        for scope in ("all", "default")
        for name, value in (
            ("accept_redirects", 0),
            ("accept_source_route", 0),
            ("log_martians", 1),
            ("rp_filter", 1),  # strict; Calico also refuses loose (2) on `all`
            ("secure_redirects", 0),
            ("send_redirects", 0),
        )
    },
    "net.ipv4.icmp_echo_ignore_broadcasts": 1,
    "net.ipv4.icmp_ignore_bogus_error_responses": 1,
    "net.ipv4.ip_forward": 0,
    "net.ipv4.tcp_syncookies": 1,
    **{
        f"net.ipv6.conf.{scope}.{name}": 0
        for scope in ("all", "default")
        for name in ("accept_ra", "accept_redirects", "accept_source_route")
    },
    "net.ipv6.conf.all.forwarding": 0,
}

# Filesystems and protocols CIS 1.1.1 / 3.4 disables, by the level that asks for it.
MODULES: dict[int, tuple[str, ...]] = {
    1: ("cramfs", "squashfs", "udf", "usb-storage"),
    2: ("dccp", "sctp"),
}


def sysctl_rule(key: str) -> str:
    """SSG rule id of a kernel parameter: `net.ipv4.ip_forward` -> `sysctl_net_ipv4_ip_forward`."""
    return "sysctl_" + key.replace(".", "_")


def module_rule(module: str) -> str:
    """SSG rule id of a disabled module: `usb-storage` -> `kernel_module_usb-storage_disabled`."""
    return f"kernel_module_{module}_disabled"


@dataclass(frozen=True)
class CisException:
    """A CIS rule the hosts with any of `roles` do not meet, on purpose.

    `rule`: SSG rule id; `setting`: what those hosts get instead (`key = value` for a kernel
    parameter); `reason`: why the cluster needs it, with the upstream requirement.
    """

    rule: str
    setting: str
    roles: frozenset[Role]
    reason: str

    def applies_to(self, roles: list[Role]) -> bool:
        return bool(self.roles & set(roles))


EXCEPTIONS: tuple[CisException, ...] = (
    CisException(
        rule=sysctl_rule("net.ipv4.ip_forward"),
        setting="net.ipv4.ip_forward = 1",
        roles=KUBERNETES_NODE_ROLES,
        reason="Kubernetes nodes route pod and service traffic: kubeadm's preflight check "
        "requires net.ipv4.ip_forward = 1 and Calico forwards between the node and its pods.",
    ),
)


def exceptions_for(roles: list[Role]) -> dict[str, CisException]:
    """The exceptions that apply to a host with `roles`, by rule id."""
    return {e.rule: e for e in EXCEPTIONS if e.applies_to(roles)}


def sysctls_for(roles: list[Role]) -> dict[str, int]:
    """CIS kernel parameters for a host with `roles`, exceptions applied."""
    values = dict(SYSCTLS)
    for exception in exceptions_for(roles).values():
        key, _, value = exception.setting.partition(" = ")
        if key in values:
            values[key] = int(value)
    return values


def modules_for(level: int, roles: list[Role]) -> tuple[str, ...]:
    """Modules disabled at CIS `level` on a host with `roles` (exceptions left loadable)."""
    excepted = exceptions_for(roles)
    return tuple(
        m for lvl in sorted(MODULES) if lvl <= level for m in MODULES[lvl] if module_rule(m) not in excepted
    )
