"""The Kubernetes API VIP: HAProxy + Keepalived on every control-plane host (render/apivip.py).

Each control plane is independent of the others: install -> configs -> start. Removing a
control plane from the stack stops Keepalived there first (the VIP moves), then HAProxy.
"""

from collections.abc import Mapping

import pulumi

from components.remote import HostHandle, apply_file_set, child_opts, run
from model.schema import StackConfig
from render import apivip


class ApiVip(pulumi.ComponentResource):
    """`ready[name]`: the VIP frontend runs on that control plane; `endpoint`: `<vip>:<port>`."""

    ready: dict[str, pulumi.Resource]
    endpoint: str

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        hosts: Mapping[str, HostHandle],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("seoul:apivip:ApiVip", name, None, opts)
        self.endpoint = apivip.endpoint(cfg)
        self.ready = {}
        for host in cfg.as_built.control_planes:  # a failed one's resources stay, inert
            handle = hosts[host.name]
            rendered = cfg.as_built if host.failed else cfg
            install = run(handle.target, apivip.install(), child_opts(self, [handle.ready]))
            frontend = apivip.frontend(rendered, host)
            self.ready[host.name] = apply_file_set(self, handle.target, frontend, after=[install])
        self.register_outputs({"endpoint": self.endpoint, "hosts": sorted(self.ready)})
