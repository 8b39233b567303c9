"""Kubernetes objects and Helm releases from render's data (`render.helm`), through one provider.

`apply_manifest` registers a plain manifest as its typed `pulumi_kubernetes` resource
(`apps/v1 Deployment` -> `kubernetes.apps.v1.Deployment`) or, for a custom resource, as
`apiextensions.CustomResource`; `install_release` installs a pinned chart as a
`helm.v3.Release`: one resource that carries the chart, its exact version and its values,
so the offline plan records all three (a v4 `Chart` renders its objects inside the provider,
which a plan without a cluster cannot see).
"""

import importlib
from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s
from pydantic.alias_generators import to_snake

from render.helm import HelmRelease, Manifest, resource_name

# Helm gives up (and, atomic, rolls back) after this long: images pulled, pods ready.
RELEASE_TIMEOUT_SECONDS = 600


def _typed_class(api_version: str, kind: str) -> type | None:
    """The SDK class of a built-in kind (`apps/v1`, `rbac.authorization.k8s.io/v1`, `v1`), else None."""
    group, _, version = api_version.rpartition("/")
    if group and "." in group and not group.endswith(".k8s.io"):
        return None
    module = group.split(".")[0] if group else "core"
    try:
        return getattr(importlib.import_module(f"pulumi_kubernetes.{module}.{version}"), kind)
    except (ImportError, AttributeError):
        return None


def apply_manifest(obj: Manifest, opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """Register `obj` (a complete manifest) as a Pulumi resource named `<namespace>-<name>`."""
    body = {to_snake(k): v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    cls = _typed_class(obj["apiVersion"], obj["kind"])
    if cls is None:
        return k8s.apiextensions.CustomResource(resource_name(obj), api_version=obj["apiVersion"],
                                                kind=obj["kind"], opts=opts, **body)
    return cls(resource_name(obj), opts=opts, **body)


def install_release(release: HelmRelease, opts: pulumi.ResourceOptions) -> k8s.helm.v3.Release:
    """`release.chart` at its pinned version with `release.values`, atomic (rolled back if not ready)."""
    chart = release.chart
    return k8s.helm.v3.Release(
        release.name,
        name=release.name,
        chart=chart.name,
        version=chart.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository),
        namespace=release.namespace,
        create_namespace=True,
        values=release.values,
        atomic=True,
        cleanup_on_fail=True,
        timeout=RELEASE_TIMEOUT_SECONDS,
        max_history=10,
        opts=opts,
    )


def in_cluster(parent: pulumi.Resource, provider: pulumi.ProviderResource,
               after: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
    """A child of `parent` on the cluster's provider that waits for `after`."""
    return pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=list(after))
