"""`doit list` and `doit help TASK` while mfe.toml (or an app's package.json) does not load.

That is when a user reaches for help, so those two commands still describe every task:
its doc, variables and options, made by the same task creators from a project of the
defaults (`mfe.config.defaults_only`: no apps, so no `build:<app>` subtasks). The load
error is printed once, on stderr. Each task is kept to what the listings show, with an
action that fails with that error: nothing can run on the stand-in project. Every other
command still stops at the error before any task is defined (`mfe.tasks.generate`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mfe.errors import ConfigError
from mfe.tasks.actions import guarded
from mfe.tasks.pipes import doit_command

DESCRIBING = frozenset({"list", "help"})
SHOWN = ("name", "basename", "doc", "params", "pos_arg", "meta", "verbosity")
"""The keys of a task dict that `doit list` and `doit help` show (or need to show them)."""


def describing(argv: Sequence[str]) -> bool:
    """The command line only describes tasks (`doit list`, `doit help TASK`)."""
    return doit_command(argv) in DESCRIBING


def described(creators: Mapping[str, Any], error: ConfigError) -> dict[str, Any]:
    """`creators` (a dodo's `task_*` functions and the rest), each task kept to what the
    listings show and refusing with `error` if run."""
    return {
        name: _described(creator, error) if name.startswith("task_") else creator
        for name, creator in creators.items()
    }


def _described(creator: Callable[[], Any], error: ConfigError) -> Callable[[], Any]:
    @functools.wraps(creator)  # its docstring is the doc of a task whose dict has none
    def describe() -> Any:
        made = creator()
        if isinstance(made, dict):
            return _shown(made, error)
        return (_shown(task, error) for task in made)  # a generator: its subtasks

    return describe


def _shown(task: dict[str, Any], error: ConfigError) -> dict[str, Any]:
    kept = {key: value for key, value in task.items() if key in SHOWN}
    return {**kept, "actions": [(guarded, [_refuse, str(error)])]}


def _refuse(message: str) -> None:
    raise ConfigError(message)
