"""The two shapes every host step takes: put a file, or run a script from scripts/.

What to put and run comes from render (`render.files`: HostFile, ScriptRun, FileSet);
`put`, `run` and `apply_file_set` turn it into `remote.Command`s named `<host>-<step>`.

Both keep the command string short, fixed and free of secrets:
- a file travels on stdin into `sudo install ... /dev/stdin <path>`;
- a script travels on stdin into `sudo env K=V ... bash -s`; a file set's step is one
  such script that writes its files first (`render.files.file_set_script`).
Parameters are plain `K=V` words on the command line, not the SSH `environment`
input, because sshd only accepts variables named in `AcceptEnv`.
Secrets only ever travel on stdin, and steps that carry them log nothing.
"""

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pulumi
from pulumi_command import remote

from model.schema import HostSpec, Ssh
from render.files import FileSet, HostFile, ScriptRun, file_set_delete, file_set_script, script


@dataclass(frozen=True)
class Target:
    """A host and how to reach it over SSH."""

    host: HostSpec
    connection: remote.ConnectionArgs


class HostHandle(Protocol):
    """What a component needs of a host: how to reach it, and when it is prepared."""

    @property
    def target(self) -> Target: ...

    @property
    def ready(self) -> pulumi.Resource: ...


# Every input of command:remote:Command (pulumi-command 1.2.1 schema): a failed host's
# commands ignore changes to all of them, so the engine never updates, replaces or re-runs them.
COMMAND_INPUTS = [
    "addPreviousOutputInEnv", "connection", "create", "delete", "environment", "logging", "stdin", "triggers", "update",
]


def inert(opts: pulumi.ResourceOptions, host: HostSpec) -> pulumi.ResourceOptions:
    """`opts`, plus for a host marked failed: keep the resource as it is and never run it.

    A failed host's resources are still registered (from `StackConfig.as_built`) so the
    engine neither creates nor deletes them: deleting one would run its delete command
    over SSH against a dead machine. `retain_on_delete` lets the engine drop them from the
    state without running anything once the host's entry is removed from the stack.
    """
    if not host.failed:
        return opts
    return pulumi.ResourceOptions.merge(
        opts, pulumi.ResourceOptions(retain_on_delete=True, ignore_changes=list(COMMAND_INPUTS))
    )


def child_opts(parent: pulumi.Resource, after: Sequence[pulumi.Resource]) -> pulumi.ResourceOptions:
    """A child of `parent` that waits for `after`."""
    return pulumi.ResourceOptions(parent=parent, depends_on=list(after))


def target(host: HostSpec, ssh: Ssh, private_key: pulumi.Input[str]) -> Target:
    return Target(
        host=host,
        connection=remote.ConnectionArgs(
            host=str(host.address),
            port=ssh.port,
            user=ssh.user,
            private_key=pulumi.Output.secret(private_key),
            host_key=host.host_key,
            dial_error_limit=20,
            per_dial_timeout=30,
        ),
    )


def install_command(path: str, mode: str) -> str:
    return f"sudo install -D -m {mode} -o root -g root /dev/stdin {shlex.quote(path)}"


def script_command(env: dict[str, str]) -> str:
    words = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return f"sudo env {words} bash -s" if words else "sudo bash -s"


def shell_command(env: dict[str, str], shell: str) -> str:
    """`shell` run as root by `bash -c`, with `env` as `K=V` words (a step's delete)."""
    return f"{script_command(env).removesuffix(' bash -s')} bash -c {shlex.quote(shell)}"


def put_file(
    name: str,
    to: Target,
    path: str,
    content: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
    mode: str = "0644",
    secret: bool = False,
    keep_on_delete: bool = False,
    for_host: HostSpec | None = None,
) -> remote.Command:
    """Write `content` to `path` on the host, owned by root (re-written when it changes).

    Removing the resource removes the file, unless `keep_on_delete`: for files another
    step may own by then (a copied CA whose host becomes the one that holds the original).
    `for_host`: the host the file serves when it is kept on another (inert when that host failed).
    """
    return remote.Command(
        name,
        connection=to.connection,
        create=install_command(path, mode),
        delete=None if keep_on_delete else f"sudo rm -f {shlex.quote(path)}",
        stdin=pulumi.Output.secret(content) if secret else content,
        logging=remote.Logging.NONE if secret else remote.Logging.STDOUT_AND_STDERR,
        opts=inert(opts, for_host or to.host),
    )


