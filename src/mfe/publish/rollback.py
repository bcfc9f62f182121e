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
by publish's rule (`dropped_apps.dropped`), on the first read and on each re-read after a
lost race. A lost race that would revert a release the user never saw is refused
(`rollback_swap.check_unmoved`). Before each swap attempt the target's objects that a
concurrent `--prune` could delete are made young in place, and checked again after the
swap (`mfe.publish.refresh`). Then the site is smoke-checked. Ctrl-C says what is served
and what to run (`interrupted`); `to=` what is live already (after a Ctrl-C past the
swap) only finishes its commit step, as does a plain rollback finding a rollback killed
past its swap (`repeats`): it stops there. Which release is the target:
`mfe.publish.rollback_target`; the swap and its commit step: `mfe.publish.rollback_swap`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from mfe.config import Environment, Project
from mfe.envs.outputs import Outputs
from mfe.errors import CtrlC, MfeError
from mfe.publish.dropped_apps import changed_only
from mfe.publish.heal import heal
from mfe.publish.history import summary
from mfe.publish.interrupted import UNREAD
from mfe.publish.merge import fixed_dropped, shown_keys
from mfe.publish.pending import Pending, finish_pending
from mfe.publish.pointer import Live
from mfe.publish.report import AppResult, Progress, PublishReport, write_report
from mfe.publish.rollback_swap import swap_back
from mfe.publish.rollback_target import find_target
from mfe.publish.stack import serves

if TYPE_CHECKING:
    from mfe.envs.session import Session


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
        took_off=taken_off(previous, new, app) if previous else None,
        finished=finished(live) if stop else None,
    )
    write_report(project.state_dir(run.env.name), report)
    return report


def taken_off(previous: Live, new: Live, app: str | None) -> str | None:
    """What the console says a rollback took off: the release (`history.summary`), or for
    `app` its version in the release the record's `took_off` names and the one now served.
    None: `app` was not live, so nothing of it was taken off."""
    if app is None:
        return summary(previous)
    if app not in previous.apps:
        return None
    was, now = previous.apps[app].version[:12], new.apps[app].version[:12]
    release = new.took_off or previous.release
    return f"{app} version {was} (of release {release}); {app} version {now} is served"


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


def interrupted(run: Any, live: Live, target: Live, app: str | None) -> CtrlC:
    """What a rollback stopped by Ctrl-C left served, from the pointer read once more (and
    how far a swap back of its own pointer got, `Run.swap_back`), and the command that gets
    what was asked: `to=` the target, as a plain `doit rollback` after the swap would go
    one release further back."""
    of = f" app={app}" if app else ""
    again = f"`doit rollback env={run.env.name}{of} to={target.seq}`"
    asked = f"{f'{app} of ' if app else ''}release {target.release} (seq {target.seq})"
    try:
        now, _ = run.read_live()
    except (Exception, KeyboardInterrupt):  # unreachable, or Ctrl-C again: say both cases
        now = None
    back = run.swap_back
    if back is not None and back.broken.seq > live.seq:  # it swapped its own pointer back
        read = UNREAD if now is None else now
        told, undone = back.told(read, own=True), "was" if back.landed(read) else "is being"
        first = "" if back.done else ", finishing that first"
        return CtrlC(
            f"{told}; the rollback to {asked} {undone} undone (files it needs were deleted "
            f"meanwhile, a concurrent `--prune`?): run {again} to try again{first} (it "
            "refuses if those files are gone: publish a fixed build then)"
        )
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
