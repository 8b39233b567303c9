"""Every pinned release the program installs: default versions, checksums, image references.

One home for these facts. The stack config picks versions (`kubernetes.version`,
`etcd.version`, `kubernetes.containerdVersion`, ...); this module says which of them have
been reviewed, and `problems(...)` refuses the others while the config is validated
(`model.load.load_config`), before anything is registered.

Adding a release: put its checksum or image here from the upstream source named beside
each table, and run `make test` (`tests/test_releases.py` checks every default has its
entries).
"""

from collections.abc import Iterator
from dataclasses import dataclass

# Runtime versions used when the stack file does not set them (kubernetes.<key>).
CONTAINERD_VERSION = "1.7.22"
DOCKER_VERSION = "25.0.5"
# The newest cri-dockerd whose checksum we have cross-checked (see CRI_DOCKERD_SHA256).
CRI_DOCKERD_VERSION = "0.3.11"

# sha256 of etcd-v<version>-linux-amd64.tar.gz from github.com/etcd-io/etcd/releases
# (cross-checked against kubespray's checksums.yml).
ETCD_ARCHIVE_SHA256 = {
    "3.5.12": "f2ff0cb43ce119f55a85012255609b61c64263baea83aa7c8e6846c0938adca5",
}

# sha256 of cri-dockerd-<version>.amd64.tgz (github.com/Mirantis/cri-dockerd/releases),
# cross-checked against kubespray's cri_dockerd_archive_checksums (amd64). Only used with
# kubernetes.containerRuntime: docker.
CRI_DOCKERD_SHA256 = {
    "0.3.11": "b2475988f3b86d85c7835269121171e35c92454ad5f4cd6252183b0fccd74d63",
}

# The pause (sandbox) image tag each kubeadm minor release expects (`kubeadm config images
# list`); the runtime must use the same one or the kubelet and the runtime disagree about
# the sandbox image.
PAUSE_BY_MINOR = {"1.29": "3.9"}

# Ceph: the container image cephadm runs for every daemon, per reviewed release (Reef, v18).
# Tags from quay.io/ceph/ceph (the image cephadm's own docs pin); the packages (cephadm,
# ceph-common) come from download.ceph.com's rpm-<version>/el9 repository, signed with the
# Ceph release key below (https://download.ceph.com/keys/release.asc).
CEPH_IMAGES = {
    "18.2.2": "quay.io/ceph/ceph:v18.2.2",
}
CEPH_MAJOR = "18"  # Reef: what the cluster, cephadm and ceph-csi 3.11 (built on Reef) agree on
CEPH_REPO = "https://download.ceph.com/rpm-{version}/el9"
CEPH_RELEASE_KEY_URL = "https://download.ceph.com/keys/release.asc"
# Fingerprint of the Ceph release signing key (security@ceph.com), checked before import; the
# same in Ceph's install docs ("Missing key 08B7...3994") and openstack/puppet-ceph's apt::key id.
CEPH_RELEASE_KEY_FINGERPRINT = "08B73419AC32B4E966C1A330E84AC2C0460F3994"

# ceph-csi Helm charts (RBD and CephFS), one version for both; values checked against
# ../shared/charts/ceph-csi-{rbd,cephfs}-<version>/values.yaml by the tests.

PAUSE_REPOSITORY = "registry.k8s.io/pause"
ETCD_DOWNLOAD = "https://github.com/etcd-io/etcd/releases/download/v{version}/etcd-v{version}-linux-amd64.tar.gz"


@dataclass(frozen=True)
class Archive:
    """A release archive to download on a host: its URL and the sha256 it must have."""

    url: str
    sha256: str


@dataclass(frozen=True)
class Chart:
    """A Helm chart pinned by name, exact version and repository URL."""

    name: str
    version: str
    repository: str


