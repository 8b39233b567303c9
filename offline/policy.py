"""Run the seoul-cluster policy pack over recorded registrations, the way the Pulumi CLI does.

The runner talks to the pack only through the analyzer RPCs the CLI uses:

1. `GetAnalyzerInfo` - the pack's policies, default enforcement levels and config schemas;
2. `Configure` - the pack config reconciled like the CLI (`--policy-pack-config` JSON:
   schema defaults, then `"all"`, then per-policy entries);
3. `ConfigureStack` - project / stack / dry-run;
4. `Analyze` once per registration, with the recorded inputs marshalled the way the engine
   hands them to analyzers (`engine_view`: secrets and unknown sentinels kept, resource
   references reduced to id/URN, output values unwrapped, `__` internal keys dropped);
5. `AnalyzeStack` once with every registration.

Two ways to host the analyzer (same rules, same results):

* `mode="inprocess"` (default): pulumi_policy's analyzer servicer is built from
  `policies.pack.POLICIES` and served on a loopback gRPC port inside this process; the
  runner calls it through `analyzer_pb2_grpc.AnalyzerStub` with real request messages.
* `mode="subprocess"`: `policies/__main__.py` is started with this interpreter, prints its
  port, and is stopped afterwards (about 1 s of start-up).

Violations come back as `{"policy", "level", "urn", "message"}` dicts, sorted by
(policy, urn, level, message). `level` is "mandatory" or "advisory". A policy that could not
run because a value is unknown during preview comes back the way pulumi_policy reports it to
the CLI: level "advisory", message "can't run policy '<name>' from policy pack ... during
preview: ..." (see `is_preview_unknown`). Diagnostics without a URN from `Analyze` are
attributed to the analyzed resource (as the CLI does); stack-wide diagnostics from
`AnalyzeStack` keep an empty URN.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import select
import subprocess
import sys
from collections.abc import Iterator, Mapping
from concurrent import futures
from typing import Any, Literal

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from offline.registry import Registration

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
POLICY_PACK_DIR = REPO_ROOT / "policies"

Mode = Literal["inprocess", "subprocess"]

_LEVEL_NAMES = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.DISABLED: "disabled",
    analyzer_pb2.REMEDIATE: "remediate",
}
_LEVELS = {name: value for value, name in _LEVEL_NAMES.items()}
# PolicyPack() always reports this version to the engine (the CLI shows PulumiPolicy.yaml's);
# the in-process servicer uses the same so both modes produce identical messages.
_SDK_REPORTED_VERSION = "0.0.1"
_GRPC_OPTIONS = [("grpc.max_receive_message_length", 1024 * 1024 * 400)]
_STARTUP_TIMEOUT_S = 60.0
_PREVIEW_UNKNOWN_MARK = "during preview: "

PolicyConfig = dict[str, tuple[str | None, dict[str, Any]]]


class PolicyConfigError(ValueError):
    """The pack config file is malformed or fails a policy's config schema (the CLI refuses it too)."""


# --- public API -----------------------------------------------------------------------------------
def analyze(
    registrations: list[Registration],
    *,
    project: str,
    stack: str,
    config_file: pathlib.Path,
    mode: Mode = "inprocess",
    organization: str = "organization",
    dry_run: bool = True,
) -> list[dict[str, str]]:
    """Run every policy over `registrations`; return the violations, sorted deterministically."""
    user_config = load_policy_pack_config(config_file)
    with _analyzer(mode) as stub:
        info = stub.GetAnalyzerInfo(empty_pb2.Empty())
        reconciled = reconcile_policy_pack_config(info, user_config)
        stub.Configure(_configure_request(reconciled))
        stub.ConfigureStack(
            analyzer_pb2.AnalyzerStackConfigureRequest(
                stack=stack, project=project, organization=organization, dry_run=dry_run
            )
        )

        by_urn = {r.urn: r for r in registrations}
        views = _Views()
        violations: list[dict[str, str]] = []
        for reg in registrations:
            response = stub.Analyze(
                analyzer_pb2.AnalyzeRequest(
                    type=reg.type,
                    properties=views.of(reg),
                    urn=reg.urn,
                    name=reg.name,
                    options=_options(reg),
                    provider=_provider(reg, by_urn, views),
                )
            )
            violations += _violations(response, default_urn=reg.urn)

        stack_request = analyzer_pb2.AnalyzeStackRequest(
            resources=[_stack_resource(reg, by_urn, views) for reg in registrations]
        )
        violations += _violations(stub.AnalyzeStack(stack_request), default_urn="")
    return sorted(violations, key=lambda v: (v["policy"], v["urn"], v["level"], v["message"]))


def is_preview_unknown(violation: Mapping[str, str]) -> bool:
    """True for the advisory entry pulumi_policy emits when a policy met a value unknown at preview."""
    message = violation.get("message", "")
    return message.startswith("can't run policy ") and _PREVIEW_UNKNOWN_MARK in message


