"""`Run`: one command's view of an environment's releases, shared by every command that
reads or swaps the live pointer (publish, rollback, prune, previews, `doit releases`): its
session and outputs, this checkout's builds, bucket listings read once, the page rendered
from a pointer's apps, uploads, and the commit step after a swap. What a publish does
with it is `mfe.publish.publishing`; a rollback, `mfe.publish.rollback`.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mfe.build.manifest import AssetManifest
from mfe.config import Environment, Project
from mfe.envs.outputs import Outputs
from mfe.publish.commit import Committed, commit
from mfe.publish.fixed import LIST_ABOVE as LIST_ABOVE  # re-exported: its former home
from mfe.publish.fixed import Drift, wanted
from mfe.publish.history import ahead_of
from mfe.publish.local import LocalApp, LocalFile, cached_page, collect, page_file
from mfe.publish.page import built_version, fetch_version, render_page
from mfe.publish.pending import record_replaced
from mfe.publish.plan import AppPlan, Plan, online_copy, present
from mfe.publish.pointer import Live, read_pointer
from mfe.publish.refresh import Reuse
from mfe.publish.remote import RESUMES, UNCHANGED, RemoteObject, list_bucket, s3_errors
from mfe.publish.report import Progress
from mfe.publish.versions import version_of

if TYPE_CHECKING:
    from mfe.envs.session import Session
    from mfe.publish.interrupted import SwapBack


@dataclass
class Run:
    """One command's view of an environment's releases: session, outputs, local builds."""

    project: Project
    session: Session
    outputs: Outputs
    progress: Progress
    url: str
    local: dict[str, LocalApp]
    dry_run: bool = False
    before: Counter[str] = field(default_factory=Counter)
    plans: dict[str, AppPlan] = field(default_factory=dict)
    listings: dict[str, dict[str, RemoteObject]] = field(default_factory=dict)
    committed: Committed = field(default_factory=Committed)
    """What this command's commit steps did, finishing an earlier one's included."""
    local_versions: dict[str, str] = field(default_factory=dict)
    built_others: dict[tuple[str, str], tuple[AssetManifest, Path] | None] = field(
        default_factory=dict
    )
    """(app, version) -> this checkout's build of an app not in `local`, if that version."""
    extra_kept: dict[str, set[str]] = field(default_factory=dict)
    """app -> keys `--prune` keeps besides those of kept versions (previews' uploads)."""
    switched: bool = False
    """Whether this command ran a commit step (which may write the served page)."""
    uploaded: dict[tuple[str, str], datetime] = field(default_factory=dict)
    """(app, key) -> when this command last started uploading it (`Reuse` dates it so)."""
    made: tuple[Live, Live | None] | None = None
    """The pointer this publish's swap last built, with the one it replaces (it may be
    written: Ctrl-C's message asks the store)."""
    swapped: tuple[Live, Live | None] | None = None
    """The pointer this publish wrote, with the one it replaced."""
    finished: bool = False
    """The commit step of `swapped` finished: its page is served, its release recorded."""
    finishing: Live | None = None
    """A pointer without its record whose commit step this command is finishing (or
    swapping back, `swap_back`): not served yet (`mfe.publish.pending`)."""
    swap_back: SwapBack | None = None
    """The swap back this command made last, if any (`mfe.publish.undo`), as far as it got."""

    @classmethod
    def start(
        cls,
        project: Project,
        env: Environment | str,
        outputs: Outputs | None,
        progress: Progress | None,
        *,
        only: list[str] | None,
        dry_run: bool = False,
        collect_local: bool = True,
        session: Session | None = None,
    ) -> Run:
        from mfe.envs.session import Session

        session = session or Session(project, env, outputs)
        before = Counter(session.requests)
        session.backend.check(session)
        outputs = outputs or session.outputs
        local = collect(project, session.env.name, only) if collect_local else {}
        url = session.backend.site_url(outputs)
        return cls(
            project, session, outputs, progress or Progress(), url, local, dry_run,
            before,
        )  # fmt: skip

    @functools.cached_property
    def conditional(self) -> bool:
        """Whether the pointer is written conditionally; asked (a probe, once per clone and
        store) only when a swap is due: a publish that changes nothing writes no pointer."""
        from mfe.publish.locking import conditional_writes

        with s3_errors(self.session, self.parent_bucket, "checking conditional-write support"):
            return conditional_writes(self.session, self.parent_bucket)

    @property
    def s3(self) -> Any:
        return self.session.s3

    @property
    def env(self) -> Environment:
        return self.session.env

    def counts(self) -> dict[str, int]:
        """Requests made by this command (S3 and CloudFront always present)."""
        return self.session.counts(since=self.before)

    # ------------------------------------------------------------------ helpers
    @property
    def parent(self) -> str:
        return self.project.parent.name

    @property
    def buckets(self) -> dict[str, str]:
        return {name: out.bucket for name, out in self.outputs.apps.items()}

    @property
    def parent_bucket(self) -> str:
        return self.buckets[self.parent]

    def read_live(self) -> tuple[Live | None, str | None]:
        with s3_errors(self.session, self.parent_bucket, "reading the live pointer"):
            return read_pointer(self.s3, self.parent_bucket)

    def read_settled(self) -> tuple[Live | None, str | None, str | None]:
        """The live pointer, its ETag, and why the history is ahead of it (None: it is not,
        `history.ahead_of`). Another command swaps the pointer, then writes its record: a
        pointer read just before both looks behind the history without being damaged, so
        it is read again until a read stands still."""
        live, etag = self.read_live()
        while True:
            with s3_errors(self.session, self.parent_bucket, "reading the release history"):
                why = ahead_of(self.s3, self.parent_bucket, live)
            if why is None:
                return live, etag, None
            again, again_etag = self.read_live()
            if again_etag == etag:
                return live, etag, why
            live, etag = again, again_etag

    def listing(self, app: str) -> dict[str, RemoteObject]:
        if app not in self.listings:
            self.listings[app] = list_bucket(self.session, self.buckets[app])
        return self.listings[app]

    @property
    def drift(self) -> Drift:
        return Drift(self.session, self.buckets, self.listings, self.project.publish.workers)

    def remote(self, app: str, key: str) -> RemoteObject | None:
        """One object as the bucket holds it (`Drift.remote`)."""
        return self.drift.remote(app, key)

    @property
    def lost(self) -> str:
        """Why running this command again is safe if its connection is lost now."""
        return RESUMES if self.switched else UNCHANGED

    @property
    def distributions(self) -> dict[str, str | None]:
        return {name: out.distribution_id for name, out in self.outputs.apps.items()}

    def local_by_sha(self) -> dict[str, LocalFile]:
        return {f.sha256: f for la in self.local.values() for f in la.files}

    def local_with_page(self, live: Live) -> dict[str, LocalFile]:
        """`local_by_sha` plus `live`'s page when this checkout's page cache holds it intact."""
        local = self.local_by_sha()
        page = cached_page(self.project, self.env.name, live.page.sha256)
        if page is not None:
            local[page.sha256] = page
        return local

    def row(self, app: str) -> AppPlan:
        """The app's plan, its report row; an empty one for an app this command does not
        publish (the parent's page, another app's fixed files written back)."""
        if app not in self.plans:
            self.plans[app] = AppPlan(app, self.buckets[app], self.distributions[app], [], {})
        return self.plans[app]

    def record_replaced(self, previous: Live | None, base: Live | None) -> None:
        """`mfe.publish.pending.record_replaced`: a method so that `mfe.publish.undo`, which
        `pending` imports, reaches it without an import cycle."""
        record_replaced(self, previous, base)

    def upload(self, plans: dict[str, AppPlan]) -> None:
        from mfe.publish.upload import upload_all

        if any(ap.uploads for ap in plans.values()):
            p = self.progress

            def done(f: LocalFile, started: datetime) -> None:
                self.uploaded[(f.app, f.key)] = started
                p.file_done(f)

            upload_all(self.session, Plan(self.env.name, self.parent, plans), self.project.publish.workers, p.phase, p.advance, done, self.lost)  # fmt: skip
            p.close()

    def manifest_for(self, app: str, version: str) -> tuple[AssetManifest, Path]:
        """A version's asset-manifest and JavaScript: the local build's when it is that
        version (also of an app this command does not publish: `app=NAME` renders the
        others' from their builds here, when live), else from the bucket (cached under
        `.mfe/<env>/dist-cache/`: immutable)."""
        local = self.local.get(app)
        if local is not None:
            if app not in self.local_versions:
                self.local_versions[app] = version_of(local.files)
            if self.local_versions[app] == version:
                return local.manifest, self.project.apps[app].dist
        elif (found := self.built_other(app, version)) is not None:
            return found
        state = self.project.state_dir(self.env.name)
        return fetch_version(self.session, self.buckets[app], app, version, state)

    def built_other(self, app: str, version: str) -> tuple[AssetManifest, Path] | None:
        """`page.built_version`, once per command: the page is rendered more than once."""
        if (app, version) not in self.built_others:
            state = self.project.state_dir(self.env.name)
            self.built_others[(app, version)] = built_version(self.project, app, version, state)
        return self.built_others[(app, version)]

    def page(self, apps: dict[str, Any]) -> LocalFile:
        html = render_page(self.project, self.env, self.outputs, apps, self.manifest_for)
        return page_file(self.project, self.env.name, html)

    def upload_page(self, page: LocalFile, plan: AppPlan, current: Live | None = None, reuse: Reuse | None = None) -> None:  # fmt: skip
        """The page's `_ca/` copy, before the swap (publish, app rollback): a command killed
        right after its swap must leave a pointer whose page is up."""
        copy = online_copy(page)
        if any(f.key == copy.key for f in plan.uploads):
            return
        found = self.remote(self.parent, copy.key)
        due = reuse.page_due(current, copy, found) if reuse else not present(copy, found)
        if not due:
            return
        self.upload_copy(copy)
        plan.uploads.append(copy)

    def upload_copy(self, copy: LocalFile) -> None:
        """One `_ca/` copy of the page to the parent's bucket (no report row of its own)."""
        self.upload({self.parent: AppPlan(self.parent, self.parent_bucket, None, [], {}, [copy])})

    def commit_step(self, new: Live, previous: Live | None, wait: bool) -> None:
        """The commit step after this command's swap from `previous` (`self.committed`)."""
        self.switched = True
        local = self.local_with_page(new)
        due = wanted(previous, self.parent, self.drift.drifted)
        written, sent = commit(
            self.session, new, self.parent, self.buckets, self.distributions, due, local,
            wait=wait, note=self.progress.note, workers=self.project.publish.workers,
            finishing=False,
        )  # fmt: skip
        self.committed.add(new, written, sent, self.distributions)
