"""Readers for the resource shapes the seoul-cluster program produces.

Every policy module reads resources through these helpers so that the contract
(type tokens, the `sudo install ... /dev/stdin <path>` file put, the
`sudo env KEY=VALUE bash -s` script run and the files a file set's script writes, the
`seoul:hosts:Host` component) is written down once.

Unknown values: resource properties reach policies wrapped in pulumi_policy's
unknown-checking proxy, which raises `UnknownValueError` when a value that is
not known during preview is read. Resource policies let that error propagate
(pulumi_policy then reports "can't run policy ... during preview", exactly as the
CLI does). Stack policies read leniently through `Deferred`: they report what is
known, then re-raise an unknown read from a resource they identified as relevant
(e.g. the content of an etcd config file), so pulumi_policy adds its "can't run"
diagnostic. A command whose `create` is unknown cannot be classified; stack
policies ignore it, except the sshd rules, for which such a command on a host
that otherwise lacks the setting makes the verdict unknown.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import PolicyResource
from pulumi_policy.proxy import UnknownValueError

# --- type tokens -----------------------------------------------------------------
HOST_TYPE = "seoul:hosts:Host"
# Registers the capacity facts (hostRawTb, nearfullRatio, dailyIngestTb, retentionDays) as inputs and outputs.
CEPH_CLUSTER_TYPE = "seoul:ceph:CephCluster"
REMOTE_COMMAND_TYPE = "command:remote:Command"
LOCAL_COMMAND_TYPE = "command:local:Command"

AWS_PROVIDER_TYPE = "pulumi:providers:aws"
S3_BUCKET_TYPE = "aws:s3/bucket:Bucket"
S3_VERSIONING_TYPE = "aws:s3/bucketVersioning:BucketVersioning"
S3_SSE_TYPE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
S3_PUBLIC_ACCESS_BLOCK_TYPE = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
S3_OBJECT_LOCK_TYPE = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
S3_BUCKET_POLICY_TYPE = "aws:s3/bucketPolicy:BucketPolicy"
S3_REPLICATION_TYPE = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
KMS_KEY_TYPE = "aws:kms/key:Key"

F5_POOL_TYPE = "f5bigip:ltm/pool:Pool"
F5_POOL_ATTACHMENT_TYPE = "f5bigip:ltm/poolAttachment:PoolAttachment"
F5_CLIENT_SSL_TYPE = "f5bigip:ltm/profileClientSsl:ProfileClientSsl"

SEOUL_REGION = "ap-northeast-2"


class _Unknown:
    """Marker returned by lenient reads for a value unknown during preview."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN: Any = _Unknown()


def is_seq(value: Any) -> bool:
    """True for lists (and pulumi_policy list proxies), false for strings."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def get(value: Any, *path: str | int) -> Any:
    """Read `value[path...]`; None when a step is missing. Raises UnknownValueError on unknowns."""
    cur = value
    for key in path:
        if cur is None:
            return None
        if isinstance(cur, Mapping):
            if key not in cur:
                return None
            cur = cur[key]
        elif is_seq(cur) and isinstance(key, int):
            if not -len(cur) <= key < len(cur):
                return None
            cur = cur[key]
        else:
            return None
    return cur


def as_list(value: Any) -> list[Any]:
    """Elements of a list value (reading each element, so unknown elements raise)."""
    if value is None:
        return []
    if is_seq(value):
        return [value[i] for i in range(len(value))]
    return [value]


class Deferred:
    """Lenient reader for stack policies: records unknowns instead of raising."""

    def __init__(self) -> None:
        self.errors: list[UnknownValueError] = []

    def get(self, value: Any, *path: str | int) -> Any:
        try:
            return get(value, *path)
        except UnknownValueError as err:
            self.errors.append(err)
            return UNKNOWN

    def as_list(self, value: Any) -> list[Any]:
        try:
            return as_list(value)
        except UnknownValueError as err:
            self.errors.append(err)
            return [UNKNOWN]

    def raise_first(self) -> None:
        """Re-raise the first unknown read, if any (the verdict depended on it)."""
        if self.errors:
            raise self.errors[0]


# --- remote commands ---------------------------------------------------------------
# A file put's words; None where any word goes (the mode, the path).
_FILE_PUT_WORDS = ("sudo", "install", "-D", "-m", None, "-o", "root", "-g", "root", "/dev/stdin", None)
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class FilePut:
    mode: str
    path: str


def _shell_words(command: str) -> Iterator[str]:
    """`shlex.split(command)`'s words, lexed only as far as they are read: a step's delete
    carries its whole script after a few words, and shlex is pure Python. Raises ValueError
    on unbalanced quotes in what is read."""
    lexer = shlex.shlex(command, posix=True)
    lexer.whitespace_split, lexer.commenters = True, ""  # exactly shlex.split's settings
    return iter(lexer)


@functools.cache  # bounded by the distinct command lines of one preview; every stack policy reads them again
def _sudo_env(command: str) -> tuple[tuple[tuple[str, str], ...], bool] | None:
    """`sudo env K=V ... CMD ...` -> (((K, V), ...), whether CMD is exactly `bash -s`); None for
    other commands or unbalanced quotes in what was read. A delete's `bash -c '<script>'` stops
    the reading at `-c`."""
    words = _shell_words(command)
    env: list[tuple[str, str]] = []
    try:
        if next(words, None) != "sudo" or next(words, None) != "env":
            return None
        for word in words:
            key, sep, val = word.partition("=")
            if sep and _ENV_KEY_RE.match(key):
                env.append((key, val))
                continue
            script_run = word == "bash" and next(words, None) == "-s" and next(words, None) is None
            return tuple(env), script_run
    except ValueError:
        return None
    return tuple(env), False


@functools.cache  # bounded by the distinct command lines of one preview
def parse_file_put(create: str) -> FilePut | None:
    """`sudo install -D -m <mode> -o root -g root /dev/stdin <path>` -> FilePut; None for other
    commands (read only up to the first word that differs)."""
    words = _shell_words(create)
    found: list[str] = []
    try:
        for expected in _FILE_PUT_WORDS:
            word = next(words, None)
            if word is None or (expected is not None and word != expected):
                return None
            found.append(word)
        if next(words, None) is not None or not found[10].startswith("/"):
            return None
    except ValueError:
        return None
    return FilePut(mode=found[4], path=found[10])


# A file in a file set's script (render/files.py `bundled_file`): its header line, then a
# quoted here-document ending at a line that is exactly its delimiter.
_BUNDLED_FILE = re.compile(r"^seoul_put_file ([0-7]{4}) ([0-9]+) (\S+) <<'(SEOUL_FILE_[0-9a-f]{16})'\n", re.M)


@functools.cache  # bounded by the distinct file set scripts of one preview
def bundled_files(stdin: str) -> tuple[tuple[FilePut, str], ...]:
    """(FilePut, content) for every file a file set's script writes, in order; () for any
    other stdin. Content is the here-document cut to the header's byte count."""
    found: list[tuple[FilePut, str]] = []
    pos = 0
    while match := _BUNDLED_FILE.search(stdin, pos):
        mode, size, path, delimiter = match.groups()
        end = stdin.find(f"\n{delimiter}\n", match.end() - 1)
        if end < 0:
            break
        body = stdin[match.end():end + 1]  # the writer allows only paths that need no quoting
        found.append((FilePut(mode=mode, path=path), body.encode()[:int(size)].decode(errors="replace")))
        pos = end + len(delimiter) + 2
    return tuple(found)


def parse_script_env(create: str) -> dict[str, str] | None:
    """`sudo env K=V K2='v 2' bash -s` -> {"K": "V", "K2": "v 2"}; None for other commands."""
    found = _sudo_env(create)
    return dict(found[0]) if found is not None and found[1] else None


