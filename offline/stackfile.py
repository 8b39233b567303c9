"""Read a `Pulumi.<stack>.yaml` the way the CLI hands its config to a program.

The CLI passes every value as a string (structured values as JSON) and names the
keys that hold secrets. Offline, `secure:` ciphertext cannot be decrypted, so it is
replaced by a placeholder and its key is still marked secret.

The file is read as the CLI's YAML library (go-yaml v3, YAML 1.2) reads it: UTF-8, a
duplicate mapping key is an error, `yes`/`no`/`on`/`off` and dates stay strings. Every
way of failing to read is a `StackFileError` naming the file and the reason, and never
quoting the file's text (a secret may sit on the line that failed).
"""

import json
import re
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
    (f"{PROJECT}:database", ("repoCipherPass",)),
    (f"{PROJECT}:observability", ("grafanaAdminPassword",)),
    (f"{PROJECT}:observability", ("email", "password")),
    (f"{PROJECT}:observability", ("sms", "credential")),
    (f"{PROJECT}:observability", ("logging", "snapshotSecretAccessKey")),
]


@dataclass(frozen=True)
class StackFile:
    stack: str
    config: dict[str, str]
    secret_keys: list[str]

    def lookup(self, key: str) -> str | None:
        return self.config.get(key)


class StackFileError(Exception):
    """The stack file cannot be read as a stack file; `lines` say why, one problem a line."""

    def __init__(self, path: Path | str, lines: list[str]):
        super().__init__(f"{path}: " + "; ".join(lines))
        self.path = path
        self.lines = lines


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, made to agree with go-yaml v3 and to refuse duplicate keys.

    `duplicates` collects (key, first line, repeated line), 1-based, for every mapping.
    """

    def __init__(self, stream: str):
        super().__init__(stream)
        self.duplicates: list[tuple[str, int, int]] = []


# YAML 1.2 core schema (go-yaml v3): only true/false are booleans; a timestamp-looking
# scalar stays a string when decoded into an untyped value.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def _mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
            continue
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in first_line:
            loader.duplicates.append((str(key), first_line[key], line))
        else:
            first_line[key] = line
    return loader.construct_mapping(node, deep=deep)


def _no_json_form(loader: _Loader, node: yaml.Node) -> Any:
    raise yaml.constructor.ConstructorError(
        None, None, f"a {node.tag.rsplit(':', 1)[-1]} value has no JSON form for the config", node.start_mark)


_Loader.add_constructor("tag:yaml.org,2002:map", _mapping)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)
for _tag in ("binary", "set", "omap", "pairs"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _no_json_form)


def stack_name(path: Path) -> str:
    name = path.name
    if not (name.startswith("Pulumi.") and name.endswith(".yaml")) or name == "Pulumi.yaml":
        raise StackFileError(path, ["a stack file is named Pulumi.<stack>.yaml"])
    return name.removeprefix("Pulumi.").removesuffix(".yaml")


def read_stack_file(path: Path) -> StackFile:
    """Read `path`; raise StackFileError (path, reasons) for anything the CLI would not read."""
    stack = stack_name(path)
    doc = _parse(path, _text(path))
    config = doc.get("config") if isinstance(doc, dict) else None
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise StackFileError(path, ["'config' must be a mapping of <namespace>:<name> keys"])
    return stack_from_config(stack, config, path)


def _text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise StackFileError(path, [err.strerror or type(err).__name__]) from None
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise StackFileError(path, [f"line {line}, column {column}: byte 0x{data[err.start]:02x} is not UTF-8 "
                                    "(stack files are UTF-8: save it as UTF-8)"]) from None


def _parse(path: Path, text: str) -> Any:
    loader = _Loader(text)
    loader.name = str(path)
    try:
        doc = loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        # Only the reason and the position: str(err) would quote the file's line.
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = ", ".join(part for part in (err.context, err.problem) if part)
        raise StackFileError(path, [f"{where}{reason} (YAML)"]) from None
    except RecursionError:
        raise StackFileError(path, ["nested too deeply to read"]) from None
    except yaml.YAMLError as err:
        raise StackFileError(path, [f"not readable as YAML ({type(err).__name__})"]) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise StackFileError(path, [f"line {again}: duplicate key '{_short(key)}' (first at line {first}); "
                                    "a key may appear once in a mapping" for key, first, again in loader.duplicates])
    return doc


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def stack_from_config(stack: str, config: dict[Any, Any], path: Path | str = "config") -> StackFile:
    """The CLI's view of a stack file's `config:` mapping.

    Keys must be `<namespace>:<name>` strings (as the CLI requires); values become the
    strings the CLI hands over (objects and lists as JSON). Raises StackFileError.
    """
    raw: dict[str, str] = {}
    secret_keys: list[str] = []
    bad = [f"config key '{_short(str(key))}' is not of the form <namespace>:<name> (e.g. {PROJECT}:hosts)"
           for key in config if not isinstance(key, str) or not re.fullmatch(r"[^:\s]+:[^:\s]+", key)]
    if bad:
        raise StackFileError(path, bad)
    for key, value in config.items():
        value, had_secret = _strip_secure(value)
        if had_secret:
            secret_keys.append(key)
        try:
            raw[key] = value if isinstance(value, str) else json.dumps(value, allow_nan=False)
        except ValueError:
            bad.append(f"{key}: .nan and .inf have no JSON form; write a number or quote it")
    if bad:
        raise StackFileError(path, bad)

    for key, path_in_key in SECRET_PATHS:
        if _fill_placeholder(raw, key, path_in_key):
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
