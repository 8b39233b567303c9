"""Certificate expiry export on one host (every etcd member and Kubernetes node)."""

from collections.abc import Sequence

import pulumi

from components.remote import HostHandle, apply_file_set
from render import certs


class CertificateExpiry(pulumi.ComponentResource):
    """Writes cert_expiry.prom for the node_exporter textfile collector, hourly.

    `after`: what must exist first on the host (its certificates).
    """

    def __init__(
        self,
        name: str,
        handle: HostHandle,
        after: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("seoul:certs:CertificateExpiry", name, None, opts)
        apply_file_set(self, handle.target, certs.expiry_export(), after=[handle.ready, *after])
        self.register_outputs({"metrics": certs.EXPIRY_METRICS})
