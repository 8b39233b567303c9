"""Read a `Pulumi.<stack>.yaml` the way the CLI hands its config to a program.

The CLI passes every value as a string (structured values as JSON) and names the
keys that hold secrets. Offline, `secure:` ciphertext cannot be decrypted, so it is
replaced by a placeholder and its key is still marked secret.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from model import PROJECT, SECRET_PLACEHOLDER


@dataclass(frozen=True)
class StackFile:
    stack: str
    config: dict[str, str]
    secret_keys: list[str]

    def lookup(self, key: str) -> str | None:
        return self.config.get(key)


class StackFileError(Exception):
    pass


def stack_name(path: Path) -> str:
    name = path.name
    if not (name.startswith("Pulumi.") and name.endswith(".yaml")) or name == "Pulumi.yaml":
        raise StackFileError(f"{path}: a stack file is named Pulumi.<stack>.yaml")
    return name.removeprefix("Pulumi.").removesuffix(".yaml")


def read_stack_file(path: Path) -> StackFile:
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise StackFileError(f"{path}: {err}") from None
    config = doc.get("config") or {}
    if not isinstance(config, dict):
        raise StackFileError(f"{path}: 'config' must be a mapping")

    raw: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in config.items():
        value, had_secret = _strip_secure(value)
        if had_secret:
            secret_keys.append(key)
        raw[key] = value if isinstance(value, str) else json.dumps(value)

    # The plan needs an SSH key to wire connections; the real one is set with
    # `pulumi config set --secret` and never lives in the file.
    ssh_key = f"{PROJECT}:ssh"
    ssh = json.loads(raw[ssh_key]) if raw.get(ssh_key, "").startswith("{") else None
    if isinstance(ssh, dict) and "privateKey" not in ssh:
        ssh["privateKey"] = SECRET_PLACEHOLDER
        raw[ssh_key] = json.dumps(ssh)
        secret_keys.append(ssh_key)
    return StackFile(stack_name(path), raw, sorted(set(secret_keys)))


def _strip_secure(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return SECRET_PLACEHOLDER, True
        pairs = {k: _strip_secure(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        items = [_strip_secure(v) for v in value]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False
