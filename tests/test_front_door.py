"""Issue 8: every bad stack file refused cleanly, no secret echoed, a deterministic and readable plan.

Stack files that fail before the program runs are planned in-process (`offline.plan.main`);
whole plans run as `make plan` runs them, in a child process.
"""

import json
import os
import pty
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from offline import plan
from offline.engine import run_program
from offline.stackfile import StackFile, read_stack_file
from tests.planning import run_plan
from tests.stacks import altered_stack, key, stack_config, write_stack
from tests.tools import REPO

STAGE = (REPO / "Pulumi.seoul-stage.yaml").read_text()
NEEDLE = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU"
PEM = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{NEEDLE}=\n-----END OPENSSH PRIVATE KEY-----\n"


def plan_in_process(capsys, stack_file: Path, out: Path) -> tuple[int, str]:
    code = plan.main(["--stack-file", str(stack_file), "--out", str(out)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def stage_with(text: str, before: str, after: str) -> str:
    assert before in text
    return text.replace(before, after, 1)


def refused(capsys, tmp_path: Path, content: bytes | str, name: str = "bad") -> str:
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, output = plan_in_process(capsys, path, tmp_path / "out")
    assert code == 2, output
    assert str(path) in output or path.name in output, output
    assert "Traceback" not in output and "<unicode string>" not in output
    assert not (tmp_path / "out").exists()
    return output


# --- 1. no error quotes a value that is or may be a secret ---------------------------------------

SECRET_FILES = {
    "ssh.privatekey (lower-case k)": stage_with(
        STAGE, "    user: deploy\n", "    user: deploy\n    privatekey: |\n" + "".join(
            f"      {line}\n" for line in PEM.splitlines())),
    "a bad escape on the private key's line": stage_with(
        STAGE, "    user: deploy\n", f'    user: deploy\n    privateKey: "{NEEDLE}\\q"\n'),
    "a tab on the private key's line": stage_with(
        STAGE, "    user: deploy\n", f"    user: deploy\n\tprivateKey: {NEEDLE}\n"),
    "a duplicate privateKey": stage_with(
        STAGE, "    user: deploy\n", f"    user: deploy\n    privateKey: {NEEDLE}\n    privateKey: {NEEDLE}\n"),
}


@pytest.mark.parametrize("case", SECRET_FILES, ids=list(SECRET_FILES))
def test_refusals_never_quote_a_secret(capsys, tmp_path, case):
    output = refused(capsys, tmp_path, SECRET_FILES[case])
    assert NEEDLE not in output and "BEGIN" not in output, output


# --- 2. every way of failing to read a stack file: exit 2, the file and the reason -------------------

UNREADABLE = {
    "a Latin-1 byte in a comment": (STAGE.encode().replace(b"# Stack stage:", b"# Stack st\xe9ge:"),
                                    "line 1, column 11: byte 0xe9 is not UTF-8"),
    "UTF-16": (STAGE.encode("utf-16"), "is not UTF-8"),
    "a YAML syntax error": ("config: [unclosed\n", "line 2, column 1"),
    "two documents": (STAGE + "---\nconfig: {}\n", "expected a single document"),
    "config is a list": ("config:\n  - seoul-cluster:environment\n", "'config' must be a mapping"),
    "a key without a namespace": (stage_with(STAGE, "  seoul-cluster:environment:", "  environment:"),
                                  "config key 'environment' is not of the form <namespace>:<name>"),
    "a binary value": (stage_with(STAGE, "    user: deploy", "    user: !!binary aGVsbG8="),
                       "a binary value has no JSON form"),
    "a set": (stage_with(STAGE, "    user: deploy", "    user: !!set {a, b}"), "a set value has no JSON form"),
    "a value of .nan": (stage_with(STAGE, "dailyIngestTb: 1", "dailyIngestTb: .nan"), ".nan and .inf"),
    "a Python tag": (stage_with(STAGE, "    user: deploy", "    user: !!python/name:os.system"),
                     "could not determine a constructor"),
}


@pytest.mark.parametrize("case", UNREADABLE, ids=list(UNREADABLE))
def test_unreadable_stack_files_exit_2_naming_file_and_reason(capsys, tmp_path, case):
    content, reason = UNREADABLE[case]
    output = refused(capsys, tmp_path, content)
    assert "error: cannot read stack file" in output and reason in output, output


def test_a_directory_or_missing_file_is_refused_naming_it(capsys, tmp_path):
    folder = tmp_path / "Pulumi.dir.yaml"
    folder.mkdir()
    for path, reason in ((folder, "Is a directory"), (tmp_path / "Pulumi.none.yaml", "No such file")):
        code, output = plan_in_process(capsys, path, tmp_path / "out")
        assert code == 2 and str(path) in output and reason in output, output


def test_yaml_dates_and_yes_no_stay_strings_as_the_cli_reads_them(tmp_path):
    text = stage_with(STAGE, "  seoul-cluster:environment: stage\n",
                      "  seoul-cluster:environment: stage\n  other:when: 2024-01-01\n  other:flag: on\n")
    stack = read_stack_file(write_text(tmp_path / "Pulumi.dates.yaml", text))
    assert (stack.lookup("other:when"), stack.lookup("other:flag")) == ("2024-01-01", "on")


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- 3. a duplicate key anywhere: exit 2 naming the key and both lines ------------------------------

def line_of(text: str, line: str, nth: int = 1) -> int:
    """1-based number of the `nth` line of `text` that equals `line` (the stack files change)."""
    found = [i for i, current in enumerate(text.splitlines(), start=1) if current == line]
    return found[nth - 1]


def duplicate(text: str, key: str, first: str, second: str) -> tuple[str, str]:
    """(stack text, expected message) for `key` repeated: its first line, then its second."""
    return text, (f"line {line_of(text, second, 2 if first == second else 1)}: duplicate key '{key}' "
                  f"(first at line {line_of(text, first)})")


TWO_ADDRESSES = stage_with(STAGE, "      address: 10.20.1.21\n",
                           "      address: 10.20.1.21\n      address: 10.20.1.99\n")
SECOND_HOSTS = stage_with(STAGE, "  seoul-cluster:network:\n",
                          "  seoul-cluster:hosts:\n    - {name: x, address: 10.20.9.9, roles: [worker]}\n"
                          "  seoul-cluster:network:\n")
TWO_REGIONS = stage_with(STAGE, "  aws:region: ap-northeast-2\n",
                         "  aws:region: ap-northeast-2\n  aws:region: us-east-1\n")
DUPLICATES = {
    "a host with two addresses": duplicate(TWO_ADDRESSES, "address", "      address: 10.20.1.21",
                                           "      address: 10.20.1.99"),
    "a second hosts block": duplicate(SECOND_HOSTS, "seoul-cluster:hosts", "  seoul-cluster:hosts:",
                                      "  seoul-cluster:hosts:"),
    "a repeated F5 management username": (stage_with(STAGE, "      username: pulumi-automation\n",
                                                     "      username: pulumi-automation\n      username: admin\n"),
                                          "duplicate key 'username'"),
    "a repeated aws:region": duplicate(TWO_REGIONS, "aws:region", "  aws:region: ap-northeast-2",
                                       "  aws:region: us-east-1"),
}


@pytest.mark.parametrize("case", DUPLICATES, ids=list(DUPLICATES))
def test_duplicate_keys_are_refused_naming_key_and_lines(capsys, tmp_path, case):
    content, expected = DUPLICATES[case]
    assert expected in refused(capsys, tmp_path, content)


# --- 4. unknown keys of the namespace, offline and under the program's own loading -------------------

def test_unknown_top_level_key_is_refused_by_the_plan(capsys, tmp_path):
    text = STAGE + "  seoul-cluster:hardenning:\n    permitRootLogin: true\n"
    output = refused(capsys, tmp_path, text)
    assert "seoul-cluster:hardenning: unknown key (value not shown); did you mean seoul-cluster:hardening?" in output


def test_unknown_key_is_refused_by_the_program_itself():
    # __main__ refuses it too (as under the CLI), before anything is registered.
    stack = read_stack_file(REPO / "Pulumi.seoul-stage.yaml")
    config = {**stack.config, key("sshh"): json.dumps({"user": "x"})}
    with pytest.raises(Exception, match=r"seoul-cluster:sshh: unknown key"):
        run_program(REPO / "__main__.py", StackFile("stage-x", config, stack.secret_keys))


def test_program_sees_keys_the_cli_passes_in_pulumi_config(monkeypatch):
    # The CLI's language host hands the whole config map over as PULUMI_CONFIG (JSON).
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({key("workloads"): "{}"}))
    with pytest.raises(Exception, match=r"seoul-cluster:workloads: unknown key"):
        run_program(REPO / "__main__.py", read_stack_file(REPO / "Pulumi.seoul-stage.yaml"))


# --- 9. byte-identical output across runs ---------------------------------------------------------

def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_two_runs_write_identical_bytes(tmp_path):
    first = run_plan(REPO / "Pulumi.seoul-prod.yaml", tmp_path / "a")
    second = run_plan(REPO / "Pulumi.seoul-prod.yaml", tmp_path / "b")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    a, b = files(first.out), files(second.out)
    assert a.keys() == b.keys()
    assert [name for name in a if a[name] != b[name]] == []
    resources = first.json("plan.json")["resources"]
    assert all(r["dependencies"] == sorted(r["dependencies"]) for r in resources)


# --- 10. a failed plan leaves nothing stale -------------------------------------------------------

def test_a_failed_plan_removes_the_earlier_plan(tmp_path):
    from review import report

    out = tmp_path / "out"
    good = run_plan(REPO / "Pulumi.seoul-stage.yaml", out)
    assert good.returncode == 0 and (out / "plan.json").is_file(), good.stderr
    report.write(out, REPO / "Pulumi.seoul-stage.yaml")  # as `make plan` does: the report is part of the plan
    again = run_plan(REPO / "Pulumi.seoul-stage.yaml", out)  # as `make diff` does, into the same folder
    assert again.returncode == 0, again.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # the earlier plan, moved aside, is deleted too
    report.write(out, REPO / "Pulumi.seoul-stage.yaml")
    bad = run_plan(altered_stack(tmp_path, "seoul-stage", lambda c: c.update({key("environment"): "qa"})), out)
    assert bad.returncode == 2
    assert not out.exists()
    assert "removed the earlier plan" in bad.stderr


@pytest.mark.parametrize("content", [b"config: [unclosed\n", b"# caf\xe9\nconfig: {}\n"])
def test_an_unreadable_stack_file_removes_the_earlier_plan_too(capsys, tmp_path, content):
    out = tmp_path / "out"
    (out / "artifacts").mkdir(parents=True)
    (out / "plan.json").write_text("{}\n")
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_bytes(content)
    code, output = plan_in_process(capsys, path, out)
    assert code == 2 and not out.exists(), output


@pytest.mark.parametrize("where", ["run_program", "artifacts.write"])
def test_a_crashing_plan_exits_3_and_leaves_nothing(capsys, monkeypatch, tmp_path, where):
    def crash(*args, **kwargs):
        raise RuntimeError("a bug in the program")

    # While running the program, or half way through writing the new folder.
    monkeypatch.setattr(plan.artifacts if where == "artifacts.write" else plan, where.split(".")[-1], crash)
    out = tmp_path / "out"
    out.mkdir()
    (out / "plan.json").write_text("{}\n")
    code, output = plan_in_process(capsys, REPO / "Pulumi.seoul-stage.yaml", out)
    assert code == 3 and "a bug in the program" in output and not out.exists()
    assert not list(tmp_path.glob(".out.*")), "a half-written folder was left"


# A Ctrl-C sent by the process to itself at a chosen point, so the test does not race the clock:
# half way through the 50th resource's registration (where the SDK used to wait forever for the
# RPCs the interrupted constructor had started), or while offline.plan imports the SDKs.
CTRL_C_IN_A_CONSTRUCTOR = """
import os, signal, sys
import pulumi.runtime.resource as sdk
stack_trace, calls = sdk._get_stack_trace, []
def interrupting():
    calls.append(1)
    if len(calls) == 50:
        os.kill(os.getpid(), signal.SIGINT)
    return stack_trace()
sdk._get_stack_trace = interrupting
from offline.plan import main
sys.exit(main(sys.argv[1:]))
"""
CTRL_C_DURING_IMPORTS = """
import importlib.abc, os, signal, sys
class Interrupt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "render.backup":  # among offline.plan's last imports
            os.kill(os.getpid(), signal.SIGINT)
sys.meta_path.insert(0, Interrupt())
from offline.plan import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("where", [CTRL_C_IN_A_CONSTRUCTOR, CTRL_C_DURING_IMPORTS], ids=["constructor", "imports"])
def test_ctrl_c_ends_the_run_with_130_and_no_stale_plan(tmp_path, where):
    out = tmp_path / "out"
    (out / "artifacts").mkdir(parents=True)
    (out / "plan.json").write_text("{}\n")
    proc = subprocess.run([sys.executable, "-c", where, "--stack", "seoul-stage", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)  # the SDK's wait hung until killed
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.endswith("\ninterrupted\nremoved the earlier plan in " + str(out) + "/ (it would be stale)\n")
    assert "Traceback" not in proc.stderr and proc.stdout.count("Previewing") <= 1
    assert [p.name for p in tmp_path.iterdir()] == []


@pytest.mark.parametrize(("mine", "reason"), [
    ("notes.txt", "it holds notes.txt"),
    ("artifacts/thesis.txt", "it has no plan.json"),  # a plan's names, but not a plan: every plan has plan.json
])
def test_out_that_is_not_a_plan_folder_is_never_removed(capsys, tmp_path, mine, reason):
    (tmp_path / mine).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / mine).write_text("mine\n")
    code, output = plan_in_process(capsys, REPO / "Pulumi.seoul-stage.yaml", tmp_path)
    assert code == 2 and f"--out {tmp_path} is not a plan folder ({reason}), and a plan replaces" in output, output
    assert (tmp_path / mine).read_text() == "mine\n"


def test_the_default_output_folder_is_never_removed_either(capsys, tmp_path):
    stack_file = write_text(tmp_path / f"Pulumi.front-door-{tmp_path.name}.yaml", STAGE)
    default = REPO / "build" / stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")
    (default / "artifacts").mkdir(parents=True)
    try:
        (default / "plan.json").write_text("{}\n")
        (default / "notes.txt").write_text("mine\n")
        code = plan.main(["--stack-file", str(stack_file)])
        output = capsys.readouterr().err
        assert code == 2 and "is not a plan folder (it holds notes.txt)" in output, output
        assert "move what you keep there, or plan with --out" in output
        assert (default / "notes.txt").read_text() == "mine\n" and (default / "plan.json").exists()
    finally:
        shutil.rmtree(default)


# --- 11. progress on stderr, only on a terminal ----------------------------------------------------

def test_progress_is_shown_on_a_terminal_only(tmp_path):
    leader, follower = pty.openpty()
    received = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                return
            if not chunk:
                return
            received.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    proc = subprocess.run([sys.executable, "-m", "offline.plan", "--stack", "seoul-stage", "--out",
                           str(tmp_path / "tty")], cwd=REPO, stdout=subprocess.DEVNULL, stderr=follower, timeout=300)
    os.close(follower)
    reader.join(timeout=10)
    os.close(leader)
    shown = received.decode(errors="replace")
    assert proc.returncode == 0, shown
    assert "resources registered" in shown and "against the policy pack" in shown, shown

    quiet = run_plan(REPO / "Pulumi.seoul-stage.yaml", tmp_path / "pipe")
    assert "registered" not in quiet.stderr and "\r" not in quiet.stderr


# --- 12. output a reviewer can use -----------------------------------------------------------------

def test_one_line_per_policy_naming_its_hosts(tmp_path):
    def lax(c):
        c[key("hardening")].update(permitRootLogin=True, selinux="permissive")

    run = run_plan(altered_stack(tmp_path, "seoul-stage", lax), tmp_path / "out")
    assert run.returncode == 0, run.stderr
    names = [h["name"] for h in stack_config("seoul-stage")[key("hosts")]]
    headers = [line for line in run.stdout.splitlines() if line.startswith("  [advisory] hosts-selinux-enforcing")]
    assert len(headers) == 1, run.stdout
    assert f"{len(names)} hosts: " in headers[0] and all(name in headers[0] for name in sorted(names)[:12]), headers
    assert "and 2 more" in headers[0]
    assert run.stdout.count("this step sets SELINUX_MODE=permissive") == 1
    violations = run.json("policy.json")["violations"]
    assert f"· {len(violations)} policy violations" in run.stdout


def test_violation_counts_are_singular_for_one():
    one = [{"policy": "p", "level": "mandatory", "urn": "", "message": "m"}]
    report = plan.violation_report(one, [], {})
    assert "(1 policy, 1 in all" in report and "1 resource: the stack" in report
    assert plan._n(1, "policy violation") == "1 policy violation"
    assert plan._n(2, "policy violation") == "2 policy violations"


def test_longest_chain_line_names_what_a_step_is_and_its_ends():
    resources = [
        {"urn": "u:a", "name": "a-packages", "custom": True, "dependencies": [], "propertyDependencies": {}},
        {"urn": "u:b", "name": "b-init", "custom": True, "dependencies": ["u:a"], "propertyDependencies": {}},
        {"urn": "u:c", "name": "c-join", "custom": True, "dependencies": [], "propertyDependencies": {"x": ["u:b"]}},
        {"urn": "u:k", "name": "component", "custom": False, "dependencies": [], "propertyDependencies": {}},
    ]
    line = plan.chain_line(resources)
    assert line.startswith("longest dependency chain: 3 steps, from a-packages to c-join (a step is")


def test_missing_stack_lists_the_stacks_that_exist(capsys):
    code = plan.main(["--stack", "seoul-dev"])
    err = capsys.readouterr().err
    assert code == 2 and "Pulumi.seoul-dev.yaml" in err and "stacks here: seoul-prod, seoul-stage" in err, err


def test_help_lists_the_exit_statuses(capsys):
    with pytest.raises(SystemExit) as done:
        plan.main(["--help"])
    text = capsys.readouterr().out
    assert done.value.code == 0
    for status in ("0  planned", "1  planned, with a mandatory", "2  the stack file", "3  the plan could not run"):
        assert status in text, text


def test_readme_runs_the_plan_with_the_venv_python():
    readme = (REPO / "README.md").read_text()
    assert ".venv/bin/python -m offline.plan" in readme
    assert all(line.count(".venv/bin/python -m offline.plan") == line.count("python -m offline.plan")
               for line in readme.splitlines()), "a bare `python -m offline.plan` in README.md"


def test_a_yaml_error_names_the_file(capsys, tmp_path):
    output = refused(capsys, tmp_path, "config:\n  seoul-cluster:ssh: {user: [\n", name="typo")
    assert "Pulumi.typo.yaml" in output and "line " in output


def test_written_stack_configs_still_plan(tmp_path):
    # The shipped stack through yaml.safe_dump (as the other tests write stacks) reads the same.
    copy = write_stack(tmp_path, "copy", stack_config("seoul-stage"))
    assert read_stack_file(copy).config == read_stack_file(REPO / "Pulumi.seoul-stage.yaml").config
    assert yaml.safe_load(copy.read_text())["config"][key("environment")] == "stage"
