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
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from mfe.build import live
from mfe.build.bundle import build_command, build_env
from mfe.build.install import STOPPING
from mfe.build.live import LiveBundler
from mfe.build.shared import externals_json
from mfe.config import CONFIG_FILE, STATE_DIR, Project, gone_apps_left_out, load_project
from mfe.errors import ConfigError, MfeError
from mfe.serve.cycle import Cycle, served_line
from mfe.serve.follow import log
from mfe.serve.origins import Origins
from mfe.serve.ports import DEV_ENV, option_problem, port_key
from mfe.serve.reload import Broker
from mfe.serve.running import Serve, explain, forget, record, refuse_second, this_serve
from mfe.serve.server import HOST, DevServer, Gate, PortBusy, Site, bind, start
from mfe.serve.watch import ChangeQueue, input_folders, start_watching

DEFAULT_SHELL_PORT = 5170


def serve(
    root: Path, port: int | None = None, before_rebuilds: Callable[[], None] | None = None
) -> int:
    """Serve until SIGINT/SIGTERM; returns which one stopped it (the doit task ends by
    SIGINT after a Ctrl-C). `before_rebuilds` lets the calling doit run flush its state.

    An app folder deleted before its [apps.NAME] table leaves that app out (the overlay
    says which table to remove), here and in every in-process doit run."""
    with gone_apps_left_out():
        return _serve(root, port, before_rebuilds)


def _serve(root: Path, port: int | None, before_rebuilds: Callable[[], None] | None) -> int:
    project = load_project(root)
    refuse_second(project.root)  # before anything is bound or built
    env = project.env(DEV_ENV)
    shell_port = _shell_port(project, port)
    gate, broker, queue, stop = Gate(), Broker(), ChangeQueue(), threading.Event()
    key, option = f"[env.{env.name}] port", "--port" if port else ""
    servers = Servers(
        Site("shell", shell_port, key, page=project.page(env.name), option=option),
        port,
        gate,
        broker,
        Origins(shell_port, env.allowed_hosts),
        visited=queue.poke,
        me=this_serve(project.root, shell_port),
    )
    servers.start(project)
    watcher = start_watching(project, queue)
    if before_rebuilds is not None:
        before_rebuilds()
    bundler = LiveBundler(project, build_env(project))
    live.activate(bundler)  # this process's builds use it from now on
    stopped_by: list[int] = []
    previous = _on_signals(stop, stopped_by)

    def reloaded(fresh: Project) -> None:
        servers.check(fresh)  # a bad --port is refused before anything changes
        watcher.follow(fresh)
        servers.apply(fresh)

    try:
        cycle = Cycle(project, gate, broker, reloaded=reloaded, restart_needed=servers.moved)
        cycle.first_build()  # a failing app is shown like a failed rebuild; serving goes on
        if not stop.is_set():  # Ctrl-C during it: no URL to print, only the goodbye
            _start_warming(project, bundler)
            _print_urls(project, shell_port)
        while not stop.is_set():
            paths = queue.take(stop)
            if not stop.is_set():
                with bundler.holding(stop):  # the warm-up starts no node during a build
                    cycle.run(paths)  # none: a tab loaded the page
    finally:
        _restore_signals(previous)
        watcher.observer.stop()
        broker.close()
        gate.open()
        servers.stop()
        live.activate(None)
        bundler.close()
        watcher.observer.join(timeout=2)
    print("serve: stopped, bye", flush=True)
    return stopped_by[0]


def _print_urls(project: Project, shell_port: int) -> None:
    """The start-up lines: each app's URL, what is watched, then the page's URL last."""
    for app in project.apps.values():
        log(served_line(project, app))
    watched = ["apps/", "shell/"] + [
        f"{folder.relative_to(project.root).as_posix()}/"
        for folder in input_folders(project)
        if folder != project.root
    ]
    log(f"watching {', '.join(watched)}, mfe.toml and dodo.py; Ctrl-C stops")
    print(f"http://{HOST}:{shell_port}/", flush=True)


def _shell_port(project: Project, option: int | None) -> int:
    return option or project.env(DEV_ENV).port or DEFAULT_SHELL_PORT


def _app_sites(project: Project) -> dict[str, Site]:
    return {
        app.name: Site(app.name, app.dev_port, port_key(app), root=app.dist)
        for app in project.apps.values()
    }


