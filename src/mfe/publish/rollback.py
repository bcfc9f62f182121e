"""`doit rollback [app=NAME] [to=RELEASE]`: serve an earlier release again, as a pointer
swap (so it can race a publish safely) followed by the usual commit step.

Nothing is read from a live key: the target's files are checked against the bucket
listings (a pruned file refuses the rollback before anything changes), fixed-URL bytes
(the page above all) come from their content-addressed `_ca/` copies, verified by sha256.
A whole rollback restores the target's exact page; an app rollback re-renders the page
with that app's earlier version (recording the version it replaced, as a publish does, so
a checkout still holding that build keeps it out) and the others as live, and uploads its
`_ca/` copy before each swap attempt (so the pointer never names a page that is not up).
The page shows only this checkout's apps, so a live app it lacks is refused or taken off
by publish's rule (`dropped_apps.dropped`), on the first read and on each re-read after a lost race.
A lost race that would revert a release the user never saw is refused (`check_unmoved`).
Before each swap attempt the target's objects that a concurrent `--prune` could delete
are made young in place, and checked again after the swap (`mfe.publish.refresh`).
Then the site is smoke-checked. Ctrl-C says what is served and what to run (`interrupted`);
`to=` what is live already (after a Ctrl-C past the swap) only finishes its commit step, as
does a plain rollback finding a rollback killed past its swap (`repeats`): it stops there.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mfe.config import Environment, Project
from mfe.envs.outputs import Outputs
from mfe.errors import CtrlC, MfeError
from mfe.publish.dropped_apps import RACED, Dropped, Refusal, changed_only, dropped, recorded
from mfe.publish.heal import check_copies, heal
from mfe.publish.history import (
    Recorded,
    history_key,
    missing_note,
    read_record,
    record_seqs,
    summary,
)
from mfe.publish.merge import REMEMBERED, fixed_dropped, replacing, shown_keys
from mfe.publish.pending import Pending, carry, finish_pending, record_replaced
from mfe.publish.pointer import AppVersion, Live, compare_and_swap
from mfe.publish.refresh import Gone, InPlace, described
from mfe.publish.releases import git_commit
from mfe.publish.remote import s3_errors
from mfe.publish.report import AppResult, Progress, PublishReport, write_report
from mfe.publish.stack import serves, walk
from mfe.publish.undo import rollback_pointer, undo
from mfe.publish.versions import blob

if TYPE_CHECKING:
    from mfe.envs.session import Session


def find_target(run: Any, live: Live, app: str | None, to: str | None) -> Live:
    bucket = run.parent_bucket
    with s3_errors(run.session, bucket, "listing the release history"):
        known = record_seqs(run.s3, bucket)  # the history alone: the bucket may hold thousands

    @functools.cache  # `walk` walks the newest records twice
    def read(seq: int) -> Live:
        with s3_errors(run.session, bucket, f"reading release record {seq}"):
            return read_record(run.s3, bucket, seq)

    gaps = [seq for seq in range(1, live.seq) if seq not in set(known)]
    lacking = f"; {missing_note(bucket, gaps)}" if gaps else ""
    if to is not None:
        if to.isdigit() and int(to) in gaps:
            raise MfeError(
                f"cannot roll back environment '{run.env.name}' to seq {to}: its record "
                f"{history_key(int(to))} is missing from bucket '{bucket}' (deleted?), so what "
                "it served is not known; nothing was changed: pick another release from "
                f"`doit releases env={run.env.name}`, or restore the record from a backup"
            )
        return check_has(run.env.name, named(known, read, to, run.env.name), app)
    found = walk(known, read, live, app)
    if found.target is not None:
        return found.target
    raise none_left(run.env.name, live, app, found.skipped, lacking)


def none_left(
    env: str, live: Live, app: str | None, skipped: Live | None, lacking: str
) -> MfeError:
    """Nothing for a plain rollback to serve. When only the undo-stack rule (`stack.walk`)
    ruled out an earlier release, say so, and how to serve it anyway: `doit releases` lists
    it, and `to=` still rolls back to it."""
    what = f"of app '{app}' " if app else ""
    head = f"environment '{env}' has no release {what}before {live.release} to roll back to"
    if skipped is None:
        return MfeError(f"{head}{lacking}")
    served = f"{app} of release" if app else "release"
    of = f" app={app}" if app else ""
    return MfeError(
        f"{head} that a rollback did not take off: a plain rollback goes back as an "
        f"undo stack, never serving again what a rollback took off, such as {served} "
        f"{skipped.release} (seq {skipped.seq}), the newest; nothing was changed: `doit "
        f"rollback env={env}{of} to={skipped.seq}` serves it anyway (`doit releases env={env}` "
        f"lists the others){lacking}"
    )


def named(known: list[int], read: Callable[[int], Live], to: str, env: str) -> Live:
    """The record `to` names: a sequence number, else a release id."""
    for seq in reversed(known):
        if str(seq) == to:
            return read(seq)
    for seq in reversed(known):  # by release id (one GET per record, newest first)
        record = read(seq)
        if record.release == to:
            return record
    raise MfeError(
        f"environment '{env}' has no release {to!r}; `doit releases env={env}` lists them "
        "(sequence number or release id)"
    )


def check_has(env: str, target: Live, app: str | None) -> Live:
    """Refuse (before anything changes) an app rollback to a release without that app: it
    was added later, or the name is another app than meant."""
    if app is None or app in target.apps:
        return target
    raise MfeError(
        f"release {target.release} (seq {target.seq}) of environment '{env}' has no app "
        f"'{app}' (its apps: {', '.join(sorted(target.apps))}); nothing was changed: pick a "
        f"release that has {app} from `doit releases env={env}` (`doit rollback env={env} "
        f"app={app} to=<seq>`), or roll back the whole page with `doit rollback env={env} "
        f"to={target.seq}`"
    )


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


def rollback(
    project: Project,
    env: Environment | str,
    *,
    wait: bool = False,
    outputs: Outputs | None = None,
    smoke: bool = True,
    app: str | None = None,
    to: str | None = None,
    session: Session | None = None,
) -> PublishReport:
    """Swap the pointer back to an earlier release (or one app's earlier version). Ctrl-C
    once the target is known raises `CtrlC`, saying what is served and what to run."""
    from mfe.publish.run import Run

    started = time.monotonic()
    progress = Progress(command="rollback")
    run = Run.start(
        project, env, outputs, progress, only=None, collect_local=False, session=session
    )
    if app is not None:
        project.check_app(app)
    live, etag, why = run.read_settled()
    if live is None:
        if why:
            raise MfeError(f"nothing was rolled back: {why}")
        raise MfeError(f"environment '{run.env.name}' has no release yet; run `doit publish` first")
    pending = finish_pending(run, live)
    if pending is Pending.UNDONE:  # it named files a prune deleted: swapped back
        live, etag = run.read_live()
        assert live is not None
    stop = pending is Pending.FINISHED and to is None and repeats(live, app)
    target = live if stop else find_target(run, live, app, to)
    removed: list[str] = []
    try:
        if serves(live, target, app):  # a rerun after a Ctrl-C past the swap: nothing to swap
            new, previous, changed = live, None, []
        else:
            new, previous, removed = swap_back(run, (live, etag), target, app, wait)
            changed = changed_only(new.changed, removed)
            for line in stays_online(run, previous, new, target):
                run.progress.note(line)
        if smoke:
            from mfe.publish.smoke import SmokeFailed, smoke_check

            try:
                smoke_check(run.url)
            except SmokeFailed:
                if not heal(run):  # a fixed URL deleted or overwritten meanwhile
                    raise
                smoke_check(run.url)
    except CtrlC:
        raise
    except KeyboardInterrupt:
        raise interrupted(run, live, target, app) from None
    report = PublishReport(
        env=run.env.name,
        release=new.release,
        site_url=run.url,
        apps={
            name: AppResult(uploaded=run.committed.written.get(name, [])) for name in project.apps
        },
        invalidations=run.committed.sent,
        requests=run.counts(),
        seconds=round(time.monotonic() - started, 3),
        previous_release=previous.release if previous else None,
        noop=previous is None,
        invalidated_by_app=run.committed.by_app,
        rollback_of=live.rollback_of if stop else target.release,
        seq=new.seq,
        changed=changed,
        removed=removed,
        dirty=new.dirty,
        took_off=summary(previous) if previous and app is None else None,
        finished=finished(live) if stop else None,
    )
    write_report(project.state_dir(run.env.name), report)
    return report


def repeats(live: Live, app: str | None) -> bool:
    """Whether `live`, whose unfinished commit step this plain rollback just finished, is
    itself a rollback this one would repeat (any, for a whole one; for `app`, one of that
    app): most likely the same command run again after it was killed past its swap (which
    prints nothing), so it stops there instead of going one release further back."""
    if live.action != "rollback" or live.rollback_of is None:
        return False
    return app is None or live.rollback_app == app


def finished(live: Live) -> str:
    """The rollback whose commit step a plain rollback finished, and stopped at."""
    of = f" of {live.rollback_app}" if live.rollback_app else ""
    return f"the interrupted rollback{of} to release {live.rollback_of} (now {live.release})"


def stays_online(run: Any, previous: Live, new: Live, target: Live) -> list[str]:
    """What to say of fixed-URL files (robots.txt) the release rolled back from has and the
    target lacks: a swap deletes nothing, as a publish whose build lacks a file (a browser
    may still load it), so each keeps serving the bytes of the release taken off until
    `--prune` finds no kept release naming it, or a hand deletes it."""
    found = fixed_dropped(previous.apps, new.apps)
    endpoint = f" --endpoint-url {run.env.endpoint_url}" if run.env.endpoint_url else ""
    lines = []
    for name, keys in found.items():
        bucket = run.buckets.get(name, f"<bucket of {name}>")
        shown = shown_keys(keys)
        one = len(keys) == 1
        lines.append(
            f"{shown} ({name}) {'is' if one else 'are'} not in release {target.release} (seq "
            f"{target.seq}); {'it stays' if one else 'they stay'} online with the bytes of "
            f"release {previous.release} (seq {previous.seq}), rolled back from: `doit publish "
            f"--prune` deletes {'it' if one else 'them'} once no kept release names "
            f"{'it' if one else 'them'} (publish.keep_releases), or delete "
            f"{'it' if one else 'them'} now: `aws s3 rm s3://{bucket}/{keys[0]}{endpoint}`"
            + ("" if one else " for each")
        )
    return lines


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


def interrupted(run: Any, live: Live, target: Live, app: str | None) -> CtrlC:
    """What a rollback stopped by Ctrl-C left served, from the pointer read once more, and
    the command that gets what was asked: `to=` the target, as a plain `doit rollback`
    after the swap would go one release further back."""
    of = f" app={app}" if app else ""
    again = f"`doit rollback env={run.env.name}{of} to={target.seq}`"
    asked = f"{f'{app} of ' if app else ''}release {target.release} (seq {target.seq})"
    try:
        now, _ = run.read_live()
    except (Exception, KeyboardInterrupt):  # unreachable, or Ctrl-C again: say both cases
        now = None
    if now is not None and now.seq == live.seq:
        return CtrlC(
            f"nothing was switched: release {live.release} (seq {live.seq}) is still served; "
            f"run {again} to serve {asked}"
        )
    if now is not None and (now.rollback_of, now.rollback_app) == (target.release, app):
        return CtrlC(
            f"its switch was made: the live pointer names release {now.release} (seq "
            f"{now.seq}, {asked} again), served once its commit step is finished (until then "
            f"the page of {live.release}); run {again} to finish it (a plain `doit rollback` "
            "would go one release further back)"
        )
    return CtrlC(
        f"the site serves one whole release, {live.release} or, if its switch was made, "
        f"{asked} again; `doit releases env={run.env.name}` shows which; run {again} to "
        f"serve {asked}"
    )


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
