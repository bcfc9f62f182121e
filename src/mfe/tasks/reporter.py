"""doit's console reporter, speaking to users rather than to doit developers.

A failing mfe action already carries one message naming the file, key, app or URL; doit's
default prints it under `TaskFailed - taskid:_ready` (an internal task name), then a banner
and two empty captured-output blocks. This reporter prints `error: <message>` once, says
nothing more for tasks skipped because a dependency failed, and keeps tracebacks only for
unexpected exceptions, labelled by what the step does. Before any task runs, it refuses a
command-line variable that the tasks doit selected do not read, and what a selected task's
own check refuses (`mfe.tasks.variables`).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterable
from typing import Any

from doit.exceptions import InvalidTask, UnmetDependency
from doit.reporter import ConsoleReporter

from mfe.errors import MfeError, end_by_signal
from mfe.tasks.actions import TaskInterrupted
from mfe.tasks.pipes import LISTINGS, READER_GONE, ReaderGone, silence_gone_reader
from mfe.tasks.variables import check_tasks, refusals

CTRL_C_STOPPED = threading.Event()
"""Set by an action whose normal end is Ctrl-C (serve): the run then ends by SIGINT too."""


def step_label(task: Any) -> str:
    """The task's public name, or what a hidden (`_`) task does, from its docstring."""
    if not task.name.startswith("_"):
        return str(task.name)
    doc = (task.doc or "").strip().rstrip(".")
    return doc[:1].lower() + doc[1:] if doc else "a preparation step"


class Reporter(ConsoleReporter):  # type: ignore[misc]
    desc = "console output; errors as one message, captured output only when there is some"
    dodo_variables: frozenset[str] = frozenset()
    """Names the project's dodo.py reads itself (`generate(variables=)`)."""
    interrupted = False
    """A task failed because of Ctrl-C: the run ends by SIGINT."""
    listing = False
    """Only listings run (`doit releases`): a stdout reader that goes away ends it quietly."""

    def initialize(self, tasks: dict[str, Any], selected_tasks: list[str]) -> None:
        """Called by doit once the tasks to run are selected, before any of them runs: doit
        reports an InvalidTask as a runtime error and exits 2 without running anything."""
        try:
            check_tasks(tasks, selected_tasks, self.dodo_variables)
            refusals(tasks, selected_tasks)
        except MfeError as exc:
            raise InvalidTask(str(exc)) from None
        self.listing = bool(selected_tasks) and set(selected_tasks) <= LISTINGS

    def write(self, text: str) -> None:
        """doit's lines (`.  plan`) for a listing, whose reader may be gone before it runs."""
        try:
            super().write(text)
        except BrokenPipeError:
            if not (self.listing and silence_gone_reader()):
                raise

    def add_failure(self, task: Any, fail: Any) -> None:
        if isinstance(fail, TaskInterrupted):
            self.interrupted = True
        super().add_failure(task, fail)

    def _write_failure(self, result: dict[str, Any], write_exception: bool = True) -> None:
        fail = result["exception"]
        if isinstance(fail, UnmetDependency | ReaderGone):
            return  # the failed dependency already said why; nobody reads on
        if not fail.traceback:  # an MfeError turned into a failure by mfe.tasks.actions
            self.write(f"error: {fail.message}\n")
            return
        self.write(f"error: {step_label(result['task'])} failed unexpectedly:\n")
        if write_exception:
            self.write(fail.get_msg() + "\n")

    def complete_run(self) -> None:
        write_captured(self)
        # doit calls this last, from a `finally`: a KeyboardInterrupt that no mfe action
        # caught (a command action such as npm ci) is still on its way out, with a traceback.
        escaping = isinstance(sys.exc_info()[1], KeyboardInterrupt)
        if escaping:
            self.write("error: interrupted (Ctrl-C)\n")
        if self.interrupted or escaping or CTRL_C_STOPPED.is_set():
            # doit has closed its dep file and would exit 1 (a task failed) or 0 (serve).
            end_by_signal(signal.SIGINT)
        if READER_GONE.is_set():
            end_by_signal(signal.SIGPIPE)  # as `doit list | head -1` ends (mfe.tasks.pipes)


def write_captured(reporter: ConsoleReporter) -> None:
    """What doit's `complete_run` writes, without its empty sections: each failed task's
    captured output that was not shown live, when it has some, then the runtime errors."""
    for result in reporter.failures:
        task = result["task"]
        if not task.executed:
            continue
        for kind, shown_live in (("err", task.verbosity >= 1), ("out", task.verbosity >= 2)):
            text = "".join(getattr(a, kind) or "" for a in task.actions).strip()
            if text and (not shown_live or reporter.failure_verbosity):
                reporter.write(f"output of {step_label(task)} (std{kind}):\n{text}\n")
    for error in reporter.runtime_errors:  # nothing more runs after one
        reporter.write(f"error: {error}\n")


def reporter_for(dodo_variables: Iterable[str]) -> type[Reporter]:
    """The Reporter class doit instantiates itself, knowing the dodo's own variables."""
    names = frozenset(dodo_variables)
    if not names:
        return Reporter
    return type("Reporter", (Reporter,), {"dodo_variables": names})
