"""The diff: which files to upload, skip or prune, and which paths to invalidate.

Per bucket one paginated listing; for the parent's bucket also one GET of the latest
release manifest. A file is skipped when the listed ETag equals its md5 (or its
predicted multipart ETag), or when the latest release recorded that very ETag for the
same sha256 (multipart uploads made with another part size).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from mfe.envs.outputs import Outputs
from mfe.errors import MfeError
from mfe.publish.local import RESERVED_PREFIX, LocalFile
from mfe.publish.releases import (
    FileRecord,
    Release,
    content_hash,
    new_release_id,
    read_release,
    record,
    release_ids,
)
from mfe.publish.remote import RemoteObject, list_bucket, s3_errors

if TYPE_CHECKING:
    from mfe.envs.session import Session


@dataclass
class AppPlan:
    app: str
    bucket: str
    distribution_id: str | None
    files: list[LocalFile]
    remote: dict[str, RemoteObject]
    uploads: list[LocalFile] = field(default_factory=list)
    skipped: list[LocalFile] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)


@dataclass
class Plan:
    env: str
    parent: str
    """The parent app: its bucket holds the release manifests."""
    apps: dict[str, AppPlan]
    release_ids: list[str]
    previous: Release | None
    release_id: str
    """The release this publish writes (new or resumed), or the current one when a no-op."""
    content_hash: str
    invalidations: dict[str, list[str]]
    """app -> changed mutable paths (only apps with a distribution)."""
    noop: bool
    resume: bool

    @property
    def distributions(self) -> dict[str, str | None]:
        return {name: ap.distribution_id for name, ap in self.apps.items()}

    @property
    def parent_bucket(self) -> str:
        return self.apps[self.parent].bucket

    def records(self) -> dict[str, dict[str, FileRecord]]:
        return {name: {f.key: record(f) for f in ap.files} for name, ap in self.apps.items()}


def needs_upload(file: LocalFile, remote: RemoteObject | None, previous: FileRecord | None) -> bool:
    if remote is None:
        return True
    if previous is not None and (
        previous.cache_control != file.cache_control or previous.content_type != file.content_type
    ):
        return True  # same bytes, new headers
    if remote.etag in (file.md5, file.etag):
        return False
    return not (
        previous is not None and previous.sha256 == file.sha256 and previous.etag == remote.etag
    )


def mutable_changes(
    plan_files: dict[str, dict[str, FileRecord]], previous: Release | None
) -> dict[str, list[str]]:
    """app -> mutable keys whose bytes or headers differ from the previous release."""
    changed: dict[str, list[str]] = {}
    for app, records in plan_files.items():
        before = previous.files.get(app, {}) if previous else {}
        keys = [
            key
            for key, rec in records.items()
            if not rec.immutable
            and key in before
            and (before[key].sha256, before[key].cache_control) != (rec.sha256, rec.cache_control)
        ]
        if keys:
            changed[app] = sorted(keys)
    return changed


def make_plan(
    session: Session,
    outputs: Outputs,
    local: dict[str, list[LocalFile]],
    *,
    prune: bool = False,
    now: datetime | None = None,
) -> Plan:
    project, env = session.project, session.env
    apps: dict[str, AppPlan] = {}
    for name, files in local.items():
        if name not in outputs.apps:
            raise MfeError(
                f"app '{name}' has no bucket in environment '{env.name}' outputs; "
                f"run `doit infra env={env.name}` (or `doit publish` on local) to provision it"
            )
        out = outputs.apps[name]
        apps[name] = AppPlan(name, out.bucket, out.distribution_id, files, {})
        apps[name].remote = list_bucket(session, out.bucket)

    parent = apps[project.parent.name]
    ids = release_ids(parent.remote)
    previous = None
    if ids:
        with s3_errors(session, parent.bucket, "reading the latest release manifest"):
            previous = read_release(session.s3, parent.bucket, ids[-1])

    for ap in apps.values():
        before = previous.files.get(ap.app, {}) if previous else {}
        for f in ap.files:
            wanted = needs_upload(f, ap.remote.get(f.key), before.get(f.key))
            (ap.uploads if wanted else ap.skipped).append(f)

    plan_files = {name: {f.key: record(f) for f in ap.files} for name, ap in apps.items()}
    digest = content_hash(plan_files)
    uploads = any(ap.uploads for ap in apps.values())
    same = previous is not None and previous.content_hash == digest
    resume = same and previous is not None and not previous.invalidated
    noop = same and not uploads and not resume
    if same and previous is not None:
        release_id = previous.id
        invalidations = (
            {
                a: p
                for a, p in previous.invalidations.items()
                if apps.get(a) and apps[a].distribution_id
            }
            if resume
            else {}
        )
    else:
        release_id = new_release_id(digest, now, ids[-1] if ids else None)
        invalidations = invalidation_paths(apps, plan_files, previous)

    plan = Plan(
        env.name,
        project.parent.name,
        apps,
        ids,
        previous,
        release_id,
        digest,
        invalidations,
        noop,
        resume,
    )
    if prune:
        plan_prunes(session, plan)
    return plan


def invalidation_paths(
    apps: dict[str, AppPlan],
    plan_files: dict[str, dict[str, FileRecord]],
    previous: Release | None,
) -> dict[str, list[str]]:
    """app -> changed mutable paths, plus any the previous release left pending."""
    paths: dict[str, set[str]] = {}
    for app, keys in mutable_changes(plan_files, previous).items():
        paths.setdefault(app, set()).update("/" + key for key in keys)
    if previous is not None and not previous.invalidated:
        for app, pending in previous.invalidations.items():
            paths.setdefault(app, set()).update(pending)
    return {
        app: sorted(found)
        for app, found in sorted(paths.items())
        if app in apps and apps[app].distribution_id
    }


def kept_keys(session: Session, plan: Plan) -> dict[str, set[str]]:
    """app -> keys referenced by the last `keep_releases` releases (this one included)."""
    keep = session.project.publish.keep_releases
    kept: dict[str, set[str]] = {name: {f.key for f in ap.files} for name, ap in plan.apps.items()}
    older = [i for i in plan.release_ids if i != plan.release_id]
    for release_id in older[-(keep - 1) :] if keep > 1 else []:
        release = (
            plan.previous
            if plan.previous is not None and plan.previous.id == release_id
            else _read(session, plan.parent_bucket, release_id)
        )
        for app, records in release.files.items():
            kept.setdefault(app, set()).update(records)
    return kept


def _read(session: Session, bucket: str, release_id: str) -> Release:
    with s3_errors(session, bucket, f"reading release manifest {release_id}"):
        return read_release(session.s3, bucket, release_id)


def plan_prunes(session: Session, plan: Plan) -> None:
    """Fill `deletes`: objects outside `_mfe/` that no kept release references."""
    project, env = session.project, session.env
    kept = kept_keys(session, plan)
    for name, ap in plan.apps.items():
        ap.deletes = sorted(
            key
            for key in ap.remote
            if not key.startswith(RESERVED_PREFIX) and key not in kept.get(name, set())
        )
    total = sum(len(ap.deletes) for ap in plan.apps.values())
    limit = project.publish.max_deletes
    if total > limit:
        raise MfeError(
            f"--prune would delete {total} objects in environment '{env.name}', more than "
            f"publish.max_deletes = {limit} in mfe.toml; check `doit plan env={env.name}` "
            "and raise the limit if that is intended (nothing was uploaded or deleted)"
        )
