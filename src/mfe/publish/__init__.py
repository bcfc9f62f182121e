"""`publish()`: put the built apps online as one swap of the environment's live pointer,
smoke-check the site and write `.mfe/<env>/publish-report.json`.

Modules: `local` (what to publish), `remote` (bucket listing, S3 errors), `plan` (the
upload diff), `upload` (phased transfers), `pointer` (the live pointer,
compare-and-swap), `locking` (conditional-write support), `versions` (app versions,
`_ca/` copies), `merge` (what a publish changes), `commit_order` (older or unmerged
commits refused), `ancestry` (git's answers), `dropped_apps` (live apps this checkout
lacks), `page` (the page of a merged release), `commit` (fixed URLs, invalidation,
history), `fixed` (which fixed-URL files the commit step writes), `history`, `run` (a
command's view of the releases), `publishing` (the publish itself), `rollback` (with
`rollback_target`, `rollback_swap`), `preview`, `prune`, `invalidate` (CloudFront),
`smoke`, `report` (the `PublishReport`, summary table, progress). S3 and CloudFront go
through the environment's `mfe.envs.session.Session`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from mfe.config import Environment, Project
from mfe.envs.outputs import Outputs
from mfe.errors import CtrlC
from mfe.publish.merge import shown_keys
from mfe.publish.plan import AppPlan, app_plan
from mfe.publish.pointer import Live
from mfe.publish.report import AppResult, Progress, PublishReport, write_report
from mfe.publish.result import Result
from mfe.publish.versions import version_of

if TYPE_CHECKING:
    from mfe.envs.session import Session
    from mfe.publish.run import Run

__all__ = ["PublishReport", "publish"]


def build_report(
    env: str,
    release: str,
    url: str,
    plans: dict[str, AppPlan],
    requests: dict[str, int],
    seconds: float,
    *,
    dry_run: bool,
    invalidations: dict[str, list[str]],
    result: Result,
) -> PublishReport:
    apps = {
        name: AppResult(
            uploaded=[f.key for f in ap.uploads] + ap.written,
            skipped=len(ap.skipped),
            deleted=list(ap.deletes),
            bytes=sum(f.size for f in ap.uploads),
        )
        for name, ap in plans.items()
    }
    previous = result.previous
    return PublishReport(
        env=env,
        release=release,
        site_url=url,
        apps=apps,
        invalidations=invalidations,
        requests=requests,
        seconds=round(seconds, 3),
        previous_release=previous.release if previous else None,
        noop=result.noop,
        invalidated_by_app=result.by_app,
        dry_run=dry_run,
        seq=result.live.seq if result.live else (previous.seq if previous else 0),
        changed=result.changed,
        forced=result.forced,
        forced_over=result.forced_over,
        refreshed=result.refreshed,
        removed=result.removed,
        superseded=result.superseded,
        held=result.held,
        not_published=sorted(
            n for n in {*result.superseded, *result.held} if n in apps and apps[n].uploaded
        ),
        dirty=result.dirty,
        prune_refused=result.prune_refused,
        repaired=result.repaired,
    )


def publish(
    project: Project,
    env: Environment | str,
    *,
    prune: bool = False,
    wait: bool = False,
    dry_run: bool = False,
    outputs: Outputs | None = None,
    smoke: bool = True,
    progress: Progress | None = None,
    app: str | None = None,
    force: bool = False,
    session: Session | None = None,
    verify: bool = False,
    keep_newer: bool = False,
    force_hint: str | None = None,
) -> PublishReport:
    """Publish the built apps to `env` as one pointer swap; returns the report (also written).

    `app`: publish only that app (the others stay as the live pointer has them);
    `force`: publish an app even when its live version comes from a newer commit or one
    this checkout has not merged;
    `keep_newer`: keep an app live from a newer commit and publish the others (`doit ci`,
    whose runs may finish out of order), where a plain publish refuses (one not merged
    here is still refused);
    `force_hint`: how a refusal says to force it, if not "pass --force" (`doit ci` has no
    --force: `commit_order.CI_FORCE_HINT`);
    `verify`: list every bucket, also of apps at their live version, and upload what is
    missing (otherwise the pointer vouches for those: a no-op publish lists nothing);
    `outputs` default to the session's (the backend makes the environment ready);
    `dry_run` plans only (and writes `plan-report.json`); `smoke=False` skips the HTTP
    check of the site. The report counts the requests made during this call.
    """
    from mfe.publish.publishing import publish_built
    from mfe.publish.run import Run

    started = time.monotonic()
    progress = progress or Progress(command="plan" if dry_run else "publish")
    run = Run.start(
        project, env, outputs, progress, only=_only(project, app), dry_run=dry_run,
        session=session,
    )  # fmt: skip
    try:
        result = publish_built(
            run,
            force=force,
            prune=prune,
            wait=wait,
            verify=verify,
            keep_newer=keep_newer,
            force_hint=force_hint,
        )
        if smoke and not dry_run:
            smoke_or_repair(run, result)
    except CtrlC:
        raise
    except KeyboardInterrupt:
        if dry_run:
            raise
        from mfe.publish.interrupted import interrupted

        raise interrupted(run) from None
    report = build_report(
        run.env.name,
        result.release,
        run.url,
        run.plans,
        run.counts(),
        time.monotonic() - started,
        dry_run=dry_run,
        invalidations=result.sent,
        result=result,
    )
    write_report(project.state_dir(run.env.name), report)
    return report


def smoke_or_repair(run: Run, result: Result) -> None:
    """Smoke-check the site; when it fails, upload what the buckets lack of the apps live at
    this checkout's builds (what `--verify` does) and check again. A publish that changes
    nothing lists no bucket, so this is how a plain re-run repairs a live file that a prune
    or a hand deleted (one the check loads: a module or stylesheet of the page). The upload
    hashes what it sends, so a `dist/` file edited since its build is refused, never sent
    again; a failure left after the repair does not send the user to `--verify`."""
    from mfe.publish.heal import heal
    from mfe.publish.smoke import SmokeFailed, after_repair, smoke_check

    try:
        smoke_check(run.url)
        return
    except SmokeFailed as failed:
        # Said first, then done in the order of a publish: files before the fixed URLs.
        uploaded = repair(run, result.live or result.previous, failed.problems)
        healed = heal(run)  # a fixed URL (the page above all) deleted or overwritten
        result.sent, result.by_app = run.committed.sent, run.committed.by_app
        result.repaired += uploaded + sum(len(keys) for keys in healed.values())
        if not result.repaired:
            raise after_repair(run.url, failed.problems) from None
    try:
        smoke_check(run.url)
    except SmokeFailed as failed:
        raise after_repair(run.url, failed.problems) from None


SHOWN_PROBLEMS = 3
"""How many of the smoke check's problems the repair note names."""


