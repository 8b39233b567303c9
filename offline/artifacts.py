"""Every file the program puts on a host, every Kubernetes object and Helm release's values, as they would land.

Read back from the recorded registrations (not re-rendered), so the artifacts are
byte for byte what the program sends.
"""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from offline.registry import Registration
from offline.wire import SECRET, SECRET_SIG, SIG_KEY, UNKNOWN
from policies.shapes import bundled_files

HELM_RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"

# libyaml's emitter (in PyYAML's wheels): a few times faster than the pure-Python one, and
# the plan writes hundreds of objects. It folds long quoted strings at other points; the
# YAML reads back the same (so does a PyYAML built without libyaml, with the fallback).
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

# The one shape of a file put (components/remote.py: install_command).
_PUT_FILE = re.compile(r"^sudo install -D -m [0-7]{4} -o root -g root /dev/stdin (/\S+)$")


def host_files(registrations: list[Registration], names_by_address: dict[str, str]) -> Iterator[tuple[str, str, str]]:
    """(host name, absolute path, content) for every file put on a host, on its own or by a file set's step."""
    for reg in registrations:
        if reg.type != "command:remote:Command":
            continue
        inputs = reg.plain_inputs
        content = inputs.get("stdin", "")
        match = _PUT_FILE.match(str(inputs.get("create", "")))
        if match:
            files = [(match.group(1), content)]
        elif isinstance(content, str):
            files = [(put.path, text) for put, text in bundled_files(content)]
        else:
            continue
        if not files:
            continue
        address = connection_host(reg)
        host = names_by_address.get(address, address)
        for path, text in files:
            if text in (SECRET, UNKNOWN):
                text = f"{text} (content withheld by the offline plan)\n"
            yield host, path, text


def connection_host(reg: Registration) -> str:
    """The address a `command:remote:Command` connects to ("" when it has none)."""
    # The SDK lifts the private key's secrecy to the whole `connection` object; only the host
    # address is read from inside it, straight from the Struct (converting all the inputs for
    # it took a fifth of the artifacts' time). `in` first: indexing a missing key would add it.
    fields = reg.inputs.fields
    connection = fields["connection"].struct_value.fields if "connection" in fields else {}
    if SIG_KEY in connection and connection[SIG_KEY].string_value == SECRET_SIG:
        connection = connection["value"].struct_value.fields if "value" in connection else {}
    return connection["host"].string_value if "host" in connection else ""


def kubernetes_objects(registrations: list[Registration]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(relative path, object) for every Kubernetes object registered."""
    for reg in registrations:
        if not reg.type.startswith("kubernetes:") or reg.type.startswith("kubernetes:helm"):
            continue
        obj = reg.plain_inputs
        if "kind" not in obj:
            continue
        namespace = obj.get("metadata", {}).get("namespace") or "_cluster"
        name = obj.get("metadata", {}).get("name") or reg.name
        head = {k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}
        yield f"{namespace}/{obj['kind']}-{name}.yaml", _integers({**head, **obj})


def helm_values(registrations: list[Registration]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(release name, values) for every Helm release registered."""
    for reg in registrations:
        if reg.type == HELM_RELEASE_TYPE:
            inputs = reg.plain_inputs
            yield str(inputs.get("name") or reg.name), _integers(inputs.get("values") or {})


# Files carried inside what the program registers (components/observability.py): a
# PrometheusRule's spec is a plain Prometheus rule file; ConfigMaps labelled for Grafana's
# sidecar hold dashboards; a Helm release's `alertmanager.config` is Alertmanager's config.
DASHBOARD_LABEL = "grafana_dashboard"


def config_files(registrations: list[Registration]) -> Iterator[tuple[str, str]]:
    """(relative path, text) for rule files, dashboards and the Alertmanager config."""
    for _, obj in kubernetes_objects(registrations):
        meta = obj.get("metadata", {})
        if obj["kind"] == "PrometheusRule":
            yield f"prometheus/rules/{meta.get('name')}.yaml", _yaml(obj.get("spec", {}))
        elif obj["kind"] == "ConfigMap" and (meta.get("labels") or {}).get(DASHBOARD_LABEL) == "1":
            for key, text in (obj.get("data") or {}).items():
                yield f"grafana/{key}", str(text)
    for _, values in helm_values(registrations):
        config = (values.get("alertmanager") or {}).get("config")
        if isinstance(config, dict):
            yield "alertmanager/alertmanager.yaml", _yaml(config)


def _yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False)


def _integers(value: Any) -> Any:
    # The wire carries every number as a double; 8080.0 is the port 8080 the program set.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integers(v) for v in value]
    return value


def write(out: Path, registrations: list[Registration], names_by_address: dict[str, str]) -> int:
    """Write artifacts under `out`; return how many files were written. Raises ValueError for
    a file whose path, made from names in the registrations, would leave `out` (an absolute
    path or a `..`)."""
    out.mkdir(parents=True, exist_ok=True)
    made = {out}  # folders made so far: each made once, parents first
    count = 0

    def put(target: Path, text: str) -> None:
        nonlocal count
        if not target.is_relative_to(out) or ".." in target.relative_to(out).parts:
            raise ValueError(f"artifact {target} is not under {out}")
        missing, folder = [], target.parent
        while folder not in made:  # ends at `out`: `target` lies under it
            missing.append(folder)
            folder = folder.parent
        for folder in reversed(missing):
            folder.mkdir()
            made.add(folder)
        target.write_text(text)
        count += 1

    for host, path, content in host_files(registrations, names_by_address):
        put(out / "hosts" / host / path.lstrip("/"), content)
    for relative, obj in kubernetes_objects(registrations):
        put(out / "k8s" / relative, _yaml(obj))
    for release, values in helm_values(registrations):
        put(out / "helm" / f"{release}.yaml", _yaml(values))
    for relative, text in config_files(registrations):
        put(out / relative, text)
    return count
