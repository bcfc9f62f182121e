"""`install` and `build:<app>`: npm only when the lockfile moved, bundlers only when sources did."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mfe import build
from mfe.config import Project
from mfe.tasks.actions import action

NPM_CI = "npm ci --no-audit --no-fund --loglevel=error"


def rel(project: Project, path: Path) -> str:
    """Paths relative to the root (doit runs there), so the dep file survives a move or a CI cache."""
    return path.relative_to(project.root).as_posix()


def install_deps(project: Project) -> list[str]:
    files = [project.lockfile, project.root / "package.json"]
    files += [app.path / "package.json" for app in project.apps.values()]
    return [rel(project, f) for f in files]


def tasks(project: Project) -> dict[str, Any]:
    def task_install() -> dict[str, Any]:
        """Install JS dependencies (npm ci) when the lockfile or a package.json changed."""
        return {
            "actions": [NPM_CI],
            "file_dep": install_deps(project),
            "targets": ["node_modules/.package-lock.json"],
            "verbosity": 1,
        }

    def task_build() -> Iterator[dict[str, Any]]:
        """Build the apps whose sources, package.json or lockfile changed."""
        for app in project.apps.values():
            yield {
                "name": app.name,
                "doc": f"Bundle apps/{app.name} into dist/ and write its asset-manifest.json",
                "actions": [action(build.build_app, project, app)],
                "file_dep": [rel(project, p) for p in build.app_sources(app)]
                + [rel(project, project.lockfile)],
                "targets": [rel(project, app.manifest_path)],
                "task_dep": ["install"],
                "clean": True,
            }

    return {"task_install": task_install, "task_build": task_build}
