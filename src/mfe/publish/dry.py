"""The report of a dry-run publish: what it would upload, write and invalidate, from the
same plans and rules as the publish itself, writing nothing. A publish that would change
nothing trusts the live pointer (it checks no bucket), so the plan lists nothing for it,
but warns about what of the live release its buckets lost (`mfe.publish.heal.lost`), which
`--verify` writes back: with `--verify` the plan lists that too. A live pointer whose commit
step is not done (a command stopped after its swap) is finished first by every publish: the
plan lists that step's writes and invalidations (`pending.plan_pending`) with its own; one
naming files the buckets lost is swapped back instead, and the plan goes on from the pointer
that swap would make (`undo.plan_undo`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mfe.publish.commit import (
    by_distribution,
    due_fixed,
    invalidated,
    keys_by_app,
    merged,
    with_distribution,
)
from mfe.publish.dropped_apps import Dropped
from mfe.publish.fixed import wanted
from mfe.publish.heal import lost, unrestorable
from mfe.publish.merge import Candidate, invalidation_paths, merge, swap_due
from mfe.publish.plan import online_copy
from mfe.publish.pointer import Live
from mfe.publish.refresh import Reuse
from mfe.publish.result import Result, by_app
from mfe.publish.versions import blob

if TYPE_CHECKING:
    from mfe.publish.run import Run


def dry(
    run: Run,
    base: Live | None,
    changed: list[str],
    candidates: dict[str, Candidate],
    forced: dict[str, str],
    gone: Dropped,
    verify: bool = False,
) -> Result:
    apps = merge(base, changed, candidates, forced, gone.removed)
    page = run.page(apps)
    parent_plan = run.plans[run.parent]
    copy = online_copy(page)
    now = datetime.now(UTC)
    reuse = Reuse.of(run, changed, now)
    reuse.count(reuse.due(base, changed, now), now)  # what `refresh` would upload again
    noop = not swap_due(base, changed + gone.removed, page)
    if not noop and reuse.page_due(base, copy, run.remote(run.parent, copy.key)):
        parent_plan.uploads.append(copy)  # as `Run.upload_page` before the swap
    page_blob = blob(page)
    paths = invalidation_paths(base, apps, page_blob, run.parent)
    done = run.committed  # finishing an earlier command's commit step (`plan_pending`)
    if not noop:  # what the commit step would write, and so invalidate
        pick = wanted(base, run.parent, run.drift.drifted)
        due = due_fixed(apps, page_blob, run.parent, run.buckets, pick)
        written = keys_by_app(due)
        for name, keys in merged(done.written, written).items():
            run.row(name).written = keys
        paths = invalidated(paths, written)
    elif base is not None:
        healed = healing(run, base, verify)
        for name, keys in merged(done.written, healed).items():
            run.row(name).written = keys
        paths = invalidated({}, healed)
    if base is None:  # as the commit step (`to_invalidate`): nothing cached to invalidate
        paths = {}
    result = Result(base.release if base and noop else "(next)", None, base, noop)
    result.sent = merged(done.sent, by_distribution(paths, run.distributions))
    result.changed, result.removed = changed, gone.removed
    result.forced, result.forced_over = list(forced) + gone.forced, forced
    result.by_app = merged(done.by_app, with_distribution(paths, run.distributions))
    result.refreshed = by_app(reuse.refreshed)
    return result


def healing(run: Run, live: Live, verify: bool) -> dict[str, list[str]]:
    """What a publish that changes nothing would repair of `live` (`mfe.publish.heal`):
    with `verify`, the page copy it uploads (in the parent's row) and the fixed-URL files
    it writes (app -> keys); without, a warning naming them, as a plain publish writes them
    only when its smoke check fails. Files that finishing `live`'s commit step writes
    (`plan_pending`) are not lost: that step comes first, also in a plain publish."""
    found = lost(run, live, run.drift)
    finishing = run.committed.written  # `plan_pending`: written back before any heal
    files = [f for f in found.files if f[1] not in finishing.get(f[0], [])]
    found = replace(found, files=files)
    if found.copy_gone and found.page_copy is None:
        run.progress.note(f"warning: {unrestorable(run, live)}")
    if not verify:
        if found.files or found.copy_gone:
            run.progress.note(
                f"warning: {found.described(live.release)}: `doit publish --verify` writes "
                "them back (a plain publish only if its smoke check fails)"
            )
        return {}
    if found.page_copy is not None:
        run.row(run.parent).uploads.append(found.page_copy)
    return keys_by_app(found.files)
