"""`doit rollback`: serve the previous release again.

Fingerprinted files of kept releases are still in the buckets, so only the mutable
files (above all the shell `index.html`) are restored, by server-side copy from their
`_mfe/blobs/<sha256>` copies; then a new release records it and the changed mutable
paths are invalidated. Nothing is rebuilt or uploaded from the working tree.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from mfe.config import Environment, Project
from mfe.envs.outputs import Outputs
from mfe.errors import MfeError
from mfe.publish.local import SHELL_KEY
from mfe.publish.releases import (
    FileRecord,
    Release,
    new_release_id,
    now_iso,
    read_release,
    release_ids,
    rollback_target,
)
from mfe.publish.remote import RemoteObject, list_bucket, s3_errors
from mfe.publish.report import AppResult, Progress, PublishReport, write_report

if TYPE_CHECKING:
    from mfe.envs.session import Session


def restore(session: Session, bucket: str, key: str, rec: FileRecord) -> None:
    assert rec.blob is not None
    with s3_errors(session, bucket, f"restoring {key} from {rec.blob}"):
        session.s3.copy_object(
            Bucket=bucket,
            Key=key,
            CopySource={"Bucket": bucket, "Key": rec.blob},
            MetadataDirective="REPLACE",
            ContentType=rec.content_type,
            CacheControl=rec.cache_control,
            Metadata={"sha256": rec.sha256},
        )


def check_complete(
    env: Environment, target: Release, buckets: dict[str, str], listings: dict[str, Any]
) -> None:
    """Refuse when a file of the target release was pruned (the page would break)."""
    for app, records in target.files.items():
        listing: dict[str, RemoteObject] = listings[app]
        for key, rec in records.items():
            needed = rec.blob if rec.blob else key
            if needed not in listing:
                raise MfeError(
                    f"cannot roll back environment '{env.name}' to release {target.id}: "
                    f"{needed} ({app}) is no longer in bucket '{buckets[app]}' (pruned?); "
                    "publish a fixed build instead"
                )


def restore_keys(target: Release, current: Release) -> dict[str, list[str]]:
    """app -> mutable keys whose bytes or headers differ between current and target."""
    keys: dict[str, list[str]] = {}
    for app, records in target.files.items():
        now = current.files.get(app, {})
        for key, rec in sorted(records.items()):
            old = now.get(key)
            if rec.blob and (
                old is None or (old.sha256, old.cache_control) != (rec.sha256, rec.cache_control)
            ):
                keys.setdefault(app, []).append(key)
    return keys


def rollback(
    project: Project,
    env: Environment | str,
    *,
    wait: bool = False,
    outputs: Outputs | None = None,
    smoke: bool = True,
    session: Session | None = None,
) -> PublishReport:
    """Restore the previous release's mutable files; returns (and writes) the report."""
    from mfe.envs.session import Session
    from mfe.publish.commit import commit_release
    from mfe.publish.smoke import smoke_check

    started = time.monotonic()
    session = session or Session(project, env, outputs)
    env = session.env
    before = Counter(session.requests)
    session.backend.check(session)
    outputs = outputs or session.outputs
    apps = list(project.apps)
    buckets = {name: outputs.apps[name].bucket for name in apps}
    parent = buckets[project.parent.name]
    listings = {name: list_bucket(session, bucket) for name, bucket in buckets.items()}
    ids = release_ids(listings[project.parent.name])

    def read(release_id: str) -> Release:
        with s3_errors(session, parent, f"reading release manifest {release_id}"):
            return read_release(session.s3, parent, release_id)

    if not ids:
        raise MfeError(f"environment '{env.name}' has no release yet; run `doit publish` first")
    current = read(ids[-1])
    target = rollback_target(ids, current, read)
    if target is None:
        raise MfeError(
            f"environment '{env.name}' has no release before {current.id} to roll back to"
        )
    check_complete(env, target, buckets, listings)
    changed = restore_keys(target, current)
    restored: dict[str, list[str]] = {}
    # Mutable app files first, the shell last (same order rule as publish).
    order = sorted(
        ((app, key) for app, keys in changed.items() for key in keys),
        key=lambda item: item[1] == SHELL_KEY and item[0] == project.parent.name,
    )
    for app, key in order:
        restore(session, buckets[app], key, target.files[app][key])
        restored.setdefault(app, []).append(key)
    invalidations = {app: ["/" + key for key in keys] for app, keys in restored.items()}
    distributions = {name: outputs.apps[name].distribution_id for name in apps}
    release = Release(
        id=new_release_id(target.content_hash, after=ids[-1]),
        created=now_iso(),
        content_hash=target.content_hash,
        files=target.files,
        git_commit=target.git_commit,
        invalidations=invalidations,
        rollback_of=target.id,
    )
    progress = Progress()
    sent = commit_release(
        session,
        release,
        parent,
        distributions,
        wait=wait,
        note=progress.note,
    )
    url = session.backend.site_url(outputs)
    if smoke:
        smoke_check(url)
    report = PublishReport(
        env=env.name,
        release=release.id,
        site_url=url,
        apps={
            name: AppResult(
                uploaded=restored.get(name, []),
                bytes=sum(target.files[name][k].size for k in restored.get(name, [])),
            )
            for name in apps
        },
        invalidations=sent,
        requests=session.counts(since=before),
        seconds=round(time.monotonic() - started, 3),
        previous_release=current.id,
        noop=False,
        invalidated_by_app={a: p for a, p in invalidations.items() if distributions.get(a)},
        rollback_of=target.id,
    )
    write_report(project.state_dir(env.name), report)
    return report
