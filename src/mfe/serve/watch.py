"""Watch the sources with watchdog and hand bursts of changes over as one batch.

Only inputs are watched: each app's folder (minus `node_modules/`, `dist/` and dot
folders), `shell/`, the folders of the `[build] inputs` (`tools/`), and the root's
`mfe.toml`, `dodo.py`, lockfile and `package.json`. Outputs (`dist/`, `build/`, `.mfe/`)
are never watched inside, so a build cannot trigger itself; only a `dist/` folder being
swapped is seen (by its app folder's watch), so a build outside serve re-renders the page.

inotify does not follow symlinks: the target of each symlinked folder among an app's
sources (`mfe.build.sources.linked_folders`) is watched on its own, and its events are
queued under the link's path, as the build names those files.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

from mfe.build.sources import (
    PUBLIC_DIR,
    app_of,
    editor_temporary,
    excluded,
    ignored_dir,
    linked_folders,
)
from mfe.config import CONFIG_FILE, Project

QUIET_SECONDS = 0.025
"""Trailing debounce: a batch is handed over after this long without a new event.

Measured with watchdog's inotify observer on a loaded 2-core machine: a plain write
spans < 0.1 ms of events, an atomic (temp file + rename) or vim-style save < 4 ms."""
WRITE_SECONDS = 1.0
"""The longest a batch waits for a file written to (IN_MODIFY) to be closed (IN_CLOSE_WRITE):
a writer descheduled between its write and its close (a loaded machine) would otherwise
give one save two batches, the second a "rebuilt nothing". A file kept open (a log) is
handed over after this long all the same."""
ROOT_INSTALL_FILES = ("package-lock.json", "package.json")
DODO_FILE = "dodo.py"
NEW_APP = "new-app:"
OUTPUTS = "outputs"


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
    dodo: bool = False
    """`dodo.py` changed: the running serve was set up by the old one (a restart applies it)."""
    new_apps: set[str] = field(default_factory=set)
    """`apps/<name>/package.json` appeared: it needs `npm install`, whose lockfile change
    makes serve find the apps again and serve it."""
    outputs: bool = False
    """An app's `dist/` was swapped, by serve's own build (seen late) or by one outside
    serve (`doit build` in another terminal): re-render the page, reload if it changed."""

    @property
    def inputs(self) -> bool:
        """Something to build or re-render from sources."""
        return bool(
            self.apps or self.shell or self.config or self.install or self.new_apps or self.dodo
        )

    def __bool__(self) -> bool:
        return self.inputs or self.outputs


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
        elif what == "dodo":
            changes.dodo = True
        elif what == "shared":
            changes.apps.update(project.apps)
        elif what == OUTPUTS:
            changes.outputs = True
        elif what is not None and what.startswith(NEW_APP):
            changes.new_apps.add(what.removeprefix(NEW_APP))
        elif what is not None:
            changes.apps.add(what)
    return changes


def meaning(project: Project, path: Path) -> str | None:
    """An app name, 'shell', 'config', 'dodo', 'install', 'shared' (every app), 'new-app:NAME',
    'outputs' (an app's `dist/` folder itself), or None (not an input)."""
    try:
        parts = path.relative_to(project.root).parts
    except ValueError:
        return None
    if not parts or editor_temporary(parts[-1]):
        return None
    if any(path == app.dist for app in project.apps.values()):
        return OUTPUTS
    if parts[0] == "apps" and len(parts) > 2 and parts[1] in project.apps:
        return app_of(project, "/".join(parts))
    if parts[0] == "apps" and len(parts) == 2 and parts[1] in project.apps and not path.exists():
        return parts[1]  # the folder deleted: its files' events may not all come (queue full)
    if parts[0] == "apps" and parts[2:] == ("package.json",):
        return "config" if parts[1] in project.gone else NEW_APP + parts[1]  # restored?
    if parts[0] == "shell":
        return "shell"
    if parts == (CONFIG_FILE,):
        return "config"
    if parts == (DODO_FILE,):
        return "dodo"
    if len(parts) == 1 and parts[0] in ROOT_INSTALL_FILES:
        return "install"
    if path.relative_to(project.root).as_posix() in project.build.inputs:
        return "shared"
    return None


class ChangeQueue:
    """Collects changed paths from watchdog's thread; `take` applies the trailing debounce."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._paths: set[Path] = set()
        self._writing: set[Path] = set()
        """Paths written to and not closed yet: their save is not over."""
        self._last = 0.0
        self._poked = False

    def add(self, path: Path, writing: bool | None = None) -> None:
        """`writing`: True, the path was written to (still open); False, its writer closed
        it (or it was moved, deleted); None: neither (an attribute change)."""
        with self._cond:
            self._paths.add(path)
            if writing:
                self._writing.add(path)
            elif writing is False:
                self._writing.discard(path)
            self._last = time.monotonic()
            self._cond.notify_all()

    def poke(self) -> None:
        """Wake `take` with no path: a tab loaded the page (a busy port may be free now)."""
        with self._cond:
            self._poked = True
            self._cond.notify_all()

    def take(self, stop: threading.Event, quiet: float = QUIET_SECONDS) -> set[Path]:
        """Block until paths arrived and `quiet` seconds passed with no new one (and every
        file written to was closed, for up to `WRITE_SECONDS`), or until a `poke` (no
        paths), or stop."""
        with self._cond:
            while not stop.is_set():
                if self._paths:
                    wait = WRITE_SECONDS if self._writing else quiet
                    left = self._last + wait - time.monotonic()
                    if left <= 0:
                        paths, self._paths, self._poked = self._paths, set(), False
                        self._writing.clear()  # kept open: its close is a change of its own
                        return paths
                    self._cond.wait(min(left, 0.2))  # the stop flag is checked often
                elif self._poked:
                    self._poked = False
                    return set()
                else:
                    self._cond.wait(0.2)  # short waits: the stop flag is checked often
        return set()


def input_folders(project: Project) -> list[Path]:
    """The folders of the `[build] inputs` (`tools/`): watched on their own, not recursively."""
    return sorted({(project.root / name).parent for name in project.build.inputs})


def start_watching(project: Project, queue: ChangeQueue) -> Watcher:
    """Schedule watchdog on the inputs only; returns the running watcher (`.observer.stop()`)."""
    observer = Observer()
    watcher = Watcher(project, queue, observer)
    watcher.watch(project.root, new=False)  # and, below it, each folder with a watch of its own
    watcher.watch_fixed()
    watcher.watch_links()
    observer.daemon = True
    observer.start()
    return watcher


class Watcher(FileSystemEventHandler):
    """Feeds every relevant event path into the queue, and keeps one watch per folder.

    A watch belongs to a folder, not a path: when the folder goes, watchdog's emitter
    stops but the watch stays registered, and scheduling the same path again would
    give nothing. So a folder that goes loses its watch, and one that (re)appears gets
    a fresh one; its files written before that watch began are queued as changed.
    """

    def __init__(self, project: Project, queue: ChangeQueue, observer: Any) -> None:
        super().__init__()
        self.project, self.queue, self.observer = project, queue, observer
        self.app_dirs = {app.path for app in project.bundled_apps.values()}
        self.apps_dir = project.root / "apps"
        self.fixed: dict[Path, bool] = {
            project.root: False,  # mfe.toml, the lockfile, package.json; shell/ appearing
            self.apps_dir: False,  # new app folders
            project.shell_dir: True,
        }
        for folder in input_folders(project):
            self.fixed.setdefault(folder, False)
        for app in project.apps.values():  # the shared modules' too: their dist/ swapped
            self.fixed.setdefault(app.path, False)  # its top-level files and folders
        self.watches: dict[Path, Any] = {}
        self.links: dict[Path, Path] = {}
        """Symlinked source folders: link path -> real target (watched in `targets`)."""
        self.targets: dict[Path, Any] = {}
        self.lock = threading.RLock()
        """Held while the watches change: watchdog's thread and the cycle's (`follow`)."""

    def watch_fixed(self) -> None:
        """Watch the fixed folders not below a watched one (`build/shared/`, `tools/`)."""
        for folder in list(self.fixed):
            if folder not in self.watches:
                self.watch(folder, new=False)

    def follow(self, project: Project) -> None:
        """A reloaded `mfe.toml`: its paths decide what is queued, a folder of a new
        `[build] inputs` file is watched from now on, and so are a new app's sources; a
        removed app's are not (its folder, if still there, is watched as a new app's)."""
        with self.lock:
            self.project = project
            for folder in input_folders(project):
                self.fixed.setdefault(folder, False)
            before, self.app_dirs = self.app_dirs, {a.path for a in project.bundled_apps.values()}
            for app in project.apps.values():
                self.fixed.setdefault(app.path, False)
            for folder in before - self.app_dirs:
                self.fixed.pop(folder, None)
                for watched in [f for f in self.watches if folder in f.parents]:
                    self._unwatch(watched)
            for folder in sorted(self.app_dirs - before):
                self.watch(folder, new=False)  # its sources: the cycle builds it next
            self.watch_fixed()
            self.watch_links()

    def watch_links(self) -> None:
        """Watch the targets of the apps' symlinked source folders (found again after a
        link or folder came or went), and stop watching those no link leads to now."""
        with self.lock:
            self.links = {
                link: target
                for app in self.project.bundled_apps.values()
                for link, target in linked_folders(app).items()
            }
            wanted = set(self.links.values())
            for target in [t for t in self.targets if t not in wanted]:
                with contextlib.suppress(KeyError):
                    self.observer.unschedule(self.targets.pop(target))
            for target in sorted(wanted - self.targets.keys() - self.watches.keys()):
                with contextlib.suppress(OSError):  # gone again: the next sync drops it
                    self.targets[target] = self.observer.schedule(self, str(target), recursive=True)

    def aliases(self, path: Path) -> list[Path]:
        """`path` as the build names it: through each link whose target holds it."""
        return [
            link / path.relative_to(target)
            for link, target in self.links.items()
            if path == target or target in path.parents
        ]

    def recursive(self, path: Path) -> bool | None:
        """Whether serve watches the folder `path` recursively, or None: not on its own."""
        if path in self.fixed:
            return self.fixed[path]
        if ignored_dir(path.name) or path.is_symlink():
            return None  # a symlinked folder: its target is watched (`watch_links`)
        if path.parent in self.app_dirs:
            return True  # an app's source folder (`src/`, `lib/`, ...)
        if path.parent == self.apps_dir:
            return False  # a new app's folder: its package.json
        return None

    def watch(self, folder: Path, new: bool) -> None:
        """Watch `folder` afresh, and the folders in it that get a watch of their own.

        `new`: it just appeared, so its files (written before the watch began) are queued.
        """
        recursive = self.recursive(folder)
        if recursive is None or not folder.is_dir():
            return
        self._unwatch(folder)
        try:
            self.watches[folder] = self.observer.schedule(self, str(folder), recursive=recursive)
            children = [] if recursive else sorted(folder.iterdir())
        except OSError:  # gone again already: its parent's events tell the rest
            return
        if recursive and new:
            self._queue_files(folder)
        for child in children:
            if child.is_dir():
                self.watch(child, new)
            elif new:
                self._queue(child)

    def on_any_event(self, event: Any) -> None:
        with self.lock:
            self._on_event(event)

    def _on_event(self, event: Any) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        if event.is_directory and event.event_type == "modified":
            return  # a file came or went: its own event says which (an editor's swap file?)
        src, dest = _path(event.src_path), _path(getattr(event, "dest_path", ""))
        if self._moves_links(event, src, dest):
            self.watch_links()  # before queueing: the new target's events are aliased
        if event.is_directory and src is not None:
            if event.event_type in ("deleted", "moved"):
                self._gone(src)
            elif event.event_type == "created":
                self.watch(src, new=True)  # before queueing: no file falls in between
        if event.is_directory and dest is not None:
            self.watch(dest, new=True)
        writing = _writing(event)
        for path in (src, dest):
            if path is not None:
                self._queue(path, writing if path == src else False)

    def _moves_links(self, event: Any, src: Path | None, dest: Path | None) -> bool:
        """Whether the event may add, remove or re-point a symlinked source folder: a path
        that is or was a link, a folder moved (links move with it), or one deleted that
        held a link. A new folder's links come as their own events."""
        paths = [p for p in (src, dest) if p is not None]
        if any(p in self.links or p.is_symlink() for p in paths):
            return True
        if event.is_directory and event.event_type == "moved":
            return True
        return bool(
            event.is_directory
            and event.event_type == "deleted"
            and any(p in link.parents for p in paths for link in self.links)
        )

    def _gone(self, path: Path) -> None:
        """`path` was deleted or moved away: drop the watches of folders no longer there.

        Events of one folder may come from two watches (its own, its parent's), so a late
        event about the old folder may follow a new one's: what is on disk decides."""
        for folder in [f for f in self.watches if f == path or path in f.parents]:
            if not folder.is_dir():
                self._unwatch(folder)

    def _unwatch(self, folder: Path) -> None:
        watch = self.watches.pop(folder, None)
        if watch is not None:
            with contextlib.suppress(KeyError):  # already unscheduled
                self.observer.unschedule(watch)

    def _queue(self, path: Path, writing: bool | None = None) -> None:
        for found in (path, *self.aliases(path)):
            if meaning(self.project, found) is not None:
                self.queue.add(found, writing)

    def _queue_files(self, folder: Path) -> None:
        for dirpath, dirnames, filenames in os.walk(folder):
            in_public = PUBLIC_DIR in Path(dirpath).parts  # copied whole: dot folders too
            dirnames[:] = [
                d for d in dirnames if not excluded(d) and (in_public or not ignored_dir(d))
            ]
            for name in filenames:
                self._queue(Path(dirpath, name))


def _writing(event: Any) -> bool | None:
    """Whether `event` leaves its file open for writing (a write), over (closed, moved,
    deleted), or says neither (an attribute change, a creation: its close comes, if any)."""
    if event.is_directory:
        return None
    if event.event_type == "modified":
        return True
    if event.event_type in ("closed", "moved", "deleted"):
        return False
    return None


def _path(raw: str | bytes) -> Path | None:
    if not raw:
        return None
    return Path(raw if isinstance(raw, str) else raw.decode())
