"""Rebuild through doit, in this process, so doit's dependency state stays the truth.

Each run loads the project's `dodo.py` afresh (new files, a changed `mfe.toml`) and runs
the selected tasks with a reporter that records what ran and what failed. doit's json
backend reads the dep file when a run starts and writes it when the run ends, so runs
are strictly one at a time (the caller's loop) and `doit` in another terminal still works.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import io
import re
import runpy
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import doit.plugin
from doit.action import CmdAction
from doit.cmd_base import ModuleTaskLoader
from doit.control import TaskControl
from doit.doit_cmd import DoitMain
from doit.exceptions import DependencyError, InvalidDodoFile, InvalidTask, UnmetDependency
from doit.loader import load_tasks
from doit.reporter import ConsoleReporter

from mfe.build.install import npm_reason
from mfe.tasks.actions import TaskInterrupted
from mfe.tasks.reporter import write_captured


@dataclass
class RunResult:
    code: int
    """doit's exit code: 0 ok, 1 a task failed, 2/3 an error before tasks ran."""
    executed: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    """Task name -> its failure message (the bundler's output for a build)."""
    durations: dict[str, float] = field(default_factory=dict)
    """Task name -> seconds its actions took (for a build: mostly the bundler)."""
    done: list[str] = field(default_factory=list)
    """Tasks that succeeded or were up to date: their last build is good."""
    seconds: float = 0.0
    interrupted: str = ""
    """What Ctrl-C stopped and left (the task's message), or "": no failure to report,
    serve is stopping."""
    report: str = ""
    """What doit said of a `quiet` run (its failure reports, captured output), held back
    until serve has named the save that caused it."""

    @property
    def ok(self) -> bool:
        return self.code == 0 and not self.failures


class _Recorder(ConsoleReporter):  # type: ignore[misc]
    """doit's console output, plus a record of executed and failed tasks for the overlay."""

    def __init__(
        self,
        outstream: TextIO,
        options: dict[str, Any],
        root: Path,
        quiet: bool = False,
        told: dict[str, str] | None = None,
    ) -> None:
        super().__init__(outstream, options)
        self.root = root
        self.quiet = quiet
        """No `.  task` / `-- task` line per task: serve's one line says what was rebuilt
        (failures are reported in full all the same)."""
        self.told = told or {}
        """App -> the failure the terminal shows already: the same again is not printed
        (a save of another file, or of mfe.toml, builds a still-broken app again)."""
        self.executed: list[str] = []
        self.failed: dict[str, str] = {}
        self.started: dict[str, float] = {}
        self.durations: dict[str, float] = {}
        self.done: list[str] = []
        self.interrupted = ""
        self.stderr = sys.stderr
        """The terminal's stderr, held back while doit loads and checks the tasks."""
        self.started_run = False

    def initialize(self, tasks: dict[str, Any], selected_tasks: list[str]) -> None:
        """doit accepted the tasks and runs them now: what it wrote to stderr until then
        (a warning) is shown, and the tasks' own stderr goes to the terminal again."""
        held = sys.stderr
        sys.stderr = self.stderr
        self.started_run = True
        if isinstance(held, io.StringIO):
            sys.stderr.write(held.getvalue())
        super().initialize(tasks, selected_tasks)

    def execute_task(self, task: Any) -> None:
        self.executed.append(task.name)
        self.started[task.name] = time.monotonic()
        if not self.quiet:
            super().execute_task(task)

    def add_success(self, task: Any) -> None:
        self._done(task.name)
        self.done.append(task.name)
        super().add_success(task)

    def skip_uptodate(self, task: Any) -> None:
        self.done.append(task.name)
        if not self.quiet:
            super().skip_uptodate(task)

    def add_failure(self, task: Any, fail: Any) -> None:
        self._done(task.name)
        gone = _vanished(self.root, fail)
        if gone is not None:  # a checkout deleted it after dodo.py listed it: no failure
            self.write(
                f"{task.name}: {gone} was deleted while doit ran; the next build follows that\n"
            )
            return
        if isinstance(fail, TaskInterrupted):  # Ctrl-C: serve is stopping, no failure
            self.interrupted = self.interrupted or fail.message
            return
        if isinstance(fail, UnmetDependency):  # the failed dependency says why (or Ctrl-C)
            return
        self.failed[task.name] = _with_errors(fail.get_msg().strip(), task)
        if self.told.get(task.name.removeprefix("build:")) != self.failed[task.name]:
            super().add_failure(task, fail)

    def complete_run(self) -> None:
        write_captured(self)  # doit's writes a row of # and empty sections for every failure

    def _done(self, name: str) -> None:
        if name in self.started:
            self.durations[name] = time.monotonic() - self.started[name]


def _vanished(root: Path, fail: Any) -> str | None:
    """The file a task's `file_dep` listed that is gone now (doit found it missing): the
    watcher has its deletion queued, so the next cycle builds the app from what is there."""
    if not isinstance(fail, DependencyError):
        return None
    match = _MISSING.search(fail.get_msg())
    if match is None or (root / match.group(1)).exists():
        return None
    return match.group(1)


def _with_errors(message: str, task: Any) -> str:
    """A failed command's message and what it wrote to stderr: the overlay then says why
    `npm ci` failed (a package.json the lockfile lags behind), not only its exit code."""
    err = "".join(a.err or "" for a in task.actions if isinstance(a, CmdAction))
    text = "\n".join(npm_reason(err.splitlines())).strip()
    return f"{message}\n{text}" if text else message


