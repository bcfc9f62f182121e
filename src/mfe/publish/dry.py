"""The report of a dry-run publish: what it would upload, write and invalidate, from the
same plans and rules as the publish itself, writing nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mfe.publish.commit import (
    by_distribution,
    due_fixed,
    invalidated,
    keys_by_app,
    with_distribution,
)
from mfe.publish.fixed import wanted
from mfe.publish.merge import Candidate, Dropped, invalidation_paths, merge, swap_due
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
) -> Result:
    apps = merge(base, changed, candidates, forced, gone.removed)
    page = run.page(apps)
    parent_plan = run.plans[run.parent]
    copy = online_copy(page)
    now = datetime.now(UTC)
    reuse = Reuse.of(run, changed, now)
    reuse.count(reuse.due(base, changed, now), now)  # what `refresh` would upload again
    if reuse.page_due(base, copy, run.remote(run.parent, copy.key)):
        parent_plan.uploads.append(copy)
    noop = not swap_due(base, changed + gone.removed, page)
    page_blob = blob(page)
    paths = invalidation_paths(base, apps, page_blob, run.parent)
    if not noop:  # what the commit step would write, and so invalidate
        pick = wanted(base, run.parent, run.drift.drifted)
        due = due_fixed(apps, page_blob, run.parent, run.buckets, pick)
        written = keys_by_app(due)
        for name, keys in written.items():
            run.row(name).written = keys
        paths = invalidated(paths, written)
    if base is None:  # as the commit step (`to_invalidate`): nothing cached to invalidate
        paths = {}
    result = Result(base.release if base and noop else "(next)", None, base, noop)
    result.sent = {} if noop else by_distribution(paths, run.distributions)
    result.changed, result.removed = changed, gone.removed
    result.forced, result.forced_over = list(forced) + gone.forced, forced
    result.by_app = with_distribution(paths, run.distributions)
    result.refreshed = by_app(reuse.refreshed)
    return result