# Cluster add-ons, as Helm charts. The same versions' values.yaml (and values.schema.json)
# sit in ../shared/charts/<name>-<version>/, and tests/test_network_render.py checks every
# values key the program sets against them.
# tigera-operator: Calico v3.27.5 (operator v1.32.12), docs.tigera.io "Install Calico with Helm".
CALICO_VERSION = "v3.27.5"
TIGERA_OPERATOR = Chart("tigera-operator", CALICO_VERSION, "https://docs.tigera.io/calico/charts")
# MetalLB v0.14.9 (controller only: its speaker would fight Calico's BGP sessions).
METALLB = Chart("metallb", "0.14.9", "https://metallb.github.io/metallb")
# ingress-nginx controller v1.11.8.
INGRESS_NGINX = Chart("ingress-nginx", "4.11.8", "https://kubernetes.github.io/ingress-nginx")
# metrics-server 0.7.2.
# ceph-csi RBD and CephFS drivers against the external Ceph cluster (components/csi.py).
CEPH_CSI_RBD = Chart("ceph-csi-rbd", "3.11.0", "https://ceph.github.io/csi-charts")
CEPH_CSI_CEPHFS = Chart("ceph-csi-cephfs", "3.11.0", "https://ceph.github.io/csi-charts")
METRICS_SERVER = Chart("metrics-server", "3.12.2", "https://kubernetes-sigs.github.io/metrics-server/")

# Percona Operator for PostgreSQL v2.6.0 (Patroni, pgBackRest; open-source images, unlike
# Crunchy PGO v5's default images, which need a subscription in production). Images are
# the ones the pg-db 2.6.1 chart pins for PostgreSQL 16.
PG_OPERATOR = Chart("pg-operator", "2.6.0", "https://percona.github.io/percona-helm-charts/")
PG_CR_VERSION = "2.6.0"
PG_IMAGE = "percona/percona-postgresql-operator:2.6.0-ppg16.8-postgres"
PG_BACKREST_IMAGE = "percona/percona-postgresql-operator:2.6.0-ppg16.8-pgbackrest2.54.2"
PG_BOUNCER_IMAGE = "percona/percona-postgresql-operator:2.6.0-ppg16.8-pgbouncer1.24.0"
# Observability (render/monitoring.py): Prometheus operator v0.76.1, Prometheus, Alertmanager
# v0.27, Grafana, kube-state-metrics and node_exporter DaemonSet on the Kubernetes nodes.
KUBE_PROMETHEUS_STACK = Chart("kube-prometheus-stack", "64.0.0", "https://prometheus-community.github.io/helm-charts")

# Logging (render/logging.py): the ECK operator (Elastic License 2.0, internal use) runs
# Elasticsearch, Kibana and Logstash at ELASTIC_STACK_VERSION (within ECK 2.16's supported 8.x);
# Fluent Bit 3.2.10 on every node.
ECK_OPERATOR = Chart("eck-operator", "2.16.1", "https://helm.elastic.co")
FLUENT_BIT = Chart("fluent-bit", "0.48.10", "https://fluent.github.io/helm-charts")
ELASTIC_STACK_VERSION = "8.17.0"
# Applies the ILM/SLM policies (render/logging.py lifecycle_objects); resolve to a digest
# in the registry before the first `pulumi up`.
CURL_IMAGE = "docker.io/curlimages/curl:8.11.1"

# node_exporter on hosts outside the cluster (etcd, storage), from
# github.com/prometheus/node_exporter/releases (sha256 of node_exporter-<v>.linux-amd64.tar.gz
# as in the release's sha256sums.txt; cross-checked against several independent pins).
NODE_EXPORTER_VERSION = "1.8.2"
NODE_EXPORTER_SHA256 = {
    "1.8.2": "6809dd0b3ec45fd6e992c19071d6b5253aed3ead7bf0686885a51d85c6643c66",
}
NODE_EXPORTER_DOWNLOAD = ("https://github.com/prometheus/node_exporter/releases/download/"
                          "v{version}/node_exporter-{version}.linux-amd64.tar.gz")

