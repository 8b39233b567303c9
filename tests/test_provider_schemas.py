"""The plans' inputs are what the real providers accept: checked against their own schemas.

Every plan the tests make is checked too (tests/planning.py); this file checks both stacks,
that every provider the program uses has a schema in ../shared, and that a misspelled or
mistyped provider input is caught with a message naming the resource and the property.
"""

from __future__ import annotations

from collections.abc import Callable

import pulumi
import pulumi_command as command
import pytest

from offline.engine import RecordingMonitor
from offline.registry import Registration
from tests.planning import registrations
from tests.provider_schemas import (
    SCHEMA_DIR,
    assert_conforms,
    check,
    checker_module,
    kubernetes_object,
    package,
    plan_resources,
)
from tests.tools import REPO, unavailable

STACKS = ["seoul-stage", "seoul-prod"]
# Types the trimmed schemas in ../shared leave out, each checked elsewhere against its pinned SDK
# (until ../shared adds them, as it derived the rest of the fortios file from the same SDK).
NOT_IN_TRIMMED_SCHEMA = {
    "fortios:firewall/shaper/trafficshaper:Trafficshaper": "tests/test_backup_render.py",
    "fortios:firewall/policyMove:PolicyMove": "tests/test_network_components.py",
}


@pytest.fixture(scope="module", autouse=True)
def schemas_present() -> None:
    if checker_module() is None:
        unavailable(f"{SCHEMA_DIR} is absent (../shared sits beside the repository, not in a clone)")


@pytest.fixture(scope="module", params=STACKS)
def planned(request: pytest.FixtureRequest) -> tuple[str, list[Registration]]:
    return request.param, registrations(REPO / f"Pulumi.{request.param}.yaml")


def test_stack_inputs_conform(planned: tuple[str, list[Registration]]) -> None:
    stack, regs = planned
    resources = plan_resources(regs)
    assert_conforms(resources, stack)
    # not vacuous: the host steps and the cloud resources were all checked
    module = checker_module()
    checker = module.Checker(module.load_schemas(SCHEMA_DIR))
    statuses = {r["urn"]: checker.check_resource(r) for r in resources}
    custom = [r for r in resources if r["custom"] and not kubernetes_object(r["type"])]
    custom = [r for r in custom if statuses[r["urn"]] != "not-in-trimmed-schema" or
              r["type"] not in NOT_IN_TRIMMED_SCHEMA]
    assert custom and all(statuses[r["urn"]] == "checked" for r in custom), \
        sorted({r["type"] for r in custom if statuses[r["urn"]] != "checked"})


def test_every_provider_the_program_uses_has_a_schema(planned: tuple[str, list[Registration]]) -> None:
    stack, regs = planned
    _, uncovered = check(plan_resources(regs))
    uncovered = [t for t in uncovered if t not in NOT_IN_TRIMMED_SCHEMA]
    if uncovered:
        unavailable(f"{stack} uses resource types with no schema in {SCHEMA_DIR}: {', '.join(uncovered)} "
                    f"(add the schemas of packages {', '.join(sorted({package(t) for t in uncovered}))})")


# --- a wrong input is caught, through the SDK's real wire form -------------------------------
def recorded(build: Callable[[], None]) -> list[Registration]:
    monitor = RecordingMonitor()
    pulumi.runtime.set_mocks(monitor.mocks, project="seoul-cluster", stack="schema", preview=True, monitor=monitor)

    @pulumi.runtime.test
    def program() -> None:
        build()

    program()
    return monitor.registrations


def failure(build: Callable[[], None]) -> str:
    with pytest.raises(AssertionError) as caught:
        assert_conforms(plan_resources(recorded(build)), "schema-test")
    return str(caught.value)


def test_misspelled_input_is_caught() -> None:
    message = failure(lambda: command.remote.Command(
        "typo", connection={"host": "10.0.1.5", "prot": 22}, create="true"))
    assert "unknown-property: command:remote:Command typo connection.prot: not an input of" in message


def test_mistyped_input_is_caught() -> None:
    message = failure(lambda: command.remote.Command(
        "mistyped", connection={"host": "10.0.1.5", "port": "twenty-two"}, create="true"))
    assert "type-mismatch: command:remote:Command mistyped connection.port: expected number, got string" in message


def test_missing_required_input_is_caught() -> None:
    message = failure(lambda: command.remote.Command("hostless", connection={"user": "deploy"}, create="true"))
    assert "missing-required: command:remote:Command hostless connection.host: required by" in message


def test_enum_value_is_caught() -> None:
    # The SDK itself refuses a bad enum value when it reads outputs back, so as plan.json lists it:
    resource = {"urn": "urn:pulumi:s::p::command:remote:Command::loud", "type": "command:remote:Command",
                "name": "loud", "custom": True,
                "inputs": {"connection": {"host": "10.0.1.5"}, "create": "true", "logging": "verbose"}}
    with pytest.raises(AssertionError, match=r"enum-violation: command:remote:Command loud logging: \"verbose\""):
        assert_conforms([resource], "schema-test")


def test_findings_inside_secrets_never_quote_them() -> None:
    secret = "-----BEGIN OPENSSH PRIVATE KEY-----\nsupersecretkeymaterial\n"
    message = failure(lambda: command.remote.Command(
        "leaky", connection=pulumi.Output.secret({"host": "10.0.1.5", "port": secret, "privateKey": secret}),
        create="true"))
    assert 'command:remote:Command leaky connection.port: expected number, got string "[secret]"' in message
    assert "supersecret" not in message and "BEGIN OPENSSH" not in message


def test_correct_inputs_pass() -> None:
    regs = recorded(lambda: command.remote.Command(
        "fine", connection=command.remote.ConnectionArgs(host="10.0.1.5", port=22, user="deploy",
                                                          private_key=pulumi.Output.secret("k"), dial_error_limit=20),
        create="true", logging="none"))
    assert_conforms(plan_resources(regs), "schema-test")
