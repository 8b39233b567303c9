"""Provider-schema conformance of plans: the inputs the providers would be sent, checked
against the providers' own Pulumi schemas with `../shared/schemas/pulumi-providers/check_inputs.py`.

The checker is loaded from ../shared (never copied here). `assert_conforms` fails naming the
resource and the property of every finding (unknown input, missing required input, type or
enum mismatch). Registrations are checked in their wire form with secrets opened, as the provider reads
them (the SDK makes a whole `connection` secret, so this is where most of its checking
happens); every secret string is then replaced by "[secret]" in the findings' text, so no
secret reaches a failure message.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterable, Mapping
from functools import cache
from types import ModuleType
from typing import Any

from google.protobuf import json_format

from offline.registry import Registration
from offline.wire import (
    OUTPUT_VALUE_SIG,
    RESOURCE_SIG,
    SECRET_SIG,
    SIG_KEY,
    UNKNOWN,
    UNKNOWN_VALUE,
)
from tests.tools import SHARED

SCHEMA_DIR = SHARED / "schemas" / "pulumi-providers"
# Packages that are not providers: the engine's own and the program's components.
NOT_PROVIDERS = {"pulumi", "seoul"}


def kubernetes_object(resource_type: str) -> bool:
    """A Kubernetes API object (`kubernetes:apps/v1:Deployment`, a Calico CR ...): the provider
    passes it to the API server as it is, so the trimmed provider schema leaves it out; every one
    is validated against the Kubernetes 1.29 OpenAPI or its CRD instead (tests/network_checks.py)."""
    passed_through = not resource_type.startswith(("kubernetes:helm", "kubernetes:yaml"))
    return resource_type.startswith("kubernetes:") and passed_through


@cache
def checker_module() -> ModuleType | None:
    """check_inputs.py from ../shared, or None when ../shared is absent."""
    path = SCHEMA_DIR / "check_inputs.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("check_inputs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def _schemas() -> dict[str, Any]:
    module = checker_module()
    assert module is not None
    return module.load_schemas(SCHEMA_DIR)


def package(resource_type: str) -> str:
    """`aws:s3/bucket:Bucket` -> aws; `pulumi:providers:aws` -> aws."""
    parts = resource_type.split(":")
    return parts[2] if resource_type.startswith("pulumi:providers:") and len(parts) > 2 else parts[0]


def conformance_view(value: Any, secrets: set[str], in_secret: bool = False) -> Any:
    """A wire value as the provider reads it: secrets opened (their strings added to
    `secrets`), references as their URN, output values as their value, unknowns "[unknown]"."""
    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == SECRET_SIG:
            return conformance_view(value.get("value"), secrets, True)
        if sig == RESOURCE_SIG:
            return value.get("urn", UNKNOWN)
        if sig == OUTPUT_VALUE_SIG:
            secret = in_secret or bool(value.get("secret"))
            return conformance_view(value["value"], secrets, secret) if "value" in value else UNKNOWN
        return {k: conformance_view(v, secrets, in_secret) for k, v in value.items()}
    if isinstance(value, list):
        return [conformance_view(v, secrets, in_secret) for v in value]
    if value == UNKNOWN_VALUE:
        return UNKNOWN
    if in_secret and isinstance(value, str):
        secrets.add(value)
    return value


class PlanResources(list):
    """plan.json-shaped resources, with the secret strings their inputs hold."""

    secrets: set[str]


def plan_resources(registrations: Iterable[Registration]) -> PlanResources:
    """Registrations in plan.json's resource shape, inputs in the conformance view."""
    secrets: set[str] = set()
    resources = PlanResources(
        {"urn": r.urn, "type": r.type, "name": r.name, "custom": r.custom,
         "inputs": conformance_view(json_format.MessageToDict(r.inputs), secrets)}
        for r in registrations
    )
    resources.secrets = secrets
    return resources


def _scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace each secret as check_inputs quotes it (JSON, cut to 57 characters + "...")."""
    for secret in secrets:
        quoted = json.dumps(secret, ensure_ascii=False)
        for form in (quoted, quoted[:57] + "..."):
            text = text.replace(form, '"[secret]"')
    return text


def check(resources: Iterable[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """(findings, resource types not covered by any schema) for plan.json-shaped resources
    (a PlanResources keeps its secrets out of the findings)."""
    module = checker_module()
    assert module is not None, "../shared is absent"
    checker = module.Checker(_schemas())
    uncovered = set()
    for r in resources:
        status = checker.check_resource(dict(r))
        if (status in ("no-schema", "not-in-trimmed-schema") and package(r["type"]) not in NOT_PROVIDERS
                and not kubernetes_object(r["type"])):
            uncovered.add(r["type"])
    secrets = getattr(resources, "secrets", set())
    return [_scrub(f"{kind}: {line}", secrets) for kind, line in checker.findings], sorted(uncovered)


def assert_conforms(resources: Iterable[Mapping[str, Any]], what: str) -> None:
    """Fail with one line per finding (kind, type, resource name, property path, why)."""
    findings, _ = check(resources)
    assert not findings, f"{what}: inputs the providers would refuse:\n  " + "\n  ".join(findings)


def check_if_available(resources: Iterable[Mapping[str, Any]], what: str) -> None:
    """`assert_conforms` when ../shared is here; nothing otherwise (the dedicated test in
    tests/test_provider_schemas.py reports the absence: skipped locally, failed in CI)."""
    if checker_module() is not None:
        assert_conforms(resources, what)


def not_in_sdk(args_class: type, inputs: Mapping[str, Any]) -> set[str]:
    """Input names (camelCase, as registered) the pinned SDK's `<Resource>Args` constructor does
    not take: the check for the types the trimmed schemas in ../shared leave out."""
    import inspect
    import re

    accepted = set(inspect.signature(args_class.__init__).parameters)
    return {k for k in inputs if re.sub(r"(?<!^)([A-Z])", r"_\1", k).lower() not in accepted}
