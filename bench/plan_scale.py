"""`make bench`: how fast the offline plan is, against the floor, and how it scales.

    python -m bench.plan_scale [--runs N] [--quick]

One run measures, for seoul-stage, seoul-prod and seoul-prod with 60 and 300 extra workers:

* the whole `python -m offline.plan` process: wall and CPU time (best of N runs), peak RSS;
* the floor for the same resource count (`bench/floor.py`: the Pulumi SDK alone, the same
  mocks, every provider SDK module the program loaded, inputs of the same mean serialized
  size), runs interleaved with the plan's so both see the same machine;
* the ratio to the floor two ways: best plan over best floor, and the median over the N runs
  of each plan run over the floor run beside it (every other pair starts with the floor).
  The prod target is judged on the median: on a shared VM whose speed jumps by a quarter
  within a minute, two bests usually come from different moments, and one lucky floor run
  can move their ratio by 0.2;
* where the plan's time goes (model, program, policy, writing; `bench/phases.py`);
* the deploy shape: the longest chain of dependent steps, and what one more worker touches;
* memory: peak RSS per resource, a straight-line fit, and prod with 1,000 extra workers
  and the floor at that size (one run each; `--quick` skips them).

Before measuring it compiles the repository's modules to bytecode, as the SDKs are.
Then it checks the targets of issue 16 and exits 1 if one fails. Ratios are measured in
this one run, so they compare like with like on any machine; absolute times depend on it,
and on these shared VMs the ratios too move from run to run (README: Plan speed).
"""

import argparse
import compileall
import json
import platform
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench.measure import Run, best, run
from bench.shape import chain_length, touched_by_worker
from bench.stacks import REPO, extra_worker, prod_with_workers

PLAN_TARGET = 1.5  # prod plan within 1.5 x the floor (wall time)
SCALE_TARGET = 1.2  # per-resource cost at +300 workers within 1.2 x prod's
MEMORY_TARGET_MIB = 2048  # prod + 1000 workers
LINEAR_TOLERANCE = 0.15  # +1000 within 15 % of the straight line through the others


@dataclass
class Variant:
    label: str
    stack_file: Path
    resources: int = 0
    input_bytes: int = 0
    modules_file: Path | None = None  # the provider modules the program loaded (bench/phases.py)
    phases: dict[str, float] | None = None
    plan: Run | None = None
    floor: Run | None = None
    floor_gc: Run | None = None
    document: dict | None = None
    paired: list[float] = field(default_factory=list)  # each run: plan wall time / the floor's beside it

    @property
    def paired_ratio(self) -> float:
        """Median over the runs of plan / floor wall time, each pair measured back to back (s / s)."""
        return statistics.median(self.paired)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    _compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        folder = Path(tmp)
        variants = [
            Variant("seoul-stage", REPO / "Pulumi.seoul-stage.yaml"),
            Variant("seoul-prod", REPO / "Pulumi.seoul-prod.yaml"),
            Variant("prod +60 workers", prod_with_workers(folder, 60)),
            Variant("prod +300 workers", prod_with_workers(folder, 300)),
        ]
        for v in variants:
            _progress(f"{v.label}: phases")
            _phases(v, folder)
            for i in range(args.runs):
                _progress(f"{v.label}: plan and floor, run {i + 1} of {args.runs}")
                # Every other pair starts with the floor: whatever the plan leaves behind (its
                # writes still being flushed) slows the run after it on only half the pairs.
                if i % 2:
                    floor, plan = run(_floor_argv(v)), run(_plan_argv(v.stack_file, folder))
                else:
                    plan, floor = run(_plan_argv(v.stack_file, folder)), run(_floor_argv(v))
                v.paired.append(plan.wall_s / floor.wall_s)
                v.plan, v.floor = _better(v.plan, plan), _better(v.floor, floor)
                v.floor_gc = _better(v.floor_gc, best([*_floor_argv(v), "--gc-default"], 1))
        _progress("prod +1 worker: deploy shape")
        one_more = Variant("prod +1 worker", prod_with_workers(folder, 1))
        _phases(one_more, folder)
        as_shipped = Variant("prod +0 workers", prod_with_workers(folder, 0))  # in the same folder layout
        _phases(as_shipped, folder)
        big = None
        if not args.quick:
            _progress("prod +1000 workers: memory (one run, a few minutes)")
            big = Variant("prod +1000 workers", prod_with_workers(folder, 1000))
            big.plan = run(_plan_argv(big.stack_file, folder))
            big.resources = _resources(big.plan)
            _progress("prod +1000 workers: the floor's memory at that size (one run)")
            prod = variants[1]  # same program: its input size and provider modules
            big.floor = run([sys.executable, "-m", "bench.floor", str(big.resources), str(prod.input_bytes),
                             str(prod.modules_file)])
        ok = _report(variants, as_shipped, one_more, big, args.runs)
    return 0 if ok else 1


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.plan_scale", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per variant: best of them, and the median "
                        "of the paired plan/floor ratios (default 5)")
    parser.add_argument("--quick", action="store_true", help="skip prod +1000 workers (its plan and its floor)")
    return parser.parse_args(argv)


