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
saw it young, as that pointer's publish made sure by this same rule; a rollback does
not follow it). Older ones are uploaded again from the local bytes (`refresh`), which
makes them young: in the usual case, the files a changed app shares with its live
version, nothing is uploaded again.

A prune that listed the bucket before a refresh may still delete the young copy (it
decided on the old one), so after the swap the refreshed objects are checked and any
gone uploaded once more (`confirm`), before the commit step serves the page and again
after it.

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

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mfe.errors import MfeError
from mfe.publish.local import LocalFile
from mfe.publish.plan import AppPlan, present
from mfe.publish.pointer import Live
from mfe.publish.remote import RemoteObject, head, s3_errors
from mfe.publish.versions import ca_key, read_version

if TYPE_CHECKING:
    from mfe.publish.run import Run


@dataclass
class Reuse:
    """The online copies of this publish's changed apps, and when each was last written
    as far as this publish knows."""

    run: Run
    files: dict[str, list[LocalFile]] = field(default_factory=dict)
    written: dict[tuple[str, str], datetime | None] = field(default_factory=dict)
    refreshed: dict[tuple[str, str], LocalFile] = field(default_factory=dict)

    @classmethod
    def of(cls, run: Run, changed: list[str], uploaded_at: datetime) -> Reuse:
        """From the plans: a skipped file as the listing dated it, an upload at `uploaded_at`
        (the start of the upload phase)."""
        reuse = cls(run)
        for app in changed:
            plan = run.plans[app]
            reuse.files[app] = [*plan.skipped, *plan.uploads]
            for f in plan.skipped:
                found = plan.remote.get(f.key)
                reuse.written[(app, f.key)] = found.modified if found else None
            for f in plan.uploads:
                reuse.written[(app, f.key)] = uploaded_at
        return reuse

    def old(self, written: datetime | None, now: datetime) -> bool:
        """Written half the grace period ago or more (undated, as prune takes it: old)."""
        half = self.run.project.publish.grace_seconds / 2
        return written is None or (now - written).total_seconds() >= half

    def named(self, current: Live | None, app: str) -> set[str]:
        """The online keys of `app`'s version in the pointer being replaced."""
        if current is None or app not in current.apps:
            return set()
        run = self.run
        bucket, state = run.buckets[app], run.project.state_dir(run.env.name)
        try:
            with s3_errors(run.session, bucket, f"reading the file list of {app}"):
                files = read_version(run.s3, bucket, app, current.apps[app].version, state)
        except MfeError:  # no usable file list: refresh rather than trust it
            return set()
        return {k if r.immutable else ca_key(k, r.sha256) for k, r in files.items()}

    def refresh(self, current: Live | None, mine: list[str]) -> None:
        """Before a swap from `current`: upload again the old objects it does not name."""
        now = datetime.now(UTC)
        due: dict[str, list[LocalFile]] = {}
        for app in mine:
            old = [f for f in self.files.get(app, []) if self.old(self.written[(app, f.key)], now)]
            if old:
                named = self.named(current, app)
                due[app] = [f for f in old if f.key not in named]
        count = sum(len(files) for files in due.values())
        if not count:
            return
        self.run.progress.note(
            f"publish: uploading {count} reused file(s) again: older than half of "
            "grace_seconds, a concurrent --prune could delete them before the swap"
        )
        self._put(due)
        for app, files in due.items():
            plan = self.run.plans[app]
            for f in files:
                self.written[(app, f.key)] = now
                self.refreshed[(app, f.key)] = f
                if f in plan.skipped:  # the report counts it as uploaded
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
        gone: dict[str, list[LocalFile]] = {}
        for (app, key), f in self.refreshed.items():
            bucket = run.buckets[app]
            with s3_errors(run.session, bucket, f"checking {key}"):
                if head(run.s3, bucket, key) is None:
                    gone.setdefault(app, []).append(f)
        if gone:
            keys = ", ".join(f.key for files in gone.values() for f in files)
            run.progress.note(f"publish: {keys} deleted by a concurrent --prune: uploading again")
            self._put(gone)

    def _put(self, files: dict[str, list[LocalFile]]) -> None:
        run = self.run
        plans = {app: AppPlan(app, run.buckets[app], None, [], {}, fs) for app, fs in files.items()}
        run.upload(plans)
