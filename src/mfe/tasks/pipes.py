"""`doit list | head -1` ends quietly, as Unix tools do, instead of with a BrokenPipeError
traceback.

Python ignores SIGPIPE, so a write to a pipe whose reader has gone raises BrokenPipeError,
which doit prints as a traceback. Restoring the default action (the process ends, silently)
is safe only where nothing writes to a socket: with it, a write to a socket whose peer has
gone would kill the process too (a dev server, a publish's S3 connections). So it applies
to doit's commands that only print what they read from the dodo and the dep file, never to
`run` (the tasks) or `strace` (which runs one).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence

from doit.cmd_base import DodoTaskLoader
from doit.cmdparse import CmdOption, CmdParse, CmdParseError

PRINT_ONLY = frozenset({"list", "info", "help", "dumpdb", "tabcompletion"})


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
