"""What render hands to components: files for a host and the steps that apply them.

Every host step takes one of two shapes (components/remote.py turns them into commands):
a `HostFile` put in place as root, or a `ScriptRun` of a script from scripts/. A
`FileSet` is some files plus the step that applies them (restart a unit, enable timers,
start a daemon); the step carries a digest of what it applies, so it runs again when any
of the files changes. Resource names are `<host>-<step>`, so a step name is unique per host.
"""

import hashlib
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

# Shell that runs on hosts: real files, checked by shellcheck (tests/test_scripts*).
SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"

# systemd reads units the program writes from here.
SYSTEMD_DIR = "/etc/systemd/system"

# Where a file set's step records the files it wrote (one list per step), so the next run
# removes a file dropped from the set and the step's delete removes the rest.
FILE_SET_MANIFEST_DIR = "/var/lib/seoul-cluster/file-sets"


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
    """Files and the step that applies them once all are in place.

    One resource on the host: its stdin writes every file, then runs the apply script
    (`file_set_script`), so a host's step count does not grow with its files.
    """

    files: tuple[HostFile, ...]
    apply: ScriptRun

    @property
    def manifest(self) -> str:
        """The host path where the step lists the files it wrote."""
        return f"{FILE_SET_MANIFEST_DIR}/{self.apply.step}"

    @property
    def generation(self) -> str:
        """A digest of everything the step's resource holds: a replacement (new triggers)
        writes a new generation, so the old resource's delete leaves the files alone."""
        return digest("\0".join([
            *(f"{f.path}\0{f.mode}\0{f.content}" for f in self.files),
            self.apply.script, *(f"{k}={v}" for k, v in self.apply.env.items()), *self.apply.triggers,
        ]))


@cache
def script(name: str) -> str:
    """The text of scripts/<name>."""
    return (SCRIPTS / name).read_text()


@cache
def script_code(name: str) -> str:
    """scripts/<name> without its comment lines and blank lines (the shebang stays): for
    the shell that rides along in every file set's step, where the bytes add up."""
    lines = (SCRIPTS / name).read_text().splitlines(keepends=True)
    return lines[0] + "".join(line for line in lines[1:] if line.strip() and not line.lstrip().startswith("#"))


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


# What a file set may name and set: a path and a mode the readers parse back as written.
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._@+/-]+$")
_MODE = re.compile(r"^[0-7]{4}$")


def file_delimiter(content: str) -> str:
    """The here-document delimiter of a file in a file set's script: contains its digest."""
    return f"SEOUL_FILE_{digest(content)}"


def bundled_file(file: HostFile) -> str:
    """Shell that writes `file` as root: `seoul_put_file MODE BYTES PATH` reading a quoted
    here-document (nothing in it is expanded), of which it keeps exactly BYTES bytes (UTF-8),
    so content without a final newline lands unchanged. `policies/shapes.py` reads this
    shape back. The delimiter holds the content's digest, so no line of the content can
    equal it: the content would have to contain its own hash.

    Raises ValueError for a path outside `[A-Za-z0-9._@+/-]` or a mode that is not four
    octal digits: the readers (policies, artifacts, seoul-diff) would not see the file.
    """
    if not _SAFE_PATH.match(file.path) or not _MODE.match(file.mode):
        raise ValueError(f"file set file {file.path!r} mode {file.mode!r}: "
                         "paths use [A-Za-z0-9._@+/-], modes 4 octal digits")
    delimiter = file_delimiter(file.content)
    size = len(file.content.encode())
    return f"seoul_put_file {file.mode} {size} {file.path} <<'{delimiter}'\n{_lines(file.content)}{delimiter}\n"


def _lines(text: str) -> str:
    # A here-document's body is whole lines: the last one needs its newline.
    return text if text.endswith("\n") or not text else text + "\n"


def file_set_script(file_set: FileSet) -> str:
    """The stdin of a file set's step (scripts/file-set.sh, then generated lines): each file
    written, the manifest updated (files dropped from the set since the last run removed),
    then the apply script run by its own bash. If any of it fails, the files are put back.

    Parameters of the apply script stay `K=V` words on the command line (`ScriptRun.env`).
    """
    paths = "".join(f" {f.path}" for f in file_set.files)
    apply = script(file_set.apply.script)
    delimiter = f"SEOUL_APPLY_{digest(apply)}"
    return "".join([
        script_code("file-set.sh"), *(bundled_file(f) for f in file_set.files),
        f"seoul_file_set {file_set.manifest} {file_set.generation}{paths}\n",
        f"seoul_apply <<'{delimiter}'\n{_lines(apply)}{delimiter}\n",
    ])


def file_set_delete(file_set: FileSet) -> str:
    """The shell a file set's step runs when it leaves the stack: scripts/file-set-remove.sh,
    which does nothing when a newer generation of the step owns the set (a replacement),
    else runs the step's `delete_script` (passed as its $1), then removes the files."""
    delete = script(file_set.apply.delete_script) if file_set.apply.delete_script else ""
    return (f"FILE_SET_MANIFEST={file_set.manifest} FILE_SET_GENERATION={file_set.generation} "
            f"bash -c {shlex.quote(script_code('file-set-remove.sh'))} file-set-remove {shlex.quote(delete)}")
