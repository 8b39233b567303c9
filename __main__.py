"""seoul-cluster: composition only. Load the validated model, build the components, export."""

import pulumi
from pulumi.runtime.config import CONFIG, get_config, get_config_env, is_config_secret

from components.addons import ClusterAddons
from components.apps import Applications
from components.backup import BackupVault, OffsiteCopies
from components.ceph import CephCluster
from components.csi import CephCsi
from components.database import PostgresCluster
from components.edge import EdgeLoadBalancer
from components.firewall import EdgeFirewall
from components.hosts import Host
from components.kubernetes import build_kubernetes
from components.logging import LoggingStack
from components.network import ClusterNetwork
from components.observability import Observability
from model import PROJECT, SECRET_KEYS, ConfigError, load_config

try:
    # Every key the stack sets: CONFIG offline and under mocks, PULUMI_CONFIG under the CLI.
    cfg = load_config(get_config, keys={*CONFIG.get(), *get_config_env()})
except ConfigError as err:
    # A clean stop before anything is registered: nothing half-applied, no traceback.
    raise pulumi.RunError("invalid stack config:\n  " + "\n  ".join(err.lines)) from None

for path in SECRET_KEYS:
    if getattr(cfg, path.split(".")[0]) is None:
        continue  # an optional section the stack leaves out
    if not is_config_secret(f"{PROJECT}:{path.split('.')[0]}"):
        pulumi.log.warn(f"{PROJECT}:{path} is stored in plain text; "
                        f"use: pulumi config set --secret --path '{PROJECT}:{path}'")
unverified = [spec.name for spec in cfg.hosts if spec.host_key is None]
if unverified:
    # Secrets travel over these connections: without a pinned key any machine answering
    # at the address would receive them.
    pulumi.log.warn(f"{len(unverified)} of {len(cfg.hosts)} hosts have no hostKey, so SSH accepts any host key "
                    f"({', '.join(unverified[:3])}{', ...' if len(unverified) > 3 else ''}); "
                    "add hosts[].hostKey from `ssh-keyscan -t ed25519 <address>` before `pulumi up`")
private_key = pulumi.Output.secret(cfg.ssh.private_key.get_secret_value())

hosts = {spec.name: Host(cfg, spec, private_key) for spec in cfg.hosts}
cluster = build_kubernetes(cfg, hosts)
network = ClusterNetwork("network", cfg, cluster.provider)
addons = ClusterAddons("addons", cfg, cluster.provider, after=[network.ready])
Applications("apps", cfg, cluster.provider, ingress=[addons.ingress])
edge = EdgeLoadBalancer(cfg, nodes=cluster.registered, ingress=[addons.ingress])
if cfg.fortigate is not None:
    EdgeFirewall("fortigate", cfg, cfg.fortigate)
backup = BackupVault(cfg)
storage = CephCluster("ceph", cfg, hosts) if cfg.storage_hosts else None
csi = CephCsi("ceph-csi", cfg, storage, cluster.provider) if storage else None
OffsiteCopies(cfg, hosts, backup)
if cfg.database is not None:
    # Its volumes are on ceph-rbd: after CSI when the stack has storage.
    PostgresCluster("database", cfg, cfg.database, cluster.provider, backup,
                    after=[network.ready, *([csi] if csi else [])])
if cfg.observability is not None:
    # Their volumes use the Ceph StorageClasses: after CSI when the stack has storage.
    in_cluster = [network.ready, addons.ingress, *([csi] if csi else [])]
    Observability("observability", cfg, cluster.provider, hosts, after=in_cluster)
    if cfg.observability.logging is not None:
        LoggingStack("logging", cfg, cluster.provider, after=in_cluster)

pulumi.export("environment", cfg.environment)
pulumi.export("publicEndpoint", f"https://{cfg.f5.virtual_address}:{cfg.f5.port}")
pulumi.export("backupBucket", cfg.backup_bucket)
pulumi.export("apps", {app.name: f"https://{app.host}" for app in cfg.apps})
pulumi.export("inventory", {spec.name: {"address": str(spec.address), "roles": list(spec.roles)} for spec in cfg.hosts})
pulumi.export("kubeconfig", cluster.kubeconfig)
for name, value in cluster.outputs.items():
    pulumi.export(name, value)
if storage and csi:
    pulumi.export("cephFsid", storage.fsid)
    pulumi.export("cephMonitors", storage.monitors)
    pulumi.export("cephCapacity", storage.verdict.output())
    pulumi.export("storageClasses", csi.storage_classes)
