"""A rollback's pointer swap and commit step (`swap_back`): the pointer it swaps in (the
target's apps and page, or one app of it on a page rendered here), refused when a file
it needs was pruned or when the pointer moved over a release the user never saw
(`check_unmoved`), and swapped back (`undone`) when a concurrent `--prune` deleted its
files meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mfe.errors import MfeError
from mfe.publish.dropped_apps import RACED, Dropped, Refusal, dropped, recorded
from mfe.publish.heal import check_copies
from mfe.publish.history import Recorded, summary
from mfe.publish.merge import REMEMBERED, replacing
from mfe.publish.pending import carry, record_replaced
from mfe.publish.pointer import AppVersion, Live, compare_and_swap
from mfe.publish.refresh import Gone, InPlace, described
from mfe.publish.releases import git_commit
from mfe.publish.remote import s3_errors
from mfe.publish.undo import rollback_pointer, undo
from mfe.publish.versions import blob


def check_complete(run: Any, target: Live, reuse: InPlace) -> None:
    """Refuse when a file the restored page needs was pruned (the page would break)."""
    for name, files in reuse.files.items():
        for f in files:
            if f.key not in run.listing(name):
                raise MfeError(
                    f"cannot roll back environment '{run.env.name}' to release "
                    f"{target.release}: {f.key} ({name}) is no longer in bucket "
                    f"'{run.buckets[name]}' (pruned?); publish a fixed build instead"
                )


def check_unmoved(
    env: str, live: Live, current: Live, target: Live, app: str | None, note: Callable[[str], None]
) -> None:
    """Refuse (MfeError) to apply a rollback chosen from `live` over a pointer that moved
    since: the releases in between were never seen by whoever asked for it, and restoring
    the target would silently revert them. An app rollback still merges over other apps'
    new versions (as a publish does), unless its own app changed; it says so (`note`)."""
    if current.seq == live.seq:
        return
    count = current.seq - live.seq
    newest = summary(current, commit=True)
    moved = newest if count == 1 else f"{count} releases (the newest {newest})"
    again = f"nothing was changed: see `doit releases env={env}` and run the rollback again"
    if app is None:
        raise MfeError(
            f"rollback not applied: while it ran, {moved} changed the live pointer of "
            f"environment '{env}', and rolling back to release {target.release} (seq "
            f"{target.seq}) now would undo {'it' if count == 1 else 'them'} too; {again}"
        )
    was, now = (ptr.apps[app].version if app in ptr.apps else "none" for ptr in (live, current))
    if was != now:
        raise MfeError(
            f"rollback of {app} not applied: while it ran, {moved} changed {app} in "
            f"environment '{env}' (now {now[:12]}, was {was[:12]}); {again}"
        )
    note(f"{moved} landed meanwhile; rolling {app} back over it")


def app_refusal(env: str, app: str, target: Live) -> Refusal:
    """How `dropped_apps.dropped` refuses an app rollback: a whole one serves its target's stored
    page, so it takes no app off unseen."""
    return Refusal(
        f"rollback of {app} in environment '{env}'",
        f"rolling {app} back",
        lambda names: (
            f"pull and roll back again, or roll back the whole page with `doit rollback "
            f"env={env} to={target.seq}` (its stored page)"
        ),
    )


def swap_back(
    run: Any, first: tuple[Live, str | None], target: Live, app: str | None, wait: bool
) -> tuple[Live, Live, list[str]]:
    """The pointer swap to `target` (one app of it with `app`) and its commit step; also
    returns the live apps it took off the page."""
    live = first[0]
    project = run.project
    head = git_commit(project.root) if app is not None else None

    def drops(current: Live, after: str = "") -> Dropped:
        """An app rollback re-renders the page from this checkout's apps (publish's rule); a
        whole one serves its target's stored page, without the live apps the target lacks."""
        if app is None:  # this checkout's apps play no part
            return Dropped(removed=sorted(set(current.apps) - set(target.apps)))
        words = app_refusal(run.env.name, app, target)
        return dropped(project.root, run.env.name, current, project.apps, head, False, after, words)

    gone = [drops(live)]  # refused before anything changes
    _ = run.conditional  # a rollback always swaps: refuse a store that would lose races first

    def make(current: Live | None) -> Live:
        assert current is not None
        check_unmoved(run.env.name, live, current, target, app, run.progress.note)
        if current.seq != live.seq:  # the same rule on what it lost to, before uploading
            gone[0] = drops(current, RACED)
        removed = gone[0].removed
        if app is None:  # what it took off stays out of later publishes, as after a publish
            apps = {n: took_off(current.apps.get(n), v) for n, v in target.apps.items()}
            page = target.page
        else:
            earlier = took_off(current.apps.get(app), target.apps[app])
            kept = {n: v for n, v in current.apps.items() if n not in removed}
            apps = {**kept, app: earlier}
            rendered = run.page(apps)
            # Before the swap, as publish does: a rollback killed right after it must leave a
            # pointer whose page is up, or every later command fails finishing it.
            run.upload_page(rendered, _parent_plan(run), current, reuse)
            page = blob(rendered)
        carried = carry(run, current, live)
        reuse.refresh(current, list(reuse.files))
        changed = sorted(n for n in apps if current.apps.get(n) != apps[n])
        changed = recorded(changed, removed) or [run.parent]
        return rollback_pointer(run, current, target, apps, page, changed, carried, app)

    if app is None:
        reuse = InPlace.of_target(run, dict(target.apps), target.page)
    else:
        reuse = InPlace.of_target(run, {app: target.apps[app]}, None)
    check_complete(run, target, reuse)
    check_copies(run, live, target, app)
    new, previous = swap_and_commit(run, first, make, reuse, wait)
    return new, previous, gone[0].removed