@dataclass
class Servers:
    """The running dev servers: the shell's, and one per app keyed by its name.

    Changed only from the cycle's thread (`start`, `apply`, `stop`): request threads read
    nothing here but their server's `origins`, so an app added, removed or moved in mfe.toml,
    or a changed `[env.dev] allowed_hosts`, needs no restart."""

    shell: Site
    option: int | None
    """`--port`: the shell port then ignores mfe.toml."""
    gate: Gate
    broker: Broker
    origins: Origins
    visited: Callable[[], None] = lambda: None
    """Told each load of the page: a port found busy is tried again (`Cycle.run`)."""
    me: Serve | None = None
    """This serve, as its ports tell it and `.mfe/serve.json` records it while they are
    served (None: neither, as for servers a test runs in-process)."""
    apps: dict[str, tuple[DevServer, Callable[[], None]]] = field(default_factory=dict)
    _shell: tuple[DevServer, Callable[[], None]] | None = None
    _moved: dict[str, int] = field(default_factory=dict)
    """Served apps whose server closed to move (its old port), until bound again: a busy
    new port is bound by a later `apply`, which tells the URL then."""
    _root: Path | None = None
    """The checkout whose record `_record` wrote, for `stop` to remove."""

    def start(self, project: Project) -> None:
        """Every port bound first, so a busy one fails fast and leaves nothing listening."""
        self.check(project)
        sites = [self.shell, *_app_sites(project).values()]
        try:
            bound = bind(sites, self.gate, self.broker, self.origins)
        except PortBusy as exc:  # held by another serve? say whose, and what to do
            raise explain(exc, project.root, sites) from None
        try:
            for server in bound:
                self._run(server)
        except BaseException:
            self.stop()
            for server in bound:  # those not started yet
                server.server_close()
            raise
        self._record(project.root)

    def check(self, project: Project) -> None:
        """ConfigError for what serve cannot serve: `--port` must be a TCP port clear of
        every port mfe.toml gives a listener (the apps', the emulator's)."""
        problem = option_problem(project, self.option)
        if problem:
            raise ConfigError(problem)

    def moved(self, project: Project) -> str:
        """What a running serve does not follow, or "": the open tabs are on the shell's
        port, which stays until a restart (`[env.dev] port 5170 -> 5370`)."""
        port = _shell_port(project, self.option)
        return (
            ""
            if port == self.shell.port
            else f"{self.shell.config_key} {self.shell.port} -> {port}"
        )

    def apply(self, project: Project) -> None:
        """Serve `project`'s apps: close the servers of apps gone or moved first (two
        apps may swap ports), then bind the new ones. A busy port raises MfeError naming
        its key once every other app is served (the next reload tries it again)."""
        self._allow(project.env(DEV_ENV).allowed_hosts)
        wanted = _app_sites(project)
        closed = self._moved  # served apps' old ports, named with the new one once bound
        for name, (server, stop) in list(self.apps.items()):
            site = server.site
            if wanted.get(name) != site:
                stop()
                del self.apps[name]
                closed.setdefault(name, site.port)
                if name not in wanted:
                    log(f"{name}: no longer served (port {site.port} closed)")
        for name in closed.keys() - wanted.keys():
            del closed[name]
        busy = []
        for name, site in wanted.items():
            if name in self.apps:
                continue
            try:
                (server,) = bind([site], self.gate, self.broker, self.origins)
                self._run(server)
            except MfeError as exc:
                # held by another checkout's serve? say whose, and which key moves it
                why = explain(exc, project.root, [site]) if isinstance(exc, PortBusy) else exc
                busy.append(f"{why}; then reload the page (or save {CONFIG_FILE} again)")
                continue
            if name in closed:  # a new app is told once it has built (`Cycle`)
                old = closed.pop(name)
                moved = f"; port {old} closed" if old != site.port else ""
                log(served_line(project, project.apps[name]) + moved)
        self._record(project.root)
        if busy:
            raise MfeError("\n".join(busy))

    def stop(self) -> None:
        """Close every server (on the way out)."""
        for _, stop in self.apps.values():
            stop()
        self.apps.clear()
        if self._shell is not None:
            self._shell[1]()
            self._shell = None
        if self.me is not None and self._root is not None:
            forget(self._root, self.me)
            self._root = None

    def _allow(self, hosts: tuple[str, ...]) -> None:
        """`[env.dev] allowed_hosts` as now saved, on every server: a request reads its
        server's `origins` once, so it sees the old or the new list, never a mix."""
        origins = Origins(self.shell.port, hosts)
        if origins == self.origins:
            return
        self.origins = origins
        running = [*self.apps.values(), *([self._shell] if self._shell else [])]
        for server, _ in running:
            server.origins = origins
        log(f"allowed hosts: {', '.join(hosts) or 'loopback only'}")

    def _record(self, root: Path) -> None:
        """The record of this serve, with the ports it serves now."""
        if self.me is None:
            return
        ports = {label: server.site.port for label, (server, _) in self.apps.items()}
        record(root, self.me, {"shell": self.shell.port, **ports})
        self._root = root

    def _run(self, server: DevServer) -> None:
        if server.site.page is not None:
            server.visited = self.visited
        if self.me is not None:
            server.identity = self.me.identity()
        stop = start([server])
        if server.site.page is not None:
            self._shell = (server, stop)
        else:
            self.apps[server.site.label] = (server, stop)


def _start_warming(project: Project, bundler: LiveBundler) -> None:
    """Build each app once in the background, so the first edit's build is incremental."""
    apps = [app for app in project.apps.values() if app.role != "shared"]  # own build script
    scripts = [(live.shared_script(project, app, build_command(app)), app) for app in apps]
    warm = [(script, app) for script, app in scripts if script is not None]
    scratch = project.root / STATE_DIR / "serve-warm"
    shared = json.loads(externals_json(project))
    threading.Thread(target=bundler.warm, args=(warm, scratch, shared), daemon=True).start()


_Handler = Callable[[int, FrameType | None], Any] | int | None


def _on_signals(stop: threading.Event, stopped_by: list[int]) -> dict[int, _Handler]:
    """First Ctrl-C/SIGTERM: finish the build in flight, then stop (`stopped_by` says which
    signal); a second one forces it. A wait for another npm is no build: it ends at once."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stopped_by.append(signum)
        stop.set()
        STOPPING.set()

    previous: dict[int, _Handler] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handler)
    return previous


def _restore_signals(previous: dict[int, _Handler]) -> None:
    STOPPING.clear()
    for signum, handler in previous.items():
        signal.signal(signum, handler)
