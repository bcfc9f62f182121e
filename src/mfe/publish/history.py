"""Release history in served order: after each pointer swap its record (the pointer as
written, seq included) is kept as `_mfe/history/<seq>.json`. The seq comes from the swap
itself (previous seq + 1, under compare-and-swap), so sorting by it is the order the
pointer changed, and the newest record always describes the served page.

A record is written once the commit step finished (page, fixed URLs, invalidation): a
pointer whose record is missing is a commit the next publish must finish. A pointer swapped
past before its own command recorded it (killed, or slow) is recorded by the command that
swapped past it, from the bytes it read (`pending.record_replaced`). So that command may die
between its swap and that record, its pointer carries those bytes while that one has no
record (`Live.unrecorded`), and whoever finishes its commit step records them first: every
served seq has one.
"""

from __future__ import annotations

import functools
import getpass
import os
import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mfe.errors import MfeError
from mfe.publish.local import RESERVED_PREFIX
from mfe.publish.merge import shown_keys
from mfe.publish.pointer import POINTER_KEY, Damaged, Live, parse_live, put_once
from mfe.publish.remote import head
from mfe.threads import parallel

HISTORY_PREFIX = RESERVED_PREFIX + "history/"
STAMP = "%Y%m%dT%H%M%SZ"


def history_key(seq: int) -> str:
    return f"{HISTORY_PREFIX}{seq:010d}.json"


def seqs(keys: Any) -> list[int]:
    """Sequence numbers of the records found in a listing of the parent bucket, oldest first."""
    found = []
    for key in keys:
        if key.startswith(HISTORY_PREFIX) and key.endswith(".json"):
            stem = key[len(HISTORY_PREFIX) : -len(".json")]
            if stem.isdigit():
                found.append(int(stem))
    return sorted(found)


def write_record(s3: Any, bucket: str, live: Live) -> None:
    """Idempotent: the record of a seq is the pointer that seq wrote, byte for byte (as
    read when it was read, else as this command wrote it)."""
    put_once(s3, bucket, history_key(live.seq), live.raw or live.to_json())


def unrecorded(s3: Any, bucket: str, live: Live) -> str | None:
    """`live`'s record-to-be while it has none (one HEAD): what a pointer swapping past it
    carries (`Live.unrecorded`), so that `live` is recorded whoever dies when."""
    if head(s3, bucket, history_key(live.seq)) is not None:
        return None
    return (live.raw or live.to_json()).decode()


def write_carried(s3: Any, bucket: str, live: Live) -> None:
    """Record the pointer `live` replaced from the bytes it carries (`Live.unrecorded`), if
    any: the command that swapped past that one may have died before recording it."""
    if live.unrecorded is not None:
        body = live.unrecorded.encode()
        put_once(s3, bucket, history_key(Live.from_json(body).seq), body)


RECORD_ADVICE = (
    "restore it from a backup of the bucket if there is one; `doit releases` lists the "
    "readable records (`doit rollback to=<seq>` names one of them)"
)


def read_record(s3: Any, bucket: str, seq: int) -> Live:
    """One history record; MfeError naming its key when it is damaged."""
    key = history_key(seq)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return parse_live(body, bucket, key, RECORD_ADVICE)


def record_seqs(s3: Any, bucket: str) -> list[int]:
    """The seqs of the history records in the bucket, oldest first (one listing)."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=HISTORY_PREFIX):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return seqs(keys)


def read_records(s3: Any, bucket: str, wanted: list[int]) -> list[Live]:
    return parallel(8, [functools.partial(read_record, s3, bucket, seq) for seq in wanted])


def list_records(s3: Any, bucket: str, limit: int | None = None) -> list[Live]:
    """The history, oldest first (the last `limit` records)."""
    wanted = record_seqs(s3, bucket)
    if limit is not None:
        wanted = wanted[-limit:]
    return read_records(s3, bucket, wanted)


@dataclass
class Scan:
    """The history as `doit releases` shows it: the readable records, and what is wrong
    with the others (seq -> why), so one bad record hides none of the rest."""

    records: list[Live]
    damaged: dict[int, str]
    missing: list[int]
    """Seqs below the newest record with no record (deleted): in the shown range only."""
    newest: int | None
    total: int
    """Records in the bucket, shown or not (`limit`)."""


def scan_records(s3: Any, bucket: str, limit: int | None = None) -> Scan:
    """`list_records`, reading on past damaged records and noting missing ones."""
    known = record_seqs(s3, bucket)
    wanted = known[-limit:] if limit is not None else known
    first = wanted[0] if wanted and len(wanted) < len(known) else 1
    present = set(known)
    newest = known[-1] if known else None
    missing = [seq for seq in range(first, (newest or 0) + 1) if seq not in present]

    def read(seq: int) -> Live | str:
        try:
            return read_record(s3, bucket, seq)
        except Damaged as exc:
            return exc.why

    found = parallel(8, [functools.partial(read, seq) for seq in wanted])
    records = [r for r in found if isinstance(r, Live)]
    damaged = {seq: r for seq, r in zip(wanted, found, strict=True) if isinstance(r, str)}
    return Scan(records, damaged, missing, newest, len(known))


def missing_note(bucket: str, missing: list[int]) -> str:
    """How a message names records deleted from the history."""
    keys = shown_keys([history_key(seq) for seq in missing])
    return (
        f"history record(s) {keys} are missing from bucket '{bucket}' (deleted?): "
        "those releases cannot be listed or rolled back to"
    )


def behind(bucket: str, live: Live | None, newest: int) -> str:
    """Why the live pointer is older than the history, and how to set it right: the newest
    record is that release's pointer byte for byte, so copying it back restores it."""
    record = history_key(newest)
    state = "is missing" if live is None else f"names seq {live.seq}"
    return (
        f"{POINTER_KEY} in bucket '{bucket}' {state}, but the history goes on to {record}: "
        "the pointer was restored or deleted by hand, and a release from it would reuse a "
        f"taken seq and never be recorded. Copy that record back onto the pointer: `aws s3 "
        f"cp s3://{bucket}/{record} s3://{bucket}/{POINTER_KEY} --content-type "
        "application/json --cache-control no-store` (with --endpoint-url for an emulator), "
        "then run the command again"
    )


@dataclass
class Recorded:
    """`pointer.History` for a swap of the live pointer: one HEAD per swap attempt."""

    s3: Any
    bucket: str

    def taken(self, seq: int) -> bool:
        return head(self.s3, self.bucket, history_key(seq)) is not None

    def refusal(self, current: Live | None) -> MfeError:
        newest = record_seqs(self.s3, self.bucket)[-1]
        return MfeError(f"nothing was published: {behind(self.bucket, current, newest)}")


def ahead_of(s3: Any, bucket: str, live: Live | None) -> str | None:
    """Why the history is ahead of `live` (see `behind`), or None: one HEAD (one listing
    when there is no pointer), for `doit plan`'s warning."""
    if live is not None and head(s3, bucket, history_key(live.seq + 1)) is None:
        return None
    return behind_newest(s3, bucket, live)


def behind_newest(s3: Any, bucket: str, live: Live | None) -> str | None:
    """`behind`, naming the newest record listed; None when there is none."""
    known = record_seqs(s3, bucket)
    return behind(bucket, live, known[-1]) if known else None


def new_release_id(content: str, previous: str | None, now: datetime | None = None) -> str:
    """`<UTC time>-<content hash>`, sorting after `previous` even within one second."""
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    if previous:
        try:
            latest = datetime.strptime(previous.split("-")[0], STAMP).replace(tzinfo=UTC)
            moment = max(moment, latest + timedelta(seconds=1))
        except ValueError:
            pass
    return f"{moment.strftime(STAMP)}-{content[:7]}"


def summary(record: Live, commit: bool = False) -> str:
    """`release R (seq N: publish of accounts by Ann[, commit c])`: how messages name a
    release another command made (a lost race, a refused rollback)."""
    what = ",".join(record.changed) or "-"
    sha = f", commit {(record.commit or '-')[:12]}" if commit else ""
    by = record.by or "unknown"
    return f"release {record.release} (seq {record.seq}: {record.action} of {what} by {by}{sha})"


def who(root: Path) -> str:
    """Whoever runs the command, for `doit releases`' "by": not HEAD's author, as a teammate
    who pulled (or a CI run) publishes and rolls back others' commits. The GitHub Actions
    run and its actor first (a bot identity a workflow gives git says less), then git's
    committer identity (`user.name`/`user.email`, or GIT_COMMITTER_NAME/EMAIL), then the
    OS user: never a prompt or an error, a publish must not fail over a label."""
    return github_run() or git_identity(root) or os_user()


def git_identity(root: Path) -> str | None:
    """`Name <email>` as git would sign a commit here; None when not configured (git is
    told not to guess one from the host name, which it may refuse or get wrong)."""
    command = ["git", "-c", "user.useConfigOnly=true", "var", "GIT_COMMITTER_IDENT"]
    try:
        out = subprocess.run(
            command,
            cwd=root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    ident = out.stdout.strip() if out.returncode == 0 else ""
    return ident.rsplit(" ", 2)[0] if ident.count(" ") >= 2 else None  # less "<time> <zone>"


def github_run() -> str | None:
    """`CI run <run URL> (actor)`: the URL opens the run (and its attempt, after a re-run);
    GitHub would render `owner/repo#N` as a link to issue or pull request N."""
    run_id = os.environ.get("GITHUB_RUN_ID")
    if not run_id:
        return None
    server = (os.environ.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
    url = f"{server}/{os.environ.get('GITHUB_REPOSITORY', '')}/actions/runs/{run_id}"
    attempt = os.environ.get("GITHUB_RUN_ATTEMPT", "")
    if attempt.isdigit() and int(attempt) > 1:
        url += f"/attempts/{attempt}"
    actor = os.environ.get("GITHUB_ACTOR", "")
    return f"CI run {url}" + (f" ({actor})" if actor else "")


RUN_URL = re.compile(r"https?://\S+/actions/runs/(\d+)(?:/attempts/(\d+))?")


def short_by(by: str) -> str:
    """`doit releases`' "by" cell: a CI run as its number (and attempt), not its URL."""
    return RUN_URL.sub(lambda m: m[1] + (f" attempt {m[2]}" if m[2] else ""), by)


def os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment, no passwd entry
        return "unknown"


def commit_label(commit: str | None, dirty: bool | None) -> str:
    """A short commit as `doit releases` shows it: `-dirty` when published from sources
    that differed from it (a release's or a preview's), `-` when not known."""
    return (commit or "-")[:12] + ("-dirty" if dirty else "")


HEADER = ("seq", "release", "time", "commit", "apps", "by")


def table(records: list[Live]) -> list[str]:
    """`doit releases`: a header and one line per record, newest last (served order). Each
    column is as wide as its widest cell (a `-dirty` commit, a long app list), so the
    header and every row line up; notes follow the last column."""
    cells = [HEADER] + [row_cells(rec) for rec in records]
    notes = [""] + [row_notes(rec) for rec in records]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADER))]
    widths[0] = max(widths[0], 5)
    out = []
    for row, note in zip(cells, notes, strict=True):
        seq, *rest = row
        padded = [seq.rjust(widths[0])] + [
            c.ljust(w) for c, w in zip(rest, widths[1:], strict=True)
        ]
        out.append(("  ".join(padded).rstrip() + note).rstrip())
    return out


def lines(records: list[Live]) -> list[str]:
    """The rows of `table` without its header."""
    return table(records)[1:]


def row_cells(rec: Live) -> tuple[str, ...]:
    what = ",".join(rec.changed) or "-"
    commit = commit_label(rec.commit, rec.dirty)
    return (str(rec.seq), rec.release, rec.created, commit, what, short_by(rec.by or "-"))


def row_notes(rec: Live) -> str:
    """What a record's columns do not say: a rollback, forced apps."""
    notes = []
    if rec.action == "rollback":
        of = f" of {rec.rollback_app}" if rec.rollback_app else ""
        part = f"{rec.rollback_app} of " if rec.rollback_app else ""
        off = f" (took off {part}{rec.took_off})" if rec.took_off else ""
        notes.append(f"rollback{of} to {rec.rollback_of}{off}")
    if rec.forced:
        over = [f" (over {rec.forced_over[n]})" if n in rec.forced_over else "" for n in rec.forced]
        notes.append("forced: " + ", ".join(n + w for n, w in zip(rec.forced, over, strict=True)))
    return f"  [{'; '.join(notes)}]" if notes else ""
