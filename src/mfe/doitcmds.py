"""doit's commands with one-line answers to a user's command-line mistakes.

doit answers a misspelled task (`doit pubish`) with "Invalid parameter" and no suggestion,
`doit help pubish` with its general usage and exit 0, an unknown task option (`doit publish
--forse`) with the reprs of its option objects, and `doit` in a subfolder with "use '-f'",
while `-k` (--seek-file) is what finds dodo.py in a parent folder (README). doit runs before
any dodo.py is found, so only a plugin can answer these: the installed `doit.COMMAND` entry
points replace doit's commands of the same names with these subclasses, which change nothing
but those messages. Each is one line, raised as doit's `InvalidCommand`, so doit prints it as
`ERROR: ...` and exits 3 as for its other errors before a task runs, and a doit run from
code (serve's rebuilds, `mfe.serve.rebuild`) gets doit's return code, not an exit.

Ctrl-C while doit loads dodo.py (mfe's imports, mfe.toml, the tasks) raised a
KeyboardInterrupt that doit prints as a traceback: it ends the command by SIGINT, silently,
as Ctrl-C during a task does (`mfe.tasks.reporter`); a doit run from code that loaded its
dodo itself gets its KeyboardInterrupt as before. This module imports nothing of mfe's
heavy parts, so doit gets to it quickly; the ~0.1 s doit takes to import itself before it
looks for plugins stays Python's (a traceback), as no plugin runs earlier.
"""

from __future__ import annotations

import contextlib
import difflib
import getopt
import os
import shlex
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from doit import (
    cmd_clean,
    cmd_forget,
    cmd_help,
    cmd_ignore,
    cmd_info,
    cmd_list,
    cmd_resetdep,
    cmd_run,
)
from doit.cmd_base import DodoTaskLoader, DoitCmdBase
from doit.cmdparse import CmdOption, CmdParseError
from doit.exceptions import InvalidCommand, InvalidDodoFile

from mfe.errors import end_by_signal


class Explained:
    """Mixin for a doit command: its users' mistakes end with one line."""

    def parse_execute(self, in_args: list[str]) -> Any:
        try:
            return super().parse_execute(in_args)  # type: ignore[misc]
        except CmdParseError as exc:  # the command's own options (`doit list --bogus`)
            name = self.get_name()  # type: ignore[attr-defined]
            message = _bad_option(exc, f"doit {name}", self.get_options(), listed=False)  # type: ignore[attr-defined]
            if message is None:
                raise
            raise InvalidCommand(f"{message}; `doit help {name}` lists its options") from None
        except KeyboardInterrupt:
            loading = getattr(self, "task_list", None) is None  # no task ran yet
            if not (loading and isinstance(getattr(self, "loader", None), DodoTaskLoader)):
                raise  # a task's (the reporter's), or a run from code (serve's rebuilds)
            end_by_signal(signal.SIGINT)

    def execute(self, params: Any, args: list[str]) -> Any:
        with self.explained(params, args):
            return super().execute(params, args)  # type: ignore[misc]

    @contextlib.contextmanager
    def explained(self, params: Any, args: list[str]) -> Iterator[None]:
        """doit's errors of loading dodo.py and selecting tasks, told in one line."""
        try:
            yield
        except InvalidDodoFile:
            missing = _missing_dodo(params.get("dodoFile", "dodo.py"), params.get("seek_file"))
            if missing is None:
                raise
            raise InvalidCommand(missing) from None
        except InvalidCommand as exc:
            if exc.not_found is None:
                raise
            raise InvalidCommand(_not_found(exc.not_found, self._names())) from None
        except CmdParseError as exc:  # a task's options (`doit publish --forse`)
            task = _task_of_option(exc, args, self._tasks())
            options = [CmdOption(o) for o in [*task.creator_params, *task.params]] if task else []
            message = _bad_option(exc, f"doit {task.name}", options) if task else None
            if message is None:
                raise
            raise InvalidCommand(f"{message} (`doit help {task.name}`)") from None

    def _tasks(self) -> dict[str, Any]:
        return {task.name: task for task in getattr(self, "task_list", None) or ()}

    def _names(self) -> list[str]:
        """What a misspelled word may have meant: public tasks and doit's commands."""
        tasks = [name for name in self._tasks() if not name.startswith("_")]
        return [*tasks, *getattr(getattr(self, "loader", None), "cmd_names", ())]


