"""Commit order of a publish: an app built from an older commit than the live one (an
out-of-order CI run) is refused unless forced, or kept live (`keep_later`, `doit ci`); one
built from a commit that has not merged the live one (another branch) is refused even in
`doit ci`, unless forced: its build lacks what is live. The refusals name who published
the live version and what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mfe.errors import MfeError
from mfe.publish.ancestry import fetch_commit, has_commit, is_ancestor, is_shallow, unmerged
from mfe.publish.merge import Candidate
from mfe.publish.pointer import Live


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
    `merge.stale` keeps out, of a version a rollback took off (`AppVersion.undid`) or that live
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
