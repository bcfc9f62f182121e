"""Failures read as one user-facing message: no doit task ids, no internal task names."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.aws import free_port
from fixtures.config import use_port
from fixtures.repo import REPO, run_doit


@pytest.fixture
def not_moto() -> Iterator[int]:
    """A plain HTTP server on a loopback port: something that is not the emulator."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", free_port()), http.server.SimpleHTTPRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_failed_preparation_step_shows_the_message_only(monorepo: Path, not_moto: int) -> None:
    use_port(monorepo, not_moto)
    result = run_doit(monorepo, "publish", check=False)
    assert result.returncode != 0
    lines = [line for line in result.stdout.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stdout
    assert f"port {not_moto}" in lines[0] and "[env.local] port" in lines[0]
    for internal in ("taskid", "_ready", "TaskFailed", "UnmetDependency", "Traceback"):
        assert internal not in result.stdout


CTRL_C_DODO = """
import signal
import time

from mfe.tasks import generate
from mfe.tasks.actions import action

globals().update(generate({dodo!r}))


def ctrl_c():
    signal.raise_signal(signal.SIGINT)  # what Ctrl-C in a terminal sends the foreground job


def task_wait():
    return {{"actions": [action(ctrl_c)], "verbosity": 2}}


def task_command():
    return {{"actions": ["echo started && exec sleep 60"], "verbosity": 2}}


def sleep():
    print("started", flush=True)
    time.sleep(60)


def task_sleep():
    return {{"actions": [action(sleep)], "verbosity": 2}}
"""


def ctrl_c_dodo(folder: Path) -> Path:
    dodo = folder / "dodo.py"
    dodo.write_text(CTRL_C_DODO.format(dodo=str(REPO / "dodo.py")))
    return dodo


def test_ctrl_c_in_a_task_ends_by_sigint(tmp_path: Path) -> None:
    """doit alone exits 1 (a task failed); mfe ends by SIGINT, after its message, as
    make and git do: shells report 130 and a calling script stops."""
    result = run_doit(tmp_path, "-f", str(ctrl_c_dodo(tmp_path)), "wait", check=False)
    assert result.returncode == -signal.SIGINT, result.stdout
    assert "error: interrupted (Ctrl-C)" in result.stdout
    assert "Traceback" not in result.stdout


def ctrl_c_when_started(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run `argv` as a terminal's job (a process group of its own) and send the group
    SIGINT, as Ctrl-C does, once it printed `started`; its status and output."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.strip() == "started":
            os.killpg(proc.pid, signal.SIGINT)
            break
    output = "".join(lines) + proc.stdout.read()
    return proc.wait(60), output


def test_ctrl_c_in_a_command_action_ends_by_sigint_without_a_traceback(tmp_path: Path) -> None:
    """Ctrl-C in a terminal signals the whole foreground group (doit and, say, npm ci); the
    KeyboardInterrupt then comes through doit itself, not through an mfe action."""
    dodo = ctrl_c_dodo(tmp_path)
    argv = [sys.executable, "-m", "doit", "-f", str(dodo), "command"]
    code, output = ctrl_c_when_started(argv, tmp_path)
    assert code == -signal.SIGINT, output
    assert "error: interrupted (Ctrl-C)" in output and "Traceback" not in output, output


@pytest.mark.parametrize("task", ["sleep", "command"])
def test_ctrl_c_stops_the_script_that_runs_doit(tmp_path: Path, task: str) -> None:
    """`doit TASK; echo next` in a bash script: bash stops at Ctrl-C only if its command
    died by SIGINT (an exit status of 130 carries on), whether an mfe action or a command
    action caught it; mfe's message is printed first."""
    doit = [sys.executable, "-m", "doit", "-f", str(ctrl_c_dodo(tmp_path)), task]
    code, output = ctrl_c_when_started(["bash", "-c", '"$@"; echo next', "bash", *doit], tmp_path)
    assert "next" not in output.split() and code == -signal.SIGINT, output
    assert "error: interrupted (Ctrl-C)" in output and "Traceback" not in output, output


SLOW_IMPORT_DODO = """
import time

print("started", flush=True)
time.sleep(60)  # a dodo that takes its time to import: Ctrl-C comes meanwhile
"""


def test_ctrl_c_while_doit_loads_the_dodo_ends_by_sigint_without_a_traceback(
    tmp_path: Path,
) -> None:
    """doit prints the KeyboardInterrupt of an import (mfe's, mfe.toml's) as a traceback."""
    (tmp_path / "dodo.py").write_text(SLOW_IMPORT_DODO)
    for command in (["list"], ["build"]):
        argv = [sys.executable, "-m", "doit", *command]
        code, output = ctrl_c_when_started(argv, tmp_path)
        assert code == -signal.SIGINT, output
        assert output == "started\n", output
