"""The hand-built fixture Structs match what the Pulumi SDK serializes, and SDK Structs run as-is."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import resource_pb2

from offline.policy import analyze, is_preview_unknown
from offline.registry import Registration
from offline.wire import OUTPUT_VALUE_SIG, RESOURCE_SIG, SECRET_SIG, SIG_KEY
from tests.policy_fixtures import (
    PROD_CONFIG,
    PROJECT,
    STACK,
    UNKNOWN,
    Secret,
    script_run,
    to_struct,
)


@pytest.fixture
def policy_wire_secrets_supported() -> Iterator[None]:
    """Let the SDK serialize secrets as it does against a real engine (which supports them)."""
    saved = set(settings.SETTINGS.monitor_features)
    settings.SETTINGS.monitor_features = saved | {resource_pb2.RESOURCE_MONITOR_FEATURE_SECRETS}
    try:
        yield
    finally:
        settings.SETTINGS.monitor_features = saved


def _future(value: Any) -> asyncio.Future[Any]:
    fut: asyncio.Future[Any] = asyncio.get_event_loop().create_future()
    fut.set_result(value)
    return fut


def sdk_struct(build: Any) -> struct_pb2.Struct:
    async def go() -> struct_pb2.Struct:
        return await rpc.serialize_properties(build(), {})

    # A loop of its own, and the previous one put back: later tests (set_mocks) need a current loop.
    previous = asyncio.get_event_loop_policy().get_event_loop()
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(go())
    finally:
        asyncio.set_event_loop(previous)
        loop.close()


def unknown_output(secret: bool) -> pulumi.Output[Any]:
    return pulumi.Output(set(), _future(None), _future(False), _future(secret))


COMMAND = "sudo install -D -m 0600 -o root -g root /dev/stdin /etc/etcd/etcd.conf.yml"


def test_fixture_wire_form_matches_the_sdk(policy_wire_secrets_supported: None) -> None:
    sdk = sdk_struct(
        lambda: {
            "connection": pulumi.Output.secret({"host": "10.0.1.31", "user": "deploy", "privateKey": "KEY"}),
            "create": COMMAND,
            "stdin": unknown_output(secret=True),
            "triggers": [unknown_output(secret=False)],
        }
    )
    mine = to_struct(
        {
            "connection": Secret({"host": "10.0.1.31", "user": "deploy", "privateKey": "KEY"}),
            "create": COMMAND,
            "stdin": Secret(UNKNOWN),
            "triggers": [UNKNOWN],
        }
    )
    assert json_format.MessageToDict(sdk) == json_format.MessageToDict(mine)
    assert UNKNOWN == rpc.UNKNOWN


def test_sdk_serialized_registration_runs_through_the_pack(policy_wire_secrets_supported: None) -> None:
    urn = f"urn:pulumi:{STACK}::{PROJECT}::command:remote:Command::join"
    leaky = sdk_struct(
        lambda: {
            "connection": pulumi.Output.secret({"host": "10.0.1.11", "user": "deploy", "privateKey": "KEY"}),
            "create": pulumi.Output.secret(script_run(JOIN_TOKEN="abcdef.0123456789abcdef")),
            "stdin": "kubeadm join\n",
        }
    )
    unknown = sdk_struct(lambda: {"create": unknown_output(secret=True), "stdin": "true\n"})

    def reg(name: str, inputs: struct_pb2.Struct) -> Registration:
        return Registration(
            urn=urn.replace("::join", f"::{name}"),
            type="command:remote:Command",
            name=name,
            parent="",
            custom=True,
            protect=False,
            provider="",
            dependencies=[],
            property_dependencies={},
            inputs=inputs,
        )

    violations = analyze(
        [reg("join", leaky), reg("later", unknown)], project=PROJECT, stack=STACK, config_file=PROD_CONFIG
    )
    leaks = [v for v in violations if v["urn"].endswith("::join")]
    assert [(v["policy"], v["level"]) for v in leaks] == [("hosts-no-secrets-in-commands", "mandatory")]
    later = [v for v in violations if v["urn"].endswith("::later")]
    assert later and all(is_preview_unknown(v) and v["level"] == "advisory" for v in later)


def test_engine_view_reduces_references_and_output_values() -> None:
    from offline.policy_marshal import engine_view

    sig = "4dabf18193072939515e22adb298388d"
    ref = "5cf8f73096256a8f31e491e813e4eb8e"
    out = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
    raw = struct_pb2.Struct()
    raw.update(
        {
            "custom": {sig: ref, "urn": "urn:pulumi:s::p::aws:s3/bucket:Bucket::b", "id": UNKNOWN},
            "component": {sig: ref, "urn": "urn:pulumi:s::p::seoul:hosts:Host::cp-1"},
            "known": {sig: out, "value": "/Common/pool", "dependencies": ["urn:x"]},
            "pending": {sig: out, "secret": True, "dependencies": ["urn:x"]},
            "nested": [{"__internal": 1, "keep": {sig: "1b47061264138c4ac30d75fd1eb44270", "value": "s"}}],
        }
    )
    assert json_format.MessageToDict(engine_view(raw)) == {
        "custom": UNKNOWN,
        "component": "urn:pulumi:s::p::seoul:hosts:Host::cp-1",
        "known": "/Common/pool",
        "pending": {sig: "1b47061264138c4ac30d75fd1eb44270", "value": UNKNOWN},
        "nested": [{"keep": {sig: "1b47061264138c4ac30d75fd1eb44270", "value": "s"}}],
    }


# The SDK's signatures, as offline.wire names them.
_SIG, _REF, _OUT, _SECRET = SIG_KEY, RESOURCE_SIG, OUTPUT_VALUE_SIG, SECRET_SIG


@pytest.mark.parametrize(("inputs", "view"), [
    # each rewrite alone (the view skips the dict round trip only when there is none)
    ({"a": "x", "r": {_SIG: _REF, "urn": "urn:pulumi:s::p::t::n", "id": "i-1"}}, {"a": "x", "r": "i-1"}),
    ({"a": "x", "o": {_SIG: _OUT, "value": 8080}}, {"a": "x", "o": 8080}),
    ({"a": "x", "m": {"__defaults": [], "k": "v"}}, {"a": "x", "m": {"k": "v"}}),
    # nothing to rewrite: secrets, unknowns, numbers and nesting come back as they are
    ({"s": {_SIG: _SECRET, "value": {"host": "10.0.1.11"}}, "u": UNKNOWN, "n": [1.5, 2, {"deep": True}]},
     {"s": {_SIG: _SECRET, "value": {"host": "10.0.1.11"}}, "u": UNKNOWN, "n": [1.5, 2, {"deep": True}]}),
    ({"text": "a value with __ inside"}, {"text": "a value with __ inside"}),
])
def test_engine_view_rewrites_only_what_the_engine_does(inputs: dict, view: dict) -> None:
    from offline.policy_marshal import engine_view

    raw = struct_pb2.Struct()
    raw.update(inputs)
    assert json_format.MessageToDict(engine_view(raw)) == view


def test_references_in_recorded_inputs_reach_the_policies() -> None:
    from tests.policy_fixtures import compliant_cluster

    sig = "4dabf18193072939515e22adb298388d"
    c = compliant_cluster()
    pool = c.find("k8s-ingress", "f5bigip:ltm/pool:Pool")
    for name in ("k8s-ingress-member-1", "k8s-ingress-member-2"):
        att = c.find(name, "f5bigip:ltm/poolAttachment:PoolAttachment")
        att.inputs["pool"] = {sig: "d0e6a833031e9bbcd3f4e8bde6ca49a4", "value": "/Common/k8s-ingress"}
        att.property_dependencies = {}
    c.find("backup-key", "aws:kms/key:Key").inputs["description"] = {
        sig: "5cf8f73096256a8f31e491e813e4eb8e",
        "urn": c.urn(pool),
        "id": "pool-id",
    }
    assert analyze(c.registrations(), project=PROJECT, stack=STACK, config_file=PROD_CONFIG) == []
    c.remove(c.find("k8s-ingress-member-2", "f5bigip:ltm/poolAttachment:PoolAttachment"))
    violations = analyze(c.registrations(), project=PROJECT, stack=STACK, config_file=PROD_CONFIG)
    assert [v["policy"] for v in violations] == ["f5-pool-min-members"]
