"""Recorded registrations as the engine marshals them for analyzers, and diagnostics back.

The CLI hands analyzers `MarshalProperties(props, {KeepUnknowns, KeepSecrets, SkipInternalKeys})`
(pulumi/pkg/resource/analyzer/plugin.go): `engine_view` reproduces that from the SDK's
RegisterResource `object`. Diagnostics come back as `{"policy", "level", "urn", "message"}`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf import json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2

from offline.policy_config import LEVEL_NAMES
from offline.registry import Registration
from offline.wire import OUTPUT_VALUE_SIG, RESOURCE_SIG, SECRET_SIG, SIG_KEY, UNKNOWN_VALUE

Violation = dict[str, str]


def engine_view(struct: struct_pb2.Struct) -> struct_pb2.Struct:
    """The properties as the engine marshals them for analyzers.

    Unknowns and secrets stay as they are, resource references become the resource's id
    (custom) or URN (component), output values become their value (unknown when absent,
    secret-wrapped when secret) and `__`-prefixed internal keys are dropped.
    """
    view = struct_pb2.Struct()
    wire = struct.SerializeToString()
    if not any(marker in wire for marker in _REWRITTEN):
        view.CopyFrom(struct)  # nothing to rewrite (561 of seoul-prod's 563): skip the round trip through dicts
        return view
    view.update(_engine_value(json_format.MessageToDict(struct)))
    return view


# What `_engine_value` rewrites shows in the serialized struct as one of these (a `__`
# anywhere, keys or values, takes the long way: never wrong, only slower).
_REWRITTEN = (RESOURCE_SIG.encode(), OUTPUT_VALUE_SIG.encode(), b"__")


def _engine_value(value: Any) -> Any:
    if isinstance(value, list):
        return [_engine_value(v) for v in value]
    if not isinstance(value, dict):
        return value
    sig = value.get(SIG_KEY)
    if sig == RESOURCE_SIG:
        return _engine_value(value["id"]) if value.get("id") not in (None, "") else value.get("urn", "")
    if sig == OUTPUT_VALUE_SIG:
        inner = _engine_value(value["value"]) if "value" in value else UNKNOWN_VALUE
        return {SIG_KEY: SECRET_SIG, "value": inner} if value.get("secret") else inner
    if sig is not None:
        return {k: _engine_value(v) for k, v in value.items()}
    return {k: _engine_value(v) for k, v in value.items() if not k.startswith("__")}


def provider_urn(reference: str) -> str:
    """A provider reference is `<provider urn>::<provider id>`; "" stays ""."""
    return reference.rsplit("::", 1)[0] if reference else ""


class Requests:
    """The `Analyze` and `AnalyzeStack` requests for one set of registrations.

    Each registration's engine view is computed once and shared by its own request, the
    provider field of the resources it configures, and the stack request.
    """

    def __init__(self, registrations: Iterable[Registration]) -> None:
        self._registrations = list(registrations)
        self._by_urn = {r.urn: r for r in self._registrations}
        self._views: dict[int, struct_pb2.Struct] = {}  # by id(): the list keeps them alive

    def analyze(self, reg: Registration) -> analyzer_pb2.AnalyzeRequest:
        """The request the CLI sends for one resource (preview: inputs, no outputs)."""
        return analyzer_pb2.AnalyzeRequest(
            type=reg.type,
            properties=self._view(reg),
            urn=reg.urn,
            name=reg.name,
            options=_options(reg),
            provider=self._provider(reg),
        )

    def analyze_stack(self) -> analyzer_pb2.AnalyzeStackRequest:
        """The request the CLI sends once with every resource, parents and dependencies included."""
        return analyzer_pb2.AnalyzeStackRequest(resources=[self._stack_resource(r) for r in self._registrations])

    def _view(self, reg: Registration) -> struct_pb2.Struct:
        view = self._views.get(id(reg))
        if view is None:
            view = self._views[id(reg)] = engine_view(reg.inputs)
        return view

    def _provider(self, reg: Registration) -> analyzer_pb2.AnalyzerProviderResource | None:
        provider = self._by_urn.get(provider_urn(reg.provider))
        if provider is None:
            return None
        return analyzer_pb2.AnalyzerProviderResource(
            type=provider.type, properties=self._view(provider), urn=provider.urn, name=provider.name
        )

    def _stack_resource(self, reg: Registration) -> analyzer_pb2.AnalyzerResource:
        return analyzer_pb2.AnalyzerResource(
            type=reg.type,
            properties=self._view(reg),
            urn=reg.urn,
            name=reg.name,
            options=_options(reg),
            provider=self._provider(reg),
            parent=reg.parent,
            dependencies=list(reg.dependencies),
            propertyDependencies={
                key: analyzer_pb2.AnalyzerPropertyDependencies(urns=list(urns))
                for key, urns in reg.property_dependencies.items()
                if urns
            },
        )


def _options(reg: Registration) -> analyzer_pb2.AnalyzerResourceOptions:
    return analyzer_pb2.AnalyzerResourceOptions(protect=reg.protect, parent=reg.parent)


def violations(response: analyzer_pb2.AnalyzeResponse, *, default_urn: str) -> list[Violation]:
    """The response's diagnostics as violations; disabled ones dropped, remediate read as mandatory.

    A diagnostic without a URN is attributed to `default_urn` (the analyzed resource, as the
    CLI does; "" for stack-wide diagnostics).
    """
    found = []
    for diag in response.diagnostics:
        level = LEVEL_NAMES.get(diag.enforcementLevel, "advisory")
        if level == "disabled":
            continue
        found.append(
            {
                "policy": diag.policyName,
                "level": "mandatory" if level == "remediate" else level,
                "urn": diag.urn or default_urn,
                "message": diag.message,
            }
        )
    return found