# Fluent Bit on hosts outside the cluster (etcd, storage): the `fluent-bit` package from
# Fluent Bit's own yum repository for CentOS Stream 9 (docs.fluentbit.io, "Red Hat and
# CentOS"; fluent/fluent-bit-docs installation/downloads/linux/redhat-centos.md), the
# DaemonSet's version (FLUENT_BIT chart's appVersion). Packages and repository metadata
# are signed with the releases key, whose fingerprint is published in the same docs ("GPG
# key updates", installation/downloads/linux.md); the key is checked against it before
# rpm imports it.
FLUENT_BIT_VERSION = "3.2.10"
# The repository is per major release and architecture (the docs' repo file:
# `baseurl = https://packages.fluentbit.io/centos/$releasever/$basearch/`); the major release
# is written out, as the docs advise where $releasever is not a bare number.
FLUENT_BIT_YUM_BASEURL = "https://packages.fluentbit.io/centos/9/$basearch/"
FLUENT_BIT_KEY_URL = "https://packages.fluentbit.io/fluentbit.key"
FLUENT_BIT_KEY_FINGERPRINT = "C3C0A28534B9293EAF51FABD9F9DDC083888C1CD"

# Approves kubelet serving-certificate CSRs (kubelet serverTLSBootstrap) after checking
# the names and addresses in them: github.com/postfinance/kubelet-csr-approver, deployed
# as plain objects (its chart is not among the pinned charts). Resolve the tag to a
# digest in the registry before the first `pulumi up`.
KUBELET_CSR_APPROVER_IMAGE = "ghcr.io/postfinance/kubelet-csr-approver:v1.2.2"


def minor(version: str) -> str:
    """`1.29` for `1.29.6`."""
    return ".".join(version.split(".")[:2])


def etcd_archive(version: str) -> Archive:
    """The etcd release archive for `version` (x.y.z); KeyError if it was never reviewed."""
    return Archive(url=ETCD_DOWNLOAD.format(version=version), sha256=ETCD_ARCHIVE_SHA256[version])


def node_exporter_archive(version: str = NODE_EXPORTER_VERSION) -> Archive:
    """The node_exporter release archive for `version` (x.y.z); KeyError if it was never reviewed."""
    return Archive(url=NODE_EXPORTER_DOWNLOAD.format(version=version), sha256=NODE_EXPORTER_SHA256[version])


def pause_image(kubernetes_version: str) -> str:
    """`registry.k8s.io/pause:<tag>` for a Kubernetes version; KeyError for an unknown minor."""
    return f"{PAUSE_REPOSITORY}:{PAUSE_BY_MINOR[minor(kubernetes_version)]}"


def ceph_image(version: str) -> str:
    """The cephadm container image for a Ceph release (x.y.z); KeyError if never reviewed."""
    return CEPH_IMAGES[version]


def ceph_problems(version: str) -> Iterator[tuple[str, str]]:
    """(key path, message) when `ceph.version` is not a reviewed Reef release."""
    if version.split(".")[0] != CEPH_MAJOR:
        yield "ceph.version", f"{version}: the cluster runs Ceph {CEPH_MAJOR} (Reef); other majors are not reviewed"
    elif version not in CEPH_IMAGES:
        yield "ceph.version", (
            f"{version}: no reviewed image in model/releases.py CEPH_IMAGES; add quay.io/ceph/ceph:v{version}"
        )


def problems(etcd: str, kubernetes: str, container_runtime: str, cri_dockerd: str) -> Iterator[tuple[str, str]]:
    """(key path, message) for each chosen release (x.y.z versions) without a reviewed entry here."""
    if etcd not in ETCD_ARCHIVE_SHA256:
        yield "etcd.version", (
            f"{etcd}: no reviewed sha256 for this release in model/releases.py "
            "ETCD_ARCHIVE_SHA256; add it from the release's SHA256SUMS before deploying"
        )
    if minor(kubernetes) not in PAUSE_BY_MINOR:
        yield "kubernetes.version", (
            f"{kubernetes}: no pause image known for {minor(kubernetes)} in model/releases.py "
            "PAUSE_BY_MINOR; add the one `kubeadm config images list` shows"
        )
    if container_runtime == "docker" and cri_dockerd not in CRI_DOCKERD_SHA256:
        yield "kubernetes.criDockerdVersion", (
            f"{cri_dockerd}: no reviewed sha256 in model/releases.py CRI_DOCKERD_SHA256; "
            "add it from the release page before using docker"
        )
