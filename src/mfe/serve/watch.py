"""Watch the sources with watchdog and hand bursts of changes over as one batch.

Only inputs are watched: each app's folder (minus `node_modules/`, `dist/` and dot
folders), `shell/`, and the root's `mfe.toml`, lockfile and `package.json`. Outputs
(`dist/`, `build/`, `.mfe/`) are never watched, so a build cannot trigger itself.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

from mfe.build.sources import app_of, ignored_dir
from mfe.config import CONFIG_FILE, Project

QUIET_SECONDS = 0.025
"""Trailing debounce: a batch is handed over after this long without a new event.

Measured with watchdog's inotify observer on a loaded 2-core machine: a plain write
spans < 0.1 ms of events, an atomic (temp file + rename) or vim-style save < 4 ms."""
ROOT_INSTALL_FILES = ("package-lock.json", "package.json")
NEW_APP = "new-app:"


@dataclass
class Changes:
    """What a batch of changed paths means for the rebuild."""

    apps: set[str] = field(default_factory=set)
    shell: bool = False
    """`shell/` changed: re-render the page."""
    config: bool = False
    """`mfe.toml` changed: reload the project, re-render the page."""
    install: bool = False
    """A root lockfile/package.json changed: install, then every app's build is checked."""
    new_apps: set[str] = field(default_factory=set)
    """`apps/<name>/package.json` appeared: it needs `npm install` and a restart."""

    def __bool__(self) -> bool:
        return bool(self.apps or self.shell or self.config or self.install or self.new_apps)


def classify(project: Project, paths: set[Path]) -> Changes:
    """Map changed paths to the apps to build and the other steps to run."""
    changes = Changes()
    for path in paths:
        what = meaning(project, path)
        if what == "shell":
            changes.shell = True
        elif what == "config":
            changes.config = True
        elif what == "install":
            changes.install = True
        elif what == "shared":
            changes.apps.update(project.apps)
        elif what is not None and what.startswith(NEW_APP):
            changes.new_apps.add(what.removeprefix(NEW_APP))
        elif what is not None:
            changes.apps.add(what)
    return changes


def meaning(project: Project, path: Path) -> str | None:
    """An app name, 'shell', 'config', 'install', 'shared' (every app), 'new-app:NAME',
    or None (not an input)."""
    try:
        parts = path.relative_to(project.root).parts
    except ValueError:
        return None
    if not parts or _ignored(parts[-1]):
        return None
    if parts[0] == "apps" and len(parts) > 2 and parts[1] in project.apps:
        return app_of(project, "/".join(parts))
    if parts[0] == "apps" and parts[2:] == ("package.json",):
        return NEW_APP + parts[1]
    if parts[0] == "shell":
        return "shell"
    if parts == (CONFIG_FILE,):
        return "config"
    if len(parts) == 1 and parts[0] in ROOT_INSTALL_FILES:
        return "install"
    if path.relative_to(project.root).as_posix() in project.build.inputs:
        return "shared"
    return None


def _ignored(name: str) -> bool:
    """Editor droppings (swap files, backups) are not sources."""
    return name.startswith(".") or name.endswith("~")


class ChangeQueue:
    """Collects changed paths from watchdog's thread; `take` applies the trailing debounce."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._paths: set[Path] = set()
        self._last = 0.0

    def add(self, path: Path) -> None:
        with self._cond:
            self._paths.add(path)
            self._last = time.monotonic()
            self._cond.notify_all()

    def take(self, stop: threading.Event, quiet: float = QUIET_SECONDS) -> set[Path]:
        """Block until paths arrived and `quiet` seconds passed with no new one (or stop)."""
        with self._cond:
            while not stop.is_set():
                if self._paths:
                    left = self._last + quiet - time.monotonic()
                    if left <= 0:
                        paths, self._paths = self._paths, set()
                        return paths
                    self._cond.wait(left)
                else:
                    self._cond.wait(0.2)  # short waits: the stop flag is checked often
        return set()


def start_watching(project: Project, queue: ChangeQueue) -> Any:
    """Schedule watchdog on the inputs only; returns the running Observer (call `.stop()`)."""
    observer = Observer()
    handler = _Handler(project, queue, observer)
    observer.schedule(handler, str(project.root), recursive=False)
    if (project.root / "apps").is_dir():  # new app folders and their package.json
        observer.schedule(handler, str(project.root / "apps"), recursive=False)
    if (project.root / "shell").is_dir():
        observer.schedule(handler, str(project.root / "shell"), recursive=True)
    for app in project.apps.values():
        observer.schedule(handler, str(app.path), recursive=False)
        for child in sorted(app.path.iterdir()):
            if child.is_dir() and not ignored_dir(child.name):
                observer.schedule(handler, str(child), recursive=True)
    observer.daemon = True
    observer.start()
    return observer


class _Handler(FileSystemEventHandler):
    """Feeds every relevant event path into the queue; watches new top-level app folders."""

    def __init__(self, project: Project, queue: ChangeQueue, observer: Any) -> None:
        super().__init__()
        self.project, self.queue, self.observer = project, queue, observer
        self.app_dirs = {app.path for app in project.apps.values()}
        self.apps_dir = project.root / "apps"

    def on_any_event(self, event: Any) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if not raw:
                continue
            path = Path(raw if isinstance(raw, str) else raw.decode())
            if event.is_directory and event.event_type in ("created", "moved"):
                self._watch_new_dir(path)
            if meaning(self.project, path) is not None:
                self.queue.add(path)

    def _watch_new_dir(self, path: Path) -> None:
        if ignored_dir(path.name) or not path.is_dir():
            return
        if path.parent in self.app_dirs:
            self.observer.schedule(self, str(path), recursive=True)
        elif path.parent == self.apps_dir and path not in self.app_dirs:
            self.observer.schedule(self, str(path), recursive=False)  # a new app's folder
            if (path / "package.json").is_file():  # written before the watch began
                self.queue.add(path / "package.json")
