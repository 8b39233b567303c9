"""Checkers for what the network work renders: chart values keys, Kubernetes objects, custom resources.

Each reads the pinned upstream sources in ../shared (charts/, schemas/) through
`tests.tools.require_shared`, so a missing ../shared skips locally and fails in CI.
"""

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from tests.tools import require_shared

KUBERNETES_VERSION = "1.29.0"
# Upstream CRDs for the custom resources the program creates.
CRD_FOLDERS = ("schemas/calico-v3.27.5", "schemas/metallb-v0.14.9", "schemas/prometheus-operator-v0.76.1",
               "schemas/eck-v2.16.1", "schemas/percona-pg-operator-v2.6.0")


def chart_folder(chart: str, version: str) -> Path:
    return require_shared(f"charts/{chart}-{version}")


# Where a chart hands a values subtree to Kubernetes whole: `toYaml .Values.x.y`,
# `with .Values.x.y` (then `toYaml .`), `range $k, $v := .Values.x.y`.
_WHOLE = re.compile(r"(?:toYaml|with|:=)\s+\(?\$?\.Values\.([A-Za-z0-9_.]+)")


def passed_whole(folder: Path) -> set[str]:
    """Values paths whose content the chart's templates render as it is (resources, nodeSelector...)."""
    found = set()
    for path in folder.rglob("templates/**/*"):
        if path.is_file() and path.suffix in (".yaml", ".tpl", ".yml"):
            found.update(_WHOLE.findall(path.read_text(errors="replace")))
    return found


def unknown_values_keys(values: Any, defaults: Any, whole: set[str] = frozenset(), path: str = "") -> list[str]:
    """Keys set in `values` that the chart's values.yaml does not have.

    Below a key whose default is an empty map or null, or that the templates render whole
    (`whole`, e.g. controller.resources), anything goes: Kubernetes judges that content.
    A list default is a leaf.
    """
    if not isinstance(values, dict) or not isinstance(defaults, dict) or not defaults or path in whole:
        return []
    found = []
    for key, value in values.items():
        where = f"{path}.{key}" if path else key
        if key not in defaults:
            if where not in whole:
                found.append(where)
        else:
            found += unknown_values_keys(value, defaults[key], whole, where)
    return found


def merged(defaults: Any, values: Any) -> Any:
    """Helm's coalescing of user values over chart defaults (maps merge, everything else replaces)."""
    if isinstance(defaults, dict) and isinstance(values, dict):
        out = dict(defaults)
        for key, value in values.items():
            out[key] = merged(defaults.get(key), value)
        return out
    return values


def values_problems(chart: str, version: str, values: dict[str, Any], whole: tuple[str, ...] = ()) -> list[str]:
    """Unknown keys, and values.schema.json errors of the merged values where the chart has a schema.

    A bundled subchart's defaults (charts/<name>/values.yaml) sit under its name, as Helm
    coalesces them; `whole`: values paths another checker judges (e.g. an Alertmanager config).
    """
    folder = chart_folder(chart, version)
    defaults = yaml.safe_load((folder / "values.yaml").read_text()) or {}
    for sub in sorted((folder / "charts").glob("*/values.yaml")):
        name = sub.parent.name
        defaults[name] = merged(yaml.safe_load(sub.read_text()) or {}, defaults.get(name) or {})
    known_whole = passed_whole(folder) | set(whole)
    problems = [f"unknown key {k}" for k in unknown_values_keys(values, defaults, known_whole)]
    schema_file = folder / "values.schema.json"
    if schema_file.exists():
        schema = yaml.safe_load(schema_file.read_text())
        validator = jsonschema.Draft7Validator(schema)
        problems += [f"schema: {e.json_path}: {e.message}" for e in validator.iter_errors(merged(defaults, values))]
    return problems


def strict(schema: Any) -> Any:
    """A CRD schema that refuses unknown fields, as the API server's strict field validation does."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if (node.get("type") == "object" and "properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


class _CrdLoader(yaml.SafeLoader):
    """YAML 1.1's `=` (the value key type) is a plain string in CRDs (prometheus-operator's enums)."""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict openAPIV3Schema, for every CRD version in CRD_FOLDERS."""
    found = {}
    for folder in CRD_FOLDERS:
        for path in sorted(require_shared(folder).glob("*.yaml")):
            for doc in yaml.load_all(path.read_text(), Loader=_CrdLoader):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for version in spec["versions"]:
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    found[key] = strict(version["schema"]["openAPIV3Schema"])
    return found


def object_problems(obj: dict[str, Any], crds: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    """Why `obj` would be refused: built-in kinds by kubernetes-validate (strict, 1.29), others by their CRD."""
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key == ("v1", "Secret") and not isinstance(obj.get("stringData", {}), dict):
        obj = {**obj, "stringData": {}}  # content withheld by the offline plan (a secret)
    if key in crds:
        return [f"{e.json_path}: {e.message}" for e in jsonschema.Draft7Validator(crds[key]).iter_errors(obj)]
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"no schema for {key[0]} {key[1]}"]
    except kubernetes_validate.ValidationError as err:
        return [str(err).splitlines()[0]]
    return []
