"""Whether `node_modules/` holds what `package-lock.json` describes, compared by content.

npm records what it installed in `node_modules/.package-lock.json` (the hidden lockfile)
and trusts that record only while no package folder is newer than it and every entry has
its folder (arborist's `assertNoNewer`, 10 ms of slack). The `install` task checks the
same, then compares the record with the lockfile entry by entry: an install is due when
they differ, not when the lockfile's mtime moved. So a lockfile replaced with its old
mtime reinstalls, and one that `npm install` already applied to node_modules does not.

Unlike npm, the workspaces' own folders (apps' sources) and dot folders that bundlers
write under node_modules (`.cache`, `.vite`) do not count: editing an app is no reason
to reinstall. The comparison is cached by a hash of the files' bytes, so a no-op run
parses neither file; only the package folders are stat-ed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mfe.build.lockslice import parse_lockfile
from mfe.config import STATE_DIR, Project
from mfe.errors import MfeError
from mfe.files import write_atomic

NPM_CI = ("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
"""How JS dependencies are installed (the `install` task and CI)."""
NO_NPM = (
    "npm is not on PATH: install Node.js 20+ with npm (README, 'Quickstart'), "
    "then run the command again"
)
HIDDEN_LOCKFILE = "node_modules/.package-lock.json"
SLACK_NS = 10_000_000
"""npm trusts folders up to 10 ms newer than the hidden lockfile."""
_DECLARED = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")
_SKIPPABLE = ("optional", "devOptional")
"""Lockfile entries npm may leave out (optional packages for other platforms)."""


def require_npm() -> None:
    """Before running npm: one line naming what to install, not the shell's `npm: not found`
    (exit 127) or a FileNotFoundError traceback."""
    if shutil.which("npm") is None:
        raise MfeError(NO_NPM)


@dataclass(frozen=True)
class Comparison:
    """The content comparison of one lockfile, hidden lockfile and package.json set."""

    reason: str | None
    """Why node_modules does not match, or None."""
    folders: list[str]
    """Installed package folders (root-relative) whose trust the record depends on."""
    links: list[str]
    """Installed links (workspaces) that must still exist."""


def mismatch(project: Project) -> str | None:
    """Why `npm ci` is due (one short reason), or None when node_modules matches."""
    root = project.root
    hidden = root / HIDDEN_LOCKFILE
    manifests = {"": root / "package.json"}
    for app in project.bundled_apps.values():
        manifests[app.path.relative_to(root).as_posix()] = app.path / "package.json"
    try:
        recorded = hidden.stat().st_mtime_ns
        files = [project.lockfile.read_bytes(), hidden.read_bytes()]
        files += [path.read_bytes() for path in manifests.values()]
    except FileNotFoundError as exc:
        return f"{Path(str(exc.filename)).relative_to(root)} is missing"
    digest = hashlib.sha1(usedforsecurity=False)
    for workspace, data in zip(["lock", "hidden", *manifests], files, strict=True):
        digest.update(f"{workspace}\0{len(data)}\0".encode() + data)
    comparison = _cached(root, digest.hexdigest())
    if comparison is None:
        comparison = compare(files[0], files[1], dict(zip(manifests, files[2:], strict=True)))
        _store(root, digest.hexdigest(), comparison)
    return comparison.reason or _untrusted(root, comparison, recorded + SLACK_NS)


def compare(lock: bytes, hidden: bytes, manifests: dict[str, bytes]) -> Comparison:
    """Lockfile vs hidden lockfile entries, and each package.json's declared dependencies
    vs its lockfile entry ("" the root, else the workspace folder)."""
    try:  # npm ci says what is wrong with a broken lockfile itself
        locked = parse_lockfile(lock.decode("utf-8", "replace"), "package-lock.json")
        installed = parse_lockfile(hidden.decode("utf-8", "replace"), HIDDEN_LOCKFILE)
    except MfeError as exc:
        return Comparison(str(exc).partition(" (")[0], [], [])
    for workspace, data in manifests.items():
        name = f"{workspace}/package.json" if workspace else "package.json"
        try:
            declared = _declared(json.loads(data))
        except (ValueError, AttributeError):
            return Comparison(f"{name} is not a JSON object", [], [])
        if workspace not in locked or _declared(locked[workspace]) != declared:
            return Comparison(f"{name} declares dependencies package-lock.json lacks", [], [])
    for location, entry in installed.items():
        if locked.get(location) != entry:
            return Comparison(f"{location} differs from package-lock.json", [], [])
    for location, entry in locked.items():
        if location and location not in installed and not any(entry.get(f) for f in _SKIPPABLE):
            return Comparison(f"{location} is not installed", [], [])
    in_modules = [loc for loc in sorted(installed) if "node_modules/" in loc]
    links = [loc for loc in in_modules if installed[loc].get("link")]
    folders = [loc for loc in in_modules if not installed[loc].get("link")]
    return Comparison(None, folders, links)


def _declared(entry: dict[str, Any]) -> dict[str, Any]:
    return {field: entry.get(field) or {} for field in _DECLARED}


def _untrusted(root: Path, comparison: Comparison, limit_ns: int) -> str | None:
    """npm's rule: a package folder missing, or changed after the record was written."""
    for location in comparison.links:
        if not os.path.lexists(root / location):
            return f"{location} is missing"
    for location in comparison.folders:
        try:
            changed = os.stat(root / location).st_mtime_ns > limit_ns
        except OSError:
            return f"{location} is missing"
        if changed:
            return f"{location} changed after the last install"
    return None


def _cache_file(root: Path) -> Path:
    return root / STATE_DIR / "installed.json"


def _cached(root: Path, key: str) -> Comparison | None:
    try:
        data = json.loads(_cache_file(root).read_text(encoding="utf-8"))
        if data["key"] == key:
            return Comparison(data["reason"], list(data["folders"]), list(data["links"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _store(root: Path, key: str, comparison: Comparison) -> None:
    record = {"key": key, **comparison.__dict__}
    with contextlib.suppress(OSError):  # a read-only checkout still works, just slower
        write_atomic(_cache_file(root), json.dumps(record))


class Installed:
    """doit `uptodate` check of `install`: node_modules matches the lockfile by content."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        return mismatch(self.project) is None

    def __repr__(self) -> str:
        return "Installed()"
