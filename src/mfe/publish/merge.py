"""Merge semantics of a publish: which apps it changes, what the next pointer holds.

A publish changes only the apps whose built bytes differ from the version live when it
planned (`base`). After a lost race it merges its changed apps over the pointer it lost
to, so another team's app that changed meanwhile is kept. An app built from a commit that
is an ancestor of the live version's commit is refused (an out-of-order CI run must not
revert a newer app) unless forced.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

from mfe.errors import MfeError
from mfe.publish.local import LocalFile
from mfe.publish.pointer import AppVersion, Blob, Live
from mfe.publish.versions import blob, version_of


@dataclass(frozen=True)
class Candidate:
    """One locally built app as it would go live."""

    app: str
    files: list[LocalFile]
    version: AppVersion


def candidate(
    app: str, files: list[LocalFile], entries: list[tuple[str, str]], commit: str | None, now: str
) -> Candidate:
    mutable = {f.key: blob(f) for f in files if not f.immutable and not f.shell}
    version = AppVersion(version_of(files), commit, now, entries, mutable)
    return Candidate(app, files, version)


REMEMBERED = 20


def changed_apps(
    base: Live | None, candidates: dict[str, Candidate], force: bool = False
) -> list[str]:
    """Apps whose built bytes differ from the version live in `base`, except builds of a
    version that live one replaced (a checkout that did not pull another team's change
    must not revert it) unless `force`."""
    found = []
    for name, cand in candidates.items():
        live = base.apps.get(name) if base else None
        version = cand.version.version
        if live is not None and version == live.version:
            continue
        if live is not None and version in live.replaced and not force:
            continue
        found.append(name)
    return found


def stale(base: Live | None, candidates: dict[str, Candidate]) -> list[str]:
    """Apps built here at a version the live one replaced (kept out of the publish)."""
    return [
        name
        for name, cand in candidates.items()
        if base is not None
        and name in base.apps
        and cand.version.version in base.apps[name].replaced
    ]


def is_ancestor(root: Path, older: str, newer: str) -> bool:
    """True when `older` is a strict ancestor of `newer` in this clone's history."""
    if older == newer:
        return False
    try:
        found = subprocess.run(
            ["git", "merge-base", "--is-ancestor", older, newer],
            cwd=root,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        return False
    return found.returncode == 0


def has_commit(root: Path, commit: str) -> bool:
    """Is `commit` in this clone's history (a shallow clone lacks older and newer ones)?"""
    try:
        found = subprocess.run(
            ["git", "cat-file", "-e", f"{commit}^{{commit}}"],
            cwd=root,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        return True  # no git: no order to check, as is_ancestor says
    return found.returncode == 0


def check_not_older(
    root: Path, live: Live | None, changed: list[str], candidates: dict[str, Candidate], force: bool
) -> list[str]:
    """Refuse (MfeError) an app whose live version comes from a newer commit; returns the
    apps that `force` let through (recorded in the history)."""
    forced = []
    for name in changed:
        ours = candidates[name].version.commit
        theirs = live.apps[name].commit if live and name in live.apps else None
        if not ours or not theirs:
            continue
        if not has_commit(root, theirs):
            if not force:
                raise MfeError(
                    f"{name} is live at {theirs[:12]}, a commit this clone does not have, so "
                    f"publish cannot tell whether it is newer than {ours[:12]}: fetch it "
                    "(in CI: checkout with fetch-depth: 0) or pass --force"
                )
        elif not is_ancestor(root, ours, theirs):
            continue
        elif not force:
            raise MfeError(
                f"{name} is live at {theirs[:12]}, newer than this checkout's {ours[:12]}; "
                "pass --force or use doit rollback"
            )
        forced.append(name)
    return forced


def replacing(before: AppVersion | None, after: AppVersion) -> list[str]:
    """`after`'s `replaced` when it goes live over `before` (a publish or an app rollback):
    `before` and what that one had replaced, so a build of them stays out."""
    replaced = [before.version, *before.replaced][:REMEMBERED] if before else []
    return [v for v in replaced if v != after.version]


def merge(
    current: Live | None, changed: list[str], candidates: dict[str, Candidate], forced: list[str]
) -> dict[str, AppVersion]:
    """The apps of the next pointer: `current`'s, with our changed apps replaced."""
    apps = dict(current.apps) if current else {}
    for name in changed:
        mine = candidates[name].version
        apps[name] = replace(mine, forced=name in forced, replaced=replacing(apps.get(name), mine))
    return apps


def fixed_changes(
    previous: dict[str, AppVersion], apps: dict[str, AppVersion]
) -> dict[str, dict[str, Blob]]:
    """app -> fixed-URL files whose bytes or headers differ from `previous`."""
    found: dict[str, dict[str, Blob]] = {}
    for name, version in apps.items():
        before = previous[name].mutable if name in previous else {}
        diff = {key: b for key, b in version.mutable.items() if before.get(key) != b}
        if diff:
            found[name] = diff
    return found


def invalidation_paths(
    previous: Live | None, apps: dict[str, AppVersion], page: Blob, parent: str
) -> dict[str, list[str]]:
    """app -> paths to invalidate: changed fixed-URL files that were served before."""
    if previous is None:
        return {}
    paths: dict[str, list[str]] = {}
    for name, diff in fixed_changes(previous.apps, apps).items():
        served = previous.apps[name].mutable if name in previous.apps else {}
        keys = [key for key in diff if key in served]
        if keys:
            paths[name] = ["/" + key for key in sorted(keys)]
    if page.sha256 != previous.page.sha256 or page.cache_control != previous.page.cache_control:
        paths.setdefault(parent, []).append("/index.html")
    return {name: sorted(p) for name, p in sorted(paths.items())}
