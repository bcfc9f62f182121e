"""`install` and `build:<app>`: npm only when the lockfile moved, bundlers only when sources did."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from doit.tools import config_changed

from mfe.build import bundle as build
from mfe.build import lockslice, snapshot, sources
from mfe.config import App, Environment, Project
from mfe.tasks.actions import action


def rel(project: Project, path: Path) -> str:
    """Paths relative to the root (doit runs there), so the dep file survives a move or a CI cache."""
    return path.relative_to(project.root).as_posix()


def install_deps(project: Project) -> list[str]:
    files = [project.lockfile, project.root / "package.json"]
    files += [app.path / "package.json" for app in project.apps.values()]
    return [rel(project, f) for f in files]


def build_action(project: Project, app: App) -> dict[str, Any]:
    """Build one app; its inputs' fingerprints as read go to doit (see `mfe.doitdb`)."""
    return {snapshot.READ_KEY: build.build_app(project, app).read}


def tasks(project: Project, env: Environment) -> dict[str, Any]:
    del env  # the build does not depend on the environment

    def task_install() -> dict[str, Any]:
        """Install JS dependencies (npm ci) when the lockfile or a package.json changed."""
        return {
            "actions": [" ".join(build.NPM_CI)],
            "file_dep": install_deps(project),
            "targets": ["node_modules/.package-lock.json"],
            "verbosity": 1,
        }

    def task_build() -> Iterator[dict[str, Any]]:
        """Build the apps whose sources, package.json or lockfile slice changed."""
        spaces = [rel(project, app.path) for app in project.apps.values()]
        for app in project.apps.values():
            yield {
                "name": app.name,
                "doc": f"Bundle apps/{app.name} into dist/ and write its asset-manifest.json",
                "actions": [action(build_action, project, app)],
                # Not the whole lockfile: only this app's resolved slice of it (mfe.ci).
                "file_dep": sources.file_deps(project, app),
                "uptodate": [
                    lockslice.SliceUnchanged(project.root, rel(project, app.path), spaces),
                    config_changed({var: os.environ.get(var) for var in project.build.env}),
                ],
                "targets": [rel(project, app.manifest_path)],
                "task_dep": ["install"],
                "clean": True,
            }

    return {"task_install": task_install, "task_build": task_build}
