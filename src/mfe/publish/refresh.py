"""Reuse that a concurrent `--prune` cannot break.

`--prune` deletes what no kept pointer names once it is older than `[publish]
grace_seconds`; what a publish uploads stays young until its swap makes the pointer name
it. But a publish also reuses what its bucket listing showed present, and that may be old
and named by no kept pointer (a revert brings back a chunk of a release prune has let
go): another team's prune may delete it between this publish's listing and its swap.

So before each swap attempt every object the new pointer takes from this publish's
changed apps must have been written less than half the grace period ago (the other half
is margin for the swap and for clocks), unless the pointer it replaces names it too (a
prune that read that pointer or a later one keeps it; one that read an earlier pointer
saw it young, as that pointer's swap made sure by this same rule). Older ones are
uploaded again from the local bytes (`refresh`), which makes them young: in the usual
case, the files a changed app shares with its live version, nothing is uploaded again.

`doit rollback` follows the same rule for its target (`InPlace`): every object of the
versions it puts live, and the page copy it restores, may be old and named by no kept
pointer (a release beyond `keep_releases`). It has no local bytes, so it copies each such
object onto itself (CopyObject, same headers: a new LastModified), after a spare copy
under `_hold/` (young, named by nothing: pruned later if left behind), which is what
`confirm` restores from; an app rollback's page is uploaded from its rendered bytes.

A prune that listed the bucket before a refresh may still delete the young copy (it
decided on the old one), so after the swap the refreshed objects are checked and any
gone uploaded once more (`confirm`), before the commit step serves the page and again
after it. A rollback delayed past the grace period may find a file and its spare copy
both gone (`Gone`): it swaps the pointer back (`mfe.publish.undo`).

What remains: prune reads the pointer again right before deleting a bucket's files and
keeps what a newer pointer names, so it can delete a refreshed file only if it listed the
bucket before the refresh, made that last read before the swap, and its delete reaches S3
after the second check: it took longer between two of its own requests than this publish
took for its swap and commit step. The smoke check at the end of the publish notices
that when the page loads the file (a module, a stylesheet) and uploads it again
(`mfe.publish.smoke_or_repair`, also what a plain re-run does); a lazily imported chunk
or a source map is found by `doit publish --verify`.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mfe.errors import MfeError, missing_key
from mfe.publish.local import SHELL_KEY, LocalFile
from mfe.publish.plan import AppPlan, online_copy, present
from mfe.publish.pointer import AppVersion, Blob, Live
from mfe.publish.releases import FileRecord
from mfe.publish.remote import RemoteObject, head, s3_errors
from mfe.publish.versions import ca_key, read_version, rewrite_version, version_key
from mfe.threads import parallel

if TYPE_CHECKING:
    from mfe.publish.run import Run


@dataclass
class Reuse:
    """The online copies of this publish's changed apps, and when each was last written
    as far as this publish knows."""

    NOTE: ClassVar[str] = "uploading {count} reused file(s) again"

    run: Run
    files: dict[str, list[LocalFile]] = field(default_factory=dict)
    written: dict[tuple[str, str], datetime | None] = field(default_factory=dict)
    refreshed: dict[tuple[str, str], LocalFile] = field(default_factory=dict)
    records: dict[tuple[str, str], datetime | None] = field(default_factory=dict)
    """(app, version) -> when the version record the swap names was last written (None: not
    known): `--prune` deletes an old one no kept pointer names, as it does files."""
    rewritten: set[tuple[str, str]] = field(default_factory=set)

    @classmethod
    def of(cls, run: Run, changed: list[str], planned: datetime | None = None) -> Reuse:
        """From the plans: a skipped file as the listing dated it, an upload when its own
        upload started (`Run.uploaded`: a phase of thousands of files takes seconds, so the
        phase's start would make its last files look old); `planned` dates the uploads of
        a plan that makes none (`doit plan`: they would be young)."""
        reuse = cls(run)
        for app in changed:
            plan = run.plans[app]
            reuse.files[app] = [*plan.skipped, *plan.uploads]
            for f in plan.skipped:
                found = plan.remote.get(f.key)
                reuse.written[(app, f.key)] = found.modified if found else None
            for f in plan.uploads:
                reuse.written[(app, f.key)] = run.uploaded.get((app, f.key), planned)
        return reuse

    def old(self, written: datetime | None, now: datetime) -> bool:
        """Written half the grace period ago or more (undated, as prune takes it: old)."""
        half = self.run.project.publish.grace_seconds / 2
        return written is None or (now - written).total_seconds() >= half

    def named(self, current: Live | None, app: str) -> set[str]:
        """The online keys of `app`'s version in the pointer being replaced (and, for the
        parent, that pointer's page copy)."""
        if current is None:
            return set()
        run = self.run
        keys = {ca_key(SHELL_KEY, current.page.sha256)} if app == run.parent else set()
        if app not in current.apps:
            return keys
        bucket, state = run.buckets[app], run.project.state_dir(run.env.name)
        try:
            with s3_errors(run.session, bucket, f"reading the file list of {app}"):
                files = read_version(run.s3, bucket, app, current.apps[app].version, state)
        except MfeError:  # no usable file list: refresh rather than trust it
            return keys
        return keys | {k if r.immutable else ca_key(k, r.sha256) for k, r in files.items()}

    def due(
        self, current: Live | None, mine: list[str], now: datetime
    ) -> dict[str, list[LocalFile]]:
        """The old objects of `mine` that `current` does not name: what `refresh` writes."""
        due: dict[str, list[LocalFile]] = {}
        for app in mine:
            old = [f for f in self.files.get(app, []) if self.old(self.written[(app, f.key)], now)]
            if old:
                named = self.named(current, app)
                due[app] = [f for f in old if f.key not in named]
        return due

    def refresh(self, current: Live | None, mine: list[str]) -> None:
        """Before a swap from `current`: upload again the old objects it does not name."""
        now = datetime.now(UTC)
        self.refresh_records(current, mine, now)
        due = self.due(current, mine, now)
        count = sum(len(files) for files in due.values())
        if not count:
            return
        self.run.progress.note(
            self.told(due) + ": older than half of grace_seconds, a concurrent --prune "
            "could delete them before the swap"
        )
        self._put(due)
        self.count(due, now)

    def refresh_records(self, current: Live | None, mine: list[str], now: datetime) -> None:
        """Write again the old version records of `mine` that `current` does not name (the
        same bytes): the rule `due` applies to files, which a record outlives no longer."""
        for (app, version), written in self.records.items():
            if app not in mine or not self.old(written, now):
                continue
            live = current.apps.get(app) if current is not None else None
            if live is not None and live.version == version:
                continue
            self.rewrite_record(app, version)
            self.records[(app, version)] = now
            self.rewritten.add((app, version))

    def rewrite_record(self, app: str, version: str) -> None:
        run = self.run
        bucket, state = run.buckets[app], run.project.state_dir(run.env.name)
        with s3_errors(run.session, bucket, f"writing the file list of {app} again"):
            rewrite_version(run.s3, bucket, app, version, state)

    def told(self, due: dict[str, list[LocalFile]]) -> str:
        """`uploading N reused file(s) again`, naming apart the ones this command uploaded
        (not reused: their upload started that long ago)."""
        mine = sum((app, f.key) in self.run.uploaded for app, fs in due.items() for f in fs)
        reused = sum(len(fs) for fs in due.values()) - mine
        this = f"this {self.run.progress.command}"
        if not mine:
            return self.NOTE.format(count=reused)
        if not reused:
            return f"uploading again {mine} file(s) {this} uploaded"
        return self.NOTE.format(count=reused) + f", and {mine} {this} uploaded"

    def count(self, due: dict[str, list[LocalFile]], now: datetime) -> None:
        """Record `due` as written at `now`, and as uploads in the plans (the reports)."""
        for app, files in due.items():
            plan = self.run.plans.get(app)
            for f in files:
                self.written[(app, f.key)] = now
                self.refreshed[(app, f.key)] = f
                if plan is not None and f in plan.skipped:  # the report counts it as uploaded
                    plan.skipped.remove(f)
                    plan.uploads.append(f)

    def page_due(self, current: Live | None, copy: LocalFile, found: RemoteObject | None) -> bool:
        """Whether the page's `_ca/` copy must go up: missing, or old and not `current`'s."""
        if found is None or not present(copy, found):
            return True
        named = current is not None and current.page.sha256 == copy.sha256
        if named or not self.old(found.modified, datetime.now(UTC)):
            return False
        self.refreshed[(self.run.parent, copy.key)] = copy
        return True

    def confirm(self) -> None:
        """After the swap: upload again any refreshed object a prune deleted meanwhile."""
        run = self.run
        for app, version in sorted(self.rewritten):
            with s3_errors(run.session, run.buckets[app], f"checking the file list of {app}"):
                there = head(run.s3, run.buckets[app], version_key(app, version))
            if there is None:
                run.progress.note(
                    f"{version_key(app, version)} deleted by a concurrent --prune: writing again"
                )
                self.rewrite_record(app, version)
        gone: dict[str, list[LocalFile]] = {}
        for (app, key), f in self.refreshed.items():
            bucket = run.buckets[app]
            with s3_errors(run.session, bucket, f"checking {key}"):
                if head(run.s3, bucket, key) is None:
                    gone.setdefault(app, []).append(f)
        if gone:
            keys = ", ".join(f.key for files in gone.values() for f in files)
            run.progress.note(f"{keys} deleted by a concurrent --prune: writing again")
            self._restore(gone)

    def _restore(self, files: dict[str, list[LocalFile]]) -> None:
        self._put(files)

    def _put(self, files: dict[str, list[LocalFile]]) -> None:
        run = self.run
        plans = {app: AppPlan(app, run.buckets[app], None, [], {}, fs) for app, fs in files.items()}
        run.upload(plans)


def described(gone: list[tuple[str, str]]) -> str:
    """`key (app), ...`, the first few."""
    names = ", ".join(f"{key} ({app})" for app, key in gone[:4])
    return names + (f" and {len(gone) - 4} more" if len(gone) > 4 else "")


class Gone(MfeError):
    """Refreshed files a concurrent `--prune` deleted with their spare copies (the
    rollback was delayed past the grace period): `mfe.publish.undo` swaps back."""

    def __init__(self, lost: list[tuple[str, str]]) -> None:
        super().__init__(f"{described(lost)} deleted by a concurrent --prune, spare copies too")
        self.lost = lost


def copy_within(run: Run, app: str, source: str, key: str, extra: dict[str, Any]) -> bool:
    """CopyObject within the app's bucket; False when `source` is not there."""
    from botocore.exceptions import ClientError

    bucket = run.buckets[app]
    with s3_errors(run.session, bucket, f"copying {source} to {key}"):
        try:
            run.s3.copy_object(
                Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": source}, **extra
            )
        except ClientError as exc:
            if missing_key(exc):
                return False
            raise
    return True


HOLD_PREFIX = "_hold/"
"""A rollback's spare copies of what it refreshes: named by no pointer, so `--prune`
deletes those a killed rollback left once they are older than the grace period."""


def stored(app: str, key: str, rec: FileRecord | Blob, immutable: bool) -> LocalFile:
    """The online copy of a file known only from a file list or a pointer (a rollback's
    target): its bytes are in the bucket alone, so `path` is never read."""
    etag = rec.etag if isinstance(rec, FileRecord) else rec.md5
    file = LocalFile(
        app, key, Path(), rec.sha256, rec.md5, rec.size, rec.content_type, rec.cache_control,
        immutable, etag,
    )  # fmt: skip
    return online_copy(file)


@dataclass
class InPlace(Reuse):
    """A rollback's reuse: the same rule, but the target's objects have no local bytes, so
    a refresh copies each onto itself (new LastModified, same headers), after a spare
    copy under `_hold/` from which `confirm` restores one a prune deleted meanwhile."""

    NOTE: ClassVar[str] = "rewriting {count} file(s) of the target in place"

    token: str = field(default_factory=lambda: secrets.token_hex(6))
    held: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def of_target(cls, run: Run, apps: dict[str, AppVersion], page: Blob | None) -> InPlace:
        """Every online object of `apps` (and of the page's `_ca/` copy), dated by the
        buckets' listings (None when missing: `check_complete` refuses those)."""
        reuse = cls(run)
        state = run.project.state_dir(run.env.name)
        for app, version in apps.items():
            if app not in run.buckets:
                continue
            bucket = run.buckets[app]
            with s3_errors(run.session, bucket, f"reading the file list of {app}"):
                files = read_version(run.s3, bucket, app, version.version, state)
            reuse.files[app] = [stored(app, k, r, r.immutable) for k, r in files.items()]
            reuse.records[(app, version.version)] = None  # its age is not known: old
        if page is not None:
            reuse.files.setdefault(run.parent, []).append(
                stored(run.parent, SHELL_KEY, page, False)
            )
        for app, found in reuse.files.items():
            listing = run.listing(app)
            for f in found:
                there = listing.get(f.key)
                reuse.written[(app, f.key)] = there.modified if there else None
        return reuse

    def _put(self, files: dict[str, list[LocalFile]]) -> None:
        jobs = [
            functools.partial(self._refresh_one, app, f) for app, fs in files.items() for f in fs
        ]
        parallel(self.run.project.publish.workers, jobs)

    def _refresh_one(self, app: str, f: LocalFile) -> None:
        from mfe.publish.upload import extra_args

        hold = f"{HOLD_PREFIX}{self.token}/{f.key}"
        replace = {"MetadataDirective": "REPLACE", **extra_args(f)}
        held = copy_within(self.run, app, f.key, hold, {})
        if held:
            self.held[(app, f.key)] = hold
        if not (held and copy_within(self.run, app, f.key, f.key, replace)):
            run = self.run
            raise MfeError(
                f"cannot roll back environment '{run.env.name}': {f.key} ({app}) was deleted "
                f"from bucket '{run.buckets[app]}' while the rollback ran (a concurrent "
                "--prune?); the live release was not changed: publish a fixed build instead"
            )

    def _restore(self, files: dict[str, list[LocalFile]]) -> None:
        """From the spare copies; a file with local bytes (an app rollback's page) is
        uploaded again. Raises `Gone` naming every file whose spare copy is gone too."""
        local: dict[str, list[LocalFile]] = {}
        lost: list[tuple[str, str]] = []
        for app, fs in files.items():
            for f in fs:
                hold = self.held.get((app, f.key))
                if hold is None:
                    local.setdefault(app, []).append(f)
                elif not copy_within(self.run, app, hold, f.key, {}):
                    lost.append((app, f.key))
        if local:
            super()._put(local)
        if lost:
            raise Gone(lost)

    def release(self) -> None:
        """Delete the spare copies (what a killed rollback leaves, `--prune` deletes)."""
        from mfe.publish.prune import delete_keys

        for app in sorted({app for app, _ in self.held}):
            keys = sorted(hold for (a, _), hold in self.held.items() if a == app)
            delete_keys(self.run, self.run.buckets[app], keys, "removing a rollback's spare copies")
        self.held.clear()
