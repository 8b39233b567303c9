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

# Secrets the program needs that are set with `pulumi config set --secret --path`,
# never written in the file: the plan wires placeholders so it can run without them.
SECRET_PATHS = [
    (f"{PROJECT}:ssh", ("privateKey",)),
    (f"{PROJECT}:f5", ("management", "password")),
    (f"{PROJECT}:fortigate", ("management", "token")),
]


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
    config = doc.get("config") if isinstance(doc, dict) else None
    if not isinstance(config, dict):
        raise StackFileError(f"{path}: 'config' must be a mapping")
    return stack_from_config(stack_name(path), config)


def stack_from_config(stack: str, config: dict[str, Any]) -> StackFile:
    """The CLI's view of a stack file's `config:` mapping."""
    raw: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in config.items():
        value, had_secret = _strip_secure(value)
        if had_secret:
            secret_keys.append(key)
        raw[key] = value if isinstance(value, str) else json.dumps(value)

    for key, path in SECRET_PATHS:
        if _fill_placeholder(raw, key, path):
            secret_keys.append(key)
    return StackFile(stack, raw, sorted(set(secret_keys)))


def _fill_placeholder(raw: dict[str, str], key: str, path: tuple[str, ...]) -> bool:
    """Put the placeholder at `path` inside object `key` when the file leaves it out."""
    value = json.loads(raw[key]) if raw.get(key, "").startswith("{") else None
    node = value
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict) or path[-1] in node:
        return False
    node[path[-1]] = SECRET_PLACEHOLDER
    raw[key] = json.dumps(value)
    return True


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