def _compile_bytecode() -> None:
    """Compile the repository's modules to bytecode once, as pip did for the SDKs both the plan
    and the floor import: where PYTHONDONTWRITEBYTECODE is set (it is on this project's
    machines), every run would compile the program's own modules again."""
    for package in ("bench", "components", "model", "offline", "policies", "render", "review"):
        compileall.compile_dir(REPO / package, quiet=1)


def _progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def _plan_argv(stack_file: Path, folder: Path) -> list[str]:
    return [sys.executable, "-m", "offline.plan", "--stack-file", str(stack_file), "--out", str(folder / "out")]


def _floor_argv(v: Variant) -> list[str]:
    return [sys.executable, "-m", "bench.floor", str(v.resources), str(v.input_bytes), str(v.modules_file)]


def _phases(v: Variant, folder: Path) -> None:
    out, report = folder / "phases" / v.label.replace(" ", "-"), folder / "phases.json"
    run([sys.executable, "-m", "bench.phases", str(v.stack_file), str(out), str(report)])
    data = json.loads(report.read_text())
    v.resources, v.input_bytes, v.phases = data["resources"], data["input_bytes"], data["phases"]
    v.modules_file = folder / f"modules-{v.label.replace(' ', '-')}.txt"
    v.modules_file.write_text("\n".join(data["provider_modules"]) + "\n")
    v.document = json.loads((out / "plan.json").read_text())


def _resources(r: Run) -> int:
    line = next(line for line in r.stdout.splitlines() if line.startswith("+ "))
    return int(line.split()[1])


def _better(a: Run | None, b: Run) -> Run:
    if a is None:
        return b
    return Run(min(a.wall_s, b.wall_s), min(a.cpu_s, b.cpu_s), max(a.peak_mib, b.peak_mib), b.stdout)


