"""The task module stays light and self-describing: `doit list` is what users run first."""

from __future__ import annotations

import errno
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from doit.loader import load_tasks

from mfe.tasks import generate
from mfe.tasks.pipes import doit_command, quiet_broken_pipe

from fixtures.repo import REPO, run_doit

HEAVY = ("boto3", "botocore", "jinja2", "rich", "httpx", "watchdog")
"""Libraries only some actions need: a no-op `doit` or `doit list` must not pay for them."""

DOIT_IN_PROCESS = f"""
import sys
from doit.doit_cmd import DoitMain

code = DoitMain().run(sys.argv[1:])
assert "mfe.tasks" in sys.modules, "dodo.py did not load mfe.tasks"
loaded = sorted({{name.partition(".")[0] for name in sys.modules}} & set({HEAVY!r}))
print("HEAVY:" + ",".join(loaded))
sys.exit(code)
"""


def doit_in_process(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`doit ARGS` in a fresh interpreter that prints `HEAVY:` and the HEAVY ones it loaded."""
    return subprocess.run(
        [sys.executable, "-c", DOIT_IN_PROCESS, *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_doit_list_imports_no_boto3_jinja2_or_rich(monorepo: Path) -> None:
    """`doit list` in a fresh interpreter: dodo.py -> mfe.tasks, and nothing heavy with it."""
    result = doit_in_process(monorepo, "list")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HEAVY:\n" in result.stdout, result.stdout  # none of them was imported
    assert "build" in result.stdout  # and the listing itself was printed


def test_noop_doit_imports_nothing_heavy(built_monorepo: Path) -> None:
    """A no-op `doit` runs every up-to-date check (install's, each app's lockfile slice, the
    shared modules') and still imports none of the libraries only actions need."""
    result = doit_in_process(built_monorepo)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "-- build:accounts" in output and ".  " not in output, output  # really a no-op
    assert "HEAVY:\n" in result.stdout, output


def test_doit_list_shows_every_task_with_a_one_line_doc(monorepo: Path) -> None:
    tasks = load_tasks(generate(str(monorepo / "dodo.py")))
    public = {task.name for task in tasks if not task.subtask_of and not task.name.startswith("_")}
    assert {"build", "install", "publish", "serve", "ci"} <= public

    listing = run_doit(monorepo, "list").stdout.splitlines()
    documented = {}
    for line in listing:
        name, _, doc = line.partition(" ")
        documented[name] = doc.strip()
    assert set(documented) == public, listing
    for name, doc in documented.items():
        assert doc, f"task {name} has no doc line"


@pytest.mark.parametrize("reader", ["head -1", "head -c 0"])
def test_doit_list_piped_into_head_ends_quietly(reader: str) -> None:
    """`doit list | head -1` prints no BrokenPipeError traceback, as Unix tools do not;
    `head -c 0` exits before doit writes anything, so every write meets the closed pipe."""
    command = f"{shlex.quote(sys.executable)} -m doit list --all | {reader}"
    for _ in range(3):
        result = subprocess.run(
            ["bash", "-c", command], cwd=REPO, capture_output=True, text=True, timeout=120
        )
        assert result.stderr == "", result.stderr
        first = "" if "-c 0" in reader else result.stdout.splitlines()[0] + "\n"
        assert result.stdout == first and (not first or first.startswith("build ")), result.stdout


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["list"], "list"),
        (["-f", "dodo.py", "list", "--all"], "list"),
        (["--seek-file", "info", "publish", "env=prod"], "info"),
        (["help", "publish"], "help"),
        (["publish", "name=list"], "run"),
        (["serve", "--port", "5199"], "run"),
        (["-n", "2", "build"], "run"),
        ([], "run"),
    ],
)
def test_only_print_only_commands_let_sigpipe_end_them(argv: list[str], command: str) -> None:
    """A socket write to a gone peer must never kill serve or publish: SIGPIPE stays ignored
    for `run`; only doit's print-only commands get its default action back."""
    assert doit_command(argv) == command
    previous = signal.getsignal(signal.SIGPIPE)
    try:
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # Python's own setting
        quiet_broken_pipe(argv)
        expected = signal.SIG_IGN if command == "run" else signal.SIG_DFL
        assert signal.getsignal(signal.SIGPIPE) == expected
    finally:
        signal.signal(signal.SIGPIPE, previous)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS])
def test_a_full_disk_or_a_read_only_folder_fails_the_task_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """They came as tracebacks from whichever write met them (.mfe/ read-only, disk full)."""
    from doit.exceptions import TaskFailed

    from mfe.tasks.actions import guarded

    monkeypatch.chdir(tmp_path)  # doit runs in the project's root

    def write() -> None:
        raise OSError(code, os.strerror(code), str(tmp_path / ".mfe/local/outputs.json"))

    failed = guarded(write)
    assert isinstance(failed, TaskFailed)
    assert failed.message.startswith(f".mfe/local/outputs.json: {os.strerror(code)}; make room")


def test_other_os_errors_keep_their_traceback() -> None:
    """A missing file the code expected is a bug to see, not the machine's fault."""
    from mfe.tasks.actions import guarded

    def read() -> None:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "x.json")

    with pytest.raises(FileNotFoundError):
        guarded(read)
