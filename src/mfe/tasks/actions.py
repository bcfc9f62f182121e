"""Turn library calls into doit python-actions that fail with a message, not a traceback."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import Any

from doit.exceptions import BaseFail, TaskError, TaskFailed

from mfe.envs.aws_settings import settings_problem
from mfe.errors import ConfigError, Interrupted, MfeError


class TaskInterrupted(TaskFailed):  # type: ignore[misc]
    """A task Ctrl-C stopped: the reporter makes doit end by SIGINT instead of exiting 1."""


def guarded(func: Callable[..., object], *args: Any) -> BaseFail | dict[str, Any] | None:
    """Run `func(*args)`; an MfeError becomes doit's TaskFailed with its message.

    A ConfigError becomes a TaskError: doit then exits 2, as config errors found while
    loading mfe.toml do; so does botocore's refusal of the AWS settings (a broken config
    file, an SSO profile with no login), which can come at any request. Ctrl-C becomes a TaskInterrupted: doit then ends by SIGINT. A dict
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
    except OSError as exc:
        if exc.errno not in FILE_ERRORS or exc.filename is None:
            raise  # not a full disk or a locked file: a bug, shown with its traceback
        return TaskFailed(file_error(exc))
    except Exception as exc:
        problem = settings_problem(exc)
        if problem is None:
            raise  # a bug, shown with its traceback
        return TaskError(problem)
    return result if isinstance(result, dict) else None


FILE_ERRORS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}
"""What the machine, not the command, got wrong: a full disk, a read-only folder."""


def file_error(exc: OSError) -> str:
    """Which local file the command could not write, and why, not a traceback. Commands
    write state before and after their one atomic step: running again finishes the job."""
    name = (
        os.fsdecode(exc.filename) if isinstance(exc.filename, (str, bytes)) else str(exc.filename)
    )
    relative = os.path.relpath(name)
    path = name if relative.startswith("..") else relative
    return (
        f"{path}: {exc.strerror}; make room or fix the permissions there, then run the "
        "command again"
    )


def action(func: Callable[..., object], *args: Any) -> tuple[Callable[..., object], list[Any]]:
    """A picklable doit python-action (module-level function + args), so `doit -n 2` works."""
    return (guarded, [func, *args])