def _load_error(root: Path, exc: Exception) -> str:
    """Why dodo.py did not load, headed by the project file and line that raised it (what
    `python dodo.py` would show last), and what to do: the user fixes that line."""
    return (
        f"{_raised_at(root, exc)}: {error_text(exc)}\n"
        "doit cannot load dodo.py: fix that line; until then nothing is rebuilt and the last "
        "good build stays served (what is saved meanwhile is built once it loads)"
    )


def error_text(exc: Exception) -> str:
    """`Type: message` (a SyntaxError's message without the location it carries)."""
    return f"{type(exc).__name__}: {exc.msg if isinstance(exc, SyntaxError) else exc}"


def _raised_at(root: Path, exc: Exception) -> str:
    """`file, line N` of the error: a SyntaxError's own, or the innermost traceback frame in
    a project file (not an installed library's: a raise inside one names the dodo.py line)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{display_path(root, exc.filename)}, line {exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _in_project(root, f.filename)]
    if not frames:
        return "dodo.py"
    return f"{display_path(root, frames[-1].filename)}, line {frames[-1].lineno}"


def _in_project(root: Path, filename: str) -> bool:
    try:
        parts = Path(filename).resolve().relative_to(root.resolve()).parts
    except ValueError:
        return False
    return not any(part.startswith(".") or part in _LIBRARIES for part in parts)


def display_path(root: Path, filename: str) -> str:
    """A file as serve's other lines name it: relative to the root when inside it."""
    try:
        return Path(filename).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return filename


_LIBRARIES = {"node_modules", "site-packages", "dist-packages"}

REFUSED = "dodo.py: doit refused its tasks, nothing is built until it is fixed"
"""How a run that doit stopped before any task (exit 3) starts in the overlay."""

_MISSING = re.compile(r"Dependent file '([^']+)' does not exist")


@functools.cache
def _installed() -> Any:
    return importlib.metadata.entry_points()


def _entry_points(group: str) -> Any:
    """doit looks its plugins up in every installed package's metadata four times a run
    (~60 ms here); the packages do not change while serving, so read them once."""
    return _installed().select(group=group)


def check_dodo(root: Path) -> RunResult:
    """dodo.py loaded and its tasks checked as doit checks them before any runs, no task
    run: a saved dodo.py that does not load, or whose tasks doit refuses, is told at its
    save (as Vite tells a broken config), not at the next save of a source."""
    loaded = _load(root)
    if isinstance(loaded, RunResult):
        return loaded
    try:
        TaskControl(load_tasks(loaded, allow_delayed=True))
    except (InvalidDodoFile, InvalidTask) as exc:  # the error `doit` prints as ERROR: (exit 3)
        return RunResult(code=3, failures={"dodo.py": f"{REFUSED}: {exc}"})
    return RunResult(0)


def _load(root: Path) -> dict[str, Any] | RunResult:
    """dodo.py's namespace, or the failed run (a "dodo.py" failure) when it does not load."""
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            dodo = runpy.run_path(str(root / "dodo.py"), run_name="dodo")
    except SystemExit as exc:  # mfe.tasks.generate reports config errors this way
        # Not passed on: serve prints the failure once, and the overlay shows it, whereas
        # each save would load dodo.py (and print its error) again.
        code = exc.code if isinstance(exc.code, int) else 2
        why = said.getvalue().strip().removeprefix("mfe: error: ") or f"dodo.py exited ({code})"
        return RunResult(code=code, failures={"dodo.py": why})
    except Exception as exc:  # a syntax error or a raise in dodo.py (or a module it imports)
        return RunResult(code=3, failures={"dodo.py": _load_error(root, exc)})
    sys.stderr.write(said.getvalue())  # what a dodo.py that loads says (a warning) is shown
    return dodo


def run_tasks(
    root: Path, arguments: list[str], quiet: bool = False, told: dict[str, str] | None = None
) -> RunResult:
    """`doit ARGUMENTS` in-process, one task after the other (`quiet`: no line per task,
    and what doit says is held in the result's `report`; `told`: app (or `install`) -> a
    failure the terminal shows already, not printed again).

    Never `-P thread`: doit's python-actions swap the process-wide `sys.stdout` per
    task, and two threads restoring it out of order leave it pointing at a finished
    task's buffer (the terminal goes silent for good). Processes are no option either:
    forking a process that runs HTTP and watchdog threads is asking for trouble.
    """
    started = time.monotonic()
    dodo = _load(root)
    if isinstance(dodo, RunResult):
        return dodo
    # A save's run: its failure is printed after the line naming the save, not before.
    out: TextIO = io.StringIO() if quiet else sys.stdout
    recorder = _Recorder(out, {"failure_verbosity": 0}, root, quiet, told or {})
    dodo["DOIT_CONFIG"] = {**dodo.get("DOIT_CONFIG", {}), "reporter": recorder}
    saved = doit.plugin.entry_points_impl
    doit.plugin.entry_points_impl = lambda: _entry_points
    refused = io.StringIO()
    try:
        # doit's "ERROR: Task lint. Task dependency 'x' does not exist." (exit 3, nothing run)
        # comes before the recorder's `initialize`: the overlay's, not printed on every save
        with contextlib.redirect_stderr(refused):
            code = DoitMain(ModuleTaskLoader(dodo)).run(arguments)
    finally:
        doit.plugin.entry_points_impl = saved
    sys.stdout.flush()
    if code == 3 and not recorder.started_run:
        why = refused.getvalue().strip().removeprefix("ERROR: ")
        return RunResult(code=code, failures={"dodo.py": f"{REFUSED}: {why}"})
    return RunResult(
        code,
        recorder.executed,
        recorder.failed,
        recorder.durations,
        recorder.done,
        time.monotonic() - started,
        recorder.interrupted,
        out.getvalue() if isinstance(out, io.StringIO) else "",
    )
