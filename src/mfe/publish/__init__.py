"""`publish()`: upload what changed (by content hash), invalidate changed mutable paths,
record the release, smoke-check the site and write `.mfe/<env>/publish-report.json`.

Modules: `local` (what to publish), `remote` (bucket listing, S3 errors), `plan` (the
diff), `upload` (phased transfers), `releases` + `commit` (release manifests, blobs,
invalidation), `invalidate` (CloudFront), `delete` (`--prune`), `smoke`, `report` (the
`PublishReport`, summary table, progress), `rollback`. S3 and CloudFront go through the
environment's `mfe.envs.session.Session`.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING

from mfe.config import Environment, Project
from mfe.envs.outputs import Outputs
from mfe.publish.local import collect
from mfe.publish.plan import Plan, make_plan
from mfe.publish.report import AppResult, Progress, PublishReport, write_report

if TYPE_CHECKING:
    from mfe.envs.session import Session

__all__ = ["PublishReport", "publish"]


def build_report(
    plan: Plan,
    url: str,
    requests: dict[str, int],
    seconds: float,
    *,
    dry_run: bool,
    invalidations: dict[str, list[str]],
) -> PublishReport:
    apps = {
        name: AppResult(
            uploaded=[f.key for f in ap.uploads],
            skipped=len(ap.skipped),
            deleted=list(ap.deletes),
            bytes=sum(f.size for f in ap.uploads),
        )
        for name, ap in plan.apps.items()
    }
    return PublishReport(
        env=plan.env,
        release=plan.release_id,
        site_url=url,
        apps=apps,
        invalidations=invalidations,
        requests=requests,
        seconds=round(seconds, 3),
        previous_release=plan.previous.id if plan.previous else None,
        noop=plan.noop,
        invalidated_by_app={name: paths for name, paths in plan.invalidations.items() if paths},
        dry_run=dry_run,
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
    session: Session | None = None,
) -> PublishReport:
    """Publish the built apps and rendered shell to `env`; returns the report (also written).

    `outputs` default to the session's (the backend makes the environment ready);
    `dry_run` plans only (and writes `plan-report.json`); `smoke=False` skips the HTTP
    check of the site. The report counts the requests made during this call.
    """
    from mfe.envs.session import Session
    from mfe.publish.commit import by_distribution, commit_release, keep_blobs
    from mfe.publish.delete import delete_pruned
    from mfe.publish.releases import Release, git_commit, now_iso
    from mfe.publish.smoke import smoke_check
    from mfe.publish.upload import upload_all

    started = time.monotonic()
    session = session or Session(project, env, outputs)
    env = session.env
    before = Counter(session.requests)
    session.backend.check(session)
    outputs = outputs or session.outputs
    progress = progress or Progress()
    workers = project.publish.workers
    local = collect(project, env.name)
    plan = make_plan(session, outputs, local, prune=prune)
    url = session.backend.site_url(outputs)
    sent: dict[str, list[str]] = {}

    if dry_run:
        sent = by_distribution(plan.invalidations, plan.distributions)
    else:
        if not plan.noop:
            upload_all(session, plan, workers, progress.phase, progress.advance, progress.file_done)
            progress.close()
            release = Release(
                id=plan.release_id,
                created=plan.previous.created if plan.resume and plan.previous else now_iso(),
                content_hash=plan.content_hash,
                files=plan.records(),
                git_commit=git_commit(project.root),
                invalidations=plan.invalidations,
            )
            buckets = {name: ap.bucket for name, ap in plan.apps.items()}
            listings = {name: ap.remote for name, ap in plan.apps.items()}
            keep_blobs(session, release, buckets, listings)
            sent = commit_release(
                session,
                release,
                plan.parent_bucket,
                plan.distributions,
                wait=wait,
                note=progress.note,
            )
        delete_pruned(session, plan)
        if smoke:
            smoke_check(url)
    report = build_report(
        plan,
        url,
        session.counts(since=before),
        time.monotonic() - started,
        dry_run=dry_run,
        invalidations=sent,
    )
    write_report(project.state_dir(env.name), report)
    return report
