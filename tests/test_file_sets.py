"""A file set's step, run by real bash as the host runs it (`sudo env K=V bash -s` with the
step's stdin; its delete command as `components/remote.py` builds it): it writes its files
byte for byte, then applies them; a failure puts every file back; a later run removes a
file dropped from the set; its delete removes the files unless a newer generation of the
step owns them. The policy pack, the artifacts and seoul-diff read the same files back
(`policies.shapes.bundled_files`)."""

import os
import stat
import subprocess
from pathlib import Path

import pytest

import render.files as files
from components.remote import script_command, shell_command
from policies.shapes import bundled_files
from render.files import FileSet, HostFile, ScriptRun, file_set_delete, file_set_script, timers
from tests.tools import REPO, require_tool

# Contents a here-document could get wrong: no final newline, empty, expansions that must
# stay literal, a line that looks like a delimiter, non-ASCII text, CRLF.
AWKWARD = {
    "no-newline.conf": "key = value",
    "empty.conf": "",
    "literal.sh": "echo $HOME `id` $(rm -rf /) '\"\\\n",
    "eof.txt": "EOF\nSEOUL_FILE_0000000000000000\nSEOUL_APPLY_0000000000000000\n",
    "korean.txt": "서울 데이터 센터\n",
    "crlf.txt": "a\r\nb\r\n",
}


@pytest.fixture
def systemctl(tmp_path: Path) -> tuple[Path, Path]:
    """A `systemctl` stand-in on PATH that logs its arguments: (bin dir, log)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "systemctl.log"
    (bin_dir / "systemctl").write_text(f'#!/bin/sh\necho "$@" >>{log}\n')
    (bin_dir / "systemctl").chmod(0o755)
    return bin_dir, log


def fail_systemctl(bin_dir: Path) -> None:
    (bin_dir / "systemctl").write_text("#!/bin/sh\nexit 1\n")


@pytest.fixture(autouse=True)
def manifests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Manifests under tmp_path instead of the hosts' /var/lib/seoul-cluster/file-sets."""
    directory = tmp_path / "manifests"
    monkeypatch.setattr(files, "FILE_SET_MANIFEST_DIR", str(directory))
    return directory


