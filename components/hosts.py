"""One bare-metal host: OS preparation and hardening over SSH (the recipe: render/hosts.py).

Each host is independent of every other, so all hosts are prepared in parallel;
within a host: packages first, then each file, then the step that applies it.
"""

import pulumi

from components.remote import Target, apply_file_set, child_opts, run, target
from model.schema import HostSpec, StackConfig
from render.hosts import preparation


class Host(pulumi.ComponentResource):
    """A prepared, hardened host (`seoul:hosts:Host`); later work on it waits for `ready`.

    `target` says how to reach it over SSH. Satisfies `components.remote.HostHandle`.
    """

    target: Target

    def __init__(
        self,
        cfg: StackConfig,
        spec: HostSpec,
        private_key: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        # cisLevel: the CIS benchmark level its hardening follows (the policy pack reads it).
        facts = {"address": str(spec.address), "roles": list(spec.roles), "cisLevel": cfg.hardening.level}
        super().__init__("seoul:hosts:Host", spec.name, facts, opts)
        self.target = target(spec, cfg.ssh, private_key)
        recipe = preparation(cfg, spec)
        packages = run(self.target, recipe.packages, child_opts(self, []))
        for file_set in recipe.file_sets:
            apply_file_set(self, self.target, file_set, after=[packages])
        for step in recipe.steps:
            run(self.target, step, child_opts(self, [packages]))
        self.register_outputs(facts)

    @property
    def ready(self) -> pulumi.Resource:
        """What later work on this host waits for: every preparation step of it."""
        return self
