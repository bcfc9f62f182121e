"""`npm ci` for the `install` task: one at a time per monorepo, never beside another npm.

npm writes package.json, then the lockfile (~13 ms later), then its record of node_modules
(~6 ms after): a check in between sees a mismatch while an `npm install` in another
terminal still writes node_modules. `npm ci` deletes node_modules first, and two npms
writing one node_modules can corrupt it. So once its up-to-date check said `npm ci` is
due, `install` takes `.mfe/install.lock` (a `doit` in another terminal, or `doit serve`,
waits for the first and decides again), waits for every npm that writes node_modules in
the monorepo (its cwd the root or below) to exit, and decides again from the files: an
npm that left node_modules matching the lockfile means no `npm ci` at all.

Only npm commands that write node_modules count: `npm run dev` or `npm test --watch` in
another terminal may run for hours and change nothing `install` looks at.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from mfe.build.bundle import INTERRUPTED
from mfe.build.installed import NO_NPM, NPM_CI, mismatch, require_npm
from mfe.config import STATE_DIR, Project
from mfe.errors import Interrupted, MfeError
from mfe.threads import SIGNAL_POLL_SECONDS

if TYPE_CHECKING:
    import psutil

LOCK_FILE = "install.lock"
"""Under `.mfe/`: held by the `install` that decides and runs `npm ci`."""
STOPPING = threading.Event()
"""Set by `doit serve`'s first Ctrl-C, which lets the build in flight finish: a wait for
another npm or install gives up at once instead."""

# fmt: off
WRITERS = frozenset({
    "install", "add", "i", "in", "ins", "inst", "insta", "instal", "isnt", "isnta",
    "isntal", "isntall", "ci", "clean-install", "ic", "install-clean", "isntall-clean",
    "install-test", "it", "install-ci-test", "cit", "uninstall", "unlink", "remove", "rm",
    "r", "un", "update", "up", "upgrade", "udpate", "dedupe", "ddp", "prune", "link", "ln",
    "rebuild", "rb"
})
"""npm commands (and their aliases) that write node_modules."""
READERS = frozenset({
    "run", "run-script", "rum", "urn", "exec", "x", "test", "t", "tst", "start", "stop",
    "restart", "ls", "list", "la", "ll", "explain", "why", "view", "info", "show", "v",
    "pkg", "config", "c", "get", "set", "help", "version", "outdated", "audit", "fund",
    "pack", "publish", "query", "init", "create", "innit", "cache", "doctor", "search", "s",
    "find-dupes", "prefix", "root", "bin"
})
"""Other npm commands: the first command word of the arguments decides (`npm -w app run
install` runs a script named install)."""
# fmt: on
_NPM_ENTRIES = ("npm", "npm-cli.js", "npm.cmd", "npx", "npx-cli.js")


def install(project: Project) -> None:
    """The `install` task's action: `npm ci` if still due once no other npm works here."""
    if install_if_due(project) is None:
        say(f"node_modules in {project.root} matches package-lock.json now: no npm ci")


def install_if_due(
    project: Project, announce: Callable[[str], None] = lambda reason: None, command: str = "doit"
) -> str | None:
    """`npm ci` if node_modules does not match the lockfile once no other npm works here:
    the reason it ran (told to `announce` first), or None. The `install` task and `doit ci`
    both install through this, so they agree on when and how; `command` is the one an
    error says to run again (`doit ci` there).

    An npm ci that passes but leaves node_modules still due is an MfeError: npm ci never
    writes package-lock.json, so running it again (every `doit`) would change nothing."""
    root = project.root
    with install_lock(root):
        wait_for_npm(root)
        reason = mismatch(project)
        if reason is None:
            return None
        from mfe.scaffold import check_installed  # only when an install is due

        announce(reason)
        require_npm()  # one line, not the shell's `npm: not found`
        # A new app folder npm never installed: one line, not npm's usage text.
        check_installed(project, command)
        run_npm_ci(root)
        left = mismatch(project)
        if left is not None:
            raise MfeError(
                f"npm ci finished, but package-lock.json is out of date: {left}; "
                f"run `npm install` in {root} to update package-lock.json, commit it, "
                "then run the command again"
            )
        return reason


def say(line: str) -> None:
    """To stderr: doit shows an action's stderr live (its stdout only at verbosity 2)."""
    print(line, file=sys.stderr, flush=True)


