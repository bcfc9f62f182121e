"""`shell`: render `build/<env>/index.html` when a manifest, the template or a URL changed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from doit.tools import config_changed

from mfe.config import Environment, Project
from mfe.tasks.actions import action
from mfe.tasks.build import rel
from mfe.tasks.variables import declare


def url_config(project: Project, env: Environment) -> dict[str, Any]:
    """The mfe.toml part of the page's URL/auth context (outputs.json is a file_dep instead).

    Only these keys re-render the page: editing unrelated settings leaves it up to date.
    """
    from_ports = not env.provisioned  # dev: URLs from the dev ports
    return {
        "project": project.name,
        "env": env.name,
        "kind": env.kind,
        "urls": dict(sorted(env.urls.items())),
        "apps": [
            [app.name, app.role, app.element, app.dev_port if from_ports else None]
            for app in project.apps.values()
        ],
    }


def render(project: Project, env: Environment) -> None:
    from mfe.shell import render_shell  # jinja2 and friends only when a render is due

    render_shell(project, env, None)


def tasks(project: Project, env: Environment) -> dict[str, Callable[[], dict[str, Any]]]:
    def task_shell() -> dict[str, Any]:
        """Render build/<env>/index.html from shell/index.html.j2."""
        templates = (p for p in project.shell_dir.rglob("*") if p.is_file())
        file_dep = sorted(rel(project, p) for p in templates)
        file_dep += [rel(project, app.manifest_path) for app in project.apps.values()]
        task_dep = ["build"]
        if env.provisioned:
            # `_ready` runs first and writes the outputs (local) or stops with a clear
            # "run doit infra env=..." when they are missing (AWS).
            file_dep.append(rel(project, project.outputs_file(env.name)))
            task_dep.append("_ready")
        return {
            **declare(task_shell.__doc__ or "", "env"),
            "actions": [action(render, project, env)],
            "file_dep": file_dep,
            "targets": [rel(project, project.page(env.name))],
            "uptodate": [config_changed(url_config(project, env))],
            "task_dep": task_dep,
            "clean": True,
            "verbosity": 2,  # its "wrote build/<env>/index.html" line, as the other tasks say theirs
        }

    return {"task_shell": task_shell}
