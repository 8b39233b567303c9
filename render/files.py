"""What render hands to components: files for a host and the steps that apply them.

Every host step takes one of two shapes (components/remote.py turns them into commands):
a `HostFile` put in place as root, or a `ScriptRun` of a script from scripts/. A
`FileSet` is some files plus the step that applies them (restart a unit, enable timers,
start a daemon); the step carries a digest of what it applies, so it runs again when any
of the files changes. Resource names are `<host>-<step>`, so a step name is unique per host.
"""

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

# Shell that runs on hosts: real files, checked by shellcheck (tests/test_scripts*).
SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"

# systemd reads units the program writes from here.
SYSTEMD_DIR = "/etc/systemd/system"


@dataclass(frozen=True)
class HostFile:
    """A file put on a host as root: `step` names the resource, `mode` is octal text."""

    step: str
    path: str
    content: str
    mode: str = "0644"


@dataclass(frozen=True)
class ScriptRun:
    """scripts/<script> run as root with `env` as `K=V` words.

    `triggers`: values whose change re-runs it. `delete_script`: run when the step leaves
    the stack (stop, drain, remove), with the same `env`.
    """

    step: str
    script: str
    env: Mapping[str, str] = field(default_factory=dict)
    triggers: tuple[str, ...] = ()
    delete_script: str | None = None


@dataclass(frozen=True)
class FileSet:
    """Files and the step that applies them once all are in place."""

    files: tuple[HostFile, ...]
    apply: ScriptRun


@cache
def script(name: str) -> str:
    """The text of scripts/<name>."""
    return (SCRIPTS / name).read_text()


def digest(text: str) -> str:
    """First 16 hex digits of the sha256 of `text`: a change marker, not a security check."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint(files: Iterable[HostFile]) -> str:
    """One digest over every file's content, in order."""
    return digest("".join(f.content for f in files))


def unit_path(name: str) -> str:
    """Where a systemd unit named `name` (e.g. `etcd-snapshot.timer`) is written."""
    return f"{SYSTEMD_DIR}/{name}"


def timer_unit(description: str, on_calendar: str, randomized_delay: str | None = None,
               on_boot: str | None = None) -> str:
    """A systemd timer unit (systemd.timer(5)): `Persistent=true`, so a run missed while the
    host was off happens at boot; `randomized_delay` spreads hosts apart (e.g. "300")."""
    lines = ["[Unit]", f"Description={description}", "", "[Timer]"]
    if on_boot:
        lines.append(f"OnBootSec={on_boot}")
    lines.append(f"OnCalendar={on_calendar}")
    if randomized_delay:
        lines.append(f"RandomizedDelaySec={randomized_delay}")
    lines += ["Persistent=true", "", "[Install]", "WantedBy=timers.target"]
    return "\n".join(lines) + "\n"


def timers(step: str, files: tuple[HostFile, ...], units: list[str], run_now: str | None = None) -> FileSet:
    """Files of one or more systemd timers, then enable the timers (disable them on removal).

    `units`: the timer unit names to enable; `run_now`: a service to start once right away.
    """
    env = {"TIMERS": " ".join(units)}
    if run_now:
        env["RUN_NOW"] = run_now
    env["FINGERPRINT"] = fingerprint(files)
    return FileSet(files, ScriptRun(step, "enable-units.sh", env, delete_script="disable-units.sh"))
