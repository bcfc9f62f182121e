"""Make a release official once its files are online: keep the mutable files' bytes
(for rollback), write the release manifest, invalidate, then mark it invalidated.

The manifest is written *before* invalidating with `invalidated: false`; a publish that
dies in between is resumed by the next run under the same release id (and so the same
CallerReference), which is what makes the invalidation idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from mfe.publish.invalidate import collapse, invalidate, wait_all
from mfe.publish.releases import Release, write_release
from mfe.publish.remote import RemoteObject, s3_errors

if TYPE_CHECKING:
    from mfe.envs.session import Session


def keep_blobs(
    session: Session,
    release: Release,
    buckets: dict[str, str],
    listings: dict[str, dict[str, RemoteObject]],
) -> int:
    """Server-side copy each mutable file to `_mfe/blobs/<sha256>` unless already there."""
    copies = 0
    for app, records in release.files.items():
        bucket = buckets[app]
        for key, rec in records.items():
            if rec.blob is None or rec.blob in listings.get(app, {}):
                continue
            with s3_errors(session, bucket, f"keeping a copy of {key} for rollback"):
                session.s3.copy_object(
                    Bucket=bucket, Key=rec.blob, CopySource={"Bucket": bucket, "Key": key}
                )
            listings.setdefault(app, {})[rec.blob] = RemoteObject(rec.blob, rec.etag, rec.size)
            copies += 1
    return copies


def by_distribution(
    per_app: dict[str, list[str]], distributions: dict[str, str | None]
) -> dict[str, list[str]]:
    """app -> paths into distribution -> collapsed paths (apps without one are skipped)."""
    found: dict[str, set[str]] = {}
    for app, paths in per_app.items():
        dist = distributions.get(app)
        if dist and paths:
            found.setdefault(dist, set()).update(paths)
    return {dist: collapse(sorted(paths)) for dist, paths in sorted(found.items())}


def commit_release(
    session: Session,
    release: Release,
    parent_bucket: str,
    distributions: dict[str, str | None],
    *,
    wait: bool,
    note: Callable[[str], None],
) -> dict[str, list[str]]:
    """Write the manifest, invalidate, mark done; returns distribution -> paths sent."""
    paths = by_distribution(release.invalidations, distributions)
    release.invalidated = not paths
    with s3_errors(session, parent_bucket, f"writing release manifest {release.id}"):
        write_release(session.s3, parent_bucket, release)
    if not paths:
        return {}
    env, cf = session.env, session.cloudfront
    since = datetime.fromisoformat(release.created)
    made = {
        dist: invalidate(cf, env.name, dist, found, release.id, since)
        for dist, found in paths.items()
    }
    for dist, found in paths.items():
        note(f"publish: invalidating {', '.join(found)} on {dist} ({made[dist]})")
    release.invalidated = True
    with s3_errors(session, parent_bucket, f"writing release manifest {release.id}"):
        write_release(session.s3, parent_bucket, release)
    if wait:
        wait_all(cf, env.name, made, lambda d, s: note(f"publish: invalidation on {d}: {s}"))
    return paths
