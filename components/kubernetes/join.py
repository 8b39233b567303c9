"""One node joining the cluster: join material minted on the init node, join, register."""

from collections.abc import Sequence

import pulumi

from components.remote import HostHandle, Target, apply_file_set, child_opts, put_file, run
from model.schema import HostSpec, StackConfig
from render import kubeadm
from render.files import FileSet, HostFile


def join_node(
    parent: pulumi.Resource,
    cfg: StackConfig,
    node: HostSpec,
    handle: HostHandle,
    init_node: Target,
    after: Sequence[pulumi.Resource],
    files: tuple[HostFile, ...] = (),
) -> tuple[pulumi.Resource, pulumi.Resource]:
    """Mint join material on `init_node`, hand it to the node, join, register; returns (join, registration).

    `files`: what `kubeadm join` reads (a worker's kubeadm config), written by the join step
    itself (a file set), so they cost no resource of their own.

    The registration step (`<node>-node`) is what drains the node when it leaves: anything
    that must go before the drain (the node's F5 pool member) depends on it.

    The material is a secret output of its step (logging off), travels on stdin into a
    root-only file on the node and is removed there after the join. Removing the node
    from the stack runs the deletes in reverse: drain + delete the Node (from the init
    node), then `kubeadm reset` on the node itself.
    """
    token = run(init_node, kubeadm.join_token(node), child_opts(parent, after), secret_output=True,
                on_behalf_of=node)
    secrets = put_file(
        f"{node.name}-join-secrets",
        handle.target,
        kubeadm.JOIN_SECRETS_PATH,
        token.stdout,
        child_opts(parent, [handle.ready, token]),
        mode="0600",
        secret=True,
    )
    join, join_after = kubeadm.join(cfg, node), [*after, secrets]
    joined = (apply_file_set(parent, handle.target, FileSet(files, join), join_after) if files
              else run(handle.target, join, child_opts(parent, join_after)))
    registered = run(init_node, kubeadm.node_registration(node), child_opts(parent, [joined]), on_behalf_of=node)
    return joined, registered
