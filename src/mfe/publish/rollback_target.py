"""Which release a rollback serves again: `to=` names it (a sequence number or a release
id), else the undo stack (`mfe.publish.stack.walk`) picks the newest earlier release a
rollback did not take off. Refused before anything changes when there is none, when its
record is missing, or when it lacks the app rolled back.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from mfe.errors import MfeError
from mfe.publish.history import history_key, missing_note, read_record, record_seqs
from mfe.publish.pointer import Live
from mfe.publish.remote import s3_errors
from mfe.publish.stack import walk


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
