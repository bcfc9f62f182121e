"""One publish as a pointer swap (see DESIGN.md, "One live pointer"):

1. read the live pointer; finish a commit an earlier publish left half done (pointer
   swapped, no history record);
2. list the buckets of the apps whose built bytes differ from their live version (an app
   at its live version is online in full: its files went up before that version's swap,
   and prune keeps them); upload what those buckets lack (fingerprinted files, `_ca/`
   copies of the others), write the changed apps' version manifests;
3. render the page from the pointer merged with this publish's changed apps, upload again
   what it reuses that a concurrent `--prune` could delete (`refresh`), upload its `_ca/`
   copy, swap the pointer (compare-and-swap; a lost race merges and retries, its new
   pointer carrying the one it replaces while that has no record), check that the
   refreshed objects are still there;
4. record the pointer the swap replaced if it was not the one read in step 1 (its own
   publish may have died before recording it), then commit: fixed-URL files and
   `index.html`, invalidation, history record.

A publish killed anywhere leaves the page and every file it references in one release;
the re-run uploads only what the listing shows missing. A no-op publish lists nothing:
one pointer read and two history-record checks (the pointer's own record, and that no
later one exists: a pointer restored by hand is refused before any note or upload).
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mfe.build.manifest import AssetManifest
from mfe.config import Environment, Project
from mfe.envs.outputs import Outputs
from mfe.errors import MfeError
from mfe.publish.built_here import read_built, remember_built
from mfe.publish.commit import Committed, commit
from mfe.publish.commit_order import FORCE_HINT, check_not_older, forced_over, keep_later
from mfe.publish.dropped_apps import RACED, Dropped, changed_only, dropped, publishing, recorded
from mfe.publish.dry import dry
from mfe.publish.fixed import LIST_ABOVE as LIST_ABOVE  # re-exported: its former home
from mfe.publish.fixed import Drift, wanted
from mfe.publish.held import held_note, held_why
from mfe.publish.history import Recorded, ahead_of, new_release_id, summary, who
from mfe.publish.local import LocalApp, LocalFile, cached_page, collect, page_file
from mfe.publish.merge import (
    candidate,
    changed_apps,
    invalidation_paths,
    left_online,
    merge,
    shown_keys,
    stale,
    swap_due,
)
from mfe.publish.page import built_version, fetch_version, render_page
from mfe.publish.pending import Pending, carry, finish_pending, plan_pending, record_replaced
from mfe.publish.plan import AppPlan, Plan, app_plan, online_copy, present
from mfe.publish.pointer import Live, compare_and_swap, read_pointer
from mfe.publish.refresh import Reuse
from mfe.publish.releases import dirty_apps, now_iso, published_source
from mfe.publish.remote import RESUMES, UNCHANGED, RemoteObject, list_bucket, s3_errors
from mfe.publish.report import Progress
from mfe.publish.result import Result, by_app
from mfe.publish.versions import blob, records, version_key, version_of, write_version

if TYPE_CHECKING:
    from mfe.envs.session import Session


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

    # ------------------------------------------------------------------ publish
    def publish(
        self,
        *,
        force: bool,
        prune: bool,
        wait: bool,
        verify: bool = False,
        keep_newer: bool = False,
        force_hint: str | None = None,
    ) -> Result:
        """`keep_newer`: an app live from a later commit stays (`commit_order.keep_later`) instead of
        refusing the publish; `force` publishes it anyway. `force_hint`: how a refusal says
        to force it, if not `commit_order.FORCE_HINT` (`doit ci` has no --force)."""
        hint = force_hint or FORCE_HINT
        dry_run = self.dry_run
        # Judged against a pointer older than the history, every note (held apps) and
        # upload would be wrong and the swap refused: check it first (one HEAD).
        base, etag, behind_history = self.read_settled()
        if behind_history and not dry_run:
            raise MfeError(f"nothing was published: {behind_history}")
        if behind_history:  # the publish would be refused before its swap
            self.progress.note(f"warning: a publish would be refused: {behind_history}")
        if dry_run:
            plan_pending(self, base)  # counted in `self.committed`, as finishing it is
        elif finish_pending(self, base) is Pending.UNDONE:
            base, etag = self.read_live()
        commit_id, dirty = published_source(self.project, self.local)
        now = now_iso()
        apps_dirty, by = dirty_apps(self.project, self.local, dirty), who(self.project.root)
        candidates = {
            name: candidate(name, la.files, la.entries, commit_id, now, apps_dirty[name], by)
            for name, la in self.local.items()
        }
        state_dir = self.project.state_dir(self.env.name)
        built = read_built(state_dir, self.parent_bucket)
        root = self.project.root
        held = [] if force else stale(base, candidates, built, root)
        changed = changed_apps(base, candidates, held)
        kept_off: dict[str, str] = {}
        for name in held:
            assert base is not None  # `stale` holds only apps live in `base`
            kept_off[name] = held_why(root, base, candidates[name])
            self.progress.note(held_note(root, base, candidates[name], force=True))
        kept: dict[str, str] = {}

        def keep(live: Live | None, apps: list[str]) -> list[str]:
            """`apps` less those live from a later commit, with `keep_newer`."""
            if not keep_newer or force:
                return apps
            return keep_later(root, live, apps, candidates, kept, self.progress.note)

        changed = keep(base, changed)

        def forcing(live: Live | None, apps: list[str]) -> dict[str, str]:
            """The `apps` only `force` lets through, each with what it goes over: a newer
            commit, or a version live replaced or a rollback took off (recorded)."""
            over = check_not_older(root, live, apps, candidates, force, hint)
            older = stale(live, candidates, built, root) if force else []
            return {
                name: forced_over(root, live, name, candidates[name], name in over)
                for name in apps
                if live is not None and (name in over or name in older)
            }

        forced = forcing(base, changed)
        for name, keys in left_online(base, candidates, changed).items():
            self.progress.note(
                f"{name}: {len(keys)} file(s) no longer built stay online at their URLs "
                f"({shown_keys(keys)}); `doit publish --prune` deletes them once no kept "
                "release names them"
            )

        def drops(live: Live | None, after: str = "") -> Dropped:
            """The live apps this checkout lacks that the next pointer drops (or refuse)."""
            env, apps = self.env.name, self.project.apps
            words = publishing(env, hint)
            return dropped(root, env, live, apps, commit_id, force, after, words)

        gone = drops(base)
        self.plans = {}
        for name, la in self.local.items():
            listing = self.listing(name) if verify or name in changed else None
            self.plans[name] = app_plan(self.env, self.outputs, name, la.files, listing)
        self.row(self.parent)
        if dry_run:
            report = dry(self, base, changed, candidates, forced, gone, verify)
            report.dirty = dirty
            if prune:  # what a publish would keep: the kept releases and this one
                from mfe.publish.prune import prune as plan_prune

                mine = {
                    n: {online_copy(f).key for f in la.files}
                    | {version_key(n, version_of(la.files))}
                    for n, la in self.local.items()
                }
                plan_prune(self, mine, delete=False)
            return report
        apps = merge(base, changed, candidates, forced, gone.removed)
        page = self.page(apps)  # template errors first
        if swap_due(base, changed + gone.removed, page):
            _ = self.conditional  # a store that would lose races is refused before uploading
        self.upload(self.plans)
        reuse = Reuse.of(self, changed)
        for name in changed:
            files = records(candidates[name].files)
            doing = f"recording app version of {name}"
            version, started = candidates[name].version.version, datetime.now(UTC)
            with s3_errors(self.session, self.buckets[name], doing, lost=self.lost):
                found = write_version(
                    self.s3, self.buckets[name], name, version, files,
                    self.local[name].manifest, state_dir,
                )  # fmt: skip
            reuse.records[(name, version)] = found or started
        parent_plan = self.plans[self.parent]
        state: dict[str, Any] = {"forced": forced, "gone": gone}

        def make(current: Live | None) -> Live | None:
            held = [] if force else stale(current, candidates, built, root)
            mine = [n for n in changed_apps(current, candidates, held) if n in changed]
            if current is not None and current.seq != (base.seq if base else 0):
                self.progress.note(  # a lost race: what this publish now merges over
                    f"{summary(current)} landed meanwhile; merging this publish's changes over it"
                )
                mine = keep(current, mine)
                state["forced"] = forcing(current, mine)
                state["gone"] = drops(current, RACED)  # the same rule on what it lost to
            removed = state["gone"].removed
            apps = merge(current, mine, candidates, state["forced"], removed)
            page = self.page(apps)
            if not swap_due(current, mine + removed, page):
                return None
            carried = carry(self, current, base)
            reuse.refresh(current, mine)
            self.upload_page(page, parent_plan, current, reuse)
            page_blob = blob(page)
            release = new_release_id(page.sha256, current.release if current else None)
            made = Live(
                seq=(current.seq if current else 0) + 1,
                release=release,
                created=now_iso(),
                apps=apps,
                page=page_blob,
                changed=recorded(mine, removed) or [self.parent],
                by=by,
                commit=commit_id,
                dirty=dirty,
                forced=[n for n in state["forced"] if n in mine] + state["gone"].forced,
                forced_over={n: w for n, w in state["forced"].items() if n in mine},
                invalidations=invalidation_paths(current, apps, page_blob, self.parent),
                unrecorded=carried,
            )
            self.made = (made, current)
            return made

        with s3_errors(self.session, self.parent_bucket, "swapping the live pointer"):
            new, previous = compare_and_swap(
                self.s3,
                self.parent_bucket,
                make,
                first=(base, etag),
                conditional=lambda: self.conditional,
                history=Recorded(self.s3, self.parent_bucket),
            )
        versions = {name: cand.version.version for name, cand in candidates.items()}
        remember_built(state_dir, self.parent_bucket, versions)  # judged: for the next publish
        if new is None:
            result = Result(previous.release if previous else "", previous, previous, True)
        else:
            self.swapped = (new, previous)
            record_replaced(self, previous, base)
            reuse.confirm()  # before the commit step serves the page
            self.commit_step(new, previous, wait)
            self.finished = True
            reuse.confirm()  # and after: a prune that decided before the swap had that long
            result = Result(new.release, new, previous, False, {}, new.forced, new.changed)
            result.forced_over = new.forced_over
            result.refreshed = by_app(reuse.refreshed)
            result.removed = state["gone"].removed
            result.changed = changed_only(new.changed, result.removed)
        if verify:
            from mfe.publish.heal import heal

            heal(self)
        result.dirty = dirty
        result.superseded = sorted(set(kept) - set(result.changed))  # a retry may publish one
        result.held = {n: why for n, why in kept_off.items() if n not in result.changed}
        done = self.committed  # also what finishing an earlier commit step wrote
        for name, keys in done.written.items():  # another app's healed files get a row too
            self.row(name).written = keys
        result.sent, result.by_app = done.sent, done.by_app
        if prune:
            from mfe.publish.prune import PruneRefused
            from mfe.publish.prune import prune as run_prune

            try:
                run_prune(self)
            except PruneRefused as refused:  # the release is live: report it, then fail
                result.prune_refused = str(refused)
        return result

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
            self.built_others[(app, version)] = built_version(self.project, app, version)
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
