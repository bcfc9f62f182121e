"""Undoing a swap whose pointer names files a concurrent `--prune` deleted.

A rollback makes its target's old files young before its swap (`mfe.publish.refresh`),
but any step can be delayed past `grace_seconds` (a laptop suspended mid-rollback): a
prune that read the pointer before the swap may then delete those files and their spare
copies. No time rule closes that, so the pointer is swapped again (compare-and-swap) back
to what it replaced: a new seq serving the apps and page of the pointer before it, whose
files that prune kept (it was live, or the newest record, when the prune read it). Both
seqs get a history record, as every swap does. Whoever finds such a pointer undoes it: the
rollback itself (`mfe.publish.rollback_swap.undone`), or the next command finishing its
commit step (`pending.finish_pending`: a rollback stopped right after its swap), which
would otherwise fail on the missing files forever.

A pointer someone swapped past meanwhile is never swapped over: their release stays, and
the error names it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from mfe.errors import MfeError
from mfe.publish.history import (
    Recorded,
    history_key,
    new_release_id,
    read_record,
    summary,
    unrecorded,
    who,
)
from mfe.publish.interrupted import SwapBack
from mfe.publish.merge import invalidation_paths
from mfe.publish.pointer import AppVersion, Blob, Live, compare_and_swap
from mfe.publish.refresh import HOLD_PREFIX, Reuse, copy_within, described
from mfe.publish.releases import now_iso
from mfe.publish.remote import s3_errors

if TYPE_CHECKING:
    from mfe.publish.run import Run


def absent(run: Run, live: Live) -> list[tuple[str, str]]:
    """(app, key) of every object `live` names (its versions' files, its page copy) that
    its bucket lacks, after copying back any a rollback's spare copy under `_hold/` still
    holds (that rollback is restoring it: not a reason to undo)."""
    return [
        (app, key)
        for app, key, spare in missing_named(run, live, fresh=True)
        if spare is None or not copy_within(run, app, spare, key, {})
    ]


def missing_named(run: Run, live: Live, fresh: bool) -> list[tuple[str, str, str | None]]:
    """(app, key, spare) of every object `live` names that its bucket's listing lacks, with
    the key of its spare copy under `_hold/` when the bucket has one. `fresh`: list again
    (a listing made before a swap would miss its files) and forget the listings after."""
    named = Reuse(run)
    found: list[tuple[str, str, str | None]] = []
    for app in sorted({*live.apps, run.parent} & set(run.buckets)):
        if fresh:
            run.listings.pop(app, None)
        listing = run.listing(app)
        spares = {k.split("/", 2)[2]: k for k in listing if k.startswith(HOLD_PREFIX)}
        found += [
            (app, key, spares.get(key)) for key in sorted(named.named(live, app) - set(listing))
        ]
        if fresh:
            run.listings.pop(app, None)
    return found


def undo(
    run: Run,
    broken: Live,
    before: Live,
    gone: list[tuple[str, str]],
    why: str = "deleted by a concurrent --prune",
) -> Live:
    """Swap from `broken` to a new pointer serving `before` again, record `broken`, commit;
    `why`: what is wrong with the `gone` objects, for the note. Raises MfeError, changing
    nothing, when the pointer is no longer `broken`."""
    env = run.env.name
    state = run.swap_back = SwapBack(broken, before)  # what Ctrl-C's message says

    def make(current: Live | None) -> Live:
        if current is None or current.seq != broken.seq:
            raise moved(env, broken, current, gone)
        with s3_errors(run.session, run.parent_bucket, f"checking {history_key(broken.seq)}"):
            carried = unrecorded(run.s3, run.parent_bucket, current)
        apps = dict(before.apps)
        changed = sorted(n for n in apps if broken.apps.get(n) != apps[n]) or [run.parent]
        state.made = rollback_pointer(run, broken, before, apps, before.page, changed, carried)
        return state.made

    run.progress.note(
        f"{described(gone)} named by release {broken.release} (seq {broken.seq}) {why}: "
        f"serving release {before.release} again"
    )
    with s3_errors(run.session, run.parent_bucket, "swapping the live pointer back"):
        new, _ = compare_and_swap(
            run.s3, run.parent_bucket, make, first=run.read_live(),
            conditional=lambda: run.conditional, history=Recorded(run.s3, run.parent_bucket),
        )  # fmt: skip
    assert new is not None
    state.made, state.swapped = new, True
    run.record_replaced(broken, None)
    run.commit_step(new, broken, False)
    state.done = True
    return new


def rollback_pointer(
    run: Run,
    current: Live,
    target: Live,
    apps: dict[str, AppVersion],
    page: Blob,
    changed: list[str],
    carried: str | None,
    app: str | None = None,
) -> Live:
    """The pointer a rollback swaps in over `current` to serve `target` again (its `apps`,
    or one `app` of it, and `page`): a rollback's, an app rollback's or an undo's swap back.
    It records what it took off (`current`'s release: all of it, or `app` of it), and the
    commit what it serves again was built from (`source`)."""
    commit, dirty = source(target, app)
    return Live(
        seq=current.seq + 1,
        release=new_release_id(page.sha256, current.release),
        created=now_iso(),
        apps=apps,
        page=page,
        changed=changed,
        action="rollback",
        by=who(run.project.root),
        commit=commit,
        rollback_of=target.release,
        rollback_app=app,
        took_off=current.release,
        dirty=dirty,
        invalidations=invalidation_paths(current, apps, page, run.parent),
        unrecorded=carried,
    )


def source(target: Live, app: str | None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of what a rollback to `target` serves again, as `doit releases`
    shows a record's commit for the apps it changed: `target`'s for a whole rollback (its
    stored page and versions); for `app`, the commit that version was built from, which
    need not be `target`'s (another team's publish of another app made `target`). Its dirt
    is `target`'s only when `target` was published from that commit, else not known."""
    if app is None:
        return target.commit, target.dirty
    commit = target.apps[app].commit
    return commit, target.dirty if commit == target.commit else None


def moved(env: str, broken: Live, current: Live | None, gone: list[tuple[str, str]]) -> MfeError:
    """The undo lost its race: someone swapped past `broken`; their release stays."""
    now = "no live pointer" if current is None else summary(current)
    return MfeError(
        f"release {broken.release} (seq {broken.seq}) of environment '{env}' names "
        f"{described(gone)}, which a concurrent --prune deleted, and it could not be swapped "
        f"back: {now} replaced it meanwhile and stays live; check that it loads (`doit "
        f"releases env={env}`) and publish a fixed build if it still names those files"
    )


def finish_or_undo(run: Run, live: Live) -> Live | None:
    """Before finishing `live`'s commit step: undo it (returning the new pointer) when it
    names deleted files, from the release recorded before it; None: finish it."""
    gone = absent(run, live) if live.seq > 1 else []  # the first has nothing to go back to
    if not gone:
        return None
    with s3_errors(run.session, run.parent_bucket, f"reading release record {live.seq - 1}"):
        before = read_record(run.s3, run.parent_bucket, live.seq - 1)
    return undo(run, live, before, gone)


PLANNED = "(swap back)"
"""The release id `doit plan` shows for the swap back a publish would make (`plan_undo`):
the real one is made from the time of that swap."""


def plan_undo(run: Run, live: Live) -> Live | None:
    """`doit plan`'s `finish_or_undo`, writing nothing: the pointer a publish would swap in
    over `live` when `live` names files its buckets lack (and no spare copy under `_hold/`
    holds), serving the release recorded before it again; None: a publish finishes `live`.
    It lists the buckets of `live`'s apps, which a plan of the changed apps lists anyway."""
    if live.seq == 1:  # the first has nothing to go back to
        return None
    gone = [(a, k) for a, k, spare in missing_named(run, live, fresh=False) if spare is None]
    if not gone:
        return None
    with s3_errors(run.session, run.parent_bucket, f"reading release record {live.seq - 1}"):
        before = read_record(run.s3, run.parent_bucket, live.seq - 1)
    apps = dict(before.apps)
    changed = sorted(n for n in apps if live.apps.get(n) != apps[n]) or [run.parent]
    back = rollback_pointer(run, live, before, apps, before.page, changed, None)
    run.progress.note(
        f"release {live.release} (seq {live.seq}) is live but its commit step is not done, "
        f"and {described(gone)} named by it are gone from the buckets (pruned?): a publish "
        f"swaps back first, serving release {before.release} (seq {before.seq}) again as "
        f"seq {back.seq}"
    )
    return replace(back, release=PLANNED)
