"""`publish()`: upload what changed (by content hash), invalidate changed mutable paths,
record the release, smoke-check the site and write `.mfe/<env>/publish-report.json`.

Modules: `local` (what to publish), `remote` (bucket listing, S3 errors), `plan` (the
diff), `upload` (phased transfers), `releases` + `commit` (release manifests, blobs,
invalidation), `invalidate` (CloudFront), `smoke`, `report`, `rollback`.
"""

from __future__ import annotations

import time
from typing import Any

from mfe.config import Environment, Project
from mfe.envs.outputs import Outputs, base_url
from mfe.errors import MfeError
from mfe.publish.local import collect
from mfe.publish.plan import Plan, make_plan
from mfe.publish.report import Progress, write_report

__all__ = ["publish", "site_url"]


def load_outputs(project: Project, env: Environment) -> Outputs:
    """The environment's buckets and distributions (provisioning the emulator on local)."""
    from mfe.envs.local import ensure_ready

    return ensure_ready(project, env)


def site_url(project: Project, env: Environment, outputs: Outputs) -> str:
    """Local: the parent bucket's `index.html`; elsewhere the distribution (or domain) root."""
    url = base_url(env, outputs, project.parent.name)
    return url + "index.html" if env.kind == "local" else url


def build_report(
    plan: Plan,
    url: str,
    requests: dict[str, int],
    seconds: float,
    *,
    dry_run: bool,
    invalidations: dict[str, list[str]],
) -> dict[str, Any]:
    apps = {
        name: {
            "uploaded": [f.key for f in ap.uploads],
            "skipped": len(ap.skipped),
            "deleted": list(ap.deletes),
            "bytes": sum(f.size for f in ap.uploads),
        }
        for name, ap in plan.apps.items()
    }
    by_app = {name: paths for name, paths in plan.invalidations.items() if paths}
    report: dict[str, Any] = {
        "env": plan.env,
        "release": plan.release_id,
        "site_url": url,
        "apps": apps,
        "invalidations": invalidations,
        "requests": {"s3": requests.get("s3", 0), "cloudfront": requests.get("cloudfront", 0)},
        "seconds": round(seconds, 3),
        "previous_release": plan.previous.id if plan.previous else None,
        "noop": plan.noop,
        "invalidated_by_app": by_app,
    }
    if dry_run:
        report["dry_run"] = True
    return report


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
) -> dict[str, Any]:
    """Publish the built apps and rendered shell to `env`; returns the report (also written).

    `outputs` defaults to `mfe.envs.local.ensure_ready(project, env)`; `dry_run` plans only
    (and writes `plan-report.json`); `smoke=False` skips the HTTP check of the site.
    """
    from mfe.envs import session as aws
    from mfe.publish.commit import by_distribution, commit_release, keep_blobs
    from mfe.publish.delete import delete_pruned
    from mfe.publish.releases import Release, git_commit, now_iso
    from mfe.publish.smoke import smoke_check
    from mfe.publish.upload import upload_all

    started = time.monotonic()
    env = project.env(env)
    if env.kind == "dev":
        raise MfeError(
            "environment 'dev' is what `doit serve` renders; publish to 'local' or an AWS "
            "environment (`doit publish env=NAME`)"
        )
    aws.require_credentials(env)
    outputs = outputs or load_outputs(project, env)
    progress = progress or Progress()
    counter = aws.RequestCounter()
    workers = project.publish.workers
    s3 = aws.client(env, "s3", counter, max_pool_connections=workers + 2)
    local = collect(project, env.name)
    plan = make_plan(project, env, outputs, local, s3, prune=prune)
    url = site_url(project, env, outputs)
    sent: dict[str, list[str]] = {}

    if dry_run:
        sent = by_distribution(plan.invalidations, plan.distributions)
    else:
        if not plan.noop:
            upload_all(s3, env, plan, workers, progress.phase, progress.advance, progress.file_done)
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
            keep_blobs(s3, env, release, buckets, listings)
            sent = commit_release(
                s3,
                lambda: aws.client(env, "cloudfront", counter),
                env,
                release,
                plan.parent_bucket,
                plan.distributions,
                wait=wait,
                note=progress.note,
            )
        delete_pruned(s3, env, plan)
        if smoke:
            smoke_check(url)
    report = build_report(
        plan,
        url,
        dict(counter.counts),
        time.monotonic() - started,
        dry_run=dry_run,
        invalidations=sent,
    )
    write_report(project.state_dir(env.name), report)
    return report