def repair(run: Run, live: Live | None, problems: list[str] | None = None) -> int:
    """List the buckets of the apps `live` serves at this checkout's build and upload what
    they lack; the report counts it as uploaded. Returns how many files went up. The note
    names what failed (`problems`, the smoke check's) and what goes up again, so that a
    file deleted by hand or by a prune can be told from a bucket or CDN fault."""
    plans = {}
    for name, la in run.local.items():
        if live is None or name not in live.apps or live.apps[name].version != version_of(la.files):
            continue
        run.listings.pop(name, None)
        plans[name] = app_plan(run.env, run.outputs, name, la.files, run.listing(name))
    count = sum(len(plan.uploads) for plan in plans.values())
    if count or problems:
        run.progress.note(repair_note(problems or [], plans))
    if count:
        run.upload(plans)
        for name, plan in plans.items():
            mine = run.plans[name]
            mine.skipped = [f for f in mine.skipped if f not in plan.uploads]
            mine.uploads += [f for f in plan.uploads if f not in mine.uploads]
    return count


def repair_note(problems: list[str], plans: dict[str, AppPlan]) -> str:
    """`the smoke check failed (<url> answered 404, ...); uploading N missing file(s): ...`
    (only its first part when the buckets lack none of those files)."""
    shown = "; ".join(problems[:SHOWN_PROBLEMS])
    more = f"; and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
    why = f" ({shown}{more})" if shown else ""
    keys = [f"{name}/{f.key}" for name, plan in plans.items() for f in plan.uploads]
    if not keys:  # the buckets lost a fixed-URL file only: `heal` says what it writes back
        return f"the smoke check failed{why}"
    return f"the smoke check failed{why}; uploading {len(keys)} missing file(s): {shown_keys(keys)}"


def _only(project: Project, app: str | None) -> list[str] | None:
    if app is None:
        return None
    return [project.check_app(app)]
