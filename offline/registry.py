"""What the offline plan records for every RegisterResource request."""

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from google.protobuf import struct_pb2

from offline.wire import plain


@dataclass(frozen=True)
class Registration:
    """One RegisterResource request, as the engine would receive it.

    `inputs` is the request's `object` Struct untouched: secrets are still wrapped in
    the secret signature and values unknown at preview are the SDK's unknown sentinel,
    exactly what the CLI hands to analyzers.
    """

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    protect: bool
    provider: str
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    inputs: struct_pb2.Struct = field(repr=False)
    additional_secret_outputs: list[str] = field(default_factory=list)
    # Set only on a failed host's inert resources (components.remote.inert).
    retain_on_delete: bool = False
    ignore_changes: list[str] = field(default_factory=list)

    @cached_property
    def plain_inputs(self) -> dict[str, Any]:
        """`inputs` as plain JSON (`offline.wire.plain`), made once: plan.json and every artifact
        read it. Shared: never modify it."""
        return plain(self.inputs)
