"""Read the raw Pulumi config map into a validated StackConfig, or fail naming the key.

Error lines name the key path and, where it is safe, the value: a value is never quoted
when it is, or may be, a secret (see `_may_be_secret`).
"""

import difflib
import json
import re
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from model import releases
from model.invariants import problems
from model.schema import (
    DEVICE_PATTERN,
    DNS_NAME_PATTERN,
    HOST_KEY_PATTERN,
    HOST_NAME_PATTERN,
    IMAGE_PATTERN,
    QUANTITY_PATTERN,
    USER_PATTERN,
    VERSION_PATTERN,
    StackConfig,
)

PROJECT = "seoul-cluster"
# What the offline plan puts where a secret would be decrypted by the CLI.
SECRET_PLACEHOLDER = "offline-plan-placeholder-not-a-real-secret"

Lookup = Callable[[str], Any]

# Secret key paths and what to feed `pulumi config set` for each.
SECRET_KEYS = {
    "ssh.privateKey": "private-key-file",
    "f5.management.password": "password-file",
    "fortigate.management.token": "token-file",
    "database.repoCipherPass": "passphrase-file",
    "observability.grafanaAdminPassword": "grafana-password-file",
    "observability.email.password": "smtp-password-file",
    "observability.sms.credential": "sns-secret-key-or-gateway-token-file",
    "observability.logging.snapshotSecretAccessKey": "s3-secret-key-file",
}

PATTERN_MEANING = {
    VERSION_PATTERN: "expected a full version x.y.z, e.g. 1.29.6",
    HOST_NAME_PATTERN: "expected a DNS-1123 label: lower-case letters, digits and '-', at most 63",
    DEVICE_PATTERN: "expected a device path such as /dev/nvme0n1",
    USER_PATTERN: "expected a Linux user name",
    HOST_KEY_PATTERN: "expected a public host key as in known_hosts: '<type> <base64>'",
    IMAGE_PATTERN: "expected an image with a tag or digest, e.g. registry/shop/api:1.4.2",
    QUANTITY_PATTERN: "expected a Kubernetes quantity such as 500m, 2, 512Mi or 1Gi",
    DNS_NAME_PATTERN: "expected a fully qualified DNS name such as shop.example.com",
}


class ConfigError(Exception):
    """The stack config is invalid; `lines` name each bad key path and value."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


def config_keys() -> dict[str, str]:
    """Model field alias -> fully qualified Pulumi config key."""
    return {
        field.alias: field.alias if ":" in field.alias else f"{PROJECT}:{field.alias}"
        for field in StackConfig.model_fields.values()
        if field.alias
    }


def load_config(lookup: Lookup, keys: Iterable[str] | None = None) -> StackConfig:
    """Validate the whole config, pinned releases included, or raise ConfigError naming every bad key path.

    `lookup(key)` returns the CLI's raw value (a string, objects as JSON) or None.
    `keys` are all the config keys the stack sets: every one in the project's namespace
    (or a namespace one typo away from it) must be a key the model knows. Without
    `keys`, unknown top-level keys cannot be seen and are not checked.
    """
    known = config_keys()
    lines = _unknown_keys(keys or (), set(known.values()))
    raw: dict[str, Any] = {}
    for alias, key in known.items():
        try:
            value = _decode(lookup(key))
        except ValueError:
            lines.append(f"{key_path((alias,))}: not valid JSON (an object or list was expected; value not shown)")
            continue
        if value is not None:
            raw[alias] = value
    try:
        cfg = StackConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(lines + [_describe(e) for e in err.errors()]) from None
    k8s = cfg.kubernetes
    pinned = releases.problems(cfg.etcd.version, k8s.version, k8s.container_runtime, k8s.cri_dockerd_version)
    lines += [f"{path}: {message}" for path, message in [*problems(cfg), *pinned]]
    if lines:
        raise ConfigError(lines)
    return cfg


def _unknown_keys(keys: Iterable[str], known: set[str]) -> list[str]:
    lines = []
    for key in sorted(set(keys) - known):
        namespace, _, name = key.partition(":")
        if namespace == PROJECT:
            lines.append(f"{key}: unknown key (value not shown){_did_you_mean(key, known)}")
        elif difflib.SequenceMatcher(None, namespace, PROJECT).ratio() >= 0.8:
            lines.append(f"{key}: unknown namespace '{namespace}' (value not shown); "
                         f"did you mean {PROJECT}:{name}?")
    return lines


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    close = close or [c for c in candidates if c.lower() == name.lower()]
    return f"; did you mean {close[0]}?" if close else ""


def _decode(value: Any) -> Any:
    # The CLI hands structured values to the program as JSON text.
    if isinstance(value, str) and value[:1] in ("{", "["):
        return json.loads(value)
    return value


def key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "config"


# Key names whose values are, or may be, secrets (privateKey, password, passphrase, token, ...).
_SECRET_NAME = re.compile(r"key|pass|secret|token|credential|auth", re.IGNORECASE)
# Key material pasted anywhere: PEM / OpenSSH blocks.
_KEY_MATERIAL = re.compile(r"-----BEGIN|PRIVATE KEY|PuTTY-User-Key", re.IGNORECASE)
_LONGEST_QUOTED = 100


def _may_be_secret(loc: tuple[int | str, ...], value: Any) -> bool:
    """True when an error about `value` at `loc` must not quote it.

    Under a secret-looking key name, on the way to a secret key (a whole `ssh` block
    given as a string), key material, or long enough to be a token.
    """
    path = key_path(loc)
    if any(isinstance(part, str) and _SECRET_NAME.search(part) for part in loc):
        return True
    if any(secret == path or secret.startswith(path + ".") for secret in SECRET_KEYS):
        return True
    text = value if isinstance(value, str) else repr(value)
    return bool(_KEY_MATERIAL.search(text)) or len(text) > _LONGEST_QUOTED


def _describe(error: dict[str, Any]) -> str:
    loc = error["loc"]
    path = key_path(loc)
    if error["type"] == "missing":
        hint = ""
        if path in SECRET_KEYS:
            hint = f" (set it with: pulumi config set --secret --path '{PROJECT}:{path}' < {SECRET_KEYS[path]})"
        return f"{path}: required key is missing{hint}"
    if error["type"] == "extra_forbidden":
        # The input is whatever was written under the unknown key: never quote it.
        return f"{path}: unknown key (value not shown){_did_you_mean(str(loc[-1]), _field_names(loc[:-1]))}"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "string_pattern_mismatch":
        message = PATTERN_MEANING.get(error["ctx"]["pattern"], message)
    value = error.get("input")
    if isinstance(value, dict | list):
        return f"{path}: {message}"
    if _may_be_secret(loc, value):
        return f"{path}: {message} (value not shown)"
    return f"{path}: {value!r}: {message}"


def _field_names(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the model accepts at `loc` (a model's aliases), [] where it is no model."""
    model: Any = StackConfig
    for part in loc:
        if isinstance(part, int):
            continue
        fields = {f.alias or name: f for name, f in model.model_fields.items()} if _is_model(model) else {}
        if part not in fields:
            return []
        model = _inner_model(fields[part].annotation)
    return [f.alias or name for name, f in model.model_fields.items()] if _is_model(model) else []


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _inner_model(annotation: Any) -> Any:
    """The model class inside list[X], X | None and Annotated[X, ...], else the annotation."""
    if _is_model(annotation):
        return annotation
    if typing.get_origin(annotation) in (list, typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            inner = _inner_model(arg)
            if _is_model(inner):
                return inner
    return annotation