def split_preview_unknowns(
    violations: list[dict[str, str]],
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(real violations, "can't run ... during preview" entries), both keeping their order."""
    unknowns = [v for v in violations if is_preview_unknown(v)]
    return [v for v in violations if not is_preview_unknown(v)], unknowns


# --- pack config, as the CLI reads and reconciles it ----------------------------------------
def load_policy_pack_config(path: pathlib.Path) -> PolicyConfig:
    """Parse a `--policy-pack-config` JSON file: {"all": "<level>", "<policy>": "<level>" | {...}}."""
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
    """Schema defaults, then the pack's initial config, then the user config ("all" first)."""
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
        result[policy.name] = (_LEVEL_NAMES[policy.enforcementLevel], props)

    initial: PolicyConfig = {
        name: (
            _LEVEL_NAMES[cfg.enforcementLevel],
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


# --- request building --------------------------------------------------------------------------
def _configure_request(config: PolicyConfig) -> analyzer_pb2.ConfigureAnalyzerRequest:
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for name, (level, props) in config.items():
        entry = request.policyConfig[name]
        entry.enforcementLevel = _LEVELS[level or "advisory"]
        if props:
            entry.properties.update(props)
    return request


_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_RESOURCE_REF_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
_OUTPUT_VALUE_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def engine_view(struct: struct_pb2.Struct) -> struct_pb2.Struct:
    """The properties as the engine marshals them for analyzers.

    The CLI sends `MarshalProperties(props, {KeepUnknowns, KeepSecrets, SkipInternalKeys})`:
    unknowns and secrets stay as they are, resource references become the resource's id
    (custom) or URN (component), output values become their value (unknown when absent,
    secret-wrapped when secret) and `__`-prefixed internal keys are dropped.
    """
    view = struct_pb2.Struct()
    view.update(_engine_value(json_format.MessageToDict(struct)))
    return view


def _engine_value(value: Any) -> Any:
    if isinstance(value, list):
        return [_engine_value(v) for v in value]
    if not isinstance(value, dict):
        return value
    sig = value.get(_SIG_KEY)
    if sig == _RESOURCE_REF_SIG:
        return _engine_value(value["id"]) if value.get("id") not in (None, "") else value.get("urn", "")
    if sig == _OUTPUT_VALUE_SIG:
        inner = _engine_value(value["value"]) if "value" in value else _UNKNOWN
        return {_SIG_KEY: _SECRET_SIG, "value": inner} if value.get("secret") else inner
    if sig is not None:
        return {k: _engine_value(v) for k, v in value.items()}
    return {k: _engine_value(v) for k, v in value.items() if not k.startswith("__")}


def _options(reg: Registration) -> analyzer_pb2.AnalyzerResourceOptions:
    return analyzer_pb2.AnalyzerResourceOptions(protect=reg.protect, parent=reg.parent)


def provider_urn(reference: str) -> str:
    """A provider reference is `<provider urn>::<provider id>`."""
    return reference.rsplit("::", 1)[0] if reference else ""


class _Views:
    """engine_view() of each registration's inputs, computed once."""

    def __init__(self) -> None:
        self._cache: dict[int, struct_pb2.Struct] = {}

    def of(self, reg: Registration) -> struct_pb2.Struct:
        key = id(reg)
        if key not in self._cache:
            self._cache[key] = engine_view(reg.inputs)
        return self._cache[key]


def _provider(
    reg: Registration, by_urn: Mapping[str, Registration], views: _Views
) -> analyzer_pb2.AnalyzerProviderResource | None:
    provider = by_urn.get(provider_urn(reg.provider))
    if provider is None:
        return None
    return analyzer_pb2.AnalyzerProviderResource(
        type=provider.type,
        properties=views.of(provider),
        urn=provider.urn,
        name=provider.name,
    )


def _stack_resource(
    reg: Registration, by_urn: Mapping[str, Registration], views: _Views
) -> analyzer_pb2.AnalyzerResource:
    return analyzer_pb2.AnalyzerResource(
        type=reg.type,
        properties=views.of(reg),
        urn=reg.urn,
        name=reg.name,
        options=_options(reg),
        provider=_provider(reg, by_urn, views),
        parent=reg.parent,
        dependencies=list(reg.dependencies),
        propertyDependencies={
            key: analyzer_pb2.AnalyzerPropertyDependencies(urns=list(urns))
            for key, urns in reg.property_dependencies.items()
            if urns
        },
    )


def _violations(response: analyzer_pb2.AnalyzeResponse, *, default_urn: str) -> list[dict[str, str]]:
    found = []
    for diag in response.diagnostics:
        level = _LEVEL_NAMES.get(diag.enforcementLevel, "advisory")
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


# --- hosting the analyzer ----------------------------------------------------------------------
@contextlib.contextmanager
def _analyzer(mode: Mode) -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    if mode == "inprocess":
        with _inprocess_server() as port:
            yield from _stub(port)
    elif mode == "subprocess":
        with _subprocess_server() as port:
            yield from _stub(port)
    else:
        raise ValueError(f"unknown mode {mode!r}")


def _stub(port: int) -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=_GRPC_OPTIONS) as channel:
        grpc.channel_ready_future(channel).result(timeout=_STARTUP_TIMEOUT_S)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)


@contextlib.contextmanager
def _inprocess_server() -> Iterator[int]:
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from policies import pack

    servicer = _PolicyAnalyzerServicer(
        pack.PACK_NAME,
        _SDK_REPORTED_VERSION,
        pack.POLICIES,
        pack.DEFAULT_ENFORCEMENT_LEVEL,
        None,
        pack.PACK_DESCRIPTION,
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=_GRPC_OPTIONS)
    analyzer_pb2_grpc.add_AnalyzerServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(grace=None)


@contextlib.contextmanager
def _subprocess_server() -> Iterator[int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    proc = subprocess.Popen(
        [sys.executable, "-u", str(POLICY_PACK_DIR / "__main__.py")],
        cwd=POLICY_PACK_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], _STARTUP_TIMEOUT_S)
        line = proc.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            raise RuntimeError(f"policy pack did not print its port (got {line!r}, exit {proc.poll()})")
        yield int(line)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- helpers ---------------------------------------------------------------------------------------
def _check_level(key: str, level: str) -> str:
    if level not in _LEVELS:
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
