"""Apps this checkout built at a version live replaced or a rollback took off
(`merge.stale`): a publish keeps them out, and so does a preview (a branch that did not
pull another team's app must not show its old version). Both say so in one wording:
the terminal note, the report's `held` (app -> why) and CI's `kept live:` note."""

from __future__ import annotations

from mfe.publish.pointer import Live


def taken_off(live: Live, app: str) -> str:
    """How the build here relates to `app`'s live version: a rollback restored that one
    (the build may be what it took off), or live moved past the build."""
    return "a rollback took off" if live.apps[app].restored else "live has replaced"


WHY = "the version built here is one "


def held_why(live: Live, app: str) -> str:
    """The report's `held` value for `app` (`PublishReport.held`, the preview report's)."""
    return WHY + taken_off(live, app)


def held_item(app: str, why: str) -> str:
    """`app, a version ...` from a report's `held` entry: a one-line summary's item."""
    return f"{app}, a version {why.removeprefix(WHY)}"


def held_note(live: Live, app: str, force: bool) -> str:
    """The terminal note for held `app`, with what to do: `force` when the command has
    `--force` to serve this build anyway (publish; a preview has none)."""
    if live.apps[app].restored:
        advice = "publish a fix" + (
            ", or `doit publish --force` serves this build" if force else ""
        )
    else:
        advice = "pull and rebuild" + (
            "; if you reverted to it on purpose, `doit publish --force` serves this build"
            if force
            else ""
        )
    return f"{app} built here is a version {taken_off(live, app)}; keeping the live one ({advice})"
