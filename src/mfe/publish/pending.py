"""Finishing a commit step an earlier command left half done, and recording the pointers a
swap replaces, so that every swapped pointer ends with its history record however the
command that swapped it died (see DESIGN.md, "One live pointer")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mfe.publish.commit import commit
from mfe.publish.history import history_key, unrecorded, write_carried, write_record
from mfe.publish.pointer import Live
from mfe.publish.remote import s3_errors
from mfe.publish.undo import finish_or_undo

if TYPE_CHECKING:
    from mfe.publish.run import Run


def finish_pending(run: Run, live: Live | None) -> bool:
    """A swapped pointer without its history record: an earlier publish died in its
    commit step (or is in it now; finishing twice is harmless). Finish it. True when
    it named deleted files and was swapped back instead (`mfe.publish.undo`): the
    caller reads the pointer again."""
    if live is None or run.remote(run.parent, history_key(live.seq)) is not None:
        return False
    return _finish(run, live)


def _finish(run: Run, live: Live) -> bool:
    """The commit step of `live`, after recording the pointer it carries (its command
    may have died before `record_replaced`), so every record's predecessor has one;
    True when `live` names files a prune deleted and was undone instead."""
    run.progress.note(  # another command may be in that step now: no claim that one died
        f"release {live.release} (seq {live.seq}) is live but its commit step is not done "
        "(another command is finishing it, or one was stopped): finishing it"
    )
    run.switched = True
    with s3_errors(run.session, run.parent_bucket, f"recording the release before {live.release}"):  # fmt: skip
        write_carried(run.s3, run.parent_bucket, live)
    if finish_or_undo(run, live) is not None:
        return True
    written, sent = commit(
        run.session, live, run.parent, run.buckets, run.distributions,
        run.drift.drifted, run.local_by_sha(), wait=False, note=run.progress.note,
        workers=run.project.publish.workers, finishing=True,
    )  # fmt: skip
    run.committed.add(live, written, sent, run.distributions)
    for app in {run.parent, *written}:  # history, index.html, fixed URLs changed
        run.listings.pop(app, None)
    return False


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
