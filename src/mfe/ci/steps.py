"""The Node side of a CI run: install dependencies only when a build needs them, run tests.

A fresh runner whose apps all come from the build cache never runs `npm ci` at all.
Tests run the app's `test` script the way `npm test` would, without npm itself: npm's
start-up costs about as much CPU as the tests of a small app, once per app.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

from mfe.build.bundle import build_env, node_hint, npm_scripts
from mfe.build.install import install_if_due
from mfe.build.installed import NO_NPM
from mfe.config import App, Project
from mfe.errors import MfeError
from mfe.output import say

_install_lock = threading.Lock()
_failed: dict[Path, MfeError] = {}
"""Roots whose install failed in this run: the other apps' builds raise the same error."""


def ensure_node_modules(project: Project) -> bool:
    """`npm ci` unless node_modules already matches the lockfile; True if it ran. Through
    the `install` task's own steps (`install_if_due`), so `doit ci` and `doit build` agree
    on when npm ci is due and fail alike.

    Every app's build calls this, in parallel; npm ci runs at most once per run: after it
    node_modules matches (else `install_if_due` fails), and a failed install is raised
    again to the later callers without running npm again."""
    with _install_lock:
        if project.root in _failed:
            raise _failed[project.root]
        try:
            return install_if_due(project, _announce, "doit ci") is not None
        except MfeError as exc:
            _failed[project.root] = exc
            raise


def _announce(reason: str) -> None:
    print(f"ci: installing JS dependencies (npm ci): {reason}", flush=True)


def has_test_script(app: App) -> bool:
    """The shared pseudo-app has no package.json and no tests of its own."""
    return app.role != "shared" and "test" in npm_scripts(app)


def test_command(app: App) -> str:
    """The shell command behind the app's `npm test`: its `test` script, run directly.

    As with `build_command`, skipping npm saves its start-up (~0.2 s of CPU per app, as
    much as a small app's `node --test`); an app with `pretest` or `posttest` hooks goes
    through `npm test` so the hooks still run.
    """
    scripts = npm_scripts(app)
    if "pretest" in scripts or "posttest" in scripts:
        return "npm test --silent"
    return scripts["test"]


def run_tests(project: Project, app: App) -> None:
    """The app's tests in its folder, with `node_modules/.bin` on PATH as npm puts it;
    a failure names the app and shows its output."""
    command = test_command(app)
    env = build_env(project, app)
    result = _run(command, app.path, env)
    if result.returncode != 0:
        hint = node_hint(result.returncode, env)
        output = result.stdout.rstrip()
        # Their output first, the verdict last: a log is read from its end.
        shown = f"tests of {app.name}: `{command}` printed:\n{output}\n" if output else ""
        raise MfeError(
            f"{shown}tests of {app.name} failed (`{command}` exited {result.returncode}"
            f"{hint}); nothing was published."
        )
    say(f"ci: {app.name}: tests passed")


def _run(
    command: list[str] | str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`command` (a string runs in the shell, as npm runs scripts) with output captured."""
    try:
        return subprocess.run(
            command,
            shell=isinstance(command, str),
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        raise MfeError(NO_NPM) from None
