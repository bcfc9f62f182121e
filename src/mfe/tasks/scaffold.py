"""`new_app`: scaffold a micro-frontend (see `mfe.scaffold`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from doit import get_var

from mfe.config import Environment, Project
from mfe.errors import MfeError
from mfe.tasks.actions import action
from mfe.tasks.variables import declare


def new_app_from_vars(project: Project) -> None:
    """The action: `name=` and `stack=` from doit's command-line variables. The install
    lock is held from the app's first file to the end of its `npm install`: a `doit serve`
    then tells the install under way (not to run one), and an `install` waits for it."""
    from mfe.build.install import install_lock
    from mfe.scaffold import new_app

    name, stack = get_var("name", ""), get_var("stack", "")
    if not name or not stack:
        raise MfeError(
            "new_app needs name=NAME and stack=lit|react, e.g. `doit new_app name=cart stack=lit`"
        )
    with install_lock(project.root):
        new_app(project, name, stack)


def tasks(project: Project, env: Environment) -> dict[str, Callable[[], dict[str, Any]]]:
    del env  # an app is the same in every environment

    def task_new_app() -> dict[str, Any]:
        return {
            **declare(
                "Scaffold apps/NAME (custom element, [apps.NAME], npm install).",
                "new_app_name",
                "stack",
            ),
            "actions": [action(new_app_from_vars, project)],
            "verbosity": 2,
        }

    return {"task_new_app": task_new_app}
