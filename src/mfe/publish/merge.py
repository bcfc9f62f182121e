"""Merge semantics of a publish: which apps it changes, what the next pointer holds.

A publish changes only the apps whose built bytes differ from the version live when it
planned (`base`), other than builds this checkout already published or that live replaced
(`stale`). After a lost race it merges its changed apps over the pointer it lost
to, so another team's app that changed meanwhile is kept. Which commits may replace the
live ones is `mfe.publish.commit_order`'s rule; which live apps this checkout lacks and
takes off, `mfe.publish.dropped_apps`'.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from mfe.publish.ancestry import is_ancestor
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
    app: str,
    files: list[LocalFile],
    entries: list[tuple[str, str]],
    commit: str | None,
    now: str,
    dirty: bool | None = None,
    by: str = "",
) -> Candidate:
    """`dirty`: the checkout's sources differ from `commit` (`releases.published_source`);
    `by`: who publishes it (`history.who`)."""
    mutable = {f.key: blob(f) for f in files if not f.immutable and not f.shell}
    version = AppVersion(version_of(files), commit, now, entries, mutable, dirty=dirty, by=by)
    return Candidate(app, files, version)


REMEMBERED = 20
"""Versions an app's pointer entry lists as replaced; older builds are kept out by the
checkout's own record (`mfe.publish.built_here`) or, with git, by
`commit_order.check_not_older`."""


def _kept_out(live: AppVersion, version: str, built: str | None) -> bool:
    """A build of a version `live` replaced, or the one this checkout published last
    (`built`), which another publish replaced since."""
    return version != live.version and (version in live.replaced or version == built)


def changed_apps(
    base: Live | None, candidates: dict[str, Candidate], held: Collection[str] = ()
) -> list[str]:
    """Apps whose built bytes differ from the version live in `base`, less `held` ones
    (`stale`, unless the publish forces them: a checkout that did not pull another team's
    change must not revert it)."""
    live = base.apps if base else {}
    return [
        name
        for name, cand in candidates.items()
        if name not in held and (name not in live or cand.version.version != live[name].version)
    ]


SHOWN_KEYS = 3
"""How many files a note about many names."""


def shown_keys(keys: list[str]) -> str:
    """`a, b, c and 2 more`: the first few keys of a note."""
    more = f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
    return ", ".join(keys[:SHOWN_KEYS]) + more


def left_online(
    base: Live | None, candidates: dict[str, Candidate], apps: list[str]
) -> dict[str, list[str]]:
    """app -> fixed-URL files its live version has and its new build lacks. The swap
    deletes nothing (a browser may still load them), so they stay online with their old
    bytes until `--prune` finds no kept release naming them."""
    if base is None:
        return {}
    mine = {name: candidates[name].version for name in apps if name in candidates}
    return fixed_dropped(base.apps, mine)


def fixed_dropped(
    before: Mapping[str, AppVersion], after: Mapping[str, AppVersion]
) -> dict[str, list[str]]:
    """app -> fixed-URL keys its version in `before` has and its version in `after` lacks
    (apps in both): nothing deletes them at a swap, publish's or rollback's."""
    found = {}
    for name, version in after.items():
        if name in before:
            gone = set(before[name].mutable) - set(version.mutable)
            if gone:
                found[name] = sorted(gone)
    return found


def stale(
    base: Live | None,
    candidates: dict[str, Candidate],
    built: Mapping[str, str] | None = None,
    root: Path | None = None,
) -> list[str]:
    """Apps built here at a version the live one replaced, or as this checkout published
    them last while another publish replaced them since (kept out of the publish), unless
    `reverted` in this clone at `root`."""
    built = built or {}
    return [
        name
        for name, cand in candidates.items()
        if base is not None
        and name in base.apps
        and _kept_out(base.apps[name], cand.version.version, built.get(name))
        and not reverted(root, cand, base.apps[name])
    ]


def reverted(root: Path | None, cand: Candidate, live: AppVersion) -> bool:
    """Built from a commit after the live version's (publish builds from the checkout's
    sources first): bytes equal to an older version are then a revert made on purpose,
    such as `git revert`. Not over a version a rollback restored (`restored`): the
    checkout may still hold what that rollback took off."""
    ours, theirs = cand.version.commit, live.commit
    return bool(root and ours and theirs and not live.restored and is_ancestor(root, theirs, ours))


def replacing(before: AppVersion | None, after: AppVersion) -> list[str]:
    """`after`'s `replaced` when it goes live over `before` (a publish or an app rollback):
    `before` and what that one had replaced, so a build of them stays out."""
    replaced = [before.version, *before.replaced][:REMEMBERED] if before else []
    return [v for v in replaced if v != after.version]


def merge(
    current: Live | None,
    changed: list[str],
    candidates: dict[str, Candidate],
    forced: Collection[str],
    removed: Collection[str] = (),
) -> dict[str, AppVersion]:
    """The apps of the next pointer: `current`'s, with our changed apps replaced and the
    `removed` ones (`dropped_apps.dropped`) left out."""
    apps = {n: v for n, v in current.apps.items() if n not in removed} if current else {}
    for name in changed:
        mine = candidates[name].version
        apps[name] = replace(mine, forced=name in forced, replaced=replacing(apps.get(name), mine))
    return apps


def swap_due(live: Live | None, changed: list[str], page: LocalFile) -> bool:
    """Whether publishing `changed` with `page` writes the pointer: there is none yet, an app
    changed, or the page did (a template edit)."""
    return live is None or bool(changed) or page.sha256 != live.page.sha256


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
