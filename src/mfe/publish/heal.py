"""Fixed-URL files whose bytes cannot be had, or that the buckets lost: a rollback
checks before its swap the `_ca/` copies its commit step will restore from (after the swap
no command could finish that step with a bad one), and `--verify` or a failed smoke check
writes back the live release's fixed-URL files (its page included) that a hand deleted
or overwrote, which no commit step would (the pointer does not move), after uploading
again its page's `_ca/` copy if that went bad (what a rollback or a commit step restores
the page from). `doit plan` finds them with the same code (`lost`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mfe.errors import MfeError, missing_key
from mfe.publish.commit import (
    BadCopy,
    Fixed,
    Written,
    apply_fixed,
    by_distribution,
    converge,
    due_fixed,
    fixed_files,
    invalidated,
    merged,
    verified_copy,
    with_distribution,
)
from mfe.publish.fixed import Drift, differs
from mfe.publish.invalidate import invalidate
from mfe.publish.local import SHELL_KEY, LocalFile, page_file
from mfe.publish.merge import shown_keys
from mfe.publish.plan import online_copy
from mfe.publish.pointer import Live
from mfe.publish.versions import ca_key

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
        except MfeError as gone:
            if gone.__context__ is None or not missing_key(gone.__context__):
                raise
            raise MfeError(  # a prune deleted it: as `rollback_swap.check_complete` says
                f"cannot roll back environment '{run.env.name}' to release {target.release}: "
                f"{ca_key(key, b.sha256)} ({name}) is no longer in bucket "
                f"'{run.buckets[name]}' (pruned?); publish a fixed build instead"
            ) from None
        if (name, key) == (run.parent, SHELL_KEY):
            page_file(run.project, run.env.name, body)


@dataclass(frozen=True)
class Lost:
    """What of a live release its buckets lost or hold other bytes of."""

    files: list[Fixed]
    """Its fixed-URL files to write back, page last."""
    page_copy: LocalFile | None
    """Its page's `_ca/` copy to upload again (this checkout holds the page's bytes)."""
    copy_gone: bool
    """Whether that copy is missing or other bytes, whether or not it can be uploaded."""

    def described(self, release: str) -> str:
        """`N fixed-URL file(s) of release R missing or changed in their buckets (...)`."""
        said = ["its page's `_ca/` copy"] if self.copy_gone else []
        if self.files:
            shown = shown_keys([f"{key} ({app})" for app, key, _ in self.files])
            said.append(f"{len(self.files)} fixed-URL file(s) ({shown})")
        return f"release {release}: {' and '.join(said)} missing or changed in their buckets"


def lost(run: Run, live: Live, drift: Drift) -> Lost:
    """The fixed-URL files of `live` and its page's `_ca/` copy that their buckets lost or
    hold other bytes of, looked up through `drift` (one HEAD each, or a listing this command
    made): what `heal` writes back and `doit plan` lists."""
    files = due_fixed(live.apps, live.page, run.parent, run.buckets, drift.drifted)
    key = ca_key(SHELL_KEY, live.page.sha256)
    gone = run.parent in run.buckets and differs(drift.remote(run.parent, key), live.page)
    page = run.local_with_page(live).get(live.page.sha256) if gone else None
    return Lost(files, online_copy(page) if page else None, gone)


def unrestorable(run: Run, live: Live) -> str:
    """A bad page copy this checkout cannot upload again: what it means, what to do."""
    return (
        f"{ca_key(SHELL_KEY, live.page.sha256)} ({run.parent}) in bucket "
        f"'{run.parent_bucket}' does not hold release {live.release}'s page and this checkout "
        "does not hold that page to upload it again: a rollback to that release would be "
        "refused; publish again (a template change) to serve a page whose copy is intact"
    )


def heal(run: Run) -> Written:
    """Write back the live release's fixed-URL files (its page included) that their
    buckets lost or hold other bytes of (deleted or overwritten by hand: the pointer
    does not move, so no commit step would), from this checkout's bytes or their
    verified `_ca/` copies, and invalidate them; first upload again the page's `_ca/`
    copy if it went bad and this checkout holds the page. `--verify` and the smoke
    check's repair. Looked up afresh (HEADs), as a listing made before the commit step
    is out of date."""
    live, _ = run.read_live()
    if live is None:
        return {}
    workers = run.project.publish.workers
    found = lost(run, live, Drift(run.session, run.buckets, {}, workers))
    if not found.files and not found.copy_gone:
        return {}
    copy = found.page_copy
    doing = ["uploading the page's copy again"] if copy else []
    doing += ["writing the files back"] if found.files else []
    if doing:
        run.progress.note(f"{found.described(live.release)}: {', then '.join(doing)}")
    if found.copy_gone and copy is None:
        run.progress.note(unrestorable(run, live))
    if copy is not None:
        run.upload_copy(copy)
        row = run.row(run.parent)
        row.uploads += [] if copy in row.uploads else [copy]
    due = found.files
    if not due:
        return {}
    run.switched = True
    local = run.local_with_page(live)
    written = apply_fixed(run.session, live, run.parent, run.buckets, lambda _: due, local, workers)
    newer = converge(run.session, live, run.parent, run.buckets, local, workers)
    written = merged(written, newer)
    paths = with_distribution(invalidated({}, written), run.distributions)
    sent = by_distribution(paths, run.distributions)
    # Its own caller reference: the release's names the commit step's invalidation.
    reference = f"{live.release}-healed-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
    for dist, found_paths in sent.items():
        session = run.session
        made = invalidate(
            session.cloudfront,
            run.env.name,
            dist,
            found_paths,
            reference,
            None,
            session.backend.lost,
        )
        run.progress.note(
            f"invalidating {', '.join(found_paths)} on distribution {dist} (invalidation {made})"
        )
    done = run.committed
    done.written = merged(done.written, written)
    done.invalidated = merged(done.invalidated, paths)
    done.sent = merged(done.sent, sent)
    for app in written:
        run.row(app).written = done.written[app]
    return written
