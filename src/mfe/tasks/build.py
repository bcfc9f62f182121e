"""`install` and `build:<app>`: npm only when node_modules does not match the lockfile, bundlers
only when sources did."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from doit.tools import config_changed

from mfe.build import lockslice, snapshot, sources
from mfe.build.installed import Installed
from mfe.config import SHARED_APP, App, Environment, Project
from mfe.tasks.actions import action


def rel(project: Project, path: Path) -> str:
    """Paths relative to the root (doit runs there), so the dep file survives a move or a CI cache."""
    return path.relative_to(project.root).as_posix()


def build_action(project: Project, app: App) -> dict[str, Any]:
    """Build one app; its inputs' fingerprints as read go to doit (see `mfe.doitdb`)."""
    from mfe.build.bundle import build_app  # only when a build is due, not on a no-op run

    return {snapshot.READ_KEY: build_app(project, app).read}


def dist_sizes_match(manifest: Path) -> bool:
    """doit `uptodate` check: every file the manifest lists is in `dist/` at its size.

    A `dist/` edited by hand (a line appended, a file truncated or removed) no longer holds
    the build its manifest describes, though no source changed: such an app builds again
    instead of being published as is. Sizes only (one `stat` a file), not hashes: a no-op
    run stays cheap; publish hashes the bytes it uploads and refuses what still differs.
    """
    try:
        files = json.loads(manifest.read_bytes())["files"]
        dist = manifest.parent
        return all(os.stat(dist / name).st_size == entry["size"] for name, entry in files.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False  # missing or unreadable: a build makes it again


def install(project: Project) -> None:
    """Imported only when an install is due: a no-op run needs none of it (psutil)."""
    from mfe.build.install import install as run

    run(project)


def tasks(project: Project, env: Environment) -> dict[str, Any]:
    del env  # the build does not depend on the environment

    def task_install() -> dict[str, Any]:
        """Install JS dependencies (npm ci) when node_modules does not match the lockfile."""
        return {
            # Under a lock, once no other npm works here, decided again: mfe.build.install.
            "actions": [action(install, project)],
            # By content, not mtimes: see mfe.build.installed.
            "uptodate": [Installed(project)],
            "targets": ["node_modules/.package-lock.json"],
            "verbosity": 1,
        }

    def task_build() -> Iterator[dict[str, Any]]:
        """Build the apps whose sources, package.json or lockfile slice changed."""
        spaces = [rel(project, app.path) for app in project.bundled_apps.values()]
        env_vars = {var: os.environ.get(var) for var in project.build.env}
        if project.shared is not None:
            from mfe.build.shared import SHARED_APP_DOC, SharedUnchanged

            shared_app = project.apps[SHARED_APP]
            yield {
                "name": shared_app.name,
                "doc": SHARED_APP_DOC,
                "actions": [action(build_action, project, shared_app)],
                # The [build] inputs and the shared packages' lockfile entries, never app code.
                "file_dep": sources.file_deps(project, shared_app),
                "uptodate": [
                    SharedUnchanged(project),
                    config_changed(env_vars),
                    functools.partial(dist_sizes_match, shared_app.manifest_path),
                ],
                "targets": [rel(project, shared_app.manifest_path)],
                "task_dep": ["install"],
                "clean": True,
            }
        externals = None if project.shared is None else list(project.shared.modules)
        for app in project.bundled_apps.values():
            yield {
                "name": app.name,
                "doc": f"Bundle apps/{app.name} into dist/ and write its asset-manifest.json",
                "actions": [action(build_action, project, app)],
                # Not the whole lockfile: only this app's resolved slice of it (mfe.ci).
                "file_dep": sources.file_deps(project, app),
                "uptodate": [
                    lockslice.SliceUnchanged(project.root, rel(project, app.path), spaces),
                    # One config_changed per task (doit stores them under one key); the
                    # specifiers left to the import map change the bundle too.
                    config_changed({**env_vars, "[shared] modules": externals}),
                    functools.partial(dist_sizes_match, app.manifest_path),
                ],
                "targets": [rel(project, app.manifest_path)],
                "task_dep": ["install"],
                "clean": True,
            }

    return {"task_install": task_install, "task_build": task_build}
