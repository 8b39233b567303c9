"""Where the offline plan's time goes: `python -m bench.phases STACK_FILE OUT_DIR REPORT_JSON`.

Runs `offline.plan.main` unchanged in this process with its collaborators timed (wall clock):
model = reading the stack file and validating the config (up to the program run),
program = `run_program`, policy = `analyze`, writing = plan.json, policy.json, artifacts and
the printed tree (after the policy run to the end). The report also gives the resource count,
the mean size of a resource's serialized inputs and the provider SDK modules the program
loaded (`pulumi_*` and `pulumiverse_*` but the policy SDK), which the floor is sized to.
"""

import json
import sys
import time
from pathlib import Path
from typing import Any

import offline.plan as plan


def main(argv: list[str]) -> int:
    stack_file, out, report = (Path(a) for a in argv)
    marks: dict[str, float] = {}
    found: dict[str, Any] = {}
    run_program, analyze = plan.run_program, plan.analyze

    def timed_program(*args: Any, **kwargs: Any) -> Any:
        marks["program_start"] = time.perf_counter()
        registrations, outputs = run_program(*args, **kwargs)
        marks["program_end"] = time.perf_counter()
        found["resources"] = len(registrations)
        found["input_bytes"] = sum(r.inputs.ByteSize() for r in registrations) // max(1, len(registrations))
        found["provider_modules"] = [  # in the order they were loaded: replaying them in it works
            m for m in sys.modules if m.startswith(("pulumi_", "pulumiverse_")) and not m.startswith("pulumi_policy")
        ]
        return registrations, outputs

    def timed_analyze(*args: Any, **kwargs: Any) -> Any:
        marks["policy_start"] = time.perf_counter()
        violations = analyze(*args, **kwargs)
        marks["policy_end"] = time.perf_counter()
        return violations

    plan.run_program, plan.analyze = timed_program, timed_analyze
    started = time.perf_counter()
    status = plan.main(["--stack-file", str(stack_file), "--out", str(out)])
    ended = time.perf_counter()
    phases = {
        "model": marks["program_start"] - started,
        "program": marks["program_end"] - marks["program_start"],
        "between": marks["policy_start"] - marks["program_end"],
        "policy": marks["policy_end"] - marks["policy_start"],
        "writing": ended - marks["policy_end"],
    }
    report.write_text(json.dumps({"status": status, "phases": phases, **found}))
    return 0 if status in (plan.EXIT_OK, plan.EXIT_POLICY) else status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
