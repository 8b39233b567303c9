"""External etcd v3.5 on the hosts with role `etcd`: TLS everywhere, a dedicated CA (render/etcd.py).

Per member: install -> CA files -> member certificate, config, unit -> start.
Starts run one member after another (`etcd.caMember` first, then by name) so that a
rolling change never takes two members down; a fresh bootstrap is not slowed by that,
because a member of a cluster without quorum yet starts without waiting
(scripts/etcd-start.sh). The CA is created once on the CA member and copied (secret) to
the others, so each member renews its own certificate monthly without a Pulumi run.

A member marked failed keeps its resources, inert (`components.remote.inert`); a live
member removes it from the cluster, and every live member's start waits for that, so a
replacement joins a cluster whose quorum counts only live members.
"""

from collections.abc import Mapping

import pulumi

from components.remote import HostHandle, Target, apply_file_set, child_opts, put_file, run, run_for_failed
from model.schema import HostSpec, StackConfig
from render import etcd


class EtcdCluster(pulumi.ComponentResource):
    """The external etcd cluster.

    `ready`: every member answers healthy. `started[name]`: that member runs.
    `ca_cert`, `ca_key`: the CA as secret outputs, for the API servers' client certificates.
    """

    ready: pulumi.Resource
    started: dict[str, pulumi.Resource]
    ca_cert: pulumi.Output[str]
    ca_key: pulumi.Output[str]
    endpoints: list[str]

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        hosts: Mapping[str, HostHandle],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("seoul:etcd:EtcdCluster", name, None, opts)
        self._hosts = hosts
        built = cfg.as_built
        members = built.etcd_members  # failed members too: their resources stay, inert
        first = cfg.etcd_members[0]  # the CA member, live (model/invariants.py)
        self.endpoints = etcd.client_endpoints(cfg)

        installs = {m.name: run(self._target(m), etcd.install(cfg), self._after(m)) for m in members}
        gone = [
            run_for_failed(self._target(first), m, etcd.member_gone(m), self._after(first))
            for m in members if m.failed
        ]
        ca = run(self._target(first), etcd.create_ca(cfg), child_opts(self, [installs[first.name]]))
        bundle = run(self._target(first), etcd.export_ca(), child_opts(self, [ca]), secret_output=True).stdout
        pair = bundle.apply(etcd.split_ca_bundle)
        self.ca_cert = pulumi.Output.secret(pair[0])
        self.ca_key = pulumi.Output.secret(pair[1])

        # Quorum-aware: each member's start (or restart) waits for the previous one's.
        previous: list[pulumi.Resource] = []
        self.started = {}
        for member in members:
            target = self._target(member)
            rendered = built if member.failed else cfg
            ca_files = [ca] if member.name == first.name else self._copy_ca(member, after=installs[member.name])
            cert = run(target, etcd.member_cert(member), child_opts(self, ca_files))
            start = apply_file_set(self, target, etcd.member(rendered, member), after=[installs[member.name]],
                                   apply_after=[cert, *previous, *([] if member.failed else gone)])
            apply_file_set(self, target, etcd.maintenance(rendered, member), after=[start])
            if not member.failed:
                self.started[member.name] = start
                previous = [start]

        self.ready = run(self._target(first), etcd.health(cfg), child_opts(self, list(self.started.values())))
        self.register_outputs({"endpoints": self.endpoints, "initialCluster": etcd.initial_cluster(cfg)})

    def _target(self, host: HostSpec) -> Target:
        return self._hosts[host.name].target

    def _after(self, host: HostSpec) -> pulumi.ResourceOptions:
        return child_opts(self, [self._hosts[host.name].ready])

    def _copy_ca(self, member: HostSpec, after: pulumi.Resource) -> list[pulumi.Resource]:
        """The CA copied to a member; kept on removal (another step may own the file by then)."""
        copies = ((f"{member.name}-etcd-ca-cert", etcd.CA_CERT, self.ca_cert, "0644"),
                  (f"{member.name}-etcd-ca-key", etcd.CA_KEY, self.ca_key, "0600"))
        return [
            put_file(name, self._target(member), path, content, child_opts(self, [after]), mode=mode,
                     secret=True, keep_on_delete=True)
            for name, path, content, mode in copies
        ]
