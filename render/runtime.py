"""Container runtime on every Kubernetes node (kubelet/kubeadm/kubectl, swap, kernel modules and
sysctls come from the hosts component: components/hosts.py).

containerd (default): the CRI plugin with the runc v2 shim and `SystemdCgroup = true`,
matching the kubelet's systemd cgroup driver. docker: Docker Engine plus cri-dockerd,
the CRI shim the kubelet needs since dockershim left Kubernetes 1.24.
"""

from model.schema import StackConfig

CONTAINERD_CONFIG = "/etc/containerd/config.toml"
CONTAINERD_SOCKET = "unix:///run/containerd/containerd.sock"
CRI_DOCKERD_SOCKET = "unix:///run/cri-dockerd.sock"
DOCKER_DAEMON_JSON = "/etc/docker/daemon.json"
CRICTL_YAML = "/etc/crictl.yaml"
DOCKER_REPO = "/etc/yum.repos.d/docker-ce.repo"

# The pause (sandbox) image each kubeadm minor release expects (`kubeadm config images
# list`); the runtime must use the same one or the kubelet and the runtime disagree about
# the sandbox image. A Kubernetes minor without an entry stops the run.
PAUSE_BY_MINOR = {"1.29": "3.9"}

# sha256 of cri-dockerd-<version>.amd64.tgz (github.com/Mirantis/cri-dockerd/releases).
# Only used with kubernetes.containerRuntime: docker; a release without a reviewed
# checksum here stops the run before anything is touched.
CRI_DOCKERD_SHA256: dict[str, str] = {
    "0.3.11": "b2475988f3b86d85c7835269121171e35c92454ad5f4cd6252183b0fccd74d63",
}


class UnknownReleaseError(ValueError):
    pass


def cri_socket(cfg: StackConfig) -> str:
    return CONTAINERD_SOCKET if cfg.kubernetes.container_runtime == "containerd" else CRI_DOCKERD_SOCKET


def check_releases(cfg: StackConfig) -> None:
    """Refuse a runtime whose downloads cannot be verified, or a release we know nothing of."""
    pause_image(cfg)
    k8s = cfg.kubernetes
    if k8s.container_runtime == "docker" and k8s.cri_dockerd_version not in CRI_DOCKERD_SHA256:
        raise UnknownReleaseError(
            f"kubernetes.criDockerdVersion: {k8s.cri_dockerd_version!r}: no reviewed sha256 in "
            "render/runtime.py CRI_DOCKERD_SHA256; add it from the release page before using docker"
        )


def pause_image(cfg: StackConfig) -> str:
    minor = cfg.kubernetes.minor
    if minor not in PAUSE_BY_MINOR:
        raise UnknownReleaseError(
            f"kubernetes.version: {cfg.kubernetes.version!r}: no pause image known for {minor} in "
            "render/runtime.py PAUSE_BY_MINOR; add the one `kubeadm config images list` shows"
        )
    return f"registry.k8s.io/pause:{PAUSE_BY_MINOR[minor]}"


def containerd_config(cfg: StackConfig) -> str:
    return f"""\
# containerd: rendered by seoul-cluster (render/runtime.py). Do not edit.
version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image(cfg)}"

[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = true

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/opt/cni/bin"
  conf_dir = "/etc/cni/net.d"
"""


def docker_daemon_json() -> str:
    return """\
{
  "exec-opts": ["native.cgroupdriver=systemd"],
  "log-driver": "json-file",
  "log-opts": {"max-size": "100m", "max-file": "5"},
  "live-restore": true,
  "storage-driver": "overlay2"
}
"""


def crictl_yaml(cfg: StackConfig) -> str:
    socket = cri_socket(cfg)
    return f"runtime-endpoint: {socket}\nimage-endpoint: {socket}\ntimeout: 10\n"


def docker_repo() -> str:
    return """\
# Docker CE (containerd.io, docker-ce): rendered by seoul-cluster. Do not edit.
[docker-ce-stable]
name=Docker CE Stable - $basearch
baseurl=https://download.docker.com/linux/centos/$releasever/$basearch/stable
enabled=1
gpgcheck=1
gpgkey=https://download.docker.com/linux/centos/gpg
# pinned: only the versions in the stack config are installed (runtime-install.sh)
exclude=containerd.io docker-ce docker-ce-cli
"""


def install_env(cfg: StackConfig) -> dict[str, str]:
    """Parameters of scripts/runtime-install.sh: every version comes from the model."""
    k8s = cfg.kubernetes
    env = {
        "RUNTIME": k8s.container_runtime,
        "CONTAINERD_VERSION": k8s.containerd_version,
    }
    if k8s.container_runtime == "docker":
        check_releases(cfg)
        env |= {
            "DOCKER_VERSION": k8s.docker_version,
            "CRI_DOCKERD_VERSION": k8s.cri_dockerd_version,
            "CRI_DOCKERD_SHA256": CRI_DOCKERD_SHA256[k8s.cri_dockerd_version],
        }
    return env


def cri_docker_service(cfg: StackConfig) -> str:
    return f"""\
# cri-dockerd: rendered by seoul-cluster (render/runtime.py). Do not edit.
[Unit]
Description=CRI interface for Docker Engine (cri-dockerd)
After=network-online.target docker.service cri-docker.socket
Requires=docker.service cri-docker.socket
Wants=network-online.target

[Service]
Type=notify
ExecStart=/usr/local/bin/cri-dockerd --container-runtime-endpoint fd:// --pod-infra-container-image={pause_image(cfg)}
ExecReload=/bin/kill -s HUP $MAINPID
Restart=always
RestartSec=2
StartLimitBurst=3
LimitNOFILE=infinity
LimitNPROC=infinity
Delegate=yes
KillMode=process

[Install]
WantedBy=multi-user.target
"""


def cri_docker_socket() -> str:
    return """\
# cri-dockerd socket: rendered by seoul-cluster (render/runtime.py). Do not edit.
[Unit]
Description=CRI Docker Socket for the API
PartOf=cri-docker.service

[Socket]
ListenStream=%t/cri-dockerd.sock
SocketMode=0660
SocketUser=root
SocketGroup=docker

[Install]
WantedBy=sockets.target
"""


def files(cfg: StackConfig) -> dict[str, str]:
    """Every file the runtime step writes before it runs: path -> content."""
    out = {
        DOCKER_REPO: docker_repo(),
        CRICTL_YAML: crictl_yaml(cfg),
        CONTAINERD_CONFIG: containerd_config(cfg),
    }
    if cfg.kubernetes.container_runtime == "docker":
        out |= {
            DOCKER_DAEMON_JSON: docker_daemon_json(),
            "/etc/systemd/system/cri-docker.service": cri_docker_service(cfg),
            "/etc/systemd/system/cri-docker.socket": cri_docker_socket(),
        }
    return out
