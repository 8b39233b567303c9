"""FortiGate rules: no any-to-any accept, every policy logging, SSH never open to the internet.

They read `fortios:firewall/policy:Policy` resources (pulumiverse-fortios) and, for the SSH
rule, the custom services they name (`fortios:firewall/service/custom:Custom`). "The
internet" is a source address `all` or a source interface listed in the config property
`internetInterfaces` (default wan1, wan2: a FortiGate 200F's WAN ports).
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import (
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from .shapes import as_list, get, resources_of

FORTIOS_POLICY_TYPE = "fortios:firewall/policy:Policy"
FORTIOS_CUSTOM_SERVICE_TYPE = "fortios:firewall/service/custom:Custom"
ANY_ADDRESS = "all"
# FortiOS predefined services that include tcp/22.
SSH_SERVICES = {"SSH", "ALL", "ALL_TCP"}
LOGGING = {"all", "utm"}
INTERNET_INTERFACES = ["wan1", "wan2"]


def _names(props: Any, key: str) -> set[str]:
    return {str(get(item, "name")) for item in as_list(get(props, key))}


def _any_to_any_validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != FORTIOS_POLICY_TYPE or get(args.props, "action") != "accept":
        return
    if ANY_ADDRESS in _names(args.props, "srcaddrs") and ANY_ADDRESS in _names(args.props, "dstaddrs"):
        report_violation(
            f"firewall policy {args.name} accepts from any address to any address; name the destination "
            "address objects it is for.",
            None,
        )


no_any_to_any_accept = ResourceValidationPolicy(
    name="fortigate-no-any-to-any-accept",
    description="No FortiGate policy may accept traffic from source address `all` to destination address `all`.",
    validate=_any_to_any_validate,
    severity=Severity.CRITICAL,
    tags=["network", "fortigate"],
)


def _logging_validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != FORTIOS_POLICY_TYPE:
        return
    logtraffic = get(args.props, "logtraffic")
    if logtraffic not in LOGGING:
        report_violation(
            f"firewall policy {args.name} has logtraffic {logtraffic!r}; set logtraffic 'all' (or 'utm') so its "
            "sessions are on record.",
            None,
        )


policy_logging = ResourceValidationPolicy(
    name="fortigate-policy-logging",
    description="Every FortiGate policy, deny policies included, must log traffic (logtraffic all or utm).",
    validate=_logging_validate,
    severity=Severity.HIGH,
    tags=["network", "fortigate", "audit"],
)


def _opens_port(portrange: Any, port: int) -> bool:
    # FortiOS tcp-portrange: "22", "20-25", "443 8443", "22:1024-65535" (dst[:src]).
    for item in str(portrange or "").split():
        dst = item.split(":")[0]
        low, _, high = dst.partition("-")
        if low.isdigit() and int(low) <= port <= int(high or low):
            return True
    return False


def _ssh_services(args: StackValidationArgs) -> set[str]:
    found = set(SSH_SERVICES)
    for res in resources_of(args.resources, FORTIOS_CUSTOM_SERVICE_TYPE):
        if _opens_port(get(res.props, "tcpPortrange"), 22):
            found.add(str(get(res.props, "name") or res.name))
    return found


def _internet_ssh_validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    internet = set(args.get_config().get("internetInterfaces") or INTERNET_INTERFACES)
    ssh = _ssh_services(args)
    for res in resources_of(args.resources, FORTIOS_POLICY_TYPE):
        if get(res.props, "action") != "accept" or not (_names(res.props, "services") & ssh):
            continue
        from_internet = ANY_ADDRESS in _names(res.props, "srcaddrs") or _names(res.props, "srcintfs") & internet
        if from_internet:
            report_violation(
                f"firewall policy {res.name} accepts SSH from the internet (source address all or an internet "
                "interface); allow SSH only from the bastion network's address object.",
                res.urn,
            )


no_internet_ssh = StackValidationPolicy(
    name="fortigate-no-internet-ssh",
    description="No FortiGate policy may accept SSH (tcp/22, SSH, ALL) from the internet: source `all` or a WAN "
    "interface.",
    validate=_internet_ssh_validate,
    config_schema=PolicyConfigSchema(properties={
        "internetInterfaces": {
            "type": "array",
            "items": {"type": "string"},
            "default": INTERNET_INTERFACES,
            "description": "FortiGate interfaces that face the internet.",
        }
    }),
    severity=Severity.CRITICAL,
    tags=["network", "fortigate", "security"],
)

POLICIES: list[Policy] = [no_any_to_any_accept, policy_logging, no_internet_ssh]
