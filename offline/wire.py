"""Turn wire-format property values into plain JSON for people: no secret survives."""

from typing import Any

from google.protobuf import json_format, struct_pb2
from pulumi.runtime import rpc

SECRET = "[secret]"
UNKNOWN = "[unknown]"
_SIG = rpc._special_sig_key


def plain(struct: struct_pb2.Struct) -> dict[str, Any]:
    return _scrub(json_format.MessageToDict(struct))


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        sig = value.get(_SIG)
        if sig == rpc._special_secret_sig:
            return SECRET
        if sig == rpc._special_resource_sig:
            return value.get("urn", UNKNOWN)
        if sig == rpc._special_output_value_sig:
            if value.get("secret"):
                return SECRET
            return _scrub(value["value"]) if "value" in value else UNKNOWN
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if value == rpc.UNKNOWN:
        return UNKNOWN
    return value


def is_secret(value: Any) -> bool:
    """True for a wire value wrapped as a secret."""
    return isinstance(value, dict) and value.get(_SIG) == rpc._special_secret_sig
