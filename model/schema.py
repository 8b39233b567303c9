"""Field-level shape of the stack config: names, types, ranges, defaults; inventory queries.

Defaults live here; pinned release versions, checksums and images in `model.releases`.
"""

import re
from functools import cached_property
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any, Literal, get_args
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from model import releases

Role = Literal["control-plane", "etcd", "worker", "ingress", "storage"]
# `failed`: the machine is gone for good (dead, powered off, being replaced). Nothing runs
# on it any more; its resources stay in the Pulumi state, inert, until its entry is removed
# (README: "When a server dies").
HostState = Literal["active", "failed"]
Environment = Literal["prod", "stage"]

HOST_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
VERSION_PATTERN = r"^\d+\.\d+\.\d+$"
DEVICE_PATTERN = r"^/dev/[A-Za-z0-9/_-]+$"
USER_PATTERN = r"^[a-z_][a-z0-9_-]{0,31}$"
HOST_KEY_PATTERN = r"^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|rsa-sha2-(256|512)|ssh-rsa) [A-Za-z0-9+/]+={0,3}$"
# An image with a tag or digest (a bare name is refused; `latest` too, see App.image).
IMAGE_PATTERN = (r"^[a-z0-9][a-z0-9._-]*(:[0-9]+)?(/[a-z0-9._-]+)*"
                 r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$")
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti)?$"
DNS_NAME_PATTERN = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
SNS_TOPIC_PATTERN = r"^arn:aws:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$"
EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+\.)+[A-Za-z]{2,63}$"

# DNS-1123 label: host names become Kubernetes node names and resource names.
HostName = Annotated[str, StringConstraints(pattern=HOST_NAME_PATTERN)]
Version = Annotated[str, StringConstraints(pattern=VERSION_PATTERN)]
DevicePath = Annotated[str, StringConstraints(pattern=DEVICE_PATTERN)]
AsNumber = Annotated[int, Field(ge=1, le=4_294_967_295)]
Port = Annotated[int, Field(ge=1, le=65_535)]
Quantity = Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN)]
Percent = Annotated[int, Field(ge=1, le=100)]


