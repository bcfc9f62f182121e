"""`doit serve`: render the dev shell, serve it and every app, rebuild what changed, reload.

One loop on the main thread: wait for a debounced batch of changes, rebuild (doit
in-process, one run at a time) while page requests are held, then tell the tabs. The
first run, before the URL is printed, is `doit build` itself: an app that fails to build
is shown in the overlay and the terminal as in any later rebuild, not a reason to stop.
Files changed during a build simply form the next batch: one more build after it.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from mfe.build import live
from mfe.build.bundle import build_command, build_env
from mfe.build.live import LiveBundler
from mfe.build.shared import externals_json
from mfe.config import STATE_DIR, Project, load_project
from mfe.errors import MfeError
from mfe.serve.cycle import DEV_ENV, Cycle, log
from mfe.serve.origins import Origins
from mfe.serve.reload import Broker
from mfe.serve.server import HOST, Gate, Site, bind, start
from mfe.serve.watch import ChangeQueue, input_folders, start_watching


def serve(
    root: Path, port: int | None = None, before_rebuilds: Callable[[], None] | None = None
) -> None:
    """Serve until SIGINT/SIGTERM. `before_rebuilds` lets the calling doit run flush its state."""
    project = load_project(root)
    env = project.env(DEV_ENV)
    shell_port = port or env.port or 5170
    for app in project.apps.values():
        if port and app.dev_port == port:
            raise MfeError(
                f"--port {port} collides with app '{app.name}' ([apps.{app.name}] dev_port "
                "in mfe.toml); pick another --port"
            )
    page = project.page(env.name)
    key = "the --port option" if port else f"[env.{env.name}] port"
    sites = [Site("shell", shell_port, key, page=page)]
    sites += [
        Site(app.name, app.dev_port, f"[apps.{app.name}] dev_port", root=app.dist)
        for app in project.apps.values()
    ]
    gate, broker, queue, stop = Gate(), Broker(), ChangeQueue(), threading.Event()
    servers = bind(sites, gate, broker, Origins(shell_port, env.allowed_hosts))
    stop_servers = start(servers)
    watcher = start_watching(project, queue)
    if before_rebuilds is not None:
        before_rebuilds()
    bundler = LiveBundler(project, build_env(project))
    live.activate(bundler)  # this process's builds use it from now on
    previous = _on_signals(stop)
    try:
        cycle = Cycle(project, gate, broker, reloaded=watcher.follow)
        cycle.first_build()  # a failing app is shown like a failed rebuild; serving goes on
        _start_warming(project, bundler)
        for app in project.apps.values():
            dist = app.dist.relative_to(project.root).as_posix()  # build/shared/dist too
            log(f"{app.name}: http://{HOST}:{app.dev_port}/ ({dist})")
        watched = ["apps/", "shell/"] + [
            f"{folder.relative_to(project.root).as_posix()}/"
            for folder in input_folders(project)
            if folder != project.root
        ]
        log(f"watching {', '.join(watched)} and mfe.toml; Ctrl-C stops")
        print(f"http://{HOST}:{shell_port}/", flush=True)
        while not stop.is_set():
            paths = queue.take(stop)
            if paths and not stop.is_set():
                cycle.run(paths)
    finally:
        _restore_signals(previous)
        watcher.observer.stop()
        broker.close()
        gate.open()
        stop_servers()
        live.activate(None)
        bundler.close()
        watcher.observer.join(timeout=2)
    print("serve: stopped, bye", flush=True)


def _start_warming(project: Project, bundler: LiveBundler) -> None:
    """Build each app once in the background, so the first edit's build is incremental."""
    apps = [app for app in project.apps.values() if app.role != "shared"]  # own build script
    scripts = [(live.shared_script(project, app, build_command(app)), app) for app in apps]
    warm = [(script, app) for script, app in scripts if script is not None]
    scratch = project.root / STATE_DIR / "serve-warm"
    shared = json.loads(externals_json(project))
    threading.Thread(target=bundler.warm, args=(warm, scratch, shared), daemon=True).start()


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
