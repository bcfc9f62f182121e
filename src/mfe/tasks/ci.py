"""`doit ci [env=NAME] [base=GITREF] [cache=on|off|force]`: the CI entry point."""

from __future__ import annotations

from typing import Any

from doit import get_var

from mfe.config import Environment, Project
from mfe.tasks.actions import action
from mfe.tasks.variables import doc


def run(project: Project, env: Environment, base: str, cache_mode: str) -> None:
    """Imported lazily: the pipeline pulls in boto3, which a no-op `doit` must not pay for."""
    from mfe.ci.run import parse_options, run_ci

    run_ci(project, env, parse_options(base, cache_mode))


def tasks(project: Project, env: Environment) -> dict[str, Any]:
    def task_ci() -> dict[str, Any]:
        """CI: build affected apps (remote build cache first), test them, publish, report."""
        return {
            "doc": doc(task_ci.__doc__ or "", "env", "base", "cache"),
            "actions": [action(run, project, env, get_var("base", ""), get_var("cache", "on"))],
            "uptodate": [False],
            "verbosity": 2,
        }

    return {"task_ci": task_ci}
