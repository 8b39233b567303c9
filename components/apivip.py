"""The Kubernetes API VIP: HAProxy + Keepalived on every control-plane host.

Each control plane is independent of the others: install -> configs -> start. Removing a
control plane from the stack stops Keepalived there first (the VIP moves), then HAProxy.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pulumi

from components.remote import digest, put_file, run_script, script
from model.schema import Host, StackConfig
from render import apivip

if TYPE_CHECKING:
    from components.kubernetes import HostHandle


class ApiVip(pulumi.ComponentResource):
    """`ready[name]`: the VIP frontend runs on that control plane."""

    ready: dict[str, pulumi.Resource]
    endpoint: str

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        hosts: Mapping[str, "HostHandle"],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("seoul:apivip:ApiVip", name, None, opts)
        self._cfg = cfg
        self._hosts = hosts
        self.endpoint = apivip.endpoint(cfg)
        self.ready = {}
        for host in apivip.control_planes(cfg):
            install = self._install(host)
            files, fingerprint = self._configure(host, after=install)
            self.ready[host.name] = self._start(host, files, fingerprint)
        self.register_outputs({"endpoint": self.endpoint, "hosts": sorted(self.ready)})

    def _opts(self, after: list[pulumi.Resource]) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=after)

    def _install(self, host: Host) -> pulumi.Resource:
        handle = self._hosts[host.name]
        return run_script(f"{host.name}-apivip-install", handle.target, "apivip-install.sh", self._opts([handle.ready]))

    def _configure(self, host: Host, after: pulumi.Resource) -> tuple[list[pulumi.Resource], str]:
        target = self._hosts[host.name].target
        contents = {
            "haproxy-cfg": (apivip.HAPROXY_CFG, apivip.haproxy_cfg(self._cfg), "0644"),
            "keepalived-conf": (apivip.KEEPALIVED_CONF, apivip.keepalived_conf(self._cfg, host), "0644"),
            "keepalived-check": (apivip.CHECK_SCRIPT, script("check_apiserver.sh"), "0755"),
        }
        files = [
            put_file(f"{host.name}-{step}", target, path, content, self._opts([after]), mode=mode)
            for step, (path, content, mode) in contents.items()
        ]
        return files, digest("".join(content for _, content, _ in contents.values()))

    def _start(self, host: Host, files: list[pulumi.Resource], fingerprint: str) -> pulumi.Resource:
        return run_script(
            f"{host.name}-apivip-start",
            self._hosts[host.name].target,
            "apivip-start.sh",
            self._opts(files),
            env={
                "ADDRESS": str(host.address),
                "IFACE_CONF": apivip.KEEPALIVED_IFACE_CONF,
                "HAPROXY_CFG": apivip.HAPROXY_CFG,
                "KEEPALIVED_CONF": apivip.KEEPALIVED_CONF,
                "CHECK_SCRIPT": apivip.CHECK_SCRIPT,
                "FINGERPRINT": fingerprint,
            },
            delete_script="apivip-stop.sh",
        )
