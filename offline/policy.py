"""Run the seoul-cluster policy pack over recorded registrations, the way the Pulumi CLI does.

The runner talks to the pack only through the analyzer RPCs the CLI uses:

1. `GetAnalyzerInfo` - the pack's policies, default enforcement levels and config schemas;
2. `Configure` - the pack config reconciled like the CLI (`offline.policy_config`);
3. `ConfigureStack` - project / stack / dry-run;
4. `Analyze` once per registration, with the recorded inputs marshalled the way the engine
   hands them to analyzers (`offline.policy_marshal.engine_view`);
5. `AnalyzeStack` once with every registration.

The analyzer is hosted in this process without a socket (default) or as the CLI hosts it, in
a child process over gRPC (`offline.policy_host`): same rules, same results. In-process, the
policies are shared between this process and a forked one (see `_shares`).

Violations come back as `{"policy", "level", "urn", "message"}` dicts, sorted by
(policy, urn, level, message). `level` is "mandatory" or "advisory". A policy that could not
run because a value is unknown during preview comes back the way pulumi_policy reports it to
the CLI: level "advisory", message "can't run policy '<name>' from policy pack ... during
preview: ..." (see `is_preview_unknown`). Diagnostics without a URN from `Analyze` are
attributed to the analyzed resource (as the CLI does); stack-wide diagnostics from
`AnalyzeStack` keep an empty URN.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2
from pulumi.runtime.proto.analyzer_pb2_grpc import AnalyzerStub

from offline.policy_config import (
    PolicyConfig,
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
    processes: int | None = None,
) -> list[Violation]:
    """Run every policy over `registrations`; return the violations, sorted deterministically.

    `processes` (in-process mode only; default 2 where fork(2) exists and this process may
    use more than one CPU, else 1): how many analyzer processes share the policies.
    Raises PolicyConfigError when `config_file` is malformed or fails a policy's schema, and
    RuntimeError when a forked analyzer fails.
    """
    user_config = load_policy_pack_config(config_file)
    stack_request = analyzer_pb2.AnalyzerStackConfigureRequest(
        stack=stack, project=project, organization=organization, dry_run=dry_run
    )
    with analyzer(mode) as stub:
        info = stub.GetAnalyzerInfo(empty_pb2.Empty())
        config = reconcile_policy_pack_config(info, user_config)
        shares = _shares(info, config, processes if processes is not None else _default_processes(mode))
        found = _run_forked(shares[1:], lambda share: _run(stub, share, stack_request, registrations))
        found += _run(stub, shares[0], stack_request, registrations)
    return sorted(found, key=lambda v: (v["policy"], v["urn"], v["level"], v["message"]))


def _run(
    stub: AnalyzerStub,
    config: PolicyConfig,
    stack_request: analyzer_pb2.AnalyzerStackConfigureRequest,
    registrations: list[Registration],
) -> list[Violation]:
    """The CLI's calls: Configure, ConfigureStack, Analyze per resource, AnalyzeStack once."""
    stub.Configure(configure_request(config))
    stub.ConfigureStack(stack_request)
    requests = Requests(registrations)
    found: list[Violation] = []
    for reg in registrations:
        found += violations(stub.Analyze(requests.analyze(reg)), default_urn=reg.urn)
    found += violations(stub.AnalyzeStack(requests.analyze_stack()), default_urn="")
    return found


# --- sharing the policies between processes ---------------------------------------------------
# The protocol has no batched Analyze, and pulumi_policy's servicer reads every resource again
# for each policy, so the policy run costs (policies x resources) whatever the host. What the
# protocol does allow is a pack config per analyzer: each process gets the same pack with the
# policies of the other shares disabled, makes the same calls, and the union of the
# violations is what one analyzer would report (a disabled policy reports nothing). Forked
# after the program has run, a child shares its memory copy-on-write and is ready at once.
def _default_processes(mode: Mode) -> int:
    return 2 if mode == "inprocess" and hasattr(os, "fork") and len(os.sched_getaffinity(0)) > 1 else 1


def _shares(info: analyzer_pb2.AnalyzerInfo, config: PolicyConfig, processes: int) -> list[PolicyConfig]:
    """`config` split into `processes` configs, each enabling every n-th enabled policy
    (stack and resource policies dealt out separately, so that each share gets both kinds)."""
    enabled = [p for p in info.policies if config[p.name][0] != "disabled"]
    enabled.sort(key=lambda p: p.policy_type)
    shares: list[PolicyConfig] = []
    for n in range(max(1, processes)):
        mine = {p.name for p in enabled[n :: max(1, processes)]}
        shares.append({
            name: (level if name in mine or level == "disabled" else "disabled", props)
            for name, (level, props) in config.items()
        })
    return shares


def _run_forked(shares: list[PolicyConfig], work: Callable[[PolicyConfig], list[Violation]]) -> list[Violation]:
    """Run `work` for each share in a forked child; return the union of their violations.

    Called with the parent's own share still to do, so the children work alongside it.
    Raises RuntimeError with the child's error when one fails.
    """
    children = []
    for share in shares:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: do the share, send the result, exit without the parent's cleanup
            os.close(read_end)
            status = 0
            try:
                result: Any = {"violations": work(share)}
            except BaseException as err:  # reported to the parent
                result, status = {"error": f"{type(err).__name__}: {err}"}, 1
            with os.fdopen(write_end, "w") as pipe:
                json.dump(result, pipe)
            os._exit(status)
        os.close(write_end)
        children.append((pid, read_end))
    found: list[Violation] = []
    for pid, read_end in children:
        with os.fdopen(read_end) as pipe:
            text = pipe.read()
        os.waitpid(pid, 0)
        result = json.loads(text) if text else {"error": "no result"}
        if "error" in result:
            raise RuntimeError(f"forked policy analyzer failed: {result['error']}")
        found += result["violations"]
    return found


def is_preview_unknown(violation: Mapping[str, str]) -> bool:
    """True for the advisory entry pulumi_policy emits when a policy met a value unknown at preview."""
    message = violation.get("message", "")
    return message.startswith("can't run policy ") and _PREVIEW_UNKNOWN_MARK in message


def split_preview_unknowns(violations: list[Violation]) -> tuple[list[Violation], list[Violation]]:
    """(real violations, "can't run ... during preview" entries), both keeping their order."""
    unknowns = [v for v in violations if is_preview_unknown(v)]
    return [v for v in violations if not is_preview_unknown(v)], unknowns
