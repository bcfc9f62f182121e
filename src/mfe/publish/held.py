"""Apps this checkout built at a version live replaced or a rollback took off
(`merge.stale`): a publish keeps them out, and so does a preview (a branch that did not
pull another team's app must not show its old version). Both say so in one wording:
the terminal note, the report's `held` (app -> why) and CI's `kept live:` note.

The wording says where the live version comes from, because that decides what helps:
pulling only helps when this clone has merged the live commit; a live build of uncommitted
edits of this checkout's commit is undone by a rollback; one from a commit not merged here
(another branch, or never pushed) by merging it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mfe.publish.ancestry import has_commit, is_ancestor, unmerged
from mfe.publish.commit_order import published_by, publisher
from mfe.publish.merge import Candidate
from mfe.publish.pointer import Live

FORCE = "`doit publish --force` serves this build"
OR_FORCE = ", or " + FORCE
REPLACED = "live has replaced"


@dataclass(frozen=True)
class Held:
    """Why `app`'s build here is kept out: `taken` (by a rollback or live), where the live
    version comes from (`source`) and what to do (`advice`, without and with `--force`)."""

    app: str
    taken: str
    source: str
    advice: str
    forced: str


def held(root: Path | None, live: Live, cand: Candidate) -> Held:
    """How the kept-out build of `cand.app` relates to its live version."""
    app, version = cand.app, live.apps[cand.app]
    source = f"{_from(version.commit)}, {published_by(app, live)}"
    if version.undid(cand.version.version):
        return Held(app, "a rollback took off", source, "publish a fix", OR_FORCE)
    found = _not_pulled(root, live, cand) if root else None
    if found is not None:
        return Held(app, REPLACED, *found, OR_FORCE)
    pull = "; if you reverted to it on purpose, " + FORCE
    return Held(app, REPLACED, source, "pull and rebuild", pull)


def _not_pulled(root: Path, live: Live, cand: Candidate) -> tuple[str, str] | None:
    """(where live comes from, advice) when pulling cannot bring this checkout to the live
    version: its commit is missing here or not merged (another branch, or never pushed),
    or it is an uncommitted build of a commit this checkout has. None: pulling can."""
    app, version = cand.app, live.apps[cand.app]
    theirs, ours, when = version.commit, cand.version.commit, published_by(app, live)
    if not theirs or not ours:
        return None
    if not has_commit(root, theirs):
        who = publisher(app, live) or "whoever published it (see `doit releases`)"
        return (
            f"from {theirs[:12]}, a commit this clone does not have (another branch, or "
            f"never pushed), {when}",
            f"fetch and merge {theirs[:12]} (if it was never pushed, ask {who} to push it)",
        )
    if unmerged(root, theirs, ours):
        return (
            f"from {theirs[:12]}, a commit not merged here (another branch, or not pushed), {when}",
            f"merge {theirs[:12]} here",
        )
    if version.dirty and (theirs == ours or is_ancestor(root, theirs, ours)):
        at = "this checkout's commit" if theirs == ours else "a commit this checkout has"
        return (
            f"an uncommitted build of {theirs[:12]} ({at}), {when}",
            f"`doit rollback app={app}` takes it off",
        )
    return None


def _from(commit: str | None) -> str:
    return f"from {commit[:12]}" if commit else "from a checkout without a commit"


WHY = "the version built here is one "


def held_why(root: Path | None, live: Live, cand: Candidate) -> str:
    """The report's `held` value for `cand.app` (`PublishReport.held`, the preview's)."""
    found = held(root, live, cand)
    return f"{WHY}{found.taken}; live is {found.source}"


def held_item(app: str, why: str) -> str:
    """`app, a version ...` from a report's `held` entry, without where live comes from
    (the note says it): a one-line summary's item."""
    return f"{app}, a version {why.removeprefix(WHY).split('; live is ')[0]}"


def held_note(root: Path | None, live: Live, cand: Candidate, force: bool) -> str:
    """The terminal note for held `cand.app`, with what to do: `force` when the command has
    `--force` to serve this build anyway (publish; a preview has none)."""
    found = held(root, live, cand)
    advice = found.advice + (found.forced if force else "")
    return (
        f"{found.app} built here is a version {found.taken}; keeping the live one, "
        f"{found.source} ({advice})"
    )