@contextmanager
def install_lock(root: Path) -> Iterator[None]:
    """Exclusive among this monorepo's installs (`flock`: the kernel drops it with a dead
    process), taken in short slices so Ctrl-C, serve's included, stops the wait."""
    state = root / STATE_DIR
    state.mkdir(exist_ok=True)
    handle = os.open(state / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    say(f"waiting for another install (npm ci) in {root} to finish")
                    told = True
                _stop_if_asked()
                time.sleep(SIGNAL_POLL_SECONDS)
        yield
    finally:
        os.close(handle)


def install_under_way(root: Path) -> bool:
    """An install holds `.mfe/install.lock` (`install`, or `doit new_app` from writing the
    app's folder to the end of its `npm install`), or an npm that writes node_modules runs
    in the monorepo: its lockfile change comes once it ends. Only looks; waits for nothing."""
    lock = root / STATE_DIR / LOCK_FILE
    if lock.is_file():
        handle = os.open(lock, os.O_RDONLY)
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(handle)  # closing drops the probe's own lock
    return bool(npm_writers(root))


def wait_for_npm(root: Path) -> None:
    """Until no npm that writes node_modules runs in the monorepo: each one found is named
    once and waited for (a wait on the process, in slices for Ctrl-C); then look again, as
    one may have started meanwhile."""
    import psutil

    told: set[int] = set()
    while running := npm_writers(root):
        for process in running:
            if process.pid not in told:
                told.add(process.pid)
                say(
                    f"waiting for npm (pid {process.pid}) in {root} to finish "
                    "before checking node_modules"
                )
        while running:
            _stop_if_asked()
            _, running = psutil.wait_procs(running, timeout=SIGNAL_POLL_SECONDS)


def npm_writers(root: Path) -> list[psutil.Process]:
    """Other processes running an npm command that writes node_modules, with their cwd in
    `root` (npm runs at the root or in a workspace below it)."""
    import psutil

    top = os.path.realpath(root)
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if process.pid == os.getpid() or not writes_node_modules(process.info["cmdline"]):
            continue
        try:
            cwd = os.path.realpath(process.cwd())
        except (psutil.Error, OSError):  # gone, a zombie, or another user's
            continue
        if cwd == top or cwd.startswith(top + os.sep):
            found.append(process)
    return found


def writes_node_modules(cmdline: list[str] | None) -> bool:
    """`cmdline` runs npm with a command that writes node_modules: `npm install x` as
    started (`node /usr/bin/npm install x`), or as npm retitles itself once loaded (one
    string, `npm install x`, on Linux)."""
    args = [arg for arg in cmdline or [] if arg]
    if len(args) == 1:
        args = args[0].split()
    names = [os.path.basename(arg) for arg in args[:2]]
    if names and names[0] in _NPM_ENTRIES:
        words = args[1:]
    elif len(names) == 2 and names[0].startswith("node") and names[1] in _NPM_ENTRIES:
        words = args[2:]
    else:
        return False
    command = next((w for w in words if w in WRITERS or w in READERS), None)
    return command in WRITERS


def _stop_if_asked() -> None:
    if STOPPING.is_set():
        raise KeyboardInterrupt


def run_npm_ci(root: Path) -> None:
    """`npm ci` at the root; a failure is npm's reason (not its usage text), with the root."""
    try:
        result = subprocess.run(
            list(NPM_CI),
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        raise MfeError(NO_NPM) from None
    if result.returncode in INTERRUPTED or _BY_SIGINT.search(result.stderr):  # Ctrl-C: ours
        raise Interrupted(
            "install interrupted (Ctrl-C): node_modules is incomplete, so the next run "
            "installs again"
        )
    if result.returncode != 0:
        reason = "\n".join(npm_reason(result.stderr.splitlines()))
        raise MfeError(f"npm ci failed in {root} (exit {result.returncode}):\n{reason}")
    if result.stderr.strip():
        sys.stderr.write(result.stderr)


def npm_reason(lines: list[str]) -> list[str]:
    """npm's reason without the usage text it prints after it (from the paragraph that
    describes the command, the one before `Usage:`)."""
    usage = next((i for i, line in enumerate(lines) if _USAGE.fullmatch(line)), None)
    if usage is None:
        return _trimmed(lines)
    kept = _trimmed(lines[:usage])
    while kept and not _BLANK.fullmatch(kept[-1]):
        kept.pop()
    return _trimmed(kept)


def _trimmed(lines: list[str]) -> list[str]:
    """`lines` without the blank ones at the end (npm's are `npm error` alone)."""
    end = len(lines)
    while end and _BLANK.fullmatch(lines[end - 1]):
        end -= 1
    return lines[:end]


_BY_SIGINT = re.compile(r"^npm (?:error|ERR!) signal SIGINT$", re.MULTILINE)
"""How npm says a Ctrl-C stopped it (it exits 1 then, not by the signal)."""
_USAGE = re.compile(r"(npm error )?Usage:\s*")
_BLANK = re.compile(r"(npm error)?\s*")
