"""External etcd v3.5 on the hosts with role `etcd`: TLS everywhere, a dedicated CA.

Per member: install -> CA files -> member certificate, config, unit -> start.
Starts run one member after another (sorted by name) so that a rolling change never
takes two members down; a fresh bootstrap is not slowed by that, because a member
of a cluster without quorum yet starts without waiting (scripts/etcd-start.sh).
The CA is created once on the first member and copied (secret) to the others, so
each member renews its own certificate monthly without a Pulumi run.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pulumi

from components.remote import Target, digest, put_file, run_script, script
from model.schema import Host, StackConfig
from render import etcd

if TYPE_CHECKING:
    from components.kubernetes import HostHandle

CERT_ENV_PATH = "/etc/etcd/certs.env"
HEALTH_TIMEOUT_SECONDS = "600"


class EtcdCluster(pulumi.ComponentResource):
    """The external etcd cluster; `ready` is done once every member answers healthy."""

    ready: pulumi.Resource
    started: dict[str, pulumi.Resource]
    ca_cert: pulumi.Output[str]
    ca_key: pulumi.Output[str]
    endpoints: list[str]

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        hosts: Mapping[str, "HostHandle"],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("seoul:etcd:EtcdCluster", name, None, opts)
        self._cfg = cfg
        self._hosts = hosts
        members = etcd.members(cfg)
        first = members[0]
        self.endpoints = etcd.client_endpoints(cfg)

        installs = {m.name: self._install(m) for m in members}
        ca = self._create_ca(first, after=installs[first.name])
        bundle = run_script(
            f"{first.name}-etcd-ca-export",
            self._target(first),
            "etcd-ca-export.sh",
            self._opts([ca]),
            env={"CA_CERT": etcd.CA_CERT, "CA_KEY": etcd.CA_KEY},
            secret_output=True,
        ).stdout
        pair = bundle.apply(etcd.split_ca_bundle)
        self.ca_cert = pulumi.Output.secret(pair[0])
        self.ca_key = pulumi.Output.secret(pair[1])

        previous: pulumi.Resource | None = None
        self.started = {}
        for index, member in enumerate(members):
            ca_files = [ca] if member is first else self._copy_ca(member, after=installs[member.name])
            cert = self._member_cert(member, after=ca_files)
            start = self._start(
                member, after=[cert, *self._configure(member, after=installs[member.name])], previous=previous
            )
            self._maintenance(member, index, after=start)
            self.started[member.name] = start
            previous = start

        self.ready = run_script(
            f"{first.name}-etcd-health",
            self._target(first),
            "etcd-health.sh",
            self._opts(list(self.started.values())),
            env={
                "ENDPOINTS": ",".join(self.endpoints),
                "CA_CERT": etcd.CA_CERT,
                "CERT": etcd.MEMBER_CERT,
                "KEY": etcd.MEMBER_KEY,
                "BIN_DIR": etcd.BIN_DIR,
                "TIMEOUT_SECONDS": HEALTH_TIMEOUT_SECONDS,
            },
            triggers=[",".join(self.endpoints)],
        )
        self.register_outputs({"endpoints": self.endpoints, "initialCluster": etcd.initial_cluster(cfg)})

    # -- helpers -------------------------------------------------------------------

    def _target(self, host: Host) -> Target:
        return self._hosts[host.name].target

    def _opts(self, after: list[pulumi.Resource]) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=after)

    def _install(self, member: Host) -> pulumi.Resource:
        archive = etcd.archive(self._cfg)
        return run_script(
            f"{member.name}-etcd-install",
            self._target(member),
            "etcd-install.sh",
            self._opts([self._hosts[member.name].ready]),
            env={
                "ETCD_VERSION": self._cfg.etcd.version,
                "ETCD_URL": archive.url,
                "ETCD_SHA256": archive.sha256,
                "BIN_DIR": etcd.BIN_DIR,
                "DATA_DIR": etcd.DATA_DIR,
                "SNAPSHOT_DIR": etcd.SNAPSHOT_DIR,
                "PKI_DIR": etcd.PKI_DIR,
            },
        )

    def _create_ca(self, first: Host, after: pulumi.Resource) -> pulumi.Resource:
        return run_script(
            f"{first.name}-etcd-ca",
            self._target(first),
            "etcd-ca.sh",
            self._opts([after]),
            env={
                "CA_CERT": etcd.CA_CERT,
                "CA_KEY": etcd.CA_KEY,
                "CA_DAYS": str(etcd.CA_DAYS),
                "CA_CN": f"seoul-{self._cfg.environment}-etcd-ca",
            },
        )

    def _copy_ca(self, member: Host, after: pulumi.Resource) -> list[pulumi.Resource]:
        target = self._target(member)
        return [
            put_file(
                f"{member.name}-etcd-ca-cert",
                target,
                etcd.CA_CERT,
                self.ca_cert,
                self._opts([after]),
                mode="0644",
                secret=True,
                keep_on_delete=True,
            ),
            put_file(
                f"{member.name}-etcd-ca-key",
                target,
                etcd.CA_KEY,
                self.ca_key,
                self._opts([after]),
                mode="0600",
                secret=True,
                keep_on_delete=True,
            ),
        ]

    def _member_cert(self, member: Host, after: list[pulumi.Resource]) -> pulumi.Resource:
        return run_script(
            f"{member.name}-etcd-certs",
            self._target(member),
            "etcd-certs.sh",
            self._opts(after),
            env=etcd.cert_env(member),
        )

    def _configure(self, member: Host, after: pulumi.Resource) -> list[pulumi.Resource]:
        target = self._target(member)
        return [
            put_file(
                f"{member.name}-etcd-config",
                target,
                etcd.CONF_PATH,
                etcd.config_yaml(self._cfg, member),
                self._opts([after]),
                mode="0644",
            ),
            put_file(
                f"{member.name}-etcd-unit",
                target,
                etcd.UNIT_PATH,
                etcd.unit(self._cfg),
                self._opts([after]),
                mode="0644",
            ),
        ]

    def _start(self, member: Host, after: list[pulumi.Resource], previous: pulumi.Resource | None) -> pulumi.Resource:
        others = [etcd.client_url(m) for m in etcd.members(self._cfg) if m.name != member.name]
        env = {
            "NAME": member.name,
            "PEER_URL": etcd.peer_url(member),
            "CONF": etcd.CONF_PATH,
            "DATA_DIR": etcd.DATA_DIR,
            "CA_CERT": etcd.CA_CERT,
            "CERT": etcd.MEMBER_CERT,
            "KEY": etcd.MEMBER_KEY,
            "BIN_DIR": etcd.BIN_DIR,
            "OTHER_ENDPOINTS": ",".join(others),
            "FINGERPRINT": digest(etcd.restart_fingerprint(self._cfg, member)),
        }
        # Quorum-aware: the previous member's start (or restart) has finished first.
        chain = [previous] if previous is not None else []
        return run_script(
            f"{member.name}-etcd-start",
            self._target(member),
            "etcd-start.sh",
            self._opts([*after, *chain]),
            env=env,
            delete_script="etcd-remove.sh",
        )

    def _maintenance(self, member: Host, index: int, after: pulumi.Resource) -> None:
        """Hourly snapshots kept locally and the monthly certificate renewal."""
        target = self._target(member)
        files = {
            "etcd-snapshot-script": ("/usr/local/sbin/seoul-etcd-snapshot", script("etcd-snapshot.sh"), "0755"),
            "etcd-snapshot-service": ("/etc/systemd/system/etcd-snapshot.service", etcd.snapshot_service(), "0644"),
            "etcd-snapshot-timer": ("/etc/systemd/system/etcd-snapshot.timer", etcd.snapshot_timer(), "0644"),
            "etcd-certs-script": ("/usr/local/sbin/seoul-etcd-certs", script("etcd-certs.sh"), "0755"),
            "etcd-certs-env": (CERT_ENV_PATH, etcd.env_file(etcd.cert_env(member)), "0644"),
            "etcd-certs-service": (
                "/etc/systemd/system/etcd-certs-renew.service",
                etcd.cert_renew_service(CERT_ENV_PATH),
                "0644",
            ),
            "etcd-certs-timer": (
                "/etc/systemd/system/etcd-certs-renew.timer",
                etcd.cert_renew_timer(index),
                "0644",
            ),
        }
        written = [
            put_file(f"{member.name}-{step}", target, path, content, self._opts([after]), mode=mode)
            for step, (path, content, mode) in files.items()
        ]
        run_script(
            f"{member.name}-etcd-timers",
            target,
            "enable-units.sh",
            self._opts(written),
            env={
                "TIMERS": "etcd-snapshot.timer etcd-certs-renew.timer",
                "FINGERPRINT": digest("".join(content for _, content, _ in files.values())),
            },
            delete_script="disable-units.sh",
        )
