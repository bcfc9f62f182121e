"""One rebuild cycle: a batch of changed paths, run through doit, told to the terminal and tabs.

`errors` is the whole truth the overlay shows: one entry per app, the shell, the config
or a new app whose last build failed; an entry goes only when that thing builds again
(`serve`, a cycle that broke on its own, goes when one runs through).
Tabs reload only when the served bytes changed, so a `touch` keeps their state.
While mfe.toml or dodo.py does not load (or doit refuses dodo.py's tasks), nothing is
built: its error is told once, each save meanwhile is named as waiting, and the fix builds
them all.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mfe.config import CONFIG_FILE, App, Project
from mfe.errors import MfeError
from mfe.scaffold import uninstalled_apps
from mfe.serve.follow import GONE, NEW, Following, log, named_file, read_file
from mfe.serve.ports import DEV_ENV
from mfe.serve.rebuild import RunResult, check_dodo, display_path, error_text, run_tasks
from mfe.serve.reload import Broker, BuildError
from mfe.serve.server import HOST, Gate
from mfe.serve.watch import DODO_FILE, OUTPUTS, Changes, classify, meaning
from mfe.shell import render_shell


@dataclass
class Cycle(Following):
    project: Project
    gate: Gate
    broker: Broker
    errors: dict[str, BuildError] = field(default_factory=dict)
    served: list[bytes] = field(default_factory=list)
    """`served_bytes` as the tabs were last told: a change since (here or by a build
    outside serve) reloads them."""
    reloaded: Callable[[Project], None] = lambda project: None
    """Told each newly loaded project: the servers and the watcher follow its apps and
    `[build] inputs`. ConfigError refuses it (nothing changed); MfeError: a port in use."""
    restart_needed: Callable[[Project], str] = lambda project: ""
    """What of a loaded project only a restart applies, as the notice names it
    (`[env.dev] port 5170 -> 5370`), or "": the open tabs are on the shell's port."""

    dodo: bytes = b""
    """`dodo.py` as serve started with it: a change asks for a restart until it is back."""
    waiting: set[Path] = field(default_factory=set)
    """Sources saved while mfe.toml or dodo.py does not load: named, and built, once it does."""
    blocked: bool = False
    """This cycle built nothing because mfe.toml or dodo.py does not load (or was refused),
    or an app in mfe.toml awaits `npm install`."""
    busy: bool = False
    """An app's port was in use when mfe.toml was last applied: it is served nowhere until
    a later cycle binds it (a save, or a tab loading the page once the port is free)."""
    unannounced: set[str] = field(default_factory=set)
    """Apps added while serving: their URL is told once they have built here."""
    changed: str = ""
    """The saved paths this cycle, as its terminal line names them ("" for none)."""
    interrupted: str = ""
    """What Ctrl-C stopped in this cycle's doit run and what it left (`npm ci`: an
    incomplete node_modules), or "": serve is stopping, so that is all it says."""
    built: set[str] = field(default_factory=set)
    """Apps whose build succeeded (or was up to date) in a run of this serve."""
    targets: set[str] = field(default_factory=set)
    """The apps (and `install`) this cycle's doit run was asked to build."""
    report: str = ""
    """What this cycle's doit run said (a failure in full), printed after the save's line."""

    def __post_init__(self) -> None:
        self.served = served_bytes(self.project)
        self.dodo = read_file(self.project.root / DODO_FILE)
        self._note_gone()

    def first_build(self) -> None:
        """`doit build` and the page, before the URL is printed: an app that fails is
        reported as in a rebuild, and serving starts anyway (its last good build, if any)."""
        self._run(Changes(install=True), set())

    def run(self, paths: set[Path]) -> None:
        """Build what `paths` touch while page requests wait, then report the outcome.
        No paths: a tab loaded the page, so a port that was busy is tried again (no port
        frees with a notice; a developer who freed it looks at the page next)."""
        if not paths:
            if self.busy:
                self._run(Changes(), paths)
            return
        changes = classify(self.project, paths)
        if not changes or (not changes.inputs and served_bytes(self.project) == self.served):
            return  # nothing, or serve's own dist/ swaps, seen after its cycle
        self._run(changes, paths)

    def _run(self, changes: Changes, paths: set[Path]) -> None:
        started = time.monotonic()
        shown, busy = dict(self.errors), self.busy
        self.gate.close()
        self.blocked, self.changed, self.targets, self.report = False, "", set(), ""
        try:
            built = self._build(changes, paths)
            self.errors.pop("serve", None)
        except Exception as exc:  # a bug must not take the server, and the edits, down
            self.errors["serve"] = BuildError("serve", _failure(self.project.root, exc))
            built = None
        finally:
            self.gate.open()
        if self.interrupted:  # no failure, no outcome: serve says bye next
            log(self.interrupted)
            return
        now = served_bytes(self.project)
        # An app served again on a port that was busy: the tabs could not load it before.
        reload, self.served = now != self.served or (busy and not self.busy), now
        holding = built is not None and self.blocked
        # an install that failed is a failure too: "rebuilt nothing" would read as fine
        failing = self._failing(self.targets) if built is not None and not holding else []
        told = [name for name in failing if shown.get(name) == self.errors[name]]
        rebuilt = (
            not holding
            and not (failing and not built)
            and built is not None
            and bool(paths)
            and changes.inputs
            and (bool(built) or not _only_dodo(changes) or DODO_FILE in shown)
            and not _only_new(changes)  # nothing was to build: its notice says what is
        )
        # the save first, then what it caused; a rebuilt line alone names it: one line a save
        if self.changed and (not rebuilt or self.report):
            log(f"changed: {self.changed}")
        sys.stdout.write(self.report)
        for key, error in self.errors.items():
            if shown.get(key) == error:
                continue
            if key.startswith(NEW):  # no failed build: the app waits for `npm install`
                print(f"serve: {error.text}")
                continue
            if error.title:  # nor this: a notice
                print(f"serve: {error.title}: {error.text}")
                continue
            where = " (doit's report above)" if error.shown else f":\n{error.text}"
            print(f"serve: {error.app} failed; {self._kept(key)}{where}")
        if holding:
            key, state = self._holding()
            if paths and key and shown.get(key) == self.errors[key]:  # its error is told already
                meanwhile = _describe(self.project, self.waiting)
                later = f"; changed meanwhile (built once it is fixed): {meanwhile}"
                log(f"nothing rebuilt while {state}{later if meanwhile else ''}")
        elif failing and not built:
            # its error is above: "rebuilt nothing; output unchanged" would read as fixed
            if told == failing:
                log(f"{', '.join(failing)} still failing; {self._kept(failing[0])} (error above)")
        elif rebuilt:
            assert built is not None
            what = ", ".join(name for name, _ in built) or "nothing"
            tasks = ", ".join(f"build:{name} {seconds:.2f}s" for name, seconds in built)
            outcome = "reloading pages" if reload else "output unchanged, pages kept"
            detail = f" ({tasks})" if tasks else ""
            detail += f" for {self.changed}" if self.changed else ""
            still = f"; {', '.join(told)} still failing (error above)" if told else ""
            log(f"rebuilt {what} in {time.monotonic() - started:.2f}s{detail}; {outcome}{still}")
        elif built is not None and reload and not changes:  # a busy port bound at last
            log("reloading pages")
        elif built is not None and reload and not changes.inputs:  # a build outside serve
            log(f"{_describe(self.project, paths)} replaced; reloading pages")
        self._announce()
        sys.stdout.flush()
        self.broker.publish(list(self.errors.values()), reload)

    def _build(self, changes: Changes, paths: set[Path]) -> list[tuple[str, float]]:
        """Run doit for the changed apps and re-render the page; (app, seconds) built."""
        built = self._build_apps(changes, paths)
        self._note_dodo()  # after the run: it says whether dodo.py loads
        return built

    def _build_apps(self, changes: Changes, paths: set[Path]) -> list[tuple[str, float]]:
        for name in changes.new_apps:
            self._note_new(name)
        apps = set(changes.apps)
        held = DODO_FILE in self.errors  # doit did not load dodo.py's tasks last time
        if held:  # whichever file fixes it, the saves meanwhile (any app's) are built then
            apps = set(self.project.apps)
        # `npm install` of a new app folder changes the lockfile: the apps are found again
        if changes.config or changes.install or CONFIG_FILE in self.errors or self._gone():
            if not self._reload():
                self.blocked = True  # edits meanwhile are built once it loads (doit knows them)
                self.waiting |= _inputs(self.project, paths) - {self.project.root / CONFIG_FILE}
                return []
            if changes.inputs:  # not for a port tried again: nothing to build
                apps = set(self.project.apps)
        pending = uninstalled_apps(self.project)
        if pending:  # `doit new_app` wrote mfe.toml; its `npm install` comes in a moment
            for name in pending:  # (`install` would fail every build, the page lacks it)
                self._note_new(name)
            self.blocked = True
            self.changed = _describe(self.project, _inputs(self.project, paths))
            self.waiting |= _inputs(self.project, paths)
            return []
        targets = ["build"] if changes.install else [f"build:{a}" for a in sorted(apps)]
        result = RunResult(0)
        saved = _inputs(self.project, paths)
        changed, self.waiting = self.waiting | saved, set()
        if paths and (apps or changes.install or changes.shell or changes.new_apps):
            # held: what was saved meanwhile is named already
            self.changed = _describe(self.project, saved if held else changed)
        if apps or changes.install:
            self.targets = apps | ({"install"} if changes.install else set())
            told = {name: error.text for name, error in self.errors.items() if error.shown}
            result = run_tasks(
                self.project.root, ["--continue", *targets], quiet=bool(paths), told=told
            )
            if result.interrupted:
                self.interrupted = result.interrupted
                return []
            self.report = result.report
            self._record(result)
        elif changes.dodo:  # nothing to build, but a dodo.py that does not load is told now
            result = check_dodo(self.project.root)
            self._record(result, ran=False)
        if DODO_FILE in result.failures:  # doit never got the tasks: nothing ran
            self.blocked = True
            self.waiting = changed - {self.project.root / DODO_FILE}
            return []
        try:
            render_shell(self.project, self.project.env(DEV_ENV), None, quiet=True)
            self.errors.pop("shell", None)
        except MfeError as exc:
            self.errors["shell"] = BuildError("shell", str(exc))
        return [
            (task.removeprefix("build:"), result.durations.get(task, 0.0))
            for task in result.executed
            if task.startswith("build:") and task not in result.failures
        ]

    def _announce(self) -> None:
        """The URL of each app added while serving once it has built here (its port was
        bound at once, but served nothing the page could show: a copied or moved folder's
        `dist/` is not its build), as the start-up lines tell it."""
        if self.busy:  # a port still to bind: told once it is
            return
        for name in sorted(self.unannounced):
            app = self.project.apps.get(name)
            if app is not None and name not in self.built:
                continue
            self.unannounced.discard(name)
            if app is not None:
                log(served_line(self.project, app))

    def _failing(self, apps: set[str]) -> list[str]:
        """The `apps` whose build failed in this cycle (or before, and again now)."""
        return sorted(name for name in apps if name in self.errors and not self.errors[name].title)

    def _kept(self, key: str) -> str:
        if key.startswith(GONE):
            return "the other apps are served and rebuilt meanwhile"
        app = self.project.apps.get(key)
        if app is not None and not app.manifest_path.is_file():
            return "it has never built, so the page cannot show it yet"
        return "the last good build stays served"

    def _record(self, result: RunResult, ran: bool = True) -> None:
        """Each app's (and doit's own) error set or cleared by what this run found (`ran`
        False: dodo.py was only loaded, so `install` was not run and keeps its error)."""
        for name in ("install", DODO_FILE) if ran else (DODO_FILE,):
            self.errors.pop(name, None)
        for task, text in result.failures.items():
            name = task.removeprefix("build:")
            app = named_file(self.project.root, text) if task == DODO_FILE else name
            # doit's report printed it in full (npm's error too): not again after ours
            self.errors[name] = BuildError(app or name, text, shown=task != DODO_FILE)
        for task in result.done:
            self.errors.pop(task.removeprefix("build:"), None)
            if task.startswith("build:"):
                self.built.add(task.removeprefix("build:"))


