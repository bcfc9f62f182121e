"""What `publish`, `plan` and `rollback` refuse from their command line alone (an unknown
`app=`, a `preview=` name no URL path can hold, `preview=` with `app=` or an option it has
no use for): checked by the reporter before any task runs (`variables.REFUSE_KEY`), so the
builds and the emulator never start for a command that cannot run, and doit exits 2."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mfe.config import Project
from mfe.errors import MfeError

PREVIEW_OPTIONS = ("prune", "wait", "force", "verify")


def not_for_preview(preview: str, what: str) -> str:
    return (
        f"preview={preview} cannot take {what}: a preview publishes every app this checkout "
        "changed over the live release, and deletes, waits for, forces over or repairs "
        "nothing live; run it without, or without preview="
    )


def refusal(
    project: Project, app: str | None, preview: str | None = None
) -> Callable[[dict[str, Any]], str | None]:
    """The check of a task's command line (`options`: its parsed --flags)."""

    def check(options: dict[str, Any]) -> str | None:
        if app is not None:
            try:
                project.check_app(app)
            except MfeError as exc:
                return str(exc)
        if preview is None:
            return None
        from mfe.publish.previews import check_name  # only for a preview

        try:
            check_name(preview)
        except MfeError as exc:
            return str(exc)
        given = [f"app={app}"] if app else []
        given += [f"--{name}" for name in PREVIEW_OPTIONS if options.get(name)]
        return not_for_preview(preview, " and ".join(given)) if given else None

    return check
