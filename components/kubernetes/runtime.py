"""The container runtime on one Kubernetes node (render/runtime.py)."""

import pulumi

from components.remote import HostHandle, apply_file_set
from model.schema import StackConfig
from render import runtime


class ContainerRuntime(pulumi.ComponentResource):
    """containerd (or Docker Engine + cri-dockerd) on one node; `ready` once it runs."""

    ready: pulumi.Resource

    def __init__(self, name: str, cfg: StackConfig, handle: HostHandle, opts: pulumi.ResourceOptions | None = None):
        super().__init__("seoul:kubernetes:ContainerRuntime", name, None, opts)
        self.ready = apply_file_set(self, handle.target, runtime.install(cfg), after=[handle.ready])
        self.register_outputs({"runtime": cfg.kubernetes.container_runtime, "criSocket": runtime.cri_socket(cfg)})