def command_env(command: str) -> dict[str, str] | None:
    """The `K=V` words of any `sudo env K=V ... CMD ...` command: a script run, and a step's
    delete (`... bash -c '<script>' ...`) too; None for other commands."""
    found = _sudo_env(command)
    return dict(found[0]) if found is not None else None


@dataclass
class RemoteStep:
    """A `command:remote:Command` read leniently (values may be UNKNOWN).

    A file set's step also yields one RemoteStep per file it writes, with the step's URN,
    name and host, `file` set, `env` None and `stdin` the file's content: rules read a
    file the same way whether it is put on its own or in a set.
    """

    urn: str
    name: str
    parent: str | None
    host: Any  # str | None | UNKNOWN
    create: Any  # str | None | UNKNOWN
    file: FilePut | None
    env: dict[str, str] | None
    stdin: Any  # str | None | UNKNOWN
    resource: PolicyResource
    errors: list[UnknownValueError] = field(default_factory=list)

    @property
    def classified(self) -> bool:
        """False when the create string is unknown, i.e. the step could be anything."""
        return self.create is not UNKNOWN


def remote_steps(resources: Iterable[PolicyResource], deferred: Deferred) -> list[RemoteStep]:
    steps: list[RemoteStep] = []
    for res in resources:
        if res.resource_type != REMOTE_COMMAND_TYPE:
            continue
        local = Deferred()
        create = local.get(res.props, "create")
        file_put = parse_file_put(create) if isinstance(create, str) else None
        env = parse_script_env(create) if isinstance(create, str) else None
        stdin = local.get(res.props, "stdin") if file_put or env is not None else None
        host = local.get(res.props, "connection", "host")
        deferred.errors.extend(local.errors)
        if env is not None and isinstance(stdin, str):  # a file set's step: each file it writes
            steps += [RemoteStep(urn=res.urn, name=res.name, parent=res.opts.parent, host=host, create=create,
                                 file=put, env=None, stdin=content, resource=res, errors=local.errors)
                      for put, content in bundled_files(stdin)]
        steps.append(
            RemoteStep(
                urn=res.urn,
                name=res.name,
                parent=res.opts.parent,
                host=host,
                create=create,
                file=file_put,
                env=env,
                stdin=stdin,
                resource=res,
                errors=local.errors,
            )
        )
    return steps


# --- hosts -------------------------------------------------------------------------
@dataclass
class HostShape:
    """The policies' view of a `seoul:hosts:Host` component: its URN, name and inputs."""

    urn: str
    name: str
    address: Any
    roles: list[Any] = field(default_factory=list)


def hosts(resources: Iterable[PolicyResource], deferred: Deferred) -> list[HostShape]:
    found: list[HostShape] = []
    for res in resources:
        if res.resource_type != HOST_TYPE:
            continue
        found.append(
            HostShape(
                urn=res.urn,
                name=res.name,
                address=deferred.get(res.props, "address"),
                roles=deferred.as_list(deferred.get(res.props, "roles")),
            )
        )
    return found


def step_on_host(step: RemoteStep, host: HostShape) -> bool:
    """A step belongs to a host when the host component is its parent or it connects to its address."""
    if step.parent and step.parent == host.urn:
        return True
    return isinstance(step.host, str) and isinstance(host.address, str) and step.host == host.address


def host_has_role(host: HostShape, role: str) -> bool:
    return role in host.roles


# --- dependency links ----------------------------------------------------------------
def depends_on(res: PolicyResource, target_urn: str, prop: str | None = None) -> bool:
    """True when `res` (or its property `prop`) depends on the resource `target_urn`."""
    if prop is not None:
        return any(dep.urn == target_urn for dep in res.property_dependencies.get(prop, []))
    if any(dep.urn == target_urn for dep in res.dependencies):
        return True
    return any(dep.urn == target_urn for deps in res.property_dependencies.values() for dep in deps)


def resources_of(resources: Iterable[PolicyResource], type_token: str) -> list[PolicyResource]:
    return [res for res in resources if res.resource_type == type_token]
