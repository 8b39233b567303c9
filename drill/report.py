"""The drill's report: one entry per step (expected, observed, measured time, verdict)."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Step:
    """One drill step. `seconds`: the measured time the step is about (None when it has none);
    `bound`: the most it may take by the rendered timers (None when no timer applies)."""

    id: str
    title: str
    expected: str
    observed: str = ""
    passed: bool = False
    seconds: float | None = None
    bound: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    """Every step of one drill run, printed as it goes and written as JSON at the end."""

    stack: str
    steps: list[Step] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    error: str = ""
    notes: list[str] = field(default_factory=list)  # how the lab differs from the hosts, for this run
    pending: list[str] = field(default_factory=list)  # drills that join later

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        mark = "PASS" if step.passed else "FAIL"
        timing = ""
        if step.seconds is not None:
            timing = f" [{step.seconds:.2f}s" + (f" <= {step.bound:.2f}s" if step.bound is not None else "") + "]"
        print(f"{mark} {step.id} {step.title}{timing}\n     expected: {step.expected}\n     observed: {step.observed}",
              flush=True)
        return step

    @property
    def passed(self) -> bool:
        return not self.error and bool(self.steps) and all(s.passed for s in self.steps)

    def write(self, path: Path) -> None:
        """Write the report as JSON: {"stack", "passed", "error", "seconds", "machine", "notes",
        "pending", "steps": [Step]}."""
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "stack": self.stack,
            "passed": self.passed,
            "error": self.error,
            "seconds": round(time.time() - self.started, 1),
            "machine": {"kernel": platform.release(), "system": platform.system()},
            "notes": self.notes,
            "pending": self.pending,
            "steps": [asdict(s) for s in self.steps],
        }
        path.write_text(json.dumps(data, indent=2) + "\n")
