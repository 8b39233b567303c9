"""Whole-process measurements of a child process: wall time, CPU time, peak memory."""

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Run:
    """One child process: wall and CPU (user + system) seconds, peak resident set in MiB."""

    wall_s: float
    cpu_s: float
    peak_mib: float
    stdout: str


def run(argv: list[str]) -> Run:
    """Run `argv` from the repository root and wait for it with wait4(2), which reports that
    child's own CPU time and peak RSS. Raises RuntimeError (with the end of its stderr)
    unless it exits 0."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{err.read()[-2000:]}")
        # ru_maxrss is in KiB on Linux.
        return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.read())


def best(argv: list[str], runs: int) -> Run:
    """`runs` runs of `argv`: the least wall time, the least CPU time, the largest peak memory."""
    results = [run(argv) for _ in range(runs)]
    return Run(
        min(r.wall_s for r in results),
        min(r.cpu_s for r in results),
        max(r.peak_mib for r in results),
        results[-1].stdout,
    )
