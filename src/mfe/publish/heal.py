"""The `_ca/` copies a rollback's commit step restores fixed URLs from, checked before its
swap: after the swap no command could finish that step with a copy whose bytes do not
match its sha256, so a rollback that would need one is refused, changing nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mfe.errors import MfeError
from mfe.publish.commit import BadCopy, fixed_files, verified_copy
from mfe.publish.local import SHELL_KEY, page_file
from mfe.publish.pointer import Live

if TYPE_CHECKING:
    from mfe.publish.run import Run


def check_copies(run: Run, live: Live, target: Live, app: str | None) -> None:
    """Refuse, before the swap, a rollback whose commit step would need a `_ca/` copy that
    does not match its sha256: after the swap no command could finish that step. Each
    fixed-URL file of the target that the live release serves otherwise (its page, for a
    whole rollback) is checked unless this checkout holds it (the page cache); a page
    checked here is kept there, so the commit step does not read it again."""
    apps = dict(target.apps) if app is None else {app: target.apps[app]}
    page = target.page if app is None else live.page  # an app rollback renders its page
    now = {(a, k): b for a, k, b in fixed_files(live.apps, live.page, run.parent)}
    local = run.local_with_page(target)
    for name, key, b in fixed_files(apps, page, run.parent):
        if now.get((name, key)) == b or b.sha256 in local or name not in run.buckets:
            continue
        try:
            body = verified_copy(run.session, run.buckets[name], key, b)
        except BadCopy as bad:
            env = run.env.name
            raise MfeError(
                f"cannot roll back environment '{env}' to release {target.release}: "
                f"{bad.source} ({name}) in bucket '{bad.bucket}', the copy {key} is restored "
                f"from, does not match its sha256 {b.sha256[:12]} (corrupted?); nothing was "
                f"changed: roll back to another release (`doit releases env={env}`) or publish "
                "a fixed build"
            ) from None
        if (name, key) == (run.parent, SHELL_KEY):
            page_file(run.project, run.env.name, body)
