"""`build:<app>` tasks key on the app's lockfile slice, like `doit ci` does."""

from __future__ import annotations

import json
from pathlib import Path

from fixtures.repo import executed_tasks, run_doit

APPS = ("build:mfe-parent", "build:accounts", "build:payments")


def build_each(root: Path) -> set[str]:
    """Run every build task alone (`-s`: without `install`, so the lockfile may be synthetic)."""
    ran: set[str] = set()
    for task in APPS:
        ran |= executed_tasks(run_doit(root, "-s", task).stdout)
    return ran


def test_lockfile_change_rebuilds_only_the_apps_that_resolve_it(monorepo: Path) -> None:
    assert build_each(monorepo) == set(APPS)
    assert build_each(monorepo) == set()

    lock = monorepo / "package-lock.json"
    data = json.loads(lock.read_text())
    data["packages"]["node_modules/scheduler"]["integrity"] += "x"  # react-dom -> accounts only
    lock.write_text(json.dumps(data, indent=2) + "\n")
    assert build_each(monorepo) == {"build:accounts"}

    data["packages"]["node_modules/unused-by-all"] = {"version": "1.0.0"}
    lock.write_text(json.dumps(data, indent=2) + "\n")
    assert build_each(monorepo) == set()
