"""Run the seoul-cluster policy pack over recorded registrations, the way the Pulumi CLI does.

The runner talks to the pack only through the analyzer RPCs the CLI uses:

1. `GetAnalyzerInfo` - the pack's policies, default enforcement levels and config schemas;
2. `Configure` - the pack config reconciled like the CLI (`offline.policy_config`);
3. `ConfigureStack` - project / stack / dry-run;
4. `Analyze` once per registration, with the recorded inputs marshalled the way the engine
   hands them to analyzers (`offline.policy_marshal.engine_view`);
5. `AnalyzeStack` once with every registration.

The analyzer is hosted in this process without a socket (default) or as the CLI hosts it, in
a child process over gRPC (`offline.policy_host`): same rules, same results.

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
import gc
import pathlib
from collections.abc import Iterator, Mapping

from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2

from offline.policy_config import (
    PolicyConfigError,
    configure_request,
    load_policy_pack_config,
    reconcile_policy_pack_config,
)
from offline.policy_host import Mode, analyzer
from offline.policy_marshal import Requests, Violation, engine_view, violations
from offline.registry import Registration

__all__ = [
    "PolicyConfigError",
    "analyze",
    "engine_view",
    "is_preview_unknown",
    "load_policy_pack_config",
    "split_preview_unknowns",
]

_PREVIEW_UNKNOWN_MARK = "during preview: "


def analyze(
    registrations: list[Registration],
    *,
    project: str,
    stack: str,
    config_file: pathlib.Path,
    mode: Mode = "inprocess",
    organization: str = "organization",
    dry_run: bool = True,
) -> list[Violation]:
    """Run every policy over `registrations`; return the violations, sorted deterministically.

    Raises PolicyConfigError when `config_file` is malformed or fails a policy's schema.
    """
    user_config = load_policy_pack_config(config_file)
    with _fewer_collections(), analyzer(mode) as stub:
        info = stub.GetAnalyzerInfo(empty_pb2.Empty())
        stub.Configure(configure_request(reconcile_policy_pack_config(info, user_config)))
        stub.ConfigureStack(
            analyzer_pb2.AnalyzerStackConfigureRequest(
                stack=stack, project=project, organization=organization, dry_run=dry_run
            )
        )
        requests = Requests(registrations)
        found: list[Violation] = []
        for reg in registrations:
            found += violations(stub.Analyze(requests.analyze(reg)), default_urn=reg.urn)
        found += violations(stub.AnalyzeStack(requests.analyze_stack()), default_urn="")
    return sorted(found, key=lambda v: (v["policy"], v["urn"], v["level"], v["message"]))


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """pulumi_policy's servicer rebuilds every resource for each policy, and the collector's
    frequent full passes over those objects made the run grow faster than the stack (28 full
    collections at 10,000 resources: 14.9 s of CPU, 11.2 s with these thresholds, for 1% more
    peak memory; pausing it instead cost 40% more memory)."""
    saved = gc.get_threshold()
    gc.set_threshold(20_000, 20, 20)
    try:
        yield
    finally:
        gc.set_threshold(*saved)


def is_preview_unknown(violation: Mapping[str, str]) -> bool:
    """True for the advisory entry pulumi_policy emits when a policy met a value unknown at preview."""
    message = violation.get("message", "")
    return message.startswith("can't run policy ") and _PREVIEW_UNKNOWN_MARK in message


def split_preview_unknowns(violations: list[Violation]) -> tuple[list[Violation], list[Violation]]:
    """(real violations, "can't run ... during preview" entries), both keeping their order."""
    unknowns = [v for v in violations if is_preview_unknown(v)]
    return [v for v in violations if not is_preview_unknown(v)], unknowns