def served_bytes(project: Project) -> list[bytes]:
    """What the tabs would load: every app's manifest (it hashes every file) and the page."""
    files = [app.manifest_path for app in project.apps.values()] + [project.page(DEV_ENV)]
    return [read_file(path) for path in files]


def _failure(root: Path, exc: Exception) -> str:
    """What broke the cycle, naming the file (and line) when the exception carries one
    (a SyntaxError in dodo.py, an OSError)."""
    text = error_text(exc)
    filename = getattr(exc, "filename", None)
    if not isinstance(filename, str) or not filename:
        return text
    line = getattr(exc, "lineno", None)
    where = display_path(root, filename)
    return f"{where}, line {line}: {text}" if line else f"{where}: {text}"


def _only_new(changes: Changes) -> bool:
    """Only new app folders' files were saved: they wait for `npm install` (or a rename),
    nothing was to build."""
    return bool(changes.new_apps) and not dataclasses.replace(changes, new_apps=set()).inputs


def _only_dodo(changes: Changes) -> bool:
    """Only dodo.py was saved: its notice says it all (rebuild runs load it afresh, but
    nothing else changed to build)."""
    return changes.dodo and not dataclasses.replace(changes, dodo=False).inputs


def _inputs(project: Project, paths: set[Path]) -> set[Path]:
    """The paths that are sources (not a swapped `dist/`)."""
    return {path for path in paths if meaning(project, path) != OUTPUTS}


SHOWN_PATHS = 5
"""Paths a terminal line names; the rest are counted (a branch switch touches dozens)."""


def _describe(project: Project, paths: set[Path]) -> str:
    """The first few paths, relative to the root, and how many more there are."""
    shown = set()
    for path in paths:
        try:
            shown.add(path.relative_to(project.root).as_posix())
        except ValueError:
            shown.add(str(path))
    names = sorted(shown)
    more = len(names) - SHOWN_PATHS
    listed = ", ".join(names[:SHOWN_PATHS])
    return f"{listed} and {more} more" if more > 0 else listed


def served_line(project: Project, app: App) -> str:
    """The terminal line naming where an app is served from."""
    dist = app.dist.relative_to(project.root).as_posix()  # build/shared/dist too
    return f"{app.name}: http://{HOST}:{app.dev_port}/ ({dist})"
