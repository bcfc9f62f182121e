"""`doit serve`: render the dev shell, serve it and every app, rebuild what changed, reload.

One loop on the main thread: wait for a debounced batch of changes, rebuild (doit
in-process, one run at a time) while page requests are held, then tell the tabs.
Files changed during a build simply form the next batch: one more build after it.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from mfe.config import Project, load_project
from mfe.errors import ConfigError, MfeError
from mfe.serve.rebuild import run_tasks
from mfe.serve.reload import Broker, BuildError
from mfe.serve.server import HOST, Gate, Site, bind, start
from mfe.serve.watch import ChangeQueue, classify, start_watching
from mfe.shell import render_shell

DEV_ENV = "dev"


def log(message: str) -> None:
    print(f"serve: {message}", flush=True)


def serve(
    root: Path, port: int | None = None, before_rebuilds: Callable[[], None] | None = None
) -> None:
    """Serve until SIGINT/SIGTERM. `before_rebuilds` lets the calling doit run flush its state."""
    project = load_project(root)
    env = project.env(DEV_ENV)
    shell_port = port or env.port or 5170
    render_shell(project, env, None)
    page = project.page(env.name)
    key = "the --port option" if port else f"[env.{env.name}] port"
    sites = [Site("shell", shell_port, key, page=page)]
    sites += [
        Site(app.name, app.dev_port, f"[apps.{app.name}] dev_port", root=app.dist)
        for app in project.apps.values()
    ]
    gate, broker, queue, stop = Gate(), Broker(), ChangeQueue(), threading.Event()
    servers = bind(sites, gate, broker)
    stop_servers = start(servers)
    observer = start_watching(project, queue)
    if before_rebuilds is not None:
        before_rebuilds()
    previous = _on_signals(stop)
    try:
        for app in project.apps.values():
            log(f"{app.name}: http://{HOST}:{app.dev_port}/ (apps/{app.name}/dist)")
        log("watching apps/, shell/ and mfe.toml; Ctrl-C stops")
        print(f"http://{HOST}:{shell_port}/", flush=True)
        while not stop.is_set():
            paths = queue.take(stop)
            if paths and not stop.is_set():
                project = rebuild(project, paths, gate, broker)
    finally:
        _restore_signals(previous)
        observer.stop()
        broker.close()
        gate.open()
        stop_servers()
        observer.join(timeout=2)
    print("serve: stopped, bye", flush=True)


def rebuild(project: Project, paths: set[Path], gate: Gate, broker: Broker) -> Project:
    """Build what the changed paths touch, re-render the page, and reload or show the error."""
    changes = classify(project, paths)
    if not changes:
        return project
    started = time.monotonic()
    gate.close()
    try:
        if changes.config:
            try:
                project = _same_ports(project, load_project(project.root))
            except ConfigError as exc:
                _failed(broker, BuildError("mfe.toml", str(exc)))
                return project
        targets = ["build"] if changes.install else [f"build:{a}" for a in sorted(changes.apps)]
        targets = [t for t in targets if t == "build" or t[len("build:") :] in project.apps]
        error = None
        built: list[str] = []
        durations: dict[str, float] = {}
        if targets:
            log(f"changed: {', '.join(sorted(_describe(project, paths)))}")
            result = run_tasks(project.root, targets)
            built = [t for t in result.executed if t.startswith("build:")]
            durations = result.durations
            if not result.ok:
                name, text = next(iter(result.failures.items()), ("build", "doit failed"))
                error = BuildError(name.removeprefix("build:"), text, shown=True)
        try:
            render_shell(project, project.env(DEV_ENV), None)
        except MfeError as exc:
            error = error or BuildError("shell", str(exc))
    finally:
        gate.open()
    if error is not None:
        _failed(broker, error)
        return project
    broker.reload()
    what = ", ".join(b.removeprefix("build:") for b in built) or "nothing"
    tasks = ", ".join(f"{name} {durations[name]:.2f}s" for name in built if name in durations)
    detail = f" ({tasks})" if tasks else ""
    log(f"rebuilt {what} in {time.monotonic() - started:.2f}s{detail}; reloading pages")
    return project


def _same_ports(served: Project, fresh: Project) -> Project:
    """The servers keep their ports: a config that moves or adds apps needs a restart."""
    before = {a.name: a.dev_port for a in served.apps.values()}
    after = {a.name: a.dev_port for a in fresh.apps.values()}
    if before != after:
        raise ConfigError(
            f"{fresh.root / 'mfe.toml'}: the apps or their dev ports changed "
            f"({before} -> {after}); restart `doit serve` to serve them"
        )
    return fresh


def _failed(broker: Broker, error: BuildError) -> None:
    """Keep serving the last good files; the terminal and every tab show the error."""
    broker.fail(error)
    where = " (doit's report above)" if error.shown else f":\n{error.text}"
    print(f"serve: {error.app} failed; the last good build stays served{where}", file=sys.stderr)
    sys.stderr.flush()


def _describe(project: Project, paths: set[Path]) -> set[str]:
    shown = set()
    for path in paths:
        try:
            shown.add(path.relative_to(project.root).as_posix())
        except ValueError:
            shown.add(str(path))
    return set(sorted(shown)[:5])


_Handler = Callable[[int, FrameType | None], Any] | int | None


def _on_signals(stop: threading.Event) -> dict[int, _Handler]:
    """First Ctrl-C/SIGTERM: finish the build in flight, then stop; a second one forces it."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous: dict[int, _Handler] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handler)
    return previous


def _restore_signals(previous: dict[int, _Handler]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
