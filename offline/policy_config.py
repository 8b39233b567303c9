"""The pack config (`--policy-pack-config`), read and reconciled the way the Pulumi CLI does.

Format: `{"all": "<level>", "<policy>": "<level>" | {"enforcementLevel": "<level>", "<prop>": <value>}}`
with levels advisory, mandatory, remediate, disabled. Reconciling layers, later ones winning:
each policy's schema defaults and default level (from `GetAnalyzerInfo`), the pack's initial
config, then the user's file; in each layer `"all"` applies first, then per-policy entries.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format
from pulumi.runtime.proto import analyzer_pb2

LEVEL_NAMES = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.DISABLED: "disabled",
    analyzer_pb2.REMEDIATE: "remediate",
}
LEVELS = {name: value for value, name in LEVEL_NAMES.items()}

# policy name (or "all") -> (enforcement level name or None, config properties)
PolicyConfig = dict[str, tuple[str | None, dict[str, Any]]]


class PolicyConfigError(ValueError):
    """The pack config file is malformed or fails a policy's config schema (the CLI refuses it too)."""


def load_policy_pack_config(path: pathlib.Path) -> PolicyConfig:
    """Parse a `--policy-pack-config` JSON file; an empty file is an empty config.

    Raises PolicyConfigError for anything but an object of level strings or objects with
    a valid `enforcementLevel` (and json.JSONDecodeError for text that is not JSON).
    """
    text = pathlib.Path(path).read_text(encoding="utf-8")
    if not text.strip():
        return {}
    data = json.loads(text)
    if not isinstance(data, dict):
        raise PolicyConfigError(f"{path}: expected a JSON object")
    result: PolicyConfig = {}
    for key, value in data.items():
        if isinstance(value, str):
            result[key] = (_check_level(key, value), {})
        elif isinstance(value, dict):
            props = dict(value)
            level = props.pop("enforcementLevel", None)
            if level is not None and not isinstance(level, str):
                raise PolicyConfigError(f"{path}: enforcementLevel of {key!r} must be a string")
            result[key] = (_check_level(key, level) if level is not None else None, props)
        else:
            raise PolicyConfigError(f"{path}: {key!r} must be a string or an object")
    return {k: v for k, v in result.items() if v[0] is not None or v[1]}


def reconcile_policy_pack_config(info: analyzer_pb2.AnalyzerInfo, config: PolicyConfig) -> PolicyConfig:
    """Schema defaults, then the pack's initial config, then the user config ("all" first).

    Returns a level and properties for every policy in `info`; raises PolicyConfigError when
    the result fails a policy's config schema (required properties, JSON types).
    """
    result: PolicyConfig = {}
    schemas: dict[str, dict[str, Any]] = {}
    for policy in info.policies:
        props: dict[str, Any] = {}
        schema = json_format.MessageToDict(policy.configSchema.properties)
        for prop, prop_schema in schema.items():
            if isinstance(prop_schema, dict) and "default" in prop_schema:
                props[prop] = prop_schema["default"]
        if schema or policy.configSchema.required:
            schemas[policy.name] = {"properties": schema, "required": list(policy.configSchema.required)}
        result[policy.name] = (LEVEL_NAMES[policy.enforcementLevel], props)

    initial: PolicyConfig = {
        name: (
            LEVEL_NAMES[cfg.enforcementLevel],
            json_format.MessageToDict(cfg.properties),
        )
        for name, cfg in info.initialConfig.items()
    }
    for layer in (initial, config):
        all_level = layer.get("all", (None, {}))[0]
        if all_level is not None:
            result = {name: (all_level, props) for name, (_, props) in result.items()}
        for name, (level, props) in layer.items():
            if name == "all" or name not in result:
                continue
            current_level, current_props = result[name]
            result[name] = (level or current_level, {**current_props, **props})

    errors = [
        f"{name}: {error}"
        for name, schema in sorted(schemas.items())
        for error in _schema_errors(schema, result[name][1])
    ]
    if errors:
        raise PolicyConfigError("policy pack configuration is invalid: " + "; ".join(errors))
    return result


def configure_request(config: PolicyConfig) -> analyzer_pb2.ConfigureAnalyzerRequest:
    """The `Configure` request the CLI sends for a reconciled config."""
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for name, (level, props) in config.items():
        entry = request.policyConfig[name]
        entry.enforcementLevel = LEVELS[level or "advisory"]
        if props:
            entry.properties.update(props)
    return request


def _check_level(key: str, level: str) -> str:
    if level not in LEVELS:
        raise PolicyConfigError(f"{level!r} for {key!r} is not a valid enforcement level")
    return level


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "string": (str,),
    "array": (list,),
    "object": (dict,),
    "number": (int, float),
    "integer": (int,),
}


def _schema_errors(schema: Mapping[str, Any], props: Mapping[str, Any]) -> list[str]:
    """The subset of JSON-schema checks the pack's schemas use: required and property types."""
    errors = [f"{req} is required" for req in schema.get("required", []) if req not in props]
    for prop, prop_schema in schema.get("properties", {}).items():
        if prop not in props or not isinstance(prop_schema, dict) or "type" not in prop_schema:
            continue
        value, wanted = props[prop], _JSON_TYPES.get(prop_schema["type"], (object,))
        if (isinstance(value, bool) and bool not in wanted) or not isinstance(value, wanted):
            errors.append(f"{prop}: invalid type, expected {prop_schema['type']}")
            continue
        items = prop_schema.get("items")
        if isinstance(value, list) and isinstance(items, dict) and "type" in items:
            item_types = _JSON_TYPES.get(items["type"], (object,))
            if not all(isinstance(v, item_types) for v in value):
                errors.append(f"{prop}: items must be {items['type']}")
    return errors
