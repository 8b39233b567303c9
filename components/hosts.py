"""One bare-metal host: OS preparation and hardening over SSH.

Each host is independent of every other, so all hosts are prepared in parallel;
within a host: packages first, then each file, then the step that applies it.
"""

import pulumi

from components.remote import Target, digest, put_file, run_script, target
from model.schema import Host as HostSpec
from model.schema import StackConfig
from render.hosts import HostFile, host_files, is_kubernetes_node, protocols, tcp_ports, trusted_sources

# Which script applies each file once it is in place (files without one are read
# by a later step, e.g. the kernel step reads both sysctl files).
APPLY = {
    "sshd": ("apply-sshd.sh", {}),
    "chrony": ("restart-service.sh", {"SERVICE": "chronyd"}),
    "journald": ("restart-service.sh", {"SERVICE": "systemd-journald"}),
    "audit": ("apply-audit.sh", {}),
}
KERNEL_FILES = ("sysctl-hardening", "sysctl-kubernetes", "modules")


class Host(pulumi.ComponentResource):
    """A prepared, hardened host; depend on it before running anything else there."""

    target: Target

    def __init__(
        self,
        cfg: StackConfig,
        spec: HostSpec,
        private_key: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(
            "seoul:hosts:Host",
            spec.name,
            {"address": str(spec.address), "roles": list(spec.roles)},
            opts,
        )
        self.target = target(spec, cfg.ssh, private_key)
        self._name = spec.name

        packages = self._packages(cfg, spec)
        contents = host_files(cfg, spec)
        files = {step: self._file(step, f, packages) for step, f in contents.items()}
        for step, (script_name, env) in APPLY.items():
            self._apply(step, script_name, env, [files[step]], [contents[step]])
        kernel = [s for s in KERNEL_FILES if s in files]
        self._apply("kernel", "apply-kernel.sh", {}, [files[s] for s in kernel], [contents[s] for s in kernel])
        self._step("selinux", "selinux.sh", {"SELINUX_MODE": cfg.hardening.selinux}, [packages])
        self._step("firewalld", "firewalld.sh", self._firewall_env(cfg, spec), [packages])

        self.register_outputs({"address": str(spec.address), "roles": list(spec.roles)})

    @property
    def ready(self) -> pulumi.Resource:
        """What later work on this host waits for: every preparation step of it."""
        return self

    def _opts(self, after: list[pulumi.Resource]) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=after)

    def _packages(self, cfg: StackConfig, spec: HostSpec) -> pulumi.Resource:
        env = {}
        if is_kubernetes_node(spec):
            env = {"KUBERNETES_VERSION": cfg.kubernetes.version, "KUBERNETES_MINOR": cfg.kubernetes.minor}
        return self._step("packages", "prepare-os.sh", env, [])

    def _file(self, step: str, file: HostFile, after: pulumi.Resource) -> pulumi.Resource:
        return put_file(
            f"{self._name}-{step}-file", self.target, file.path, file.content, self._opts([after]), mode=file.mode
        )

    def _apply(
        self, step: str, script_name: str, env: dict[str, str], after: list[pulumi.Resource], files: list[HostFile]
    ) -> pulumi.Resource:
        # Re-run whenever a file it applies changes.
        triggers = [digest(f.content) for f in files]
        return run_script(
            f"{self._name}-{step}-apply", self.target, script_name, self._opts(after), env=env, triggers=triggers
        )

    def _step(self, step: str, script_name: str, env: dict[str, str], after: list[pulumi.Resource]) -> pulumi.Resource:
        return run_script(f"{self._name}-{step}", self.target, script_name, self._opts(after), env=env)

    @staticmethod
    def _firewall_env(cfg: StackConfig, spec: HostSpec) -> dict[str, str]:
        return {
            "DEFAULT_ZONE": "drop",
            "TCP_PORTS": " ".join(tcp_ports(cfg, spec)),
            "PROTOCOLS": " ".join(protocols(spec)),
            "TRUSTED_SOURCES": " ".join(trusted_sources(cfg, spec)),
        }
