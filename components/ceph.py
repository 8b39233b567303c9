"""Ceph Reef with cephadm on the hosts with role `storage` (render/ceph.py, model/ceph.py).

Order, only where the real world needs it:
  every storage host: repo + packages (after its host is prepared)
  bootstrap host: `cephadm bootstrap` (once) -> cephadm's public key
  every storage host: key authorized -> host entry (on the bootstrap host) -> its OSD spec -> its OSDs up
  bootstrap host: mon/mgr/mds specs, settings -> pools (after every host's OSDs) -> CephFS -> CSI users
Per-host steps are named after their host (`osd-3-ceph-host`, `osd-3-ceph-osd-spec`), so
adding a storage host adds only its own resources. Removing one runs its host entry's
delete: the drain (scripts/ceph-host-remove.sh), which refuses when the hosts left cannot
hold every pool. A host marked failed keeps its resources, inert; its OSDs are purged and
it is removed offline from the bootstrap host instead (scripts/ceph-host-gone.sh). Pools
are never deleted by Pulumi; size changes apply in place.
"""

import json
from collections.abc import Mapping

import pulumi
from pulumi_command import remote

from components.remote import (
    HostHandle,
    Target,
    apply_file_set,
    child_opts,
    put_file,
    run,
    run_for_failed,
    run_script,
)
from model import capacity, ceph
from model.schema import HostSpec, StackConfig
from render import ceph as render
from render.files import FileSet


class CephCluster(pulumi.ComponentResource):
    """The Ceph cluster.

    `fsid`, `monitors` (`ip:6789`): what ceph-csi needs to reach it. `csi_keys`: a secret
    Output of {user: cephx key} for the ceph-csi users. `ready`: pools, CephFS and CSI users
    exist. `verdict`: the capacity verdict (model/capacity.py), also registered as an input so the
    policy pack can judge it.
    """

    fsid: str
    monitors: list[str]
    csi_keys: pulumi.Output[dict[str, str]]
    ready: pulumi.Resource
    verdict: capacity.CapacityVerdict

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        hosts: Mapping[str, HostHandle],
        opts: pulumi.ResourceOptions | None = None,
    ):
        self.verdict = capacity.verdict(cfg)
        props = policy_view(cfg, self.verdict)
        super().__init__("seoul:ceph:CephCluster", name, props, opts)
        self._hosts = hosts
        self.fsid = str(ceph.fsid(cfg))
        self.monitors = render.monitors(cfg)
        self._storage = cfg.storage_hosts  # live; the bootstrap host first (model/ceph.py keeps it live)
        built = cfg.as_built  # failed storage hosts too: their resources stay, inert
        boot = self._target(self._storage[0])

        installs = {h.name: apply_file_set(self, self._target(h), render.install(cfg), [hosts[h.name].ready])
                    for h in built.storage_hosts}
        bootstrap = run(boot, render.bootstrap(cfg), child_opts(self, [installs[self._storage[0].name]]))
        pubkey = run(boot, render.public_key(), child_opts(self, [bootstrap])).stdout

        osds_up = []
        for host in built.storage_hosts:
            rendered = built if host.failed else cfg
            authorized = self._authorize(cfg, host, pubkey, after=[installs[host.name]])
            entry = run(boot, render.host_entry(rendered, host), child_opts(self, [bootstrap, authorized]),
                        on_behalf_of=host)
            spec = self._on_behalf(host, render.osds(host), after=[entry])
            up = run(boot, render.osds_up(host), child_opts(self, [spec]), on_behalf_of=host)
            if host.failed:
                osds_up.append(run_for_failed(boot, host, render.host_gone(host), child_opts(self, [bootstrap])))
            else:
                osds_up.append(up)

        specs = {fs.apply.step: apply_file_set(self, boot, fs, after=[bootstrap]) for fs in render.service_specs(cfg)}
        settings = run(boot, render.settings(cfg), child_opts(self, [bootstrap]))
        pools = {step.env["POOL_NAME"]: run(boot, step, child_opts(self, [settings, *osds_up]))
                 for step in render.pools(cfg)}
        done: list[pulumi.Resource] = list(pools.values())
        fs_step = render.filesystem(cfg)
        if fs_step is not None:
            after = [pools[fs_step.env["METADATA_POOL"]], pools[fs_step.env["DATA_POOL"]], specs["ceph-mds-spec"]]
            done.append(run(boot, fs_step, child_opts(self, after)))
        keys = run(boot, render.csi_keys(cfg), child_opts(self, done), secret_output=True)
        self.csi_keys = pulumi.Output.secret(keys.stdout.apply(parse_keys))
        self.ready = keys
        self.register_outputs({**props, "fsid": self.fsid, "monitors": self.monitors})

    def _target(self, host: HostSpec) -> Target:
        return self._hosts[host.name].target

    def _authorize(self, cfg: StackConfig, host: HostSpec, pubkey: pulumi.Output[str],
                   after: list[pulumi.Resource]) -> remote.Command:
        """cephadm's public key (known after bootstrap) put on the host, then authorized for the deploy user."""
        to = self._target(host)
        key_file = put_file(f"{host.name}-ceph-pubkey-file", to, render.authorized_key_file(), pubkey,
                            child_opts(self, after))
        step = render.authorize(cfg)
        return run_script(f"{host.name}-{step.step}", to, step.script, child_opts(self, [key_file]),
                          env=dict(step.env), triggers=[pubkey])

    def _on_behalf(self, host: HostSpec, file_set: FileSet, after: list[pulumi.Resource]) -> remote.Command:
        """A spec kept on the bootstrap host for `host`, and its apply step, both named after `host`."""
        to = self._target(self._storage[0])
        files = [put_file(f"{host.name}-{f.step}", to, f.path, f.content, child_opts(self, after), mode=f.mode,
                          for_host=host)
                 for f in file_set.files]
        return run(to, file_set.apply, child_opts(self, files), on_behalf_of=host)


def parse_keys(stdout: str) -> dict[str, str]:
    """{user: key} from scripts/ceph-csi-keys.sh; empty while unknown (preview)."""
    try:
        keys = json.loads(stdout)
    except (TypeError, ValueError):
        return {}
    return {str(k): str(v) for k, v in keys.items()} if isinstance(keys, dict) else {}


def policy_view(cfg: StackConfig, verdict: capacity.CapacityVerdict) -> dict:
    """Inputs of the component that the policy pack reads (policies/storage.py): raw facts and the verdict."""
    return {
        "hostRawTb": {name: round(tb, 4) for name, tb in verdict.host_raw_tb.items()},
        "nearfullRatio": cfg.ceph.nearfull_ratio,
        "dailyIngestTb": cfg.workload.daily_ingest_tb,
        "retentionDays": cfg.workload.retention_days,
        "capacity": verdict.output(),
    }
