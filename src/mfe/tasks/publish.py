"""`publish`, `plan`, `rollback`: put the built apps and the shell online (doit side).

The work lives in `mfe.publish`; these actions load the outputs `_ready` just wrote, print
the summary, and print the site URL as the very last line (scripts take `tail -1`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from doit.exceptions import BaseFail

from mfe.config import Environment, Project
from mfe.tasks.actions import guarded
from mfe.tasks.variables import doc

PARAMS = [
    {"name": "prune", "long": "prune", "type": bool, "default": False,
     "help": "delete files no kept release references (capped by publish.max_deletes)"},
    {"name": "wait", "long": "wait", "type": bool, "default": False,
     "help": "wait until the CloudFront invalidations completed"},
]  # fmt: skip


def _outputs(project: Project, env: Environment) -> Any:
    """The outputs `_ready` (a task_dep) provisioned and wrote."""
    from mfe.envs.backend import backend_for

    return backend_for(project, env).stored_outputs()


def _publish(project: Project, env: Environment, prune: bool, wait: bool, dry_run: bool) -> None:
    from mfe.publish import publish
    from mfe.publish.report import plan_lines, summary

    report = publish(
        project, env, prune=prune, wait=wait, dry_run=dry_run, outputs=_outputs(project, env)
    )
    if dry_run:
        from mfe.build.shared import version_warnings

        print("\n".join(plan_lines(report) + version_warnings(project)))
    print(summary(report))
    print(report.site_url, flush=True)


def _rollback(project: Project, env: Environment, wait: bool) -> None:
    from mfe.publish.report import summary
    from mfe.publish.rollback import rollback

    report = rollback(project, env, wait=wait, outputs=_outputs(project, env))
    print(f"rollback: serving release {report.rollback_of} again as {report.release}")
    print(summary(report))
    print(report.site_url, flush=True)


def run_publish(
    project: Project, env: Environment, prune: bool = False, wait: bool = False
) -> BaseFail | None:
    return guarded(_publish, project, env, prune, wait, False)


def run_plan(project: Project, env: Environment, prune: bool = False) -> BaseFail | None:
    return guarded(_publish, project, env, prune, False, True)


def run_rollback(project: Project, env: Environment, wait: bool = False) -> BaseFail | None:
    return guarded(_rollback, project, env, wait)


def tasks(project: Project, env: Environment) -> dict[str, Callable[[], dict[str, Any]]]:
    deps = ["build", "_ready", "shell"]

    def task_publish() -> dict[str, Any]:
        """Build, render, upload changed files, invalidate, smoke-check; prints the site URL."""
        return {
            "doc": doc(task_publish.__doc__ or "", "env"),
            "actions": [(run_publish, [project, env])],
            "params": PARAMS,
            "task_dep": deps,
            "uptodate": [False],
            "verbosity": 2,
        }

    def task_plan() -> dict[str, Any]:
        """Show what publish would upload, skip, delete and invalidate (writes nothing)."""
        return {
            "doc": doc(task_plan.__doc__ or "", "env"),
            "actions": [(run_plan, [project, env])],
            "params": PARAMS[:1],
            "task_dep": deps,
            "uptodate": [False],
            "verbosity": 2,
        }

    def task_rollback() -> dict[str, Any]:
        """Serve the previous release again (restores its index.html, invalidates)."""
        return {
            "doc": doc(task_rollback.__doc__ or "", "env"),
            "actions": [(run_rollback, [project, env])],
            "params": PARAMS[1:],
            "task_dep": ["_ready"],
            "uptodate": [False],
            "verbosity": 2,
        }

    return {"task_publish": task_publish, "task_plan": task_plan, "task_rollback": task_rollback}
