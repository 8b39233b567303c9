"""The offline engine's preview monitor answers exactly as the SDK's mock monitor would.

`offline.engine.PreviewMonitor` hands a request's inputs back as the resource's outputs
without the SDK mock's round trip through Python values; these tests run one program under
both monitors and compare what the engine recorded and what every output resolved to.
"""

from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks
from pulumi.runtime.settings import set_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await
from pulumi_command import remote

from offline.engine import PreviewMocks, PreviewMonitor, RecordingMonitor

Observed = dict[str, dict[str, tuple[Any, bool, bool]]]


def _program() -> list[pulumi.Resource]:
    """Every kind of value the plan's inputs hold: secrets, values unknown at preview,
    nested maps and lists, numbers, booleans, nulls and a reference to another resource."""
    connection = remote.ConnectionArgs(host="10.0.1.11", port=22, user="deploy",
                                       private_key=pulumi.Output.secret("key"), per_dial_timeout=30)
    first = remote.Command("first", connection=connection, create="true", stdin="a\nb\n",
                           triggers=[1, 2.5, True, None, {"k": ["v", {"deep": False}]}])
    # stdout is a provider output: unknown at preview, so `second` gets an unknown input.
    second = remote.Command("second", connection=connection, create="cat", stdin=first.stdout,
                            triggers=[pulumi.Output.secret("s"), first.create],
                            opts=pulumi.ResourceOptions(depends_on=[first]))
    component = pulumi.ComponentResource("test:index:Group", "group")
    thing = pulumi.CustomResource("test:index:Thing", "thing", {
        "ref": first, "map": {"n": 3, "secret": pulumi.Output.secret({"x": 1})}, "list": [second.stdin],
        "stdout": None,
    }, opts=pulumi.ResourceOptions(parent=component))
    return [first, second, thing]


def _comparable(value: Any) -> Any:
    """`value` with objects compared by what they are, not by identity."""
    if isinstance(value, pulumi.output.Unknown):
        return "<unknown>"
    if isinstance(value, pulumi.Resource):
        return ("resource", type(value).__name__, value._name)
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


async def _resolve(resource: pulumi.Resource) -> dict[str, tuple[Any, bool, bool]]:
    seen = {}
    for name, value in sorted(vars(resource).items()):
        if isinstance(value, pulumi.Output) and not name.startswith("_"):
            known, secret = await value.is_known(), await value.is_secret()
            got = await value.future(with_unknowns=True)
            seen[name] = (_comparable(got), known, secret)
    return seen


def _observe(monitor: RecordingMonitor) -> tuple[list[tuple[str, dict]], Observed]:
    set_root_resource(None)
    mocks.set_mocks(monitor.mocks, project="p", stack="s", preview=True, monitor=monitor)
    observed: Observed = {}

    async def main() -> None:
        for resource in _program():
            observed[resource._name] = await _resolve(resource)

    _sync_await(run_pulumi_func(main))
    recorded = [(r.urn, json_format.MessageToDict(r.inputs)) for r in monitor.registrations]
    return recorded, observed


def test_preview_monitor_answers_as_the_sdk_mock_monitor() -> None:
    sdk_recorded, sdk_observed = _observe(RecordingMonitor(PreviewMocks()))
    recorded, observed = _observe(PreviewMonitor())
    assert recorded == sdk_recorded
    assert observed == sdk_observed
    # The comparison covers what it claims to: values unknown at preview, secrets, a reference.
    assert observed["second"]["stdin"] == ("<unknown>", False, False)
    assert observed["first"]["connection"][2]  # secret private key: the whole object is secret
    assert observed["thing"]["map"][2]
    assert observed["thing"]["ref"] == (("resource", "Command", "first"), True, False)
    assert not observed["first"]["id"][1]  # no ID at preview


def test_preview_monitor_keeps_state_only_of_resources_read_back() -> None:
    monitor = PreviewMonitor()
    _observe(monitor)
    assert len(monitor.registrations) == 5  # the stack, two commands, the component, the thing
    first = next(r.urn for r in monitor.registrations if r.name == "first")
    assert set(monitor.resources) == {first}  # read back, because `thing` refers to it