def natural_key(name: str) -> list[int | str]:
    """Sort key that orders the digits in a name as numbers: osd-2 < osd-10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _types(annotation: Any) -> set[Any]:
    """Every type named in an annotation, through Annotated, unions and containers."""
    found = {annotation}
    for arg in get_args(annotation):
        found |= _types(arg)
    return found


class Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic's lax mode reads true as 1: `cephFullEveryDays: true` would mean daily fulls.
        if isinstance(value, bool) and info.field_name:
            types = _types(cls.model_fields[info.field_name].annotation)
            if types & {int, float} and bool not in types:
                raise ValueError("a number is required, not true or false")
        return value


class Ssh(Model):
    user: Annotated[str, StringConstraints(pattern=USER_PATTERN)]
    private_key: SecretStr
    port: Port = 22


# Roles whose hosts run a kubelet.
KUBERNETES_NODE_ROLES = frozenset({"control-plane", "worker", "ingress"})


class HostSpec(Model):
    """One entry of `hosts:` in the stack file: a bare-metal server and its roles."""

    name: HostName
    address: IPv4Address
    roles: Annotated[list[Role], Field(min_length=1)]
    disks: list[DevicePath] = []
    # The host's public SSH key ("ssh-ed25519 AAAA..."), checked on every connection;
    # without it the provider accepts any key the address presents.
    host_key: Annotated[str, StringConstraints(pattern=HOST_KEY_PATTERN)] | None = None
    state: HostState = "active"
    # The rack (and so the top-of-rack pair) the host sits in; a ToR peer with a rack
    # serves only that rack's nodes (label RACK_LABEL on the Node).
    rack: HostName | None = None

    @property
    def failed(self) -> bool:
        return self.state == "failed"

    def has(self, role: Role) -> bool:
        return role in self.roles

    @property
    def is_kubernetes_node(self) -> bool:
        """Runs a kubelet: a control plane or any kind of worker."""
        return bool(KUBERNETES_NODE_ROLES & set(self.roles))


class TorPeer(Model):
    address: IPv4Address
    as_number: AsNumber
    # Set: only nodes of this rack peer with it. Unset: every node does.
    rack: HostName | None = None


class Network(Model):
    node_cidr: IPv4Network
    pod_cidr: IPv4Network
    service_cidr: IPv4Network
    api_vip: IPv4Address
    # HAProxy listens here on the VIP; kube-apiserver keeps 6443 on each node, so the
    # two never fight over one port on a control-plane host.
    api_vip_port: Port = 8443
    as_number: AsNumber
    tor_peers: Annotated[list[TorPeer], Field(min_length=1)]
    load_balancer_cidr: IPv4Network
    ntp_servers: Annotated[list[str], Field(min_length=1)] = ["0.kr.pool.ntp.org", "1.kr.pool.ntp.org"]
    # Calico IP pool encapsulation (operator.tigera.io Installation names): CrossSubnet
    # modes encapsulate only between nodes of different subnets (racks), never inside one.
    encapsulation: Literal["VXLANCrossSubnet", "IPIPCrossSubnet", "None"] = "VXLANCrossSubnet"
    # The data center's uplink to the internet (the seed: 1 Gbps, scalable to 100 Gbps);
    # off-site backups may use `backup.uplinkSharePercent` of it (render/backup.py).
    uplink_gbps: Annotated[float, Field(gt=0, le=100)] = 1


class Kubernetes(Model):
    version: Version
    # The control plane that ran `kubeadm init` and mints join tokens. Pin it: left out,
    # the first control plane by name is used, and a new host that sorts before it
    # would be taken for a new cluster's first node.
    init_node: HostName | None = None
    container_runtime: Literal["containerd", "docker"] = "containerd"
    containerd_version: Version = releases.CONTAINERD_VERSION
    cri_dockerd_version: Version = releases.CRI_DOCKERD_VERSION
    docker_version: Version = releases.DOCKER_VERSION

    @property
    def minor(self) -> str:
        """`1.29` for 1.29.6: the pkgs.k8s.io repository is per minor release."""
        return releases.minor(self.version)


class Etcd(Model):
    version: Version
    # The member that created the etcd CA (pin it, as kubernetes.initNode).
    ca_member: HostName | None = None


class CephPool(Model):
    name: HostName
    type: Literal["replicated", "erasure"]
    application: Literal["rbd", "cephfs", "rgw"]
    size: Annotated[int, Field(ge=1)] | None = None
    min_size: Annotated[int, Field(ge=1)] | None = None
    # Ceph refuses k=1 ("k=1 must be >= 2", seen on a real cluster: tests/test_ceph_scripts.py).
    k: Annotated[int, Field(ge=2)] | None = None
    m: Annotated[int, Field(ge=1)] | None = None
    # Holds the workload (`workload.dailyIngestTb`): the capacity verdict checks that these
    # pools keep `workload.retentionDays` of it after losing a storage host.
    workload: bool = False
    # RBD on an erasure-coded pool: the replicated rbd pool that holds the images' metadata
    # (the StorageClass's `pool`, this one its `dataPool`); default the first replicated rbd pool.
    metadata_pool: HostName | None = None

    @model_validator(mode="after")
    def _settings_fit_type(self) -> "CephPool":
        if self.type == "replicated":
            if self.size is None or self.min_size is None:
                raise ValueError("a replicated pool needs size and minSize")
            if self.min_size > self.size:
                raise ValueError(f"minSize {self.min_size} is above size {self.size}")
        elif self.k is None or self.m is None:
            raise ValueError("an erasure-coded pool needs k and m")
        return self


Ratio = Annotated[float, Field(gt=0, le=1)]


class CephFilesystem(Model):
    """The CephFS volume, made from two entries of `ceph.pools` (created when both exist)."""

    name: HostName = "cephfs"
    metadata_pool: HostName = "cephfs-metadata"
    data_pool: HostName = "cephfs-data"
    # MDS daemons by label: one active, the rest standby.
    mds_count: Annotated[int, Field(ge=1, le=5)] = 2


class Ceph(Model):
    version: Version
    pools: list[CephPool] = []
    # The storage host that ran `cephadm bootstrap` (pin it, as kubernetes.initNode); left
    # out, the first storage host in natural name order.
    bootstrap_host: HostName | None = None
    # Replication and recovery traffic between OSDs; left out, it shares the public network.
    cluster_network: IPv4Network | None = None
    # The cluster's fsid; left out, derived from the environment (model/ceph.py fsid).
    fsid: UUID | None = None
    # Capacity of each OSD disk, in TB (10^12 bytes) as sold: the seed's NVMe are 7.68 TB.
    disk_size_tb: Annotated[float, Field(gt=0)] = 7.68
    # RAM of a storage host (GiB): OSD memory target = 70% of it spread over its OSDs.
    storage_host_memory_gib: Annotated[int, Field(ge=16)] = 128
    nearfull_ratio: Ratio = 0.85
    backfillfull_ratio: Ratio = 0.90
    full_ratio: Ratio = 0.95
    filesystem: CephFilesystem = CephFilesystem()


class F5Management(Model):
    """How Pulumi reaches the BIG-IP's management API (iControl REST)."""

    address: Annotated[str, StringConstraints(min_length=1)]
    port: Port = 443
    username: Annotated[str, StringConstraints(min_length=1)]
    password: SecretStr


