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

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mfe.errors import MfeError
from mfe.publish.built_here import read_built, remember_built
from mfe.publish.commit_order import FORCE_HINT, check_not_older, forced_over, keep_later
from mfe.publish.dropped_apps import RACED, Dropped, changed_only, dropped, publishing, recorded
from mfe.publish.dry import dry
from mfe.publish.held import held_note, held_why
from mfe.publish.history import Recorded, new_release_id, summary, who
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
from mfe.publish.page import check_needed
from mfe.publish.pending import Pending, carry, finish_pending, plan_pending, record_replaced
from mfe.publish.plan import app_plan, online_copy
from mfe.publish.pointer import Live, compare_and_swap
from mfe.publish.refresh import Reuse
from mfe.publish.releases import dirty_apps, now_iso, published_source
from mfe.publish.remote import s3_errors
from mfe.publish.result import Result, by_app
from mfe.publish.versions import blob, records, version_key, version_of, write_version

if TYPE_CHECKING:
    from mfe.publish.run import Run


def publish_built(
    run: Run,
    *,
    force: bool,
    prune: bool,
    wait: bool,
    verify: bool = False,
    keep_newer: bool = False,
    force_hint: str | None = None,
) -> Result:
    """Publish `run`'s built apps (`mfe.publish.publish` reports it). `keep_newer`: an app
    live from a later commit stays (`commit_order.keep_later`) instead of refusing the
    publish; `force` publishes it anyway. `force_hint`: how a refusal says to force it, if
    not `commit_order.FORCE_HINT` (`doit ci` has no --force)."""
    hint = force_hint or FORCE_HINT
    dry_run = run.dry_run
    # Judged against a pointer older than the history, every note (held apps) and
    # upload would be wrong and the swap refused: check it first (one HEAD).
    base, etag, behind_history = run.read_settled()
    if behind_history and not dry_run:
        raise MfeError(f"nothing was published: {behind_history}")
    if behind_history:  # the publish would be refused before its swap
        run.progress.note(f"warning: a publish would be refused: {behind_history}")
    check_needed(run.project, run.env, base, run.local)  # `app=NAME` on an empty environment
    if dry_run:
        base = plan_pending(run, base)  # counted in `run.committed`, as finishing it is
    elif finish_pending(run, base) is Pending.UNDONE:
        base, etag = run.read_live()
    commit_id, dirty = published_source(run.project, run.local)
    now = now_iso()
    apps_dirty, by = dirty_apps(run.project, run.local, dirty), who(run.project.root)
    candidates = {
        name: candidate(name, la.files, la.entries, commit_id, now, apps_dirty[name], by)
        for name, la in run.local.items()
    }
    state_dir = run.project.state_dir(run.env.name)
    built = read_built(state_dir, run.parent_bucket)
    root = run.project.root
    held = [] if force else stale(base, candidates, built, root)
    changed = changed_apps(base, candidates, held)
    kept_off: dict[str, str] = {}
    for name in held:
        assert base is not None  # `stale` holds only apps live in `base`
        kept_off[name] = held_why(root, base, candidates[name])
        run.progress.note(held_note(root, base, candidates[name], force=True))
    kept: dict[str, str] = {}

    def keep(live: Live | None, apps: list[str]) -> list[str]:
        """`apps` less those live from a later commit, with `keep_newer`."""
        if not keep_newer or force:
            return apps
        return keep_later(root, live, apps, candidates, kept, run.progress.note)

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
        run.progress.note(
            f"{name}: {len(keys)} file(s) no longer built stay online at their URLs "
            f"({shown_keys(keys)}); `doit publish --prune` deletes them once no kept "
            "release names them"
        )

    def drops(live: Live | None, after: str = "") -> Dropped:
        """The live apps this checkout lacks that the next pointer drops (or refuse)."""
        env, apps = run.env.name, run.project.apps
        words = publishing(env, hint)
        return dropped(root, env, live, apps, commit_id, force, after, words)

    gone = drops(base)
    run.plans = {}
    for name, la in run.local.items():
        listing = run.listing(name) if verify or name in changed else None
        run.plans[name] = app_plan(run.env, run.outputs, name, la.files, listing)
    run.row(run.parent)
    if dry_run:
        report = dry(run, base, changed, candidates, forced, gone, verify)
        report.dirty = dirty
        if prune:  # what a publish would keep: the kept releases and this one
            from mfe.publish.prune import prune as plan_prune

            mine = {
                n: {online_copy(f).key for f in la.files} | {version_key(n, version_of(la.files))}
                for n, la in run.local.items()
            }
            plan_prune(run, mine, delete=False)
        return report
    apps = merge(base, changed, candidates, forced, gone.removed)
    page = run.page(apps)  # template errors first
    if swap_due(base, changed + gone.removed, page):
        _ = run.conditional  # a store that would lose races is refused before uploading
    run.upload(run.plans)
    reuse = Reuse.of(run, changed)
    for name in changed:
        files = records(candidates[name].files)
        doing = f"recording app version of {name}"
        version, started = candidates[name].version.version, datetime.now(UTC)
        with s3_errors(run.session, run.buckets[name], doing, lost=run.lost):
            found = write_version(
                run.s3, run.buckets[name], name, version, files,
                run.local[name].manifest, state_dir,
            )  # fmt: skip
        reuse.records[(name, version)] = found or started
    parent_plan = run.plans[run.parent]
    state: dict[str, Any] = {"forced": forced, "gone": gone}

    def make(current: Live | None) -> Live | None:
        held = [] if force else stale(current, candidates, built, root)
        mine = [n for n in changed_apps(current, candidates, held) if n in changed]
        if current is not None and current.seq != (base.seq if base else 0):
            run.progress.note(  # a lost race: what this publish now merges over
                f"{summary(current)} landed meanwhile; merging this publish's changes over it"
            )
            mine = keep(current, mine)
            state["forced"] = forcing(current, mine)
            state["gone"] = drops(current, RACED)  # the same rule on what it lost to
        removed = state["gone"].removed
        apps = merge(current, mine, candidates, state["forced"], removed)
        page = run.page(apps)
        if not swap_due(current, mine + removed, page):
            return None
        carried = carry(run, current, base)
        reuse.refresh(current, mine)
        run.upload_page(page, parent_plan, current, reuse)
        page_blob = blob(page)
        release = new_release_id(page.sha256, current.release if current else None)
        made = Live(
            seq=(current.seq if current else 0) + 1,
            release=release,
            created=now_iso(),
            apps=apps,
            page=page_blob,
            changed=recorded(mine, removed) or [run.parent],
            by=by,
            commit=commit_id,
            dirty=dirty,
            forced=[n for n in state["forced"] if n in mine] + state["gone"].forced,
            forced_over={n: w for n, w in state["forced"].items() if n in mine},
            invalidations=invalidation_paths(current, apps, page_blob, run.parent),
            unrecorded=carried,
        )
        run.made = (made, current)
        return made

    with s3_errors(run.session, run.parent_bucket, "swapping the live pointer"):
        new, previous = compare_and_swap(
            run.s3,
            run.parent_bucket,
            make,
            first=(base, etag),
            conditional=lambda: run.conditional,
            history=Recorded(run.s3, run.parent_bucket),
        )
    versions = {name: cand.version.version for name, cand in candidates.items()}
    remember_built(state_dir, run.parent_bucket, versions)  # judged: for the next publish
    if new is None:
        result = Result(previous.release if previous else "", previous, previous, True)
    else:
        run.swapped = (new, previous)
        record_replaced(run, previous, base)
        reuse.confirm()  # before the commit step serves the page
        run.commit_step(new, previous, wait)
        run.finished = True
        reuse.confirm()  # and after: a prune that decided before the swap had that long
        result = Result(new.release, new, previous, False, {}, new.forced, new.changed)
        result.forced_over = new.forced_over
        result.refreshed = by_app(reuse.refreshed)
        result.removed = state["gone"].removed
        result.changed = changed_only(new.changed, result.removed)
    if verify:
        from mfe.publish.heal import heal

        healed = heal(run)
        result.repaired = sum(len(keys) for keys in healed.values())
        if result.noop:  # what the listings found missing of the live release
            result.repaired += sum(len(plan.uploads) for plan in run.plans.values())
    result.dirty = dirty
    result.superseded = sorted(set(kept) - set(result.changed))  # a retry may publish one
    result.held = {n: why for n, why in kept_off.items() if n not in result.changed}
    done = run.committed  # also what finishing an earlier commit step wrote
    for name, keys in done.written.items():  # another app's healed files get a row too
        run.row(name).written = keys
    result.sent, result.by_app = done.sent, done.by_app
    if prune:
        from mfe.publish.prune import PruneRefused
        from mfe.publish.prune import prune as run_prune

        try:
            run_prune(run)
        except PruneRefused as refused:  # the release is live: report it, then fail
            result.prune_refused = str(refused)
    return result
