"""Live apps this checkout does not have. The page is rendered from this checkout's apps,
so such an app stays on the next pointer only if the page shows it: `dropped` takes it off
(a removal in a commit after the one it was published from, or forced) or refuses the
publish, or the app rollback, which re-renders the page too. The record marks what it took
off (`recorded`) so `doit releases` says so.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from mfe.errors import MfeError
from mfe.publish.ancestry import has_commit, is_ancestor
from mfe.publish.commit_order import FORCE_HINT
from mfe.publish.pointer import AppVersion, Live


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
    """Where a live version came from; uncommitted changes said as such (`doit releases`
    shows `<commit>-dirty`), with who published them and when."""
    if not version.commit:
        return "published without a commit"
    if not version.dirty:
        return f"published from {version.commit[:12]}"
    by = f" by {version.by}" if version.by else ""
    return f"published from uncommitted changes of {version.commit[:12]}{by} at {version.published}"


def uncommitted(names: list[str]) -> str:
    """What to do about live apps published from uncommitted changes: no pull brings them."""
    them = "it" if len(names) == 1 else "them"
    return (
        f"no pull can bring {', '.join(names)} (uncommitted changes): ask whoever published "
        f"{them} to commit and push, then "
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
        dirty = [n for n in unknown if live.apps[n].dirty]
        todo = (uncommitted(dirty) if dirty else "") + words.then(names)
        raise MfeError(
            f"{words.command} refused: the live page has {which}, which this checkout does not "
            f"have (no apps/<name>/package.json) and which no commit this checkout descends "
            f"from removed (an older commit, or another branch?), so {words.doing} would take "
            f"{names} off the page{after}; {todo}"
        )
    return Dropped(gone, unknown)