def as_root(command: str, bin_dir: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`command` (a step's create or delete, without `sudo`) by bash as root; its backups
    (mktemp) go to bin_dir's sibling `tmp`."""
    root = [] if os.geteuid() == 0 else [require_tool("unshare"), "--map-root-user"]
    tmp = bin_dir.parent / "tmp"
    tmp.mkdir(exist_ok=True)
    return subprocess.run([*root, require_tool("bash"), "-c", command.removeprefix("sudo ")], input=stdin,
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "TMPDIR": str(tmp)})


def run_step(file_set: FileSet, bin_dir: Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = as_root(script_command(dict(file_set.apply.env)), bin_dir, stdin=file_set_script(file_set))
    assert (proc.returncode == 0) == ok, proc.stdout + proc.stderr
    return proc


def delete_step(file_set: FileSet, bin_dir: Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = as_root(shell_command(dict(file_set.apply.env), file_set_delete(file_set)), bin_dir)
    assert (proc.returncode == 0) == ok, proc.stdout + proc.stderr
    return proc


def awkward_set(directory: Path, names: list[str] | None = None, content: dict[str, str] | None = None) -> FileSet:
    chosen = list(AWKWARD) if names is None else names
    texts = {**AWKWARD, **(content or {})}
    return FileSet(
        tuple(HostFile(f"{n}-file", str(directory / "etc" / n), texts[n], "0600" if n.endswith(".sh") else "0644")
              for n in chosen),
        ScriptRun("awkward-apply", "restart-service.sh", {"SERVICE": "awkward.service"}),
    )


def timer_set(directory: Path, step: str = "t-enable", triggers: tuple[str, ...] = ()) -> FileSet:
    unit = HostFile("t-timer", str(directory / "units" / "t.timer"), "[Timer]\nOnCalendar=daily\n")
    enable = timers(step, (unit,), ["t.timer"])
    return FileSet(enable.files, ScriptRun(enable.apply.step, enable.apply.script, enable.apply.env, triggers,
                                           enable.apply.delete_script))


def on_host(directory: Path) -> dict[str, str]:
    """The files under directory/etc, by name, exactly as bytes decoded (CRLF kept)."""
    etc = directory / "etc"
    return {p.name: p.read_bytes().decode() for p in etc.iterdir()} if etc.exists() else {}


def test_writes_every_file_byte_for_byte_before_applying(tmp_path, systemctl, manifests):
    bin_dir, log = systemctl
    file_set = awkward_set(tmp_path)
    run_step(file_set, bin_dir)
    for file in file_set.files:
        written = Path(file.path)
        assert written.read_bytes() == file.content.encode(), file.path
        assert stat.S_IMODE(written.stat().st_mode) == int(file.mode, 8), file.path
    assert "restart awkward.service" in log.read_text()
    manifest = (manifests / "awkward-apply").read_text().splitlines()
    assert manifest == [file_set.generation, *(f.path for f in file_set.files)]


def test_the_readers_get_back_what_was_written(tmp_path):
    file_set = awkward_set(tmp_path)
    read = bundled_files(file_set_script(file_set))
    assert [(p.path, p.mode, c) for p, c in read] == [(f.path, f.mode, f.content) for f in file_set.files]


def test_a_file_dropped_from_the_set_is_removed_on_the_next_run(tmp_path, systemctl):
    bin_dir, _ = systemctl
    run_step(awkward_set(tmp_path), bin_dir)
    kept = ["no-newline.conf", "korean.txt"]
    run_step(awkward_set(tmp_path, kept), bin_dir)
    assert sorted(on_host(tmp_path)) == sorted(kept)


def test_a_file_another_set_now_writes_is_not_removed(tmp_path, systemctl):
    # Moved from set A to set B: B ran first, then A without it (the engine does not order them).
    bin_dir, _ = systemctl
    run_step(awkward_set(tmp_path, ["korean.txt", "crlf.txt"]), bin_dir)
    moved = awkward_set(tmp_path, ["korean.txt"])
    run_step(FileSet(moved.files, ScriptRun("other-apply", "restart-service.sh", {"SERVICE": "other"})), bin_dir)
    run_step(awkward_set(tmp_path, ["crlf.txt"]), bin_dir)
    assert sorted(on_host(tmp_path)) == ["crlf.txt", "korean.txt"]


def test_an_unchanged_set_keeps_every_file_however_many(tmp_path, manifests):
    # The membership test runs once per listed file; it must not depend on a pipe that a
    # reader closing early can fail under pipefail (which removed kept files at random).
    paths = [str(tmp_path / "many" / f"f{i}.conf") for i in range(5000)]
    for path in paths:
        Path(path).parent.mkdir(exist_ok=True)
        Path(path).write_text("x\n")
    manifest = manifests / "many-apply"
    manifest.parent.mkdir()
    manifest.write_text("\n".join(["0" * 16, *paths]) + "\n")
    shell = f"source {REPO / 'scripts/file-set.sh'}; seoul_file_set \"$@\"; applied=true"
    proc = subprocess.run([require_tool("bash"), "-c", shell, "test", str(manifest), "1" * 16, *paths],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert [p for p in paths if not Path(p).exists()] == []
    assert manifest.read_text().splitlines() == ["1" * 16, *paths]


def test_a_failed_apply_puts_every_file_back(tmp_path, systemctl, manifests):
    bin_dir, _ = systemctl
    before = awkward_set(tmp_path, ["korean.txt", "crlf.txt"])
    run_step(before, bin_dir)
    manifest = (manifests / "awkward-apply").read_text()
    fail_systemctl(bin_dir)
    after = awkward_set(tmp_path, ["korean.txt", "eof.txt"], content={"korean.txt": "바뀐 내용\n"})
    proc = run_step(after, bin_dir, ok=False)
    assert "put back as they were" in proc.stderr
    assert on_host(tmp_path) == {"korean.txt": AWKWARD["korean.txt"], "crlf.txt": AWKWARD["crlf.txt"]}
    assert (manifests / "awkward-apply").read_text() == manifest


def test_stdin_cut_short_fails_and_puts_the_files_back(tmp_path, systemctl, manifests):
    bin_dir, log = systemctl
    file_set = awkward_set(tmp_path, ["korean.txt"])
    script = file_set_script(file_set)
    cut = script[:script.index("seoul_apply <<")]
    proc = as_root(script_command(dict(file_set.apply.env)), bin_dir, stdin=cut)
    assert proc.returncode != 0 and "put back as they were" in proc.stderr
    assert on_host(tmp_path) == {} and not (manifests / "awkward-apply").exists() and not log.exists()


def test_rollback_goes_on_past_a_file_it_cannot_put_back(tmp_path, systemctl):
    bin_dir, _ = systemctl
    run_step(awkward_set(tmp_path, ["korean.txt", "crlf.txt"]), bin_dir)
    fail_systemctl(bin_dir)
    # A `cp` that cannot write crlf.txt back (a full or read-only disk, say).
    (bin_dir / "cp").write_text('#!/bin/sh\ncase "$*" in *etc/crlf.txt) exit 1;; esac\nexec /bin/cp "$@"\n')
    (bin_dir / "cp").chmod(0o755)
    changed = {"korean.txt": "새 내용\n", "crlf.txt": "new\n"}
    run_step(awkward_set(tmp_path, ["korean.txt", "crlf.txt"], content=changed), bin_dir, ok=False)
    assert on_host(tmp_path) == {"korean.txt": AWKWARD["korean.txt"], "crlf.txt": "new\n"}
    assert list((tmp_path / "tmp").iterdir()) == []  # the backup is gone either way


def test_a_failed_first_run_leaves_nothing(tmp_path, systemctl, manifests):
    bin_dir, _ = systemctl
    fail_systemctl(bin_dir)
    run_step(awkward_set(tmp_path), bin_dir, ok=False)
    assert on_host(tmp_path) == {} and not (manifests / "awkward-apply").exists()


def test_an_empty_set_applies_and_deletes(tmp_path, systemctl, manifests):
    bin_dir, _ = systemctl
    empty = awkward_set(tmp_path, [])
    run_step(empty, bin_dir)
    assert (manifests / "awkward-apply").read_text() == f"{empty.generation}\n"
    delete_step(empty, bin_dir)
    assert not (manifests / "awkward-apply").exists()


def test_delete_runs_the_delete_script_then_removes_the_files(tmp_path, systemctl, manifests):
    bin_dir, log = systemctl
    file_set = timer_set(tmp_path)
    run_step(file_set, bin_dir)
    assert Path(file_set.files[0].path).exists()
    delete_step(file_set, bin_dir)
    assert "disable --now t.timer" in log.read_text()
    assert not Path(file_set.files[0].path).exists()
    assert not (manifests / "t-enable").exists()


def test_a_replaced_steps_delete_runs_nothing(tmp_path, systemctl):
    # The engine creates the replacement (new triggers) before it deletes the old resource.
    bin_dir, log = systemctl
    old, new = timer_set(tmp_path, triggers=("1",)), timer_set(tmp_path, triggers=("2",))
    assert new.generation != old.generation
    run_step(old, bin_dir)
    run_step(new, bin_dir)
    proc = delete_step(old, bin_dir)
    assert "newer generation" in proc.stdout
    assert "disable" not in log.read_text()
    assert Path(old.files[0].path).exists()


def test_a_failing_delete_script_keeps_the_files(tmp_path, systemctl):
    bin_dir, _ = systemctl
    file_set = timer_set(tmp_path)
    run_step(file_set, bin_dir)
    fail_systemctl(bin_dir)  # disable-units.sh's daemon-reload fails
    delete_step(file_set, bin_dir, ok=False)
    assert Path(file_set.files[0].path).exists()


@pytest.mark.parametrize(("path", "mode"), [("/etc/with space.conf", "0644"), ("relative.conf", "0644"),
                                            ("/etc/a.conf", "644"), ("/etc/$(id).conf", "0644")])
def test_paths_and_modes_the_readers_cannot_parse_are_refused(path, mode):
    with pytest.raises(ValueError, match="4 octal digits"):
        files.bundled_file(HostFile("f", path, "x\n", mode))
