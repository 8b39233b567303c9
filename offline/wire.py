"""The SDK's wire encoding of property values, and plain JSON of it for people (no secret survives).

The signatures are the Pulumi SDK's own (`pulumi.runtime.rpc`), named here once for the
offline modules that read or rewrite wire values (plan output, the policy runner).
"""

from typing import Any

from google.protobuf import json_format, struct_pb2
from pulumi.runtime import rpc

SECRET = "[secret]"
UNKNOWN = "[unknown]"
SIG_KEY = rpc._special_sig_key
SECRET_SIG = rpc._special_secret_sig
RESOURCE_SIG = rpc._special_resource_sig
OUTPUT_VALUE_SIG = rpc._special_output_value_sig
UNKNOWN_VALUE = rpc.UNKNOWN  # what the SDK sends for a value unknown during preview


def plain(struct: struct_pb2.Struct) -> dict[str, Any]:
    """`struct` as JSON: secrets read "[secret]", unknown values "[unknown]", references their URN."""
    return _scrub(json_format.MessageToDict(struct))


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == SECRET_SIG:
            return SECRET
        if sig == RESOURCE_SIG:
            return value.get("urn", UNKNOWN)
        if sig == OUTPUT_VALUE_SIG:
            if value.get("secret"):
                return SECRET
            return _scrub(value["value"]) if "value" in value else UNKNOWN
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if value == UNKNOWN_VALUE:
        return UNKNOWN
    return value


def is_secret(value: Any) -> bool:
    """True for a wire value wrapped as a secret."""
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG
