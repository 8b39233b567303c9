"""Certificate expiry export on one host (every etcd member and Kubernetes node)."""

from typing import TYPE_CHECKING

import pulumi

from components.remote import digest, put_file, run_script, script
from render import certs

if TYPE_CHECKING:
    from components.kubernetes import HostHandle


class CertificateExpiry(pulumi.ComponentResource):
    """Writes cert_expiry.prom for the node_exporter textfile collector, hourly."""

    def __init__(
        self,
        name: str,
        host_name: str,
        handle: "HostHandle",
        after: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("seoul:certs:CertificateExpiry", name, None, opts)
        contents = {
            "cert-expiry-script": (certs.EXPIRY_SCRIPT, script("cert-expiry.sh"), "0755"),
            "cert-expiry-service": ("/etc/systemd/system/cert-expiry.service", certs.expiry_service(), "0644"),
            "cert-expiry-timer": ("/etc/systemd/system/cert-expiry.timer", certs.expiry_timer(), "0644"),
        }
        depends = pulumi.ResourceOptions(parent=self, depends_on=[handle.ready, *after])
        files = [
            put_file(f"{host_name}-{step}", handle.target, path, content, depends, mode=mode)
            for step, (path, content, mode) in contents.items()
        ]
        run_script(
            f"{host_name}-cert-expiry-timer-enable",
            handle.target,
            "enable-units.sh",
            pulumi.ResourceOptions(parent=self, depends_on=files),
            env={
                "TIMERS": "cert-expiry.timer",
                "RUN_NOW": "cert-expiry.service",
                "FINGERPRINT": digest("".join(c for _, c, _ in contents.values())),
            },
            delete_script="disable-units.sh",
        )
        self.register_outputs({"metrics": certs.EXPIRY_METRICS})
