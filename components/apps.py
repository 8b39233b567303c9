"""The applications of `apps:`: Deployment, Service, Ingress, HPA and PDB each (render/apps.py)."""

from collections.abc import Sequence

import pulumi

from components.kube import apply_manifest, in_cluster
from model.schema import StackConfig
from render import apps


class Applications(pulumi.ComponentResource):
    """Every app's objects; Ingresses wait for ingress-nginx (its admission webhook checks them)."""

    def __init__(self, name: str, cfg: StackConfig, provider: pulumi.ProviderResource,
                 ingress: Sequence[pulumi.Resource], opts: pulumi.ResourceOptions | None = None):
        super().__init__("seoul:apps:Applications", name, None, opts)
        namespaces = {ns["metadata"]["name"]: apply_manifest(ns, in_cluster(self, provider))
                      for ns in apps.namespaces(cfg)}
        for app in cfg.apps:
            after = [namespaces[app.namespace]]
            for obj in apps.objects(app):
                wait = [*after, *ingress] if obj["kind"] == "Ingress" else after
                apply_manifest(obj, in_cluster(self, provider, wait))
        self.register_outputs({"apps": {a.name: f"https://{a.host}" for a in cfg.apps}})
