"""Read the raw Pulumi config map into a validated StackConfig, or fail naming the key."""

import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

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


def load_config(lookup: Lookup) -> StackConfig:
    """Validate the whole config, pinned releases included; `lookup(key)` returns the CLI's raw value or None.

    Raises ConfigError naming every bad key path at once.
    """
    raw = {alias: _decode(lookup(key)) for alias, key in config_keys().items()}
    raw = {alias: value for alias, value in raw.items() if value is not None}
    try:
        cfg = StackConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError([_describe(e) for e in err.errors()]) from None
    k8s = cfg.kubernetes
    pinned = releases.problems(cfg.etcd.version, k8s.version, k8s.container_runtime, k8s.cri_dockerd_version)
    found = [*problems(cfg), *pinned]
    if found:
        raise ConfigError([f"{path}: {message}" for path, message in found])
    return cfg


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


def _describe(error: dict[str, Any]) -> str:
    path = key_path(error["loc"])
    if error["type"] == "missing":
        hint = ""
        if path in SECRET_KEYS:
            hint = f" (set it with: pulumi config set --secret --path '{PROJECT}:{path}' < {SECRET_KEYS[path]})"
        return f"{path}: required key is missing{hint}"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "string_pattern_mismatch":
        message = PATTERN_MEANING.get(error["ctx"]["pattern"], message)
    value = error.get("input")
    if isinstance(value, dict | list) or path in SECRET_KEYS:
        return f"{path}: {message}"
    return f"{path}: {value!r}: {message}"
