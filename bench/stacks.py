"""Stack files for the bench: seoul-prod with extra workers, generated on the fly."""

import copy
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
HOSTS_KEY = "seoul-cluster:hosts"


def extra_worker(n: int) -> dict[str, object]:
    """The n-th extra worker (0-based): 10.0.100.1 upwards, inside prod's nodeCidr 10.0.0.0/16."""
    return {"name": f"bench-{n + 1}", "address": f"10.0.{100 + n // 250}.{n % 250 + 1}", "roles": ["worker"]}


def prod_with_workers(folder: Path, extra: int) -> Path:
    """`folder`/plus-<extra>/Pulumi.seoul-prod.yaml: seoul-prod's config with `extra` more workers.

    The stack keeps its name, so URNs of resources both plans have are the same."""
    doc = yaml.safe_load((REPO / "Pulumi.seoul-prod.yaml").read_text())
    config = copy.deepcopy(doc["config"])
    config[HOSTS_KEY] += [extra_worker(n) for n in range(extra)]
    path = folder / f"plus-{extra}" / "Pulumi.seoul-prod.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return path
