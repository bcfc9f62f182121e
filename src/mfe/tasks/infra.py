"""`_ready`, `local_stop`, `infra`, `user_add`: the environment's AWS side."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from doit import get_var
from doit.exceptions import BaseFail

from mfe.config import Environment, Project
from mfe.tasks.actions import action, guarded
from mfe.tasks.variables import declare, reads


def ready(project: Project, env: Environment) -> None:
    from mfe.envs.session import Session

    Session(project, env).outputs  # noqa: B018 -- made ready (and written) on first use


YES = {"name": "yes", "long": "yes", "type": bool, "default": False,
       "help": "go ahead without asking (CI): replaced/removed resources, destroy, "
               "stopping an emulator others keep state on"}  # fmt: skip


def local_stop(project: Project, env: Environment, yes: bool) -> None:
    from mfe.envs.changes import confirmer
    from mfe.envs.session import Session

    session = Session(project, env)
    confirm = confirmer(yes, f"doit local_stop env={env.name} --yes")
    print(session.backend.stop(session, confirm))


def run_local_stop(project: Project, env: Environment, yes: bool = False) -> BaseFail | None:
    return guarded(local_stop, project, env, yes)


def deploy(project: Project, env: Environment, yes: bool) -> None:
    from mfe.envs.changes import confirmer
    from mfe.envs.session import Session

    session = Session(project, env)
    confirm = confirmer(yes, f"doit infra env={env.name} --yes")
    session.backend.deploy(session, print, confirm)


def destroy(project: Project, env: Environment, yes: bool) -> None:
    from mfe.envs.changes import confirmer
    from mfe.envs.session import Session

    session = Session(project, env)
    confirm = confirmer(yes, f"doit destroy env={env.name} --yes")
    session.backend.destroy(session, print, confirm)


def run_destroy(project: Project, env: Environment, yes: bool = False) -> BaseFail | None:
    return guarded(destroy, project, env, yes)


def run_deploy(project: Project, env: Environment, yes: bool = False) -> BaseFail | None:
    return guarded(deploy, project, env, yes)


def user_add(project: Project, env: Environment, username: str) -> None:
    from mfe.envs.session import Session
    from mfe.envs.users import add_user

    print(add_user(Session(project, env), username))


def tasks(project: Project, env: Environment) -> dict[str, Callable[[], dict[str, Any]]]:
    def task__ready() -> dict[str, Any]:
        """Make sure the environment exists (local: start and provision the emulator).

        On `dev` the backend refuses, saying it is what `doit serve` renders: without the
        action the release tasks would fail on its missing outputs, pointing at `doit infra`.
        """
        return {
            "actions": [action(ready, project, env)],
            **reads("env"),
            "uptodate": [False],
            "verbosity": 1,  # stderr live: says when it starts the emulator, and where its log is
        }

    def task_local_stop() -> dict[str, Any]:
        """Stop the local AWS emulator (it keeps its state in memory: all of it is lost; asks first if other environments keep state on it)."""
        return {
            **declare(task_local_stop.__doc__ or "", "env"),
            "actions": [(run_local_stop, [project, env])],
            "params": [YES],
            "uptodate": [False],
            "verbosity": 2,
        }

    def task_infra() -> dict[str, Any]:
        """Create or update the environment's stacks (shows each change; asks first if one removes data)."""
        return {
            **declare(task_infra.__doc__ or "", "env"),
            "actions": [(run_deploy, [project, env])],
            "params": [YES],
            "uptodate": [False],
            "verbosity": 2,
        }

    def task_destroy() -> dict[str, Any]:
        """Delete the environment's resources (lists them, asks for its name first)."""
        return {
            **declare(task_destroy.__doc__ or "", "env"),
            "actions": [(run_destroy, [project, env])],
            "params": [YES],
            "uptodate": [False],
            "verbosity": 2,
        }

    def task_user_add() -> dict[str, Any]:
        """Add a user to the environment's pool."""
        username = get_var("username", "") or ""
        return {
            **declare(task_user_add.__doc__ or "", "username", "env"),
            "actions": [action(user_add, project, env, username)],
            "uptodate": [False],
            "verbosity": 2,
        }

    return {
        "task__ready": task__ready,
        "task_local_stop": task_local_stop,
        "task_infra": task_infra,
        "task_destroy": task_destroy,
        "task_user_add": task_user_add,
    }
