"""Following the project's shape while serving: mfe.toml loaded again (servers and watches
follow it), app folders new (waiting for `npm install`) or gone, and a changed dodo.py.

Each is told once as a notice in `errors` (no failed build), until it goes; `Cycle`
gets these from `Following` and decides when to call them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from mfe.build.install import install_under_way
from mfe.config import (
    CONFIG_FILE,
    Project,
    gone_app_message,
    load_project,
    package_name_clash,
)
from mfe.errors import ConfigError, MfeError
from mfe.files import read_json
from mfe.scaffold import new_app_message
from mfe.serve.reload import BuildError
from mfe.serve.watch import DODO_FILE

RESTART = "restart"
"""Key of the notice that a changed dodo.py needs a restart (`errors`)."""
CONFIG_RESTART = f"restart:{CONFIG_FILE}"
"""Key of the notice that a saved mfe.toml moved what only a restart moves (the shell port)."""
GONE = "gone:"
"""Key prefix of an [apps.NAME] table whose folder was deleted (`errors`)."""
NEW = "new:"
"""Key prefix of an app folder npm has not installed yet (`errors`): nothing failed."""
BROKEN = " broken: nothing is rebuilt until it is fixed"
"""The end of the heading of a project that does not load, after the files at fault."""
PACKAGE = "/package.json"
REFUSED = f"{CONFIG_FILE} not applied: nothing is rebuilt until it is fixed"


def log(message: str) -> None:
    print(f"serve: {message}", flush=True)


class Following:
    """The part of `Cycle` that follows mfe.toml, app folders and dodo.py (its fields)."""

    project: Project
    errors: dict[str, BuildError]
    busy: bool
    unannounced: set[str]
    dodo: bytes
    reloaded: Callable[[Project], None]
    restart_needed: Callable[[Project], str]

    def _note_new(self, name: str) -> None:
        """An app folder whose dependencies npm has not installed: its lockfile change
        makes serve find the apps again, build and serve it. While an install is under
        way (`doit new_app` runs one), waiting is all there is to say: nothing failed."""
        clash = _package_clash(self.project.root)
        if clash:  # `npm install` would fail on it: the copy needs its own name first
            self.errors[NEW + name] = BuildError(
                name, f"new app {name}: {clash}", title=f"New app {name}: rename its package"
            )
            return
        if install_under_way(self.project.root):
            text = f"new app {name}: waiting for the npm install under way, then serve builds "
            self.errors[NEW + name] = BuildError(
                name, text + "and serves it", title=f"New app {name}: installing"
            )
            return
        self.errors[NEW + name] = BuildError(
            name, new_app_message(name, then="serve builds and serves it")
        )

    def _note_restart(self, fresh: Project) -> None:
        """A saved mfe.toml that moves what only a restart moves (the shell port): serving
        and rebuilding go on as serve started, said until it is back or serve restarts."""
        what = self.restart_needed(fresh)
        if not what:
            if self.errors.pop(CONFIG_RESTART, None) is not None:
                log(f"{CONFIG_FILE} is back to the ports serve started with: no restart needed")
            return
        self.errors[CONFIG_RESTART] = BuildError(
            CONFIG_FILE,
            f"{CONFIG_FILE} changed since `doit serve` started ({what}); stop it (Ctrl-C) and "
            "run `doit serve` again to apply the change (until then it serves as it started)",
            title=f"Restart needed: {CONFIG_FILE} ({what})",
        )

    def _reload(self) -> bool:
        """Load mfe.toml again and let serve follow it (servers, watches); False: refused,
        the served project stays. A busy port is reported, the rest of the config applies."""
        try:
            fresh = load_project(self.project.root)
        except ConfigError as exc:
            files = _at_fault(self.project.root, str(exc))
            title = f"{files} {'are' if ' and ' in files else 'is'}{BROKEN}"
            self.errors[CONFIG_FILE] = BuildError(files, str(exc), title=title)
            return False
        try:
            self.reloaded(fresh)
        except ConfigError as exc:  # what a running serve cannot follow (the shell port)
            self.errors[CONFIG_FILE] = BuildError(CONFIG_FILE, str(exc), title=REFUSED)
            return False
        except MfeError as exc:  # a port in use: tried again on the next cycle
            self.errors[CONFIG_FILE] = BuildError(CONFIG_FILE, str(exc))
            self.busy = True
        else:
            self.errors.pop(CONFIG_FILE, None)
            self.busy = False
        for name in self.project.apps.keys() - fresh.apps.keys():  # gone: nothing to show
            self.errors.pop(name, None)
        for name in fresh.apps:  # served now: its own build says whether it is installed
            self.errors.pop(NEW + name, None)
        for key in [key for key in self.errors if key.startswith(NEW)]:  # folder gone again
            if not (fresh.root / "apps" / key.removeprefix(NEW) / "package.json").is_file():
                del self.errors[key]
        # a copied or moved folder brings its dist/: told once it built here, not before
        self.unannounced |= fresh.apps.keys() - self.project.apps.keys()
        self._note_restart(fresh)
        self.project = fresh
        self._note_gone()
        return True

    def _note_dodo(self) -> None:
        """doit serve runs as the dodo.py it started with set it up (its task, options and
        session): a changed one needs a restart, said until dodo.py is back as it was. Not
        while dodo.py does not load (or doit refuses its tasks): a restart would not start,
        its error says what to fix, and the notice comes back once it loads."""
        back = read_file(self.project.root / DODO_FILE) == self.dodo
        if back or DODO_FILE in self.errors:
            if self.errors.pop(RESTART, None) is not None and back:
                log(f"{DODO_FILE} is back as serve started with it: no restart needed")
            return
        self.errors[RESTART] = BuildError(
            DODO_FILE,
            f"{DODO_FILE} changed since `doit serve` started; stop it (Ctrl-C) and run "
            "`doit serve` again to apply the change (until then it serves as it started)",
            title=f"Restart needed: {DODO_FILE}",
        )

    def _holding(self) -> tuple[str, str]:
        """The error key that holds the builds and how to say it ("" if none is told):
        mfe.toml's first (loaded before dodo.py), then dodo.py's (or the file it names)."""
        config = self.errors.get(CONFIG_FILE)
        if config is not None and config.title == REFUSED:
            return CONFIG_FILE, f"{CONFIG_FILE} is not applied"
        if config is not None and config.title.endswith(BROKEN):
            return CONFIG_FILE, config.title.removesuffix(BROKEN) + " broken"
        dodo = self.errors.get(DODO_FILE)
        if dodo is not None:
            return DODO_FILE, f"{dodo.app} is broken"
        return "", ""

    def _gone(self) -> bool:
        """An app folder was deleted: its [apps.NAME] table no longer loads strictly, and
        the apps are found again (the others keep being served and rebuilt). Every app is
        checked, not only those whose events came: a deleted folder's may come in any
        batch, or not at all."""
        bundled = self.project.bundled_apps  # not the shared modules: no package.json
        return any(not (app.path / "package.json").is_file() for app in bundled.values())

    def _note_gone(self) -> None:
        """One overlay entry per [apps.NAME] table whose folder is gone, until it goes."""
        for key in [key for key in self.errors if key.startswith(GONE)]:
            if key.removeprefix(GONE) not in self.project.gone:
                del self.errors[key]
        for name in self.project.gone:
            text = gone_app_message(name)
            self.errors[GONE + name] = BuildError(CONFIG_FILE, text)


def _package_clash(root: Path) -> str | None:
    """Two app folders' package.json with one "name" (`cp -r apps/payments apps/billing`),
    as `load_project` refuses them; a package.json that does not parse is not this."""
    packages = {}
    for path in (root / "apps").glob("*/package.json"):
        try:
            packages[path.parent.name] = read_json(path)
        except (OSError, ValueError):
            continue
    return package_name_clash(packages)


def _at_fault(root: Path, text: str) -> str:
    """The files a load error of the project is about, as its heading names them: the one
    its text starts with (an app's package.json), with the others of a package name clash
    (two package.json files); mfe.toml if it names none."""
    first = named_file(root, text)
    if first is None:
        return CONFIG_FILE
    packages = (
        re.findall(r"\bapps/[^/\s]+/package\.json\b", text) if first.endswith(PACKAGE) else []
    )
    return " and ".join(dict.fromkeys([first, *packages]))


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


_NAMED = re.compile(r"^([^\s:,]+)(?:, line \d+)?:")


def named_file(root: Path, text: str) -> str | None:
    """The project file an error's text starts with (`apps/x/package.json: invalid JSON`):
    it heads the error, for dodo.py failed to load only because of it."""
    match = _NAMED.match(text)
    if match is None or not (root / match.group(1)).is_file():
        return None
    try:  # named by its absolute path: shown as the terminal's other lines name files
        return (root / match.group(1)).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return match.group(1)
