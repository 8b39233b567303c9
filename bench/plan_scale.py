"""How the offline plan scales with the inventory: `make bench`.

Plans seoul-prod as shipped and with 60 and 240 extra workers, best of three runs
each, and reports the time per registered resource relative to the shipped stack
(all measured in this one run, so the ratios hold on any machine).
"""

import copy
import tempfile
import time
from pathlib import Path

import yaml

from offline.engine import run_program
from offline.graph import longest_chain, step_graph
from offline.stackfile import read_stack_file

REPO = Path(__file__).resolve().parent.parent
EXTRA_WORKERS = (0, 60, 240)


def stack_with_workers(folder: Path, extra: int) -> Path:
    doc = yaml.safe_load((REPO / "Pulumi.seoul-prod.yaml").read_text())
    config = copy.deepcopy(doc["config"])
    config["seoul-cluster:hosts"] += [
        {"name": f"bench-{n}", "address": f"10.0.{100 + n // 200}.{n % 200 + 1}", "roles": ["worker"]}
        for n in range(extra)
    ]
    path = folder / f"Pulumi.bench-{extra}.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    return path


def measure(path: Path, runs: int = 3) -> tuple[float, int, int]:
    stack = read_stack_file(path)
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        regs, _ = run_program(REPO / "__main__.py", stack)
        best = min(best, time.perf_counter() - started)
    plan = [{"urn": r.urn, "custom": r.custom, "dependencies": r.dependencies,
             "propertyDependencies": r.property_dependencies} for r in regs]
    return best, len(regs), len(longest_chain(step_graph(plan)))


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        rows = [(extra, *measure(stack_with_workers(Path(folder), extra))) for extra in EXTRA_WORKERS]
    base_per_resource = rows[0][1] / rows[0][2]
    print(f"{'extra workers':>13} {'resources':>9} {'best s':>7} {'ms/resource':>11} {'vs shipped':>10} {'chain':>5}")
    for extra, seconds, resources, chain in rows:
        per = seconds / resources
        ratio = per / base_per_resource
        print(f"{extra:>13} {resources:>9} {seconds:>7.2f} {per * 1000:>11.2f} {ratio:>9.2f}x {chain:>5}")


if __name__ == "__main__":
    main()
