"""Which files are an app's sources: one definition for the build tasks' file_dep, the
dev server's watcher and CI's affected apps.

An app's sources are every file under `apps/<app>/` except those in output and cache
folders (`IGNORED_DIRS`) and dot folders. Walked without pathlib: a no-op `doit` on a
10,000-file monorepo must stay fast.
"""

from __future__ import annotations

import os
from pathlib import Path

from mfe.config import App, Project

IGNORED_DIRS = frozenset({"node_modules", "dist", ".cache", ".turbo", ".vite"})
"""Folders inside an app that are outputs or caches, never build inputs."""


def ignored_dir(name: str) -> bool:
    """A folder whose files are not sources (outputs, caches, dot folders)."""
    return name in IGNORED_DIRS or name.startswith(".")


def app_of(project: Project, relative: str) -> str | None:
    """The app whose sources hold `relative` (a root-relative POSIX path of a file, or of
    a folder such as a freshly swapped `dist/`), or None."""
    parts = relative.split("/")
    if len(parts) < 3 or parts[0] != "apps" or parts[1] not in project.apps:
        return None
    if any(ignored_dir(part) for part in parts[2:-1]) or parts[-1] in IGNORED_DIRS:
        return None
    return parts[1]


def app_sources(app: App) -> list[Path]:
    """Every file under the app that its build may read (added/deleted files count)."""
    return [app.path / name for name in _walk(app.path)]


def source_files(project: Project, app: App) -> list[str]:
    """`app_sources` as root-relative POSIX strings (doit's file_dep)."""
    prefix = app.path.relative_to(project.root).as_posix()
    return [f"{prefix}/{name}" for name in _walk(app.path)]


def file_deps(project: Project, app: App) -> list[str]:
    """What `build:<app>` reads, root-relative: its sources and the shared [build] inputs."""
    return source_files(project, app) + list(project.build.inputs)


def _walk(folder: Path) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not ignored_dir(d)]
        relative = os.path.relpath(dirpath, folder).replace(os.sep, "/")
        prefix = "" if relative == "." else relative + "/"
        found.extend(prefix + name for name in filenames)
    return sorted(found)
