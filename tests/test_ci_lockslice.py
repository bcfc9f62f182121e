"""Lockfile slices: an app is keyed on the dependencies it resolves, not the whole lockfile."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mfe.build import lockslice
from mfe.build.shared import SharedUnchanged, shared_slice_hash
from mfe.config import load_project
from mfe.errors import MfeError

from fixtures.repo import copy_sources, relicense_keeping_mtime

ROOT = Path(__file__).resolve().parent.parent


def entry(version: str, **deps: dict[str, str]) -> dict[str, Any]:
    return {"version": version, "integrity": f"sha512-{version}", **deps}


def synthetic() -> dict[str, Any]:
    """Two apps sharing `shared`; payments alone uses `money` (which needs `big@2`, nested)."""
    return {
        "lockfileVersion": 3,
        "packages": {
            "": {"workspaces": ["apps/*"]},
            "apps/payments": {
                "dependencies": {"money": "^1", "shared": "^1"},
                "devDependencies": {"esbuild": "^0.28"},
            },
            "apps/accounts": {"dependencies": {"shared": "^1", "big": "^1"}},
            "node_modules/shared": entry("1.0.0"),
            "node_modules/money": entry("1.2.0", dependencies={"big": "^2", "tslib": "^2"}),
            "node_modules/money/node_modules/big": entry("2.0.0"),
            "node_modules/big": entry("1.0.0"),
            "node_modules/tslib": entry("2.6.0"),
            "node_modules/esbuild": entry(
                "0.28.0",
                optionalDependencies={"@esbuild/linux-x64": "0.28.0", "@esbuild/gone": "1"},
            ),
            "node_modules/@esbuild/linux-x64": entry("0.28.0"),
            "node_modules/unused": entry("9.9.9"),
            "node_modules/payments": {"link": True, "resolved": "apps/payments"},
        },
    }


def hashes(data: dict[str, Any]) -> dict[str, str]:
    packages = lockslice.parse_lockfile(json.dumps(data))
    return {
        app: lockslice.slice_hash(lockslice.slice_entries(packages, f"apps/{app}"))
        for app in ("payments", "accounts")
    }


def test_closure_follows_node_resolution_nested_first() -> None:
    packages = lockslice.parse_lockfile(json.dumps(synthetic()))
    payments = set(lockslice.slice_entries(packages, "apps/payments"))
    assert payments == {
        "apps/payments",
        "node_modules/money",
        "node_modules/money/node_modules/big",  # nested copy wins over the hoisted big@1
        "node_modules/tslib",
        "node_modules/shared",
        "node_modules/esbuild",
        "node_modules/@esbuild/linux-x64",
    }
    accounts = set(lockslice.slice_entries(packages, "apps/accounts"))
    assert accounts == {"apps/accounts", "node_modules/shared", "node_modules/big"}


def test_bumping_a_package_only_payments_uses_changes_only_payments() -> None:
    before = hashes(synthetic())
    bumped = copy.deepcopy(synthetic())
    bumped["packages"]["node_modules/tslib"] = entry("2.7.0")  # payments, via money
    bumped["packages"]["node_modules/unused"] = entry("10.0.0")  # nobody
    after = hashes(bumped)
    assert after["payments"] != before["payments"]
    assert after["accounts"] == before["accounts"]


def test_nested_copy_change_does_not_touch_the_hoisted_users() -> None:
    before = hashes(synthetic())
    bumped = copy.deepcopy(synthetic())
    bumped["packages"]["node_modules/money/node_modules/big"] = entry("2.1.0")
    after = hashes(bumped)
    assert after["payments"] != before["payments"]
    assert after["accounts"] == before["accounts"]
    bumped["packages"]["node_modules/big"] = entry("1.1.0")
    assert hashes(bumped)["accounts"] != before["accounts"]


def test_a_shared_package_bump_affects_both_and_is_explained() -> None:
    packages = lockslice.parse_lockfile(json.dumps(synthetic()))
    bumped = copy.deepcopy(synthetic())
    bumped["packages"]["node_modules/shared"] = entry("1.1.0")
    new = lockslice.parse_lockfile(json.dumps(bumped))
    for app in ("payments", "accounts"):
        old_entries = lockslice.slice_entries(packages, f"apps/{app}")
        new_entries = lockslice.slice_entries(new, f"apps/{app}")
        assert lockslice.diff_slices(old_entries, new_entries) == [
            "package-lock.json: shared 1.0.0 -> 1.1.0"
        ]


def test_a_new_declared_dependency_changes_the_key() -> None:
    before = hashes(synthetic())
    changed = copy.deepcopy(synthetic())
    changed["packages"]["apps/accounts"]["dependencies"]["tslib"] = "^2"
    assert hashes(changed)["accounts"] != before["accounts"]
    assert hashes(changed)["payments"] == before["payments"]


def test_workspace_links_pull_in_the_linked_workspace_tree() -> None:
    data = synthetic()
    data["packages"]["apps/accounts"]["dependencies"]["payments"] = "*"
    packages = lockslice.parse_lockfile(json.dumps(data))
    accounts = lockslice.slice_entries(packages, "apps/accounts")
    assert "apps/payments" in accounts
    assert "node_modules/money" in accounts


def test_real_lockfile_separates_react_from_lit() -> None:
    packages = lockslice.load_lockfile(ROOT / "package-lock.json")
    accounts = lockslice.slice_entries(packages, "apps/accounts")
    payments = lockslice.slice_entries(packages, "apps/payments")
    assert "node_modules/react" in accounts and "node_modules/react" not in payments
    assert "node_modules/lit" in payments and "node_modules/lit" not in accounts


def test_old_or_broken_lockfiles_are_clear_errors() -> None:
    with pytest.raises(MfeError, match="lockfileVersion 3"):
        lockslice.parse_lockfile(json.dumps({"lockfileVersion": 1, "dependencies": {}}))
    with pytest.raises(MfeError, match="invalid JSON"):
        lockslice.parse_lockfile("{")


def test_cached_hashes_reparse_only_when_the_lockfile_changes(tmp_path: Path) -> None:
    lock = tmp_path / "package-lock.json"
    lock.write_text(json.dumps(synthetic()))
    workspaces = ["apps/payments", "apps/accounts"]
    first = lockslice.cached_slice_hashes(tmp_path, workspaces)
    assert json.loads((tmp_path / ".mfe" / "lock-slices.json").read_text())["hashes"] == first
    lockslice._MEMO.clear()
    assert lockslice.cached_slice_hashes(tmp_path, workspaces) == first  # from disk
    bumped = synthetic()
    bumped["packages"]["node_modules/tslib"] = entry("2.7.0")
    lock.write_text(json.dumps(bumped, indent=1))
    second = lockslice.cached_slice_hashes(tmp_path, workspaces)
    assert second["apps/payments"] != first["apps/payments"]
    assert second["apps/accounts"] == first["apps/accounts"]


def test_shared_check_uses_the_slices_cache_next_to_the_apps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`build:shared`'s up-to-date check parses the lockfile once per content, like the
    app slices, and the two keep each other's entries in `.mfe/lock-slices.json`."""
    root = copy_sources(tmp_path / "repo")
    project = load_project(root)
    parsed: list[str] = []
    real_parse = lockslice.parse_lockfile

    def counting_parse(text: str, source: str = "package-lock.json") -> lockslice.Packages:
        parsed.append(source)
        return real_parse(text, source)

    monkeypatch.setattr(lockslice, "parse_lockfile", counting_parse)
    workspaces = ["apps/accounts", "apps/payments"]
    apps = lockslice.cached_slice_hashes(root, workspaces)
    shared = SharedUnchanged(project).current()
    assert len(parsed) == 2  # each new name is computed once
    for _ in range(2):  # a new doit process: nothing in memory, both from disk
        lockslice._MEMO.clear()
        assert SharedUnchanged(project).current() == shared
        assert lockslice.cached_slice_hashes(root, workspaces) == apps
    assert len(parsed) == 2

    relicense_keeping_mtime(root / "package-lock.json", "node_modules/lit", "MIT")
    lockslice._MEMO.clear()
    assert SharedUnchanged(project).current() != shared  # same mtime, new bytes


