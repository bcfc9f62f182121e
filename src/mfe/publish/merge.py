"""Merge semantics of a publish: which apps it changes, what the next pointer holds.

A publish changes only the apps whose built bytes differ from the version live when it
planned (`base`), other than builds this checkout already published or that live replaced
(`stale`). After a lost race it merges its changed apps over the pointer it lost
to, so another team's app that changed meanwhile is kept. An app built from a commit that
is an ancestor of the live version's commit is refused (an out-of-order CI run must not
revert a newer app) unless forced; `doit ci` keeps that app live instead (`keep_later`).
One built from a commit that has not merged the live one (another branch) is refused
even in `doit ci`, unless forced: its build lacks what is live. A live app this
checkout does not have stays on the pointer's page only if the page renders it, so
`dropped` takes it off (a removal in a commit after the one it was published from, or
forced) or refuses the publish (or the app rollback, which re-renders the page too).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
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
checkout's own record (`mfe.publish.built_here`) or, with git, by `check_not_older`."""


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


def is_ancestor(root: Path, older: str, newer: str) -> bool:
    """True when `older` is a strict ancestor of `newer` in this clone's history."""
    return older != newer and _ancestry(root, older, newer) == 0


def unmerged(root: Path, live: str, ours: str) -> bool:
    """True when git says `live` is not in `ours`' history (another branch, not merged
    here). False when it cannot tell (no git, a commit this clone lacks) or they are equal:
    no order known, nothing to refuse."""
    return live != ours and _ancestry(root, live, ours) == 1  # 128: an error, not an answer


def _ancestry(root: Path, older: str, newer: str) -> int | None:
    """`git merge-base --is-ancestor`'s exit code (0: it is, 1: it is not); None: no git."""
    try:
        return subprocess.run(
            ["git", "merge-base", "--is-ancestor", older, newer],
            cwd=root,
            capture_output=True,
            check=False,
        ).returncode
    except FileNotFoundError:
        return None


def is_shallow(root: Path) -> bool:
    """A shallow clone's history stops early, so a commit it has can look unmerged."""
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--is-shallow-repository"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        return False
    return found.stdout.strip() == "true"


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


def fetch_commit(root: Path, commit: str) -> bool:
    """Fetch `commit` from `origin` (a CI run cloned before it was pushed); whether this
    clone has it now. Never prompts: a CI job has no one to answer."""
    ssh = os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    quiet = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": ssh}
    command = ["git", "fetch", "--quiet", "--no-tags", "origin", commit]
    try:
        subprocess.run(command, cwd=root, env=quiet, capture_output=True, check=False, timeout=120)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return has_commit(root, commit)


def superseded(
    root: Path, live: Live | None, changed: list[str], candidates: dict[str, Candidate]
) -> dict[str, str]:
    """app -> live commit, for the `changed` apps whose live version comes from a commit
    that descends from this checkout's (a CI run of a later commit finished first; one
    pushed after this clone was made is fetched)."""
    found = {}
    for name in changed:
        ours = candidates[name].version.commit
        theirs = live.apps[name].commit if live and name in live.apps else None
        if not ours or not theirs:
            continue
        if (has_commit(root, theirs) or fetch_commit(root, theirs)) and is_ancestor(
            root, ours, theirs
        ):
            found[name] = theirs
    return found


def keep_later(
    root: Path,
    live: Live | None,
    apps: list[str],
    candidates: dict[str, Candidate],
    found: dict[str, str],
    note: Callable[[str], None],
) -> list[str]:
    """`apps` without the `superseded` ones (`doit ci`: this run finished after a run of a
    later commit), each noted once and added to `found` (app -> that commit)."""
    later = superseded(root, live, apps, candidates)
    for name, theirs in later.items():
        if name not in found:
            ours = candidates[name].version.commit or ""
            note(
                f"{name} is live from {theirs[:12]}, a later commit than this checkout's "
                f"{ours[:12]}: superseded, it stays live (nothing to publish for {name})"
            )
    found.update(later)
    return [name for name in apps if name not in later]