class F5(Model):
    virtual_address: IPv4Address
    port: Port = 443
    management: F5Management
    partition: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")] = "Common"
    # Certificate and key already installed on the BIG-IP for the public site.
    certificate: str = "/Common/default.crt"
    key: str = "/Common/default.key"


class FortiGateManagement(Model):
    """How Pulumi reaches the FortiGate's REST API (pulumiverse-fortios provider)."""

    address: Annotated[str, StringConstraints(min_length=1)]
    token: SecretStr
    vdom: str = "root"


class FortiGateInterfaces(Model):
    """FortiGate ports by purpose (a 200F names them wan1, wan2, port1..port16, x1..x4)."""

    internet: str = "wan1"
    edge: str = "port1"       # towards the F5's external side
    bastion: str = "port2"    # the operators' bastion network
    nodes: str = "port3"      # the node network (SSH, the Kubernetes API VIP)


class FortiGate(Model):
    """The FortiGate 200F in front of the F5 and the node network."""

    management: FortiGateManagement
    bastion_cidr: IPv4Network
    interfaces: FortiGateInterfaces = FortiGateInterfaces()


class Resource(Model):
    """One resource of a container: request, limit, and the HPA's utilization target (% of request)."""

    request: Quantity
    limit: Quantity
    target_utilization: Percent


class Replicas(Model):
    min: Annotated[int, Field(ge=1)]
    max: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _ordered(self) -> "Replicas":
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class App(Model):
    """An application behind ingress-nginx: Deployment, Service, Ingress, HPA and PDB."""

    name: HostName
    image: Annotated[str, StringConstraints(pattern=IMAGE_PATTERN)]
    port: Port
    host: Annotated[str, StringConstraints(pattern=DNS_NAME_PATTERN)]
    replicas: Replicas
    cpu: Resource
    memory: Resource
    namespace: HostName = "shop"
    health_path: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9/._-]*$")] = "/healthz"
    # How long the HPA waits on lower recommendations before it scales down.
    scale_down_stabilization_seconds: Annotated[int, Field(ge=0, le=3600)] = 300

    @field_validator("image")
    @classmethod
    def _not_latest(cls, image: str) -> str:
        if image.endswith(":latest"):
            raise ValueError("the tag latest moves; pin a version tag or a digest")
        return image


class Hardening(Model):
    # CIS benchmark level (render/cis.py): 1 everywhere; 2 adds the audit rules, immutable
    # audit config, auditd.conf's halt-on-full and the dccp/sctp modules disabled.
    level: Literal[1, 2] = 1
    ssh_password_authentication: bool = False
    permit_root_login: bool = False
    selinux: Literal["enforcing", "permissive"] = "enforcing"


# An RBD image as `rbd` names it: `pool/image`.
RbdImage = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][-a-z0-9_.]*/[A-Za-z0-9][-A-Za-z0-9_.]*$")]


class Backup(Model):
    """The S3 vault in Seoul that Ceph snapshots, PostgreSQL and etcd backups land in."""

    # S3 names are global: the default suits one company's one stack per environment.
    bucket: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")] | None = None
    retention_days: Annotated[int, Field(ge=1, le=3650)] = 35
    # The most of `network.uplinkGbps` off-site backups may take (rclone --bwlimit, pgBackRest).
    uplink_share_percent: Percent = 30
    # RBD images (`pool/image`) the Ceph bootstrap host snapshots and ships off site, daily.
    ceph_images: list[RbdImage] = []
    # A new full export every this many daily runs (the rest are export-diff increments):
    # a restore needs one full and at most cephFullEveryDays-1 increments.
    ceph_full_every_days: Annotated[int, Field(ge=1, le=366)] = 7
    # Size of one etcd snapshot, for the uplink estimate (etcd's quota caps it at 8 GiB).
    etcd_snapshot_gb: Annotated[float, Field(gt=0, le=8)] = 2

    @model_validator(mode="after")
    def _current_chain_kept(self) -> "Backup":
        # The vault expires a full retentionDays after it was written: the chain growing
        # on it must have started a new full by then, or its newest increments are useless.
        if self.ceph_full_every_days > self.retention_days:
            raise ValueError(f"cephFullEveryDays {self.ceph_full_every_days} is above retentionDays "
                             f"{self.retention_days}: the vault would expire a full while increments still build on it")
        return self


