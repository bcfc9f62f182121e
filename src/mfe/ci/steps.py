"""The Node side of a CI run: install dependencies only when a build needs them, run tests.

A fresh runner whose apps all come from the build cache never runs `npm ci` at all.
"""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

from mfe.build.bundle import NPM_CI, npm_scripts
from mfe.config import App, Project
from mfe.errors import MfeError

_install_lock = threading.Lock()


def node_modules_current(project: Project) -> bool:
    """npm's hidden lockfile agrees with package-lock.json on every installed package."""
    hidden = project.root / "node_modules" / ".package-lock.json"
    try:
        installed: dict[str, Any] = json.loads(hidden.read_text(encoding="utf-8"))["packages"]
        wanted: dict[str, Any] = json.loads(project.lockfile.read_text(encoding="utf-8"))[
            "packages"
        ]
    except (OSError, ValueError, KeyError):
        return False
    for location, entry in wanted.items():
        if not location.startswith("node_modules/") or "/node_modules/" in location.removeprefix(
            "node_modules/"
        ):
            continue  # top-level packages suffice to tell a stale install
        have = installed.get(location)
        if have is None:
            if entry.get("optional") or entry.get("devOptional"):
                continue  # another platform's binary
            return False
        if have.get("version") != entry.get("version") or have.get("link") != entry.get("link"):
            return False
    return True


def ensure_node_modules(project: Project) -> bool:
    """`npm ci` unless node_modules already matches the lockfile; True if it ran."""
    with _install_lock:
        if node_modules_current(project):
            return False
        print("ci: installing JS dependencies (npm ci)", flush=True)
        result = _run(list(NPM_CI), project.root)
        if result.returncode != 0:
            raise MfeError(
                f"npm ci failed in {project.root} (exit {result.returncode}):\n{result.stdout}"
            )
        return True


def has_test_script(app: App) -> bool:
    """The shared pseudo-app has no package.json and no tests of its own."""
    return app.role != "shared" and "test" in npm_scripts(app)


def run_tests(app: App) -> None:
    """The app's own `npm test`; a failure names the app and shows its output."""
    result = _run(["npm", "test", "--silent"], app.path)
    if result.returncode != 0:
        raise MfeError(
            f"tests of {app.name} failed (npm test exited {result.returncode}); "
            f"nothing was published.\n{result.stdout.rstrip()}"
        )
    print(f"ci: {app.name}: tests passed", flush=True)


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            command,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        raise MfeError("npm is not on PATH: install Node.js 20+ with npm") from None