def run_script(
    name: str,
    to: Target,
    script_name: str,
    opts: pulumi.ResourceOptions,
    env: dict[str, str] | None = None,
    triggers: list[pulumi.Input[str]] | None = None,
    delete_script: str | None = None,
    secret_output: bool = False,
    for_host: HostSpec | None = None,
    stdin: str | None = None,
    delete: str | None = None,
) -> remote.Command:
    """Run scripts/<script_name> as root with `env`; re-run when it, env or triggers change.

    `secret_output=True` is for a script that prints a secret (a join token, a kubeconfig):
    nothing is logged and stdout/stderr are secret outputs in the state. `for_host`: the
    host the step serves when it runs on another (inert when that host failed).
    `stdin`/`delete`: shell to run instead of scripts/<script_name> and `delete_script`
    (a file set's step, `render.files.file_set_script`), with the same `env`.
    """
    env = env or {}
    if secret_output:
        secret = pulumi.ResourceOptions(additional_secret_outputs=["stdout", "stderr"])
        opts = pulumi.ResourceOptions.merge(opts, secret)
    if delete is None and delete_script:
        delete = script(delete_script)
    return remote.Command(
        name,
        connection=to.connection,
        create=script_command(env),
        stdin=stdin if stdin is not None else script(script_name),
        delete=shell_command(env, delete) if delete else None,
        triggers=triggers,
        logging=remote.Logging.NONE if secret_output else None,
        # Otherwise the last secret stdout rides along into the next run's environment.
        add_previous_output_in_env=False if secret_output else None,
        opts=inert(opts, for_host or to.host),
    )


def put(to: Target, file: HostFile, opts: pulumi.ResourceOptions) -> remote.Command:
    """`file` on the host, as the resource `<host>-<file.step>`."""
    return put_file(f"{to.host.name}-{file.step}", to, file.path, file.content, opts, mode=file.mode)


def run(
    to: Target,
    step: ScriptRun,
    opts: pulumi.ResourceOptions,
    secret_output: bool = False,
    on_behalf_of: HostSpec | None = None,
) -> remote.Command:
    """`step` on the host, as the resource `<host>-<step.step>`.

    `on_behalf_of`: the host the step is for when it runs elsewhere (a node's join token is
    minted on the init node); the resource is then named after that host, and is inert
    when that host failed.
    """
    return run_script(
        f"{(on_behalf_of or to.host).name}-{step.step}",
        to,
        step.script,
        opts,
        env=dict(step.env),
        triggers=list(step.triggers) or None,
        delete_script=step.delete_script,
        secret_output=secret_output,
        for_host=on_behalf_of,
    )


def run_for_failed(to: Target, failed: HostSpec, step: ScriptRun, opts: pulumi.ResourceOptions) -> remote.Command:
    """A cleanup `step` for `failed`, run on the live host `to`, named `<failed>-<step.step>`.

    It runs once, when the host is marked failed; it has no delete, so removing the failed
    entry later runs nothing.
    """
    return run_script(f"{failed.name}-{step.step}", to, step.script, opts, env=dict(step.env))


def apply_file_set(
    parent: pulumi.Resource,
    to: Target,
    file_set: FileSet,
    after: Sequence[pulumi.Resource],
    apply_after: Sequence[pulumi.Resource] = (),
) -> remote.Command:
    """`file_set` as one step named `<host>-<file_set.apply.step>`, after `after` and
    `apply_after`: it writes every file, then runs the apply script.

    Its stdin holds the files, so it runs again when any of them changes; removing the
    step runs its `delete_script`, then removes the files (`render.files.file_set_delete`).
    """
    step = file_set.apply
    return run_script(
        f"{to.host.name}-{step.step}",
        to,
        step.script,
        child_opts(parent, [*after, *apply_after]),
        env=dict(step.env),
        triggers=list(step.triggers) or None,
        stdin=file_set_script(file_set),
        delete=file_set_delete(file_set),
    )