class Database(Model):
    """The application's PostgreSQL: a Percona Operator for PostgreSQL v2 cluster (Patroni HA,
    pgBackRest repo1 in the S3 vault). Schedules are cron expressions (the operator's)."""

    name: HostName = "shop-db"
    namespace: HostName = "databases"
    # The images pinned in model.releases are PostgreSQL 16's.
    postgres_version: Literal[16] = 16
    instances: Annotated[int, Field(ge=2, le=9)] = 3
    storage_class: HostName = "ceph-rbd"
    storage_size: Quantity = "200Gi"
    # The seed: a full backup every day, incrementals in between.
    full_schedule: str = "0 1 * * *"
    incremental_schedule: str = "0 */4 * * *"
    # Full backups kept (pgBackRest repo1-retention-full, type count).
    retention_full: Annotated[int, Field(ge=1, le=9999999)] = 7
    # Data that changes a day, for the uplink estimate of the incrementals.
    daily_change_gb: Annotated[float, Field(ge=0)] = 20
    # pgBackRest's client-side encryption passphrase (repo1-cipher-pass): a secret.
    repo_cipher_pass: SecretStr


class AlertEmail(Model):
    """Alertmanager's email receiver: an SMTP smarthost with authentication (STARTTLS required)."""

    smarthost: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")]
    sender: Annotated[str, StringConstraints(pattern=EMAIL_PATTERN)]
    to: Annotated[list[Annotated[str, StringConstraints(pattern=EMAIL_PATTERN)]], Field(min_length=1)]
    username: Annotated[str, StringConstraints(min_length=1)]
    password: SecretStr


class AlertSms(Model):
    """Alertmanager's SMS receiver: an Amazon SNS topic (SMS subscribers) or a Korean SMS gateway's webhook.

    `credential` is the SNS user's secret access key (with `accessKeyId`), or the
    gateway's bearer token.
    """

    provider: Literal["sns", "webhook"] = "sns"
    region: str = "ap-northeast-2"
    topic_arn: Annotated[str, StringConstraints(pattern=SNS_TOPIC_PATTERN)] | None = None
    access_key_id: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{16,128}$")] | None = None
    webhook_url: Annotated[str, StringConstraints(pattern=r"^https://\S+$")] | None = None
    credential: SecretStr

    @model_validator(mode="after")
    def _provider_settings(self) -> "AlertSms":
        if self.provider == "sns" and (self.topic_arn is None or self.access_key_id is None):
            raise ValueError("provider sns needs topicArn and accessKeyId")
        if self.provider == "webhook" and self.webhook_url is None:
            raise ValueError("provider webhook needs webhookUrl")
        return self


class Logging(Model):
    """Elasticsearch (ECK) log retention: hot days on Ceph, then S3 snapshots kept for the legal minimum."""

    hot_days: Annotated[int, Field(ge=1, le=90)] = 7
    # PIPA safety-measure standard: access logs kept at least one year (two for large processors).
    snapshot_retention_days: Annotated[int, Field(ge=365, le=3650)] = 365
    snapshot_bucket: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")] | None = None
    kibana_host: Annotated[str, StringConstraints(pattern=DNS_NAME_PATTERN)] | None = None
    # Elasticsearch hot data nodes and each one's data volume on `storageClass`.
    hot_nodes: Annotated[int, Field(ge=1)] = 3
    hot_node_storage: Quantity = "2Ti"
    # An IAM user allowed to write the snapshot repository's prefix (Elasticsearch keystore).
    snapshot_access_key_id: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{16,128}$")]
    snapshot_secret_access_key: SecretStr


class Observability(Model):
    """kube-prometheus-stack, Alertmanager receivers, Grafana, logging (render/monitoring.py, alerts.py)."""

    namespace: HostName = "monitoring"
    # Ceph RBD StorageClass made by the storage work.
    storage_class: HostName = "ceph-rbd"
    retention_days: Annotated[int, Field(ge=1, le=3650)] = 15
    prometheus_storage: Quantity = "200Gi"
    grafana_admin_password: SecretStr
    email: AlertEmail
    sms: AlertSms
    logging: Logging | None = None


