"""The part of `package-lock.json` one app actually resolves.

Nx and Turborepo treat any lockfile change as affecting every project. Here each
app is keyed on the transitive closure of its own dependencies, resolved the way
Node does (nearest `node_modules/` first, then each parent folder), so bumping a
package only `payments` uses changes only `payments`' key.

Kept free of heavy imports: the doit `build:<app>` tasks use it on every run.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mfe.config import STATE_DIR
from mfe.errors import MfeError
from mfe.files import parse_json, write_atomic

Packages = dict[str, dict[str, Any]]
"""lockfileVersion 3 `packages`: location ("node_modules/a/node_modules/b") -> entry."""

# Dependency fields of the workspace itself, then of every resolved package.
_ROOT_FIELDS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")
_PACKAGE_FIELDS = ("dependencies", "optionalDependencies", "peerDependencies")
_GRAPH_FLAGS = frozenset({"dev", "optional", "devOptional", "peer", "inBundle"})


def parse_lockfile(text: str, source: str = "package-lock.json") -> Packages:
    """The `packages` table of a lockfile (v2/v3), past a byte order mark as npm reads it;
    a clear error for anything else."""
    try:
        data = parse_json(text)
    except json.JSONDecodeError as exc:
        raise MfeError(f"{source}: invalid JSON ({exc}); run `npm install` to rewrite it") from None
    packages = data.get("packages") if isinstance(data, dict) else None
    if not isinstance(packages, dict):
        raise MfeError(
            f"{source}: no 'packages' table (lockfileVersion {data.get('lockfileVersion')!r}); "
            "npm 7+ writes lockfileVersion 3: run `npm install --lockfile-version 3`"
        )
    return packages


def load_lockfile(path: Path) -> Packages:
    """Parse `path`; a missing lockfile is an empty one (an app with no dependencies)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    return parse_lockfile(text, str(path))


def resolve(packages: Packages, from_location: str, name: str) -> str | None:
    """Node's lookup: `<from>/node_modules/<name>`, then each ancestor's, then the root's."""
    base = from_location
    while True:
        candidate = f"{base}/node_modules/{name}" if base else f"node_modules/{name}"
        if candidate in packages:
            return candidate
        if not base:
            return None
        # Step out of one `node_modules/<pkg>` (scoped: `node_modules/@s/pkg`) or one folder.
        head, sep, _ = base.rpartition("/node_modules/")
        if sep:
            base = head
        elif base.startswith("node_modules/"):
            base = ""
        else:
            base = base.rpartition("/")[0]


def closure(packages: Packages, workspace: str) -> dict[str, dict[str, Any]]:
    """Every lockfile entry reachable from `workspace` (e.g. "apps/payments"), by location."""
    if workspace not in packages:
        return {}
    seen: dict[str, dict[str, Any]] = {}
    stack: list[tuple[str, tuple[str, ...]]] = [(workspace, _ROOT_FIELDS)]
    while stack:
        location, fields = stack.pop()
        entry = packages[location]
        for field in fields:
            for name in sorted(entry.get(field) or {}):
                found = resolve(packages, location, name)
                if found is None or found in seen:
                    continue  # optional/peer deps for other platforms are simply absent
                target = packages[found]
                seen[found] = target
                if target.get("link"):
                    linked = str(target.get("resolved", ""))
                    if linked in packages and linked not in seen:
                        seen[linked] = packages[linked]
                        stack.append((linked, _ROOT_FIELDS))
                else:
                    stack.append((found, _PACKAGE_FIELDS))
    return seen


def slice_entries(packages: Packages, workspace: str) -> dict[str, str]:
    """location -> "version <entry json>" (or the link target) for the app's resolved closure."""
    own = packages.get(workspace)
    if own is None:
        return {}
    result = {workspace: _fingerprint(own, self_entry=True)}
    for location, entry in closure(packages, workspace).items():
        result[location] = _fingerprint(entry)
    return dict(sorted(result.items()))


def package_slice(packages: Packages, location: str) -> dict[str, str]:
    """location -> fingerprint for an installed package and everything it resolves."""
    if location not in packages:
        return {}
    found = {location: _fingerprint(packages[location])}
    for where, entry in closure(packages, location).items():
        found[where] = _fingerprint(entry)
    return found


def _fingerprint(entry: dict[str, Any], self_entry: bool = False) -> str:
    if entry.get("link"):
        return f"link:{entry.get('resolved', '')}"
    if self_entry:
        # The workspace's own declared ranges: a new dependency changes the key.
        declared = {f: entry.get(f) or {} for f in _ROOT_FIELDS}
        return json.dumps(declared, sort_keys=True)
    # Version, integrity and the rest of the entry, minus the flags npm derives from the
    # whole graph (another app adding a dependency must not change this app's slice).
    own = {k: v for k, v in entry.items() if k not in _GRAPH_FLAGS}
    return f"{entry.get('version', '')} {json.dumps(own, sort_keys=True)}"


