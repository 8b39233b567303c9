"""What render hands to in-cluster components: Helm releases and Kubernetes objects as data.

A `HelmRelease` is a pinned chart (`model.releases.Chart`) with its values; a Kubernetes
object is a plain dict, exactly the manifest `kubectl apply` would take. Components turn
them into `pulumi_kubernetes` resources; the offline plan writes both back out
(`artifacts/helm/<release>.yaml`, `artifacts/k8s/<namespace>/<Kind>-<name>.yaml`).
"""

from dataclasses import dataclass
from typing import Any

from model.releases import Chart

Manifest = dict[str, Any]


@dataclass(frozen=True)
class HelmRelease:
    """`chart` installed as release `name` in `namespace` with `values` (Helm's values tree)."""

    name: str
    chart: Chart
    namespace: str
    values: dict[str, Any]


def manifest(api_version: str, kind: str, name: str, namespace: str | None = None, **body: Any) -> Manifest:
    """A Kubernetes object: apiVersion, kind, metadata (name, namespace when namespaced), then `body`."""
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    labels = body.pop("labels", None)
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **body}


def resource_name(obj: Manifest) -> str:
    """The Pulumi resource name of an object: `<namespace>-<name>` (or `<name>` cluster-wide), per kind."""
    meta = obj["metadata"]
    return f"{meta['namespace']}-{meta['name']}" if meta.get("namespace") else meta["name"]
