"""`doit list | head -1` and `doit releases | head -1` end quietly, as Unix tools do,
instead of with a BrokenPipeError traceback.

Python ignores SIGPIPE, so a write to a pipe whose reader has gone raises BrokenPipeError,
which doit prints as a traceback. Restoring the default action (the process ends, silently)
is safe only where nothing writes to a socket: with it, a write to a socket whose peer has
gone would kill the process too (a dev server, a publish's S3 connections). So it applies
to doit's commands that only print what they read from the dodo and the dep file, never to
`run` (the tasks) or `strace` (which runs one).

Tasks whose output is a listing (`releases`, `plan`, `ci_plan`) talk to S3 while they
print, so SIGPIPE keeps Python's handling there: `listing` and the reporter's own lines
catch stdout's BrokenPipeError instead, and the reporter ends the run by SIGPIPE once doit
closed its dep file.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from doit.cmd_base import DodoTaskLoader
from doit.cmdparse import CmdOption, CmdParse, CmdParseError
from doit.exceptions import BaseFail, TaskFailed

from mfe.tasks.actions import guarded

PRINT_ONLY = frozenset({"list", "info", "help", "dumpdb", "tabcompletion"})
LISTINGS = frozenset({"releases", "plan", "ci_plan"})
"""Tasks whose output is a listing: their actions run through `listing`."""
READER_GONE = threading.Event()
"""Set once a listing's stdout reader went away: the run then ends by SIGPIPE."""


def doit_command(argv: Sequence[str]) -> str:
    """The doit command `argv` names, found as `DoitMain.run` finds it: after the loader's
    options (`-f`, `-d`, `-k`) and without `name=value` variables; `run` by default."""
    options = [CmdOption(option) for option in DodoTaskLoader.cmd_options]
    try:
        _, rest = CmdParse(options).parse_only(list(argv))
    except CmdParseError:
        rest = list(argv)
    words = [arg for arg in rest if arg[:1] == "-" or "=" not in arg]
    return words[0] if words and words[0] in PRINT_ONLY else "run"


def quiet_broken_pipe(argv: Sequence[str]) -> None:
    """Let SIGPIPE end a print-only doit command silently (see the module's doc)."""
    if not hasattr(signal, "SIGPIPE") or threading.current_thread() is not threading.main_thread():
        return  # no SIGPIPE (Windows); signal handlers are the main thread's
    if doit_command(argv) in PRINT_ONLY:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)


class ReaderGone(TaskFailed):  # type: ignore[misc]
    """stdout's reader went away (`doit releases | head -1`): the run ends by SIGPIPE, silently."""


def listing(func: Callable[..., object], *args: Any) -> BaseFail | dict[str, Any] | None:
    """`guarded(func, *args)` for a task whose output is a listing: a reader that goes away
    ends it quietly, as Unix tools end under `head`, not with a BrokenPipeError traceback."""
    if READER_GONE.is_set():  # during doit's lines before it: nobody reads what it prints
        return ReaderGone("stdout's reader went away")
    try:
        result = guarded(func, *args)
        sys.stdout.flush()  # what print() left buffered fails here, not at the exit
    except BrokenPipeError:
        if not silence_gone_reader():
            raise  # another pipe than stdout's
        return ReaderGone("stdout's reader went away")
    return result


def silence_gone_reader() -> bool:
    """Whether stdout's reader went away; if so, stdout goes to /dev/null from now on
    (doit's last lines, the interpreter's final flush) and the run ends by SIGPIPE."""
    stdout = sys.__stdout__.fileno() if sys.__stdout__ else -1
    if stdout < 0 or not _reader_gone(stdout):
        return False
    os.dup2(os.open(os.devnull, os.O_WRONLY), stdout)
    READER_GONE.set()
    return True


def _reader_gone(fd: int) -> bool:
    """The read end of the pipe (or socket) `fd` writes to is closed."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
