"""Kubernetes rules: one pinned version, app workloads sized/autoscaled/disruption-budgeted, no privilege."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    Policy,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from .shapes import UNKNOWN, Deferred, as_list, get, remote_steps

DEPLOYMENT_TYPE = "kubernetes:apps/v1:Deployment"
STATEFULSET_TYPE = "kubernetes:apps/v1:StatefulSet"
APP_WORKLOAD_TYPES = {DEPLOYMENT_TYPE: "Deployment", STATEFULSET_TYPE: "StatefulSet"}
HPA_TYPES = (
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
    "kubernetes:autoscaling/v1:HorizontalPodAutoscaler",
    "kubernetes:autoscaling/v2beta2:HorizontalPodAutoscaler",
)
PDB_TYPES = ("kubernetes:policy/v1:PodDisruptionBudget", "kubernetes:policy/v1beta1:PodDisruptionBudget")
# kind -> path from the resource inputs to its pod spec
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    DEPLOYMENT_TYPE: ("spec", "template", "spec"),
    STATEFULSET_TYPE: ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}

SYSTEM_NAMESPACES = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "calico-system",
    "calico-apiserver",
    "tigera-operator",
    "metallb-system",
    "ingress-nginx",
    "rook-ceph",
    "ceph-csi",
    "monitoring",
    "logging",
    "cert-manager",
]
PRIVILEGED_NAMESPACES = ["kube-system", "calico-system", "tigera-operator", "metallb-system", "rook-ceph", "ceph-csi"]

SYSTEM_NAMESPACES_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string"},
    "default": SYSTEM_NAMESPACES,
    "description": "Namespaces of cluster add-ons; workloads there are not app workloads.",
}


def system_namespaces(config: Mapping[str, Any]) -> set[str]:
    return set(config.get("systemNamespaces") or SYSTEM_NAMESPACES)


def namespace_of(props: Any) -> Any:
    return get(props, "metadata", "namespace") or "default"


def containers_of(props: Any, pod_spec_path: tuple[str, ...]) -> list[Any]:
    spec = get(props, *pod_spec_path)
    return as_list(get(spec, "initContainers")) + as_list(get(spec, "containers"))


# --- version ----------------------------------------------------------------------------------
_KUBEADM_VERSION_RE = re.compile(r"^\s*kubernetesVersion\s*:\s*[\"']?([^\"'\s#]+)", re.MULTILINE)
_PINNED_RE = re.compile(r"^\d+\.\d+\.\d+$")


def _version_validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    steps = remote_steps(args.resources, Deferred())
    pending: UnknownValueError | None = None
    found: list[tuple[str, str, str]] = []  # (urn, where, version)
    for step in steps:
        if step.env is not None and "KUBERNETES_VERSION" in step.env:
            found.append((step.urn, f"{step.name} KUBERNETES_VERSION", step.env["KUBERNETES_VERSION"]))
        if step.file is not None and "kubeadm" in step.file.path.rsplit("/", 1)[-1]:
            if step.stdin is UNKNOWN:
                pending = pending or step.errors[0]
                continue
            for match in _KUBEADM_VERSION_RE.finditer(step.stdin or ""):
                found.append((step.urn, f"{step.file.path} kubernetesVersion", match.group(1)))
    pinned = [(urn, where, v.lstrip("v")) for urn, where, v in found if _PINNED_RE.match(v.lstrip("v"))]
    for urn, where, version in found:
        if not _PINNED_RE.match(version.lstrip("v")):
            report_violation(f"{where} is '{version}', not a pinned x.y.z version; pin e.g. 1.29.6.", urn)
    counts = Counter(v for _, _, v in pinned)
    if len(counts) > 1:
        chosen = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        listed = ", ".join(sorted(counts))
        for urn, where, version in pinned:
            if version != chosen:
                report_violation(
                    f"{where} is {version} while the rest of the cluster uses {chosen} (seen: {listed}); "
                    "use one Kubernetes version everywhere.",
                    urn,
                )
    if pending is not None:
        raise pending


version_pinned = StackValidationPolicy(
    name="k8s-version-pinned",
    description="The cluster must run one pinned Kubernetes version: every KUBERNETES_VERSION and every "
    "kubeadm kubernetesVersion must be the same x.y.z (e.g. 1.29.6 / v1.29.6).",
    validate=_version_validate,
    severity=Severity.HIGH,
    tags=["kubernetes"],
)


# --- requests / limits --------------------------------------------------------------------------
def _resources_policy(name: str, field: str, description: str) -> Policy:
    config_key = "requiredRequests" if field == "requests" else "requiredLimits"

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in APP_WORKLOAD_TYPES:
            return
        config = args.get_config()
        if namespace_of(args.props) in system_namespaces(config):
            return
        required = list(config.get(config_key) or ["cpu", "memory"])
        path = POD_SPEC_PATHS[args.resource_type]
        for container in containers_of(args.props, path):
            values = get(container, "resources", field) or {}
            missing = [r for r in required if not get(values, r)]
            if missing:
                cname = get(container, "name") or "?"
                wanted = ", ".join(f"resources.{field}.{r}" for r in missing)
                report_violation(f"container '{cname}' does not set {wanted}; set it.", None)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        config_schema=PolicyConfigSchema(
            properties={
                "systemNamespaces": SYSTEM_NAMESPACES_SCHEMA,
                config_key: {"type": "array", "items": {"type": "string"}, "default": ["cpu", "memory"]},
            }
        ),
        severity=Severity.MEDIUM,
        tags=["kubernetes", "workloads"],
    )


workload_requests = _resources_policy(
    "k8s-workload-requests",
    "requests",
    "App Deployments/StatefulSets (outside system namespaces) must declare resource requests: set "
    "resources.requests.cpu and .memory on every container.",
)
workload_limits = _resources_policy(
    "k8s-workload-limits",
    "limits",
    "App Deployments/StatefulSets (outside system namespaces) must declare resource limits: set "
    "resources.limits.cpu and .memory on every container.",
)


# --- HPA / PDB -------------------------------------------------------------------------------------
def _app_workloads(resources: list[PolicyResource], d: Deferred, system: set[str]) -> list[PolicyResource]:
    found = []
    for res in resources:
        if res.resource_type not in APP_WORKLOAD_TYPES:
            continue
        namespace = d.get(res.props, "metadata", "namespace") or "default"
        if namespace is UNKNOWN or namespace not in system:
            found.append(res)
    return found


def _depends(res: PolicyResource, target: PolicyResource) -> bool:
    if any(dep.urn == target.urn for dep in res.dependencies):
        return True
    return any(dep.urn == target.urn for deps in res.property_dependencies.values() for dep in deps)


def _companion_stack_policy(name: str, description: str, kind: str) -> Policy:
    def matches(comp: PolicyResource, workload: PolicyResource, d: Deferred) -> Any:
        if _depends(comp, workload):
            return True
        ns_comp = d.get(comp.props, "metadata", "namespace") or "default"
        ns_work = d.get(workload.props, "metadata", "namespace") or "default"
        if UNKNOWN in (ns_comp, ns_work):
            return UNKNOWN
        if ns_comp != ns_work:
            return False
        if kind == "hpa":
            ref_kind = d.get(comp.props, "spec", "scaleTargetRef", "kind")
            ref_name = d.get(comp.props, "spec", "scaleTargetRef", "name")
            work_name = d.get(workload.props, "metadata", "name")
            if UNKNOWN in (ref_kind, ref_name, work_name):
                return UNKNOWN
            return ref_kind == APP_WORKLOAD_TYPES[workload.resource_type] and ref_name == work_name
        selector = d.get(comp.props, "spec", "selector", "matchLabels")
        labels = d.get(workload.props, *POD_SPEC_PATHS[workload.resource_type][:-1], "metadata", "labels")
        if UNKNOWN in (selector, labels):
            return UNKNOWN
        if not selector or not labels:
            return False
        return all(k in labels and labels[k] == selector[k] for k in selector)

    types = HPA_TYPES if kind == "hpa" else PDB_TYPES
    what = (
        "a HorizontalPodAutoscaler (autoscaling/v2) whose scaleTargetRef names it"
        if kind == "hpa"
        else "a PodDisruptionBudget whose selector matches its pod labels"
    )

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        d = Deferred()
        system = system_namespaces(args.get_config())
        comps = [r for r in args.resources if r.resource_type in types]
        pending: UnknownValueError | None = None
        for workload in _app_workloads(args.resources, d, system):
            local = Deferred()
            verdicts = [matches(c, workload, local) for c in comps]
            if any(v is True for v in verdicts):
                continue
            namespace = local.get(workload.props, "metadata", "namespace")
            if any(v is UNKNOWN for v in verdicts) or namespace is UNKNOWN:
                pending = pending or (local.errors[0] if local.errors else None)
                continue
            kind_name = APP_WORKLOAD_TYPES[workload.resource_type]
            report_violation(f"{kind_name} {workload.name} has no {kind.upper()}; add {what}.", workload.urn)
        if pending is not None:
            raise pending

    return StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        config_schema=PolicyConfigSchema(properties={"systemNamespaces": SYSTEM_NAMESPACES_SCHEMA}),
        severity=Severity.MEDIUM,
        tags=["kubernetes", "workloads"],
    )


workload_hpa = _companion_stack_policy(
    "k8s-workload-hpa",
    "Every app Deployment/StatefulSet (outside system namespaces) must be autoscaled: add a "
    "HorizontalPodAutoscaler whose scaleTargetRef points at it.",
    "hpa",
)
workload_pdb = _companion_stack_policy(
    "k8s-workload-pdb",
    "Every app Deployment/StatefulSet (outside system namespaces) must have a PodDisruptionBudget "
    "selecting its pods, so node drains keep it available.",
    "pdb",
)


# --- privileged containers ----------------------------------------------------------------------
def _privileged_validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    path = POD_SPEC_PATHS.get(args.resource_type)
    if path is None:
        return
    allowed = set(args.get_config().get("privilegedNamespaces") or PRIVILEGED_NAMESPACES)
    if namespace_of(args.props) in allowed:
        return
    for container in containers_of(args.props, path):
        if get(container, "securityContext", "privileged") is True:
            report_violation(
                f"container '{get(container, 'name') or '?'}' runs privileged in namespace "
                f"{namespace_of(args.props)}; drop securityContext.privileged (grant only the "
                "capabilities it needs).",
                None,
            )


no_privileged_containers = ResourceValidationPolicy(
    name="k8s-no-privileged-containers",
    description="Containers must not run privileged outside the system namespaces that need it (CNI, "
    "storage, load balancer): remove securityContext.privileged=true.",
    validate=_privileged_validate,
    config_schema=PolicyConfigSchema(
        properties={
            "privilegedNamespaces": {
                "type": "array",
                "items": {"type": "string"},
                "default": PRIVILEGED_NAMESPACES,
                "description": "Namespaces whose add-ons may run privileged containers.",
            }
        }
    ),
    severity=Severity.HIGH,
    tags=["kubernetes", "security"],
)

POLICIES: list[Policy] = [
    version_pinned,
    workload_requests,
    workload_limits,
    workload_hpa,
    workload_pdb,
    no_privileged_containers,
]