FORCE_HINT = "pass --force"
"""How a refusal says to force it: `doit publish` takes --force; `doit ci` has none and
passes `CI_FORCE_HINT`."""
CI_FORCE_HINT = (
    "run `doit publish --force` from a checkout of this commit (`doit ci` has no --force)"
)


def check_not_older(
    root: Path,
    live: Live | None,
    changed: list[str],
    candidates: dict[str, Candidate],
    force: bool,
    force_hint: str = FORCE_HINT,
) -> list[str]:
    """Refuse (MfeError) an app whose live version comes from a newer commit, or from one
    this checkout has not merged (another branch: its build lacks what is live, and a
    fetch alone must not turn the "does not have" refusal into an overwrite); returns the
    apps that `force` let through (recorded in the history)."""
    forced = []
    for name in changed:
        ours = candidates[name].version.commit
        theirs = live.apps[name].commit if live and name in live.apps else None
        if not ours or not theirs or live is None:
            continue
        if not has_commit(root, theirs):
            if not force:
                raise missing_commit(name, live, ours, force_hint)
        elif is_ancestor(root, ours, theirs):
            if not force:
                raise MfeError(
                    f"{name} is live at {theirs[:12]}, newer than this checkout's "
                    f"{ours[:12]}; {force_hint} or use doit rollback"
                )
        elif not unmerged(root, theirs, ours):
            continue
        elif not force:
            raise not_merged(root, name, live, ours, force_hint)
        forced.append(name)
    return forced


def not_merged(root: Path, app: str, live: Live, ours: str, force_hint: str) -> MfeError:
    """Refusing `app`, live from a commit this checkout's history does not include: who
    published it and when, and to merge it here first."""
    theirs = (live.apps[app].commit or "")[:12]
    shallow = (
        " (this clone is shallow, so a commit it does include can look unmerged: fetch the "
        "full history, `git fetch --unshallow`, in CI checkout with fetch-depth: 0)"
        if is_shallow(root)
        else ""
    )
    return MfeError(
        f"{app} is live at {theirs} ({published_by(app, live)}), a commit that this "
        f"checkout's {ours[:12]} has not merged (another branch?){shallow}: publishing would "
        f"replace it with a build that lacks its changes; merge or rebase onto {theirs} and "
        f"publish again, or {force_hint}"
    )


def forced_over(root: Path, live: Live, app: str, cand: Candidate, newer: bool) -> str:
    """What `--force` published `app` over, as its note and the record say: a newer live
    commit or one not merged here (`newer`: let through by `check_not_older`), or a build
    `stale` keeps out, of a version a rollback took off (`AppVersion.undid`) or that live
    replaced."""
    version = live.apps[app]
    commit = version.commit or ""
    if newer:
        if not has_commit(root, commit):
            return f"a live commit {commit[:12]} this clone lacks"
        if is_ancestor(root, cand.version.commit or "", commit):
            return f"a newer commit {commit[:12]}"
        return f"a commit not merged here {commit[:12]}"
    if version.undid(cand.version.version):
        return "a version a rollback took off"
    return "a version live has replaced"


def publisher(app: str, live: Live) -> str | None:
    """Who published `app`'s live version: its own record, else (a pointer older than that)
    the pointer's when its own release published the app (a rollback's `by` restored
    someone else's build)."""
    if live.apps[app].by:
        return live.apps[app].by
    return live.by if live.action == "publish" and app in live.changed and live.by else None


def published_by(app: str, live: Live) -> str:
    """`published <when>[ by <who>]`: `app`'s live version, as refusals name it."""
    by = publisher(app, live)
    return f"published {live.apps[app].published}{f' by {by}' if by else ''}"


