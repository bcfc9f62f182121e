"""What mfe's doit `uptodate` checks tell doit up front: their signatures.

doit asks `inspect.signature` of every `uptodate` callable of every task on each run, to
learn whether it takes `task` and `values`: ~30 us for a class instance or a
`functools.partial`, 4-5 ms of CPU of a no-op `doit` on 50 apps (three checks each).
`inspect` reads a `__signature__` attribute before anything else, so each check class
carries its own. (`inspect` is imported by doit anyway.)
"""

from __future__ import annotations

import inspect
from typing import Any

from doit.tools import config_changed

_ARGUMENT = inspect.Parameter.POSITIONAL_OR_KEYWORD
TASK_AND_VALUES = inspect.Signature(
    [inspect.Parameter("task", _ARGUMENT), inspect.Parameter("values", _ARGUMENT)]
)
"""`__call__(self, task, values)`: doit passes the task and its saved values."""
NO_ARGUMENTS = inspect.Signature()
"""`__call__(self)`: doit passes nothing."""


class ConfigChanged(config_changed):  # type: ignore[misc]
    """doit's `config_changed`, with its signature stated."""

    __signature__ = TASK_AND_VALUES

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        return bool(super().__call__(task, values))