def _fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares line y = a + b x."""
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    b = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    return my - b * mx, b


def _report(variants: list[Variant], as_shipped: Variant, one_more: Variant, big: Variant | None, runs: int) -> bool:
    stage, prod, plus60, plus300 = variants
    print(f"\nmachine: {platform.node()} · {platform.processor() or platform.machine()} · "
          f"{_cpu_model()} · {_cpus()} CPUs · Python {platform.python_version()} · best of {runs}")
    print(f"\n{'stack':<18} {'resources':>9} {'plan s':>7} {'cpu s':>6} {'floor s':>7} {'cpu s':>6} "
          f"{'x floor':>7} {'cpu x':>6} {'x pairs':>7} {'floor2 s':>8} {'x floor2':>8} {'ms/res':>6} {'vs prod':>7} "
          f"{'peak MiB':>8} {'KiB/res':>7}")
    per_prod = prod.plan.wall_s / prod.resources
    for v in variants:
        per = v.plan.wall_s / v.resources
        print(f"{v.label:<18} {v.resources:>9} {v.plan.wall_s:>7.2f} {v.plan.cpu_s:>6.2f} {v.floor.wall_s:>7.2f} "
              f"{v.floor.cpu_s:>6.2f} {v.plan.wall_s / v.floor.wall_s:>6.2f}x {v.plan.cpu_s / v.floor.cpu_s:>5.2f}x "
              f"{v.paired_ratio:>6.2f}x "
              f"{v.floor_gc.wall_s:>8.2f} {v.plan.wall_s / v.floor_gc.wall_s:>7.2f}x "
              f"{per * 1000:>6.2f} {per / per_prod:>6.2f}x {v.plan.peak_mib:>8.0f} "
              f"{v.plan.peak_mib * 1024 / v.resources:>7.0f}")
    print(f"floor: the SDK alone registering as many resources of ~{prod.input_bytes} serialized input bytes, "
          "same engine (collector paused), mocks and provider imports;\nfloor2: the same with Python's default "
          "collector, the SDK as anyone runs it (what issue 16 measured against). Wall times are best of "
          f"{runs};\nx pairs: the median of the {runs} runs' plan / floor, each pair back to back, "
          "every other one floor first. "
          f"Load average at the end {_load()}")

    print(f"\nwhere the time goes (s, one run in-process){'':<4} {'model':>6} {'program':>8} {'policy':>7} "
          f"{'writing':>8} {'startup':>8}")
    for v in variants:
        p = v.phases
        startup = v.plan.wall_s - sum(p.values())
        print(f"{v.label:<47} {p['model']:>6.2f} {p['program']:>8.2f} {p['policy'] + p['between']:>7.2f} "
              f"{p['writing']:>8.2f} {f'{startup:.2f}' if startup >= 0 else 'n/a':>8}")
    print("(startup: interpreter and imports, the best whole-process time minus the phases; n/a where the\n"
          " in-process run alone took longer than the best whole process: the machine's speed varies)")

    chain_prod, chain_60 = chain_length(prod.document), chain_length(plus60.document)
    worker = extra_worker(0)["name"]
    touched = touched_by_worker(as_shipped.document, one_more.document, worker)
    print("\ndeploy shape")
    print(f"  longest chain of dependent steps: seoul-prod {chain_prod}, +60 workers {chain_60}, "
          f"+300 workers {chain_length(plus300.document)}, seoul-stage {chain_length(stage.document)}")
    print(f"  one more worker ({worker}): +{len(touched.added)} resources, {len(touched.not_its_own)} not its own, "
          f"{len(touched.removed)} removed, {len(touched.inputs_changed)} existing inputs changed, "
          f"{len(touched.waits_changed)} existing dependencies changed")
    for urn in (touched.not_its_own + touched.removed + touched.inputs_changed + touched.waits_changed)[:10]:
        print(f"    {urn}")

    a, b = _fit([(v.resources, v.plan.peak_mib) for v in (prod, plus60, plus300)])
    print(f"\nmemory: peak RSS = {a:.0f} MiB + {b * 1024:.0f} KiB per resource (fit over prod, +60, +300)")
    checks = [
        (f"prod plan within {PLAN_TARGET}x the floor (median of {runs} paired runs)",
         prod.paired_ratio <= PLAN_TARGET,
         f"{prod.paired_ratio:.2f}x (pairs {', '.join(f'{r:.2f}' for r in prod.paired)}; best over best "
         f"{prod.plan.wall_s / prod.floor.wall_s:.2f}x, CPU {prod.plan.cpu_s / prod.floor.cpu_s:.2f}x; "
         f"{prod.plan.wall_s / prod.floor_gc.wall_s:.2f}x floor2)"),
        (f"per-resource cost at +300 workers within {SCALE_TARGET}x prod's",
         (plus300.plan.wall_s / plus300.resources) / per_prod <= SCALE_TARGET,
         f"{(plus300.plan.wall_s / plus300.resources) / per_prod:.2f}x"),
        ("longest chain with +60 workers equals prod's", chain_60 == chain_prod, f"{chain_60} vs {chain_prod}"),
        ("one more worker adds only its own resources and changes no existing input",
         bool(touched.added) and not (touched.not_its_own or touched.removed or touched.inputs_changed),
         f"+{len(touched.added)}, {len(touched.inputs_changed)} inputs changed"),
    ]
    if big is not None:
        predicted = a + b * big.resources
        print(f"  prod +1000 workers: {big.resources} resources, {big.plan.peak_mib:.0f} MiB peak "
              f"(line predicts {predicted:.0f}), {big.plan.wall_s:.0f} s; the floor at that size: "
              f"{big.floor.peak_mib:.0f} MiB, {big.floor.wall_s:.0f} s")
        checks += [
            ("memory grows linearly (+1000 within 15% of the line)",
             abs(big.plan.peak_mib - predicted) <= LINEAR_TOLERANCE * predicted,
             f"{big.plan.peak_mib:.0f} vs {predicted:.0f} MiB"),
            (f"prod +1000 workers within {MEMORY_TARGET_MIB} MiB", big.plan.peak_mib <= MEMORY_TARGET_MIB,
             f"{big.plan.peak_mib:.0f} MiB"),
        ]
    print("\ntargets")
    for name, ok, value in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {value}")
    return all(ok for _, ok, _ in checks)


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())