def missing_commit(app: str, live: Live, ours: str, force_hint: str = FORCE_HINT) -> MfeError:
    """Refusing `app`, live from a commit this clone lacks: when and by whom it was
    published, as fetching cannot help if that commit was never pushed."""
    version = live.apps[app]
    by = publisher(app, live)
    return MfeError(
        f"{app} is live at {(version.commit or '')[:12]}, a commit this clone does not have "
        f"({published_by(app, live)}), so publish cannot "
        f"tell whether it is newer than {ours[:12]}: fetch it (in CI: checkout with "
        f"fetch-depth: 0); if it was never pushed, ask "
        f"{by or 'whoever published it (see `doit releases`)'} to push it; or {force_hint}"
    )


@dataclass(frozen=True)
class Dropped:
    """Live apps this checkout does not have, which the next pointer leaves out (the page,
    rendered from this checkout's apps, cannot show them)."""

    removed: list[str] = field(default_factory=list)
    forced: list[str] = field(default_factory=list)
    """The removed apps only `--force` let go (no newer commit of this checkout removed them)."""


def removed_since(root: Path, published: str | None, head: str | None) -> bool:
    """Whether HEAD descends from the commit an app version was published from (so a commit
    after it removed the app). No commit on either side, or one this clone lacks: cannot
    tell, so no."""
    if not published or not head or not has_commit(root, published):
        return False
    return is_ancestor(root, published, head)


RACED = (
    " (another publish put it live while this one ran; what this one uploaded is "
    "content-addressed and changes nothing served)"
)
"""How `dropped` says a refusal on a re-read pointer left the store."""


def recorded(changed: list[str], removed: list[str]) -> list[str]:
    """A record's `changed`: the changed apps, then each removed one marked so `doit
    releases` says it was taken off."""
    return [*changed, *(f"{name} (removed)" for name in removed)]


def changed_only(changed: list[str], removed: list[str]) -> list[str]:
    """A record's `changed` without the marks `recorded` gave the removed apps."""
    marks = set(recorded([], removed))
    return [name for name in changed if name not in marks]


def published_from(version: AppVersion) -> str:
    return (
        f"published from {version.commit[:12]}" if version.commit else "published without a commit"
    )


@dataclass(frozen=True)
class Refusal:
    """How `dropped` words its refusal for the command it stops (publish, an app rollback):
    that command, the change that would take the apps off, what to do instead (given the
    apps' names)."""

    command: str
    doing: str
    then: Callable[[str], str]


def publishing(env: str, force_hint: str = FORCE_HINT) -> Refusal:
    return Refusal(
        f"publish to environment '{env}'",
        "publishing",
        lambda names: (
            f"pull and publish again; to take {names} off the page on purpose, {force_hint}"
        ),
    )


def dropped(
    root: Path,
    env: str,
    live: Live | None,
    apps: Collection[str],
    head: str | None,
    force: bool,
    after: str = "",
    refusal: Refusal | None = None,
) -> Dropped:
    """The live apps missing from `apps` (this checkout's) that the next pointer drops: each
    removed in a commit HEAD descends from, or any with `force`. Others refuse the publish
    (or `refusal`'s command; MfeError; `after` says what it already did): an older checkout
    or another branch must not silently take another team's app off the page."""
    gone = sorted(set(live.apps) - set(apps)) if live else []
    if not live or not gone:
        return Dropped()
    unknown = [n for n in gone if not removed_since(root, live.apps[n].commit, head)]
    if unknown and not force:
        names = ", ".join(unknown)
        which = ", ".join(f"{n} ({published_from(live.apps[n])})" for n in unknown)
        words = refusal or publishing(env)
        raise MfeError(
            f"{words.command} refused: the live page has {which}, which this checkout does not "
            f"have (no apps/<name>/package.json) and which no commit this checkout descends "
            f"from removed (an older commit, or another branch?), so {words.doing} would take "
            f"{names} off the page{after}; {words.then(names)}"
        )
    return Dropped(gone, unknown)


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
    `removed` ones (`dropped`) left out."""
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
