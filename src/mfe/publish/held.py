"""Apps this checkout built at a version live replaced or a rollback took off
(`merge.stale`): a publish keeps them out, and so does a preview (a branch that did not
pull another team's app must not show its old version). Both say so in one wording:
the terminal note, the report's `held` (app -> why) and CI's `kept live:` note."""

from __future__ import annotations

from mfe.publish.merge import Candidate
from mfe.publish.pointer import Live


def taken_off(live: Live, cand: Candidate) -> str:
    """How the build here relates to its app's live version: a rollback took it off to
    restore that one (`AppVersion.undid`), or live moved past it (publishes replaced it,
    before or after a rollback)."""
    undid = live.apps[cand.app].undid(cand.version.version)
    return "a rollback took off" if undid else "live has replaced"


WHY = "the version built here is one "


def held_why(live: Live, cand: Candidate) -> str:
    """The report's `held` value for `cand.app` (`PublishReport.held`, the preview's)."""
    return WHY + taken_off(live, cand)


def held_item(app: str, why: str) -> str:
    """`app, a version ...` from a report's `held` entry: a one-line summary's item."""
    return f"{app}, a version {why.removeprefix(WHY)}"


def held_note(live: Live, cand: Candidate, force: bool) -> str:
    """The terminal note for held `cand.app`, with what to do: `force` when the command has
    `--force` to serve this build anyway (publish; a preview has none)."""
    app, taken = cand.app, taken_off(live, cand)
    if taken == "a rollback took off":
        advice = "publish a fix" + (
            ", or `doit publish --force` serves this build" if force else ""
        )
    else:
        advice = "pull and rebuild" + (
            "; if you reverted to it on purpose, `doit publish --force` serves this build"
            if force
            else ""
        )
    return f"{app} built here is a version {taken}; keeping the live one ({advice})"