class Workload(Model):
    daily_ingest_tb: Annotated[float, Field(gt=0)]
    retention_days: Annotated[int, Field(ge=1)]


class StackConfig(Model):
    aws_region: str = Field(alias="aws:region")
    environment: Environment
    ssh: Ssh
    hosts: Annotated[list[HostSpec], Field(min_length=1)]
    network: Network
    kubernetes: Kubernetes
    etcd: Etcd
    ceph: Ceph
    f5: F5
    hardening: Hardening = Hardening()
    backup: Backup = Backup()
    workload: Workload
    fortigate: FortiGate | None = None
    database: Database | None = None
    apps: list[App] = []
    observability: Observability | None = None

    @property
    def backup_bucket(self) -> str:
        return self.backup.bucket or f"seoul-cluster-{self.environment}-backups"

    # True only on `as_built`: its queries count failed hosts as if they still ran.
    _built: bool = PrivateAttr(default=False)

    @cached_property
    def live_hosts(self) -> list[HostSpec]:
        """Hosts not marked `state: failed`, in inventory order. Every query below counts only these.

        On `as_built`, every host (each keeps its `state`, so `failed` still tells).
        """
        return list(self.hosts) if self._built else [h for h in self.hosts if not h.failed]

    @cached_property
    def failed_hosts(self) -> list[HostSpec]:
        """Hosts marked `state: failed`, in inventory order."""
        return [h for h in self.hosts if h.failed]

    @cached_property
    def as_built(self) -> "StackConfig":
        """This config with failed hosts counted in every query again: what was built.

        Components register a failed host's resources from it, unchanged and inert (the
        hosts keep their `state`), so the engine runs nothing on the dead machine.
        """
        if not self.failed_hosts:
            return self
        built = self.model_copy()
        built.__dict__.clear()
        built.__dict__.update({name: getattr(self, name) for name in type(self).model_fields})  # no cached queries
        built._built = True
        return built

    def with_role(self, role: Role) -> list[HostSpec]:
        """Live hosts with `role`, in inventory order."""
        return [h for h in self.live_hosts if h.has(role)]

    def bootstrap_order(self, role: Role, pinned: str | None) -> list[HostSpec]:
        """Hosts with `role` by name, the pinned bootstrap host (if any) first."""
        by_name = sorted(self.with_role(role), key=lambda h: h.name)
        return sorted(by_name, key=lambda h: h.name != pinned) if pinned else by_name

    @cached_property
    def kubernetes_nodes(self) -> list[HostSpec]:
        """Live hosts that run a kubelet (control planes and every kind of worker), in inventory order."""
        return [h for h in self.live_hosts if h.is_kubernetes_node]

    @cached_property
    def control_planes(self) -> list[HostSpec]:
        """Control-plane hosts by name, `kubernetes.initNode` (the one that ran `kubeadm init`) first."""
        return self.bootstrap_order("control-plane", self.kubernetes.init_node)

    @property
    def init_node(self) -> HostSpec:
        """The control plane that runs `kubeadm init` and mints join tokens."""
        return self.control_planes[0]

    @cached_property
    def workers(self) -> list[HostSpec]:
        """Kubernetes nodes that are not control planes, by name."""
        return sorted((h for h in self.kubernetes_nodes if not h.has("control-plane")), key=lambda h: h.name)

    @cached_property
    def ingress_nodes(self) -> list[HostSpec]:
        """Kubernetes nodes with the role ingress, by name: ingress-nginx runs here, the F5 pool points here."""
        return sorted((h for h in self.kubernetes_nodes if h.has("ingress")), key=lambda h: h.name)

    @cached_property
    def etcd_members(self) -> list[HostSpec]:
        """etcd members by name (inventory order never changes anything), `etcd.caMember` first."""
        return self.bootstrap_order("etcd", self.etcd.ca_member)

    @cached_property
    def storage_hosts(self) -> list[HostSpec]:
        """Ceph hosts, `ceph.bootstrapHost` first, then in natural name order (osd-2 before osd-10).

        Natural order keeps a new host (osd-7, osd-10, ...) after the existing ones, so the
        daemon labels handed out by position (model/ceph.py) stay where they are.
        """
        pinned = self.ceph.bootstrap_host or min((h.name for h in self.with_role("storage")), default=None,
                                                 key=natural_key)
        return sorted(self.with_role("storage"), key=lambda h: (h.name != pinned, natural_key(h.name)))