CHECKER = """
import sys
from pathlib import Path
from mfe.build import lockslice
from mfe.build.shared import SharedUnchanged
from mfe.config import load_project
root = Path(sys.argv[1])
if sys.argv[2] == "shared":
    SharedUnchanged(load_project(root)).current()
else:
    lockslice.cached_slice_hashes(root, sys.argv[2:])
"""


def test_concurrent_checks_leave_a_cache_later_runs_can_trust(tmp_path: Path) -> None:
    """`doit serve` and a `doit` in another terminal check at once: whatever the
    interleaving, the cache holds only values true of the lockfile's current bytes."""
    root = copy_sources(tmp_path / "repo")
    project = load_project(root)
    lockfile = root / "package-lock.json"
    jobs = [["apps/accounts"], ["apps/payments", "apps/mfe-parent"], ["shared"], ["shared"]]
    for round_ in range(4):
        lock = json.loads(lockfile.read_text())
        lock["packages"]["node_modules/lit"]["license"] = f"MIT-{round_}"
        lockfile.write_text(json.dumps(lock, indent=2) + "\n")
        running = [
            subprocess.Popen([sys.executable, "-c", CHECKER, str(root), *job]) for job in jobs
        ]
        assert [process.wait(timeout=120) for process in running] == [0] * len(jobs)

        cached = json.loads((root / ".mfe" / "lock-slices.json").read_text())
        packages = lockslice.load_lockfile(lockfile)
        for name, value in cached["hashes"].items():
            if name.startswith("apps/"):
                assert value == lockslice.slice_hash(lockslice.slice_entries(packages, name))
            else:
                assert value == shared_slice_hash(project, packages), name
        lockslice._MEMO.clear()
        assert SharedUnchanged(project).current() == shared_slice_hash(project, packages)