def slice_hash(entries: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for location, fingerprint in sorted(entries.items()):
        digest.update(f"{location}\0{fingerprint}\n".encode())
    return digest.hexdigest()


def diff_slices(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """Human lines for `why`: "package-lock.json: lit 3.3.2 -> 3.3.3" (added/removed too)."""
    lines = []
    for location in sorted(set(old) | set(new)):
        before, after = old.get(location), new.get(location)
        if before == after:
            continue
        if "node_modules/" not in location:
            lines.append(f"{location}/package.json: declared dependencies changed")
            continue
        name = location.rpartition("node_modules/")[2] or location
        old_version = before.split(" ")[0] if before else "(absent)"
        new_version = after.split(" ")[0] if after else "(removed)"
        if old_version == new_version:
            new_version += " (entry changed)"
        lines.append(f"package-lock.json: {name} {old_version} -> {new_version}")
    return lines


def workspace_of(root: Path, app_path: Path) -> str:
    """The lockfile location of an app folder ("apps/payments")."""
    return app_path.relative_to(root).as_posix()


def cached_slice_hashes(root: Path, workspaces: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Slice hash per workspace, parsing the lockfile only when its content changed."""
    return cached_lock_hashes(root, _slice_recipes(tuple(workspaces)))


@functools.cache
def _slice_recipes(workspaces: tuple[str, ...]) -> dict[str, Callable[[Packages], str]]:
    """One mapping for all the apps' checks of a run, not one per app (O(apps) each)."""
    return {w: functools.partial(_workspace_hash, w) for w in workspaces}


def _workspace_hash(workspace: str, packages: Packages) -> str:
    return slice_hash(slice_entries(packages, workspace))


def cached_lock_hashes(
    root: Path, wanted: Mapping[str, Callable[[Packages], str]]
) -> dict[str, str]:
    """The `wanted` hashes derived from the lockfile (name -> how to compute it from the
    parsed `packages`), parsing it only when its content changed.

    Cached on disk (`.mfe/lock-slices.json`) by a hash of the lockfile's bytes, so a
    no-op `doit` does not parse a large lockfile, and a lockfile replaced by one of the
    same size and mtime (CI caches and `tar` restore mtimes; coarse-mtime filesystems)
    is still a change. Names computed by other callers for the same bytes (the app
    slices, the shared modules' slice) are kept, so they do not evict one another.
    In-process, each check reuses the first one's result while the file's stat (ctime
    included, which no restore sets) is unchanged.
    """
    lock = root / "package-lock.json"
    try:
        info = lock.stat()
        seen = [info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]
        memo = _MEMO.get(str(lock))
        if memo and memo[0] == seen and wanted.keys() <= memo[1].keys():
            return {name: memo[1][name] for name in wanted}
        data = lock.read_bytes()
    except FileNotFoundError:
        return {name: how({}) for name, how in wanted.items()}
    stamp = [str(lock), hashlib.sha1(data, usedforsecurity=False).hexdigest()]
    hashes = _from_disk(root, stamp)
    if memo and memo[0] == seen:
        hashes.update(memo[1])
    if not wanted.keys() <= hashes.keys():
        packages = parse_lockfile(data.decode("utf-8"), str(lock))
        hashes.update({name: how(packages) for name, how in wanted.items() if name not in hashes})
        with contextlib.suppress(OSError):  # a read-only checkout still works, just slower
            write_atomic(_cache_file(root), json.dumps({"stamp": stamp, "hashes": hashes}))
    _MEMO[str(lock)] = (seen, hashes)
    return {name: hashes[name] for name in wanted}


def _cache_file(root: Path) -> Path:
    return root / STATE_DIR / "lock-slices.json"


def _from_disk(root: Path, stamp: list[str]) -> dict[str, str]:
    """The cached hashes if they were computed from the same lockfile bytes, else none."""
    try:
        cached = json.loads(_cache_file(root).read_text(encoding="utf-8"))
        if cached["stamp"] == stamp and isinstance(cached["hashes"], dict):
            return dict(cached["hashes"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return {}


_MEMO: dict[str, tuple[list[int], dict[str, str]]] = {}


class SeenBeforeBuild:
    """The value an `uptodate` check computed, saved as the task's value once it succeeds.

    doit calls `uptodate` checks before a task runs and its value savers after, so a
    saver that computed its value anew would record a lockfile rewritten while the
    bundler ran (`npm install` in another terminal) as built. It saves what the check
    saw instead, as `mfe.build.snapshot` does for file_dep: the next run sees the change.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.value: str | None = None

    def check(self, values: dict[str, Any], current: str) -> bool:
        self.value = current
        return bool(values.get(self.key) == current)

    def saved(self) -> dict[str, str]:
        # Never checked (doit always checks first): save nothing, so the next run rebuilds.
        return {} if self.value is None else {self.key: self.value}


class SliceUnchanged:
    """doit `uptodate` check: the app's lockfile slice is what it was at the last build.

    Replaces the whole lockfile in `file_dep`, so a lockfile change rebuilds only the
    apps whose resolved dependencies changed. Computed lazily, only when doit asks; the
    slice saved is the one the check saw before the build (`SeenBeforeBuild`).
    """

    def __init__(self, root: Path, workspace: str, workspaces: list[str]) -> None:
        self.root, self.workspace, self.workspaces = root, workspace, tuple(workspaces)
        self.seen = SeenBeforeBuild("_lock_slice")

    def current(self) -> str:
        return cached_slice_hashes(self.root, self.workspaces)[self.workspace]

    def configure_task(self, task: Any) -> None:
        task.value_savers.append(self.seen.saved)

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        return self.seen.check(values, self.current())

    def __repr__(self) -> str:
        return f"SliceUnchanged({self.workspace!r})"
