"""Container runtime on every Kubernetes node (kubelet/kubeadm/kubectl, swap, kernel modules and
sysctls come from the hosts component: components/hosts.py).

containerd (default): the CRI plugin with the runc v2 shim and `SystemdCgroup = true`,
matching the kubelet's systemd cgroup driver. docker: Docker Engine plus cri-dockerd,
the CRI shim the kubelet needs since dockershim left Kubernetes 1.24.
"""

from model import releases
from model.schema import StackConfig
from render.files import FileSet, HostFile, ScriptRun, fingerprint, unit_path

CONTAINERD_CONFIG = "/etc/containerd/config.toml"
CONTAINERD_SOCKET = "unix:///run/containerd/containerd.sock"
CRI_DOCKERD_SOCKET = "unix:///run/cri-dockerd.sock"
DOCKER_DAEMON_JSON = "/etc/docker/daemon.json"
CRICTL_YAML = "/etc/crictl.yaml"
DOCKER_REPO = "/etc/yum.repos.d/docker-ce.repo"

def cri_socket(cfg: StackConfig) -> str:
    return CONTAINERD_SOCKET if cfg.kubernetes.container_runtime == "containerd" else CRI_DOCKERD_SOCKET


def pause_image(cfg: StackConfig) -> str:
    """The sandbox image kubeadm expects for the configured Kubernetes minor (model/releases.py)."""
    return releases.pause_image(cfg.kubernetes.version)


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
        env |= {
            "DOCKER_VERSION": k8s.docker_version,
            "CRI_DOCKERD_VERSION": k8s.cri_dockerd_version,
            "CRI_DOCKERD_SHA256": releases.CRI_DOCKERD_SHA256[k8s.cri_dockerd_version],
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


def files_by_path(cfg: StackConfig) -> dict[str, str]:
    """Every file the runtime step writes before it runs: path -> content."""
    out = {
        DOCKER_REPO: docker_repo(),
        CRICTL_YAML: crictl_yaml(cfg),
        CONTAINERD_CONFIG: containerd_config(cfg),
    }
    if cfg.kubernetes.container_runtime == "docker":
        out |= {
            DOCKER_DAEMON_JSON: docker_daemon_json(),
            unit_path("cri-docker.service"): cri_docker_service(cfg),
            unit_path("cri-docker.socket"): cri_docker_socket(),
        }
    return out


def install(cfg: StackConfig) -> FileSet:
    """Every runtime file, then install and (re)start the runtime when any of them changes."""
    files = tuple(HostFile(f"runtime-{_slug(path)}", path, content) for path, content in files_by_path(cfg).items())
    env = install_env(cfg) | {"FINGERPRINT": fingerprint(files)}
    return FileSet(files, ScriptRun("runtime-install", "runtime-install.sh", env))


def _slug(path: str) -> str:
    return path.rsplit("/", 1)[-1].replace(".", "-").replace("_", "-")
