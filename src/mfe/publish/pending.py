"""Finishing a commit step an earlier command left half done, and recording the pointers a
swap replaces, so that every swapped pointer ends with its history record however the
command that swapped it died (see DESIGN.md, "One live pointer")."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from mfe.errors import MfeError
from mfe.publish.commit import (
    BadCopy,
    Due,
    Written,
    by_distribution,
    commit,
    due_fixed,
    keys_by_app,
    to_invalidate,
)
from mfe.publish.fixed import wanted
from mfe.publish.history import (
    history_key,
    read_record,
    unrecorded,
    write_carried,
    write_record,
)
from mfe.publish.local import SHELL_KEY
from mfe.publish.plan import online_copy
from mfe.publish.pointer import Live
from mfe.publish.remote import s3_errors
from mfe.publish.undo import finish_or_undo, plan_undo, undo
from mfe.publish.versions import ca_key

if TYPE_CHECKING:
    from mfe.publish.run import Run


class Pending(Enum):
    """What `finish_pending` found and did."""

    NONE = "none"
    """The pointer has its history record: nothing was pending."""
    FINISHED = "finished"
    """Its commit step was finished (a rollback's: a plain rollback stops there)."""
    UNDONE = "undone"
    """It named files a prune deleted and was swapped back: read the pointer again."""


def finish_pending(run: Run, live: Live | None) -> Pending:
    """A swapped pointer without its history record: an earlier publish died in its
    commit step (or is in it now; finishing twice is harmless). Finish it, or swap it
    back when it names deleted files (`mfe.publish.undo`)."""
    if not unfinished(run, live):
        return Pending.NONE
    assert live is not None  # `unfinished` says so
    return Pending.UNDONE if _finish(run, live) else Pending.FINISHED


def unfinished(run: Run, live: Live | None) -> bool:
    """Whether `live` is a swapped pointer without its history record (one HEAD)."""
    return live is not None and run.remote(run.parent, history_key(live.seq)) is None


def not_done(live: Live) -> str:
    """The note's start on a pointer whose commit step is not done. Another command may be
    in that step now: no claim that one died."""
    return (
        f"release {live.release} (seq {live.seq}) is live but its commit step is not done "
        "(another command is finishing it, or one was stopped)"
    )


def plan_pending(run: Run, live: Live | None) -> Live | None:
    """`doit plan`'s `finish_pending`: what finishing `live`'s commit step writes (the
    fixed-URL files its buckets do not hold as it has them) and invalidates, counted in
    `run.committed` as that step counts them, nothing written. A pointer naming files its
    buckets lack is swapped back instead (`mfe.publish.undo.plan_undo`): then the commit
    step of the swap back is counted. Returns the pointer the publish goes on from."""
    if not unfinished(run, live):
        return live
    assert live is not None  # `unfinished` says so
    back = plan_undo(run, live)
    pick: Due
    if back is None:
        run.progress.note(f"{not_done(live)}: a publish finishes it")
        pick = run.drift.drifted
    else:  # as `undo`'s commit step after its swap from `live`
        pick = wanted(live, run.parent, run.drift.drifted)
    done = back or live
    due = due_fixed(done.apps, done.page, run.parent, run.buckets, pick)
    written = keys_by_app(due)
    sent = by_distribution(to_invalidate(done, written), run.distributions)
    run.committed.add(done, written, sent, run.distributions)
    return done


def _finish(run: Run, live: Live) -> bool:
    """The commit step of `live`, after recording the pointer it carries (its command
    may have died before `record_replaced`), so every record's predecessor has one;
    True when `live` names files a prune deleted and was undone instead."""
    run.progress.note(f"{not_done(live)}: finishing it")
    run.switched, run.finishing = True, live
    with s3_errors(run.session, run.parent_bucket, f"recording the release before {live.release}"):  # fmt: skip
        write_carried(run.s3, run.parent_bucket, live)
    if finish_or_undo(run, live) is not None:
        run.finishing = None  # swapped back (`run.swap_back`)
        return True
    try:
        written, sent = _commit(run, live)
    except BadCopy as bad:
        if not rendered_again(run, live, bad):
            swap_back_from(run, live, bad)
            run.finishing = None
            return True
        written, sent = _commit(run, live)
    run.committed.add(live, written, sent, run.distributions)
    run.finishing = None  # served now
    for app in {run.parent, *written}:  # history, index.html, fixed URLs changed
        run.listings.pop(app, None)
    return False


def _commit(run: Run, live: Live) -> tuple[Written, dict[str, list[str]]]:
    return commit(
        run.session, live, run.parent, run.buckets, run.distributions,
        run.drift.drifted, run.local_with_page(live), wait=False, note=run.progress.note,
        workers=run.project.publish.workers, finishing=True,
    )  # fmt: skip


def rendered_again(run: Run, live: Live, bad: BadCopy) -> bool:
    """Whether `bad` is the `_ca/` copy of `live`'s page and this checkout renders the very
    same bytes from the pointer's apps: then that copy is uploaded again (and the page
    cache holds it), so the commit step can go on."""
    if (bad.bucket, bad.source) != (run.parent_bucket, ca_key(SHELL_KEY, live.page.sha256)):
        return False
    try:
        page = run.page(live.apps)
    except MfeError:  # an app this checkout cannot render the page with: not the same page
        return False
    if page.sha256 != live.page.sha256:
        return False
    run.progress.note(
        f"{bad.source} in bucket '{bad.bucket}' does not match its sha256 (corrupted?); this "
        "checkout renders the same page from the live pointer: uploading it again"
    )
    copy = online_copy(page)
    run.upload_copy(copy)
    return True


def swap_back_from(run: Run, live: Live, bad: BadCopy) -> None:
    """`live` needs a `_ca/` copy that does not match its sha256 and that nothing here can
    make again: swap back to the release recorded before it (`mfe.publish.undo`), which
    the fixed URLs still serve, instead of failing on it in every later command. The first
    release has nothing to go back to: the error stands."""
    if live.seq == 1:
        raise bad
    app = next((a for a, b in sorted(run.buckets.items()) if b == bad.bucket), run.parent)
    with s3_errors(run.session, run.parent_bucket, f"reading release record {live.seq - 1}"):
        before = read_record(run.s3, run.parent_bucket, live.seq - 1)
    why = "does not match its sha256 (corrupted?) and this checkout cannot make it again"
    undo(run, live, before, [(app, bad.source)], why)


def carry(run: Run, current: Live | None, base: Live | None) -> str | None:
    """What the pointer about to replace `current` carries (`Live.unrecorded`): its bytes
    when it is not `base` (recorded in `finish_pending`) and has no record, so that this
    command dying between its swap and `record_replaced` loses nothing. One carrying its
    own predecessor is finished instead (recording both): pointers never nest deeper."""
    if current is None or (base is not None and current.seq == base.seq):
        return None
    with s3_errors(run.session, run.parent_bucket, f"checking {history_key(current.seq)}"):
        carried = unrecorded(run.s3, run.parent_bucket, current)
    if carried is not None and current.unrecorded is not None:
        _finish(run, current)
        return None
    return carried


def record_replaced(run: Run, previous: Live | None, base: Live | None) -> None:
    """After a swap: record the pointer it replaced, unless that is `base`, the one this
    command read first (and recorded, or found recorded, in `finish_pending`). A pointer
    another command swapped in meanwhile may never be recorded by it (killed before its
    commit step ended); its bytes as read make the record it would write, so a slow one
    writing it later changes nothing (`put_once`)."""
    if previous is None or (base is not None and previous.seq == base.seq):
        return
    with s3_errors(run.session, run.parent_bucket, f"recording release {previous.release}"):
        write_record(run.s3, run.parent_bucket, previous)