def _missing_dodo(dodo_file: str, seek_file: bool) -> str | None:
    """What to do when `dodo_file` is not found (None: it exists, doit failed otherwise)."""
    cwd = os.getcwd()
    if os.path.exists(os.path.join(cwd, dodo_file)):
        return None  # found: doit failed for another reason
    if dodo_file != "dodo.py":  # given with -f
        return f"dodo file {os.path.abspath(dodo_file)} not found (-f/--file names it)"
    above = _dodo_above(cwd, dodo_file)
    if above is None or seek_file:
        return (
            f"no {dodo_file} in {cwd} or a folder above it: run doit in the project's root "
            "folder, where dodo.py is"
        )
    command = shlex.join(["doit", "-k", *sys.argv[1:]])
    return (
        f"no {dodo_file} in {cwd}: doit runs where dodo.py is ({above}); from here, "
        f"`{command}` (--seek-file) finds it and runs there"
    )


def _dodo_above(folder: str, name: str) -> str | None:
    """The nearest `name` in a folder above `folder`, as `doit -k` finds it."""
    parent = os.path.dirname(folder)
    while parent != folder:
        if os.path.exists(os.path.join(parent, name)):
            return os.path.join(parent, name)
        folder, parent = parent, os.path.dirname(parent)
    return None


def _not_found(word: str, names: Sequence[str]) -> str:
    meant = [f"`doit {name}`" for name in difflib.get_close_matches(word, sorted(set(names)))]
    hint = " or ".join([", ".join(meant[:-1]), meant[-1]] if len(meant) > 1 else meant)
    return (
        f"'{word}' is not a task, target or command{f' (did you mean {hint}?)' if hint else ''}; "
        "`doit list` shows the tasks, `doit help` the commands"
    )


def _bad_option(
    exc: CmdParseError, command: str, options: Sequence[Any], listed: bool = True
) -> str | None:
    """One line for getopt's complaint behind `exc` (None: not getopt's); `listed`: name
    the options `command` takes (a task's few, not a doit command's dozens)."""
    cause = exc.__context__
    if not isinstance(cause, getopt.GetoptError):
        return None
    flag = f"--{cause.opt}" if len(cause.opt) > 1 else f"-{cause.opt}"
    flags = [f"--{o.long}" for o in options if o.long] + [f"-{o.short}" for o in options if o.short]
    flags += [f"--{o.inverse}" for o in options if o.inverse]
    if "not recognized" not in cause.msg:  # a value missing or given to a flag
        return f"`{command}`: {cause.msg}"
    meant = difflib.get_close_matches(flag, flags, n=1)
    hint = f" (did you mean {meant[0]}?)" if meant else ""
    if not listed:
        return f"unknown option {flag} for `{command}`{hint}"
    takes = f"it takes {', '.join(flags)}" if flags else "it takes no options"
    return f"unknown option {flag} for `{command}`{hint}; {takes}"


def _task_of_option(exc: CmdParseError, args: Sequence[str], tasks: dict[str, Any]) -> Any:
    """The task whose options doit was parsing: the last task named before the bad option."""
    cause = exc.__context__
    opt = getattr(cause, "opt", "")
    flag = f"--{opt}" if len(opt) > 1 else f"-{opt}"
    bad = next((i for i, arg in enumerate(args) if arg.split("=", 1)[0] == flag), len(args))
    named = [tasks[arg] for arg in args[:bad] if arg in tasks]
    return named[-1] if named else None


class Run(Explained, cmd_run.Run):  # type: ignore[misc]
    pass


class Help(Explained, cmd_help.Help):  # type: ignore[misc]
    def execute(self, params: Any, args: list[str]) -> Any:
        """doit prints its usage (exit 0) for a task it does not find: say so instead."""
        if len(args) != 1 or args[0] == "task" or args[0] in self.cmds:
            return cmd_help.Help.execute(self, params, args)
        with self.explained(params, args):
            DoitCmdBase.execute(self, params, args)
        return 0

    def _execute(self, pos_args: list[str]) -> bool:
        if not super()._execute(pos_args):
            raise InvalidCommand(not_found=pos_args[0])
        return True


class List(Explained, cmd_list.List):  # type: ignore[misc]
    pass


class Info(Explained, cmd_info.Info):  # type: ignore[misc]
    pass


class Clean(Explained, cmd_clean.Clean):  # type: ignore[misc]
    pass


class Forget(Explained, cmd_forget.Forget):  # type: ignore[misc]
    pass


class Ignore(Explained, cmd_ignore.Ignore):  # type: ignore[misc]
    pass


class ResetDep(Explained, cmd_resetdep.ResetDep):  # type: ignore[misc]
    pass