def took_off(live: AppVersion | None, earlier: AppVersion) -> AppVersion:
    """`earlier` going live again over `live` (unchanged when it is live already): the
    version it takes off counts as replaced, as after a publish, so a checkout still
    holding that build keeps it out, even one at a later commit (`restored`); `--force`
    ships it. It and what earlier rollbacks took off are `took_off` (notes say so)."""
    if live is None:
        return earlier
    if live.version == earlier.version:
        return live
    gone = [live.version, *live.took_off, *earlier.took_off]
    undone = [v for v in dict.fromkeys(gone) if v != earlier.version][:REMEMBERED]
    return replace(earlier, replaced=replacing(live, earlier), restored=True, took_off=undone)


def swap_and_commit(
    run: Any,
    first: tuple[Live, str | None],
    make: Callable[[Live | None], Live],
    reuse: InPlace,
    wait: bool,
) -> tuple[Live, Live]:
    """The swap and the commit step (`run.committed`), checking the refreshed objects after
    each (see `mfe.publish.refresh`); the spare copies go however it ends."""
    try:
        with s3_errors(run.session, run.parent_bucket, "swapping the live pointer"):
            new, previous = compare_and_swap(
                run.s3, run.parent_bucket, make, first=first, conditional=lambda: run.conditional,
                history=Recorded(run.s3, run.parent_bucket),
            )  # fmt: skip
        assert new is not None and previous is not None
        record_replaced(run, previous, first[0])
        try:
            reuse.confirm()  # before the commit step serves the page
            run.commit_step(new, previous, wait)
            reuse.confirm()  # and after: a prune that decided before the swap had that long
        except Gone as exc:
            raise undone(run, new, previous, exc.lost) from None
    finally:
        reuse.release()
    return new, previous


def undone(run: Any, new: Live, previous: Live, lost: list[tuple[str, str]]) -> MfeError:
    """Swap back over `new`, whose target files a concurrent `--prune` deleted with their
    spare copies (`mfe.publish.undo`), and say so: the rollback did not happen."""
    back = undo(run, new, previous, lost)
    env, of = run.env.name, f" app={new.rollback_app}" if new.rollback_app else ""
    return MfeError(
        f"rollback of environment '{env}' to release {new.rollback_of} was undone: a "
        f"concurrent `doit publish --prune` deleted {described(lost)} and the spare copies "
        f"while it ran (it took longer than grace_seconds = "
        f"{run.project.publish.grace_seconds}); release {previous.release} is served again "
        f"(seq {back.seq}); run `doit rollback env={env}{of} to={new.rollback_of}` again "
        "(it refuses if its files are gone: publish a fixed build then)"
    )


def _parent_plan(run: Any) -> Any:
    from mfe.publish.plan import AppPlan

    if run.parent not in run.plans:
        run.plans[run.parent] = AppPlan(run.parent, run.parent_bucket, None, [], {})
    return run.plans[run.parent]
