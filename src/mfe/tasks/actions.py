"""Turn library calls into doit python-actions that fail with a message, not a traceback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from doit.exceptions import BaseFail, TaskError, TaskFailed

from mfe.errors import ConfigError, Interrupted, MfeError


class TaskInterrupted(TaskFailed):  # type: ignore[misc]
    """A task Ctrl-C stopped: the reporter makes doit end by SIGINT instead of exiting 1."""


def guarded(func: Callable[..., object], *args: Any) -> BaseFail | dict[str, Any] | None:
    """Run `func(*args)`; an MfeError becomes doit's TaskFailed with its message.

    A ConfigError becomes a TaskError: doit then exits 2, as config errors found while
    loading mfe.toml do. Ctrl-C becomes a TaskInterrupted: doit then ends by SIGINT. A dict
    result passes through: doit saves it as the task's values.
    """
    try:
        result = func(*args)
    except ConfigError as exc:
        return TaskError(str(exc))
    except Interrupted as exc:
        return TaskInterrupted(str(exc))
    except MfeError as exc:
        return TaskFailed(str(exc))
    except KeyboardInterrupt:
        return TaskInterrupted("interrupted (Ctrl-C)")
    return result if isinstance(result, dict) else None


def action(func: Callable[..., object], *args: Any) -> tuple[Callable[..., object], list[Any]]:
    """A picklable doit python-action (module-level function + args), so `doit -n 2` works."""
    return (guarded, [func, *args])
