"""Remote build cache: an app's `dist/` as `s3://<bucket>/<prefix>/<scope>/<app>/<key>.tar.zst`.

Scopes: `trusted` (written only by runs on trusted refs), `pr/<n>` and `ref/<name>`
(written by that pull request or branch, read only by it). Every entry is signed
(mfe.ci.signing); a restore checks the signature from the object's metadata before
reading the body, the archive's manifest against the signed hash before unpacking,
and every file against the manifest before swapping it into `dist/`. Anything wrong is
a one-line warning naming the entry and a rebuild, never a half-restored app. Uploads
are best-effort: a cache that cannot be written slows `doit ci` down but never fails it;
a shard job, whose only output is its entries, fails instead (`uploads_required`).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mfe.build.bundle import swap_into_place
from mfe.build.manifest import MANIFEST_NAME
from mfe.build.scratch import build_folder
from mfe.ci import budget, signing
from mfe.ci.archive import CorruptArchive, NotSigned, manifest_sha256, pack, unpack_verified
from mfe.ci.trust import TRUSTED
from mfe.config import App, Project
from mfe.errors import MfeError, aws_error_code

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Outcome = Literal["hit", "miss", "corrupt", "rejected"]
SUFFIX = ".tar.zst"
BUILD_SECONDS = "build-seconds"
_MISSING = ("NoSuchKey", "404", "NotFound", "NoSuchBucket")
RESTORE_AREA = "ci-tmp"
"""The folder under `.mfe/` that holds the restores' scratch folders (mfe.build.scratch)."""


@dataclass(frozen=True)
class RemoteCache:
    s3: S3Client
    """The session's S3 client (`mfe.envs.session.Session.s3`)."""
    bucket: str
    prefix: str
    secret: bytes
    write_scope: str = TRUSTED
    read_scopes: tuple[str, ...] = (TRUSTED,)
    ready: Callable[[], object] = lambda: None
    """Blocks until the bucket is provisioned (uploads wait for it; lookups need not)."""
    uploads_required: bool = False
    """A failed upload raises MfeError instead of warning (a job that only fills the cache)."""

    def object_key(self, scope: str, app: str, key: str) -> str:
        return f"{self.prefix.strip('/')}/{scope}/{app}/{key}{SUFFIX}".lstrip("/")

    def url(self, scope: str, app: str, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(scope, app, key)}"


@dataclass
class Lookup:
    outcome: Outcome
    scope: str = ""
    """Where the entry was found (hit) or rejected."""
    notes: list[str] = field(default_factory=list)
    """Why entries were not used (a rejected signature, a corrupt archive)."""
    build_seconds: float | None = None
    """How long the cached build took, from the entry's metadata."""
    size_bytes: int | None = None
    """The app's budget size (mfe.ci.budget), from the entry's signed metadata if present."""
    corrupt: str = ""
    """The note on a signed entry whose body was bad, saying what became of the entry."""


def warn(message: str) -> None:
    print(f"mfe: warning: {message}", file=sys.stderr, flush=True)


def _reject(lookup: Lookup, outcome: Outcome, scope: str, message: str) -> None:
    warn(message)
    lookup.outcome, lookup.scope = outcome, scope
    lookup.notes.append(message)


def _seconds(metadata: dict[str, str]) -> float | None:
    try:
        return float(metadata[BUILD_SECONDS])
    except (KeyError, ValueError):
        return None


def probe(cache: RemoteCache, app: str, key: str) -> Lookup:
    """HEAD requests only: is there an entry this run would accept? (for `ci_plan`)."""
    from botocore.exceptions import BotoCoreError, ClientError

    lookup = Lookup("miss")
    for scope in cache.read_scopes:
        url = cache.url(scope, app, key)
        try:
            head = cache.s3.head_object(Bucket=cache.bucket, Key=cache.object_key(scope, app, key))
        except ClientError as exc:
            code = aws_error_code(exc)
            if code not in _MISSING:
                warn(f"build cache lookup of {url} failed ({code}); counting it as a miss")
            continue
        except BotoCoreError as exc:
            warn(f"build cache lookup of {url} failed ({exc}); counting it as a miss")
            continue
        metadata = head.get("Metadata", {})
        problem = signing.problem(cache.secret, metadata, scope, app, key)
        if problem:
            _reject(lookup, "rejected", scope, f"build cache entry {url} rejected: {problem}")
            continue
        return Lookup("hit", scope, lookup.notes, _seconds(metadata))
    return lookup


def restore(cache: RemoteCache, project: Project, app: App, key: str) -> Lookup:
    """Try each readable scope (one GET each) and, on a verified hit, replace `app.dist`."""
    lookup = Lookup("miss")
    for scope in cache.read_scopes:
        metadata = _restore_from(cache, project, app, key, scope, lookup)
        if metadata is not None:
            seconds = _seconds(metadata)
            size = signing.signed_size(cache.secret, metadata, budget.MEASURE)
            return Lookup("hit", scope, lookup.notes, 0.0 if seconds is None else seconds, size)
    return lookup


def _restore_from(
    cache: RemoteCache, project: Project, app: App, key: str, scope: str, lookup: Lookup
) -> dict[str, str] | None:
    """The verified entry's metadata once `app.dist` holds its files, or None.

    Downloaded and unpacked in a folder of this restore alone (mfe.build.scratch, under
    `.mfe/ci-tmp/`, on the same filesystem as `dist/` so the swap stays a rename): two
    restores of one app at once never delete each other's files, and the next restore
    removes what a killed one left."""
    from botocore.exceptions import BotoCoreError, ClientError

    url = cache.url(scope, app.name, key)
    with build_folder(project.root, app.name, RESTORE_AREA) as scratch:
        archive = scratch / ("archive" + SUFFIX)
        try:
            response = cache.s3.get_object(
                Bucket=cache.bucket, Key=cache.object_key(scope, app.name, key)
            )
        except ClientError as exc:
            code = aws_error_code(exc)
            # NoSuchBucket: a new emulator whose cache bucket is still being provisioned.
            if code not in _MISSING:
                warn(f"build cache lookup of {url} failed ({code}); building")
            return None
        except BotoCoreError as exc:
            warn(f"build cache lookup of {url} failed ({exc}); building")
            return None
        metadata: dict[str, str] = response.get("Metadata", {})
        problem = signing.problem(cache.secret, metadata, scope, app.name, key)
        if problem:
            response["Body"].close()  # never read an entry we did not sign
            _reject(lookup, "rejected", scope, f"build cache entry {url} rejected: {problem}")
            return None
        try:
            _download(response["Body"], archive, metadata.get("sha256"))
            unpack_verified(archive, scratch / "dist", app.name, metadata[signing.MANIFEST_SHA256])
        except CorruptArchive as exc:  # NotSigned too: the metadata verified, the body not
            rejected = isinstance(exc, NotSigned)
            what = f"rejected: {exc}" if rejected else f"is corrupt ({exc})"
            gone = _discard(cache, scope, app.name, key, response["ETag"])
            lookup.corrupt = f"build cache entry {url} {what}; {gone}"
            _reject(lookup, "rejected" if rejected else "corrupt", scope, lookup.corrupt)
            return None
        except (BotoCoreError, ClientError, OSError) as exc:
            warn(f"build cache download of {url} failed ({exc}); building")
            return None
        swap_into_place(scratch / "dist", app.dist)
        return metadata


def _discard(cache: RemoteCache, scope: str, app: str, key: str, etag: str) -> str:
    """Delete the signed entry whose body proved bad, and say what became of it.

    `ci_plan` only HEADs entries (signature and metadata), so one left in place counts as a
    hit in every plan and no shard ever rebuilds it. Only the object read goes: `If-Match`
    its ETag, so a good entry another job uploaded under the same key since stays (412).
    AWS S3 and moto honour a conditional delete; a store that ignores the header deletes
    whatever is there, which at worst costs one rebuild of that entry.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    object_key = cache.object_key(scope, app, key)
    by_hand = (
        f"delete it (`aws s3 rm s3://{cache.bucket}/{object_key}`): until then every "
        "ci_plan counts it a hit"
    )
    if scope != cache.write_scope:
        return f"this job writes only {cache.write_scope}/, not {scope}/, so {by_hand}"
    try:
        cache.s3.delete_object(Bucket=cache.bucket, Key=object_key, IfMatch=etag)
    except ClientError as exc:
        code = aws_error_code(exc)
        if code in ("PreconditionFailed", "412"):
            return "another job has replaced it since; kept that entry"
        if code not in _MISSING:  # missing: another job removed it first
            return f"could not remove it ({code}), so {by_hand}"
    except BotoCoreError as exc:
        return f"could not remove it ({exc}), so {by_hand}"
    return "removed it from the cache: the next ci_plan counts it a miss, a shard rebuilds it"


def _download(body: Any, dest: Path, expected_sha256: str | None) -> None:
    digest = hashlib.sha256()
    with dest.open("wb") as out:
        while chunk := body.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    if expected_sha256 and digest.hexdigest() != expected_sha256:
        raise CorruptArchive(
            f"archive sha256 {digest.hexdigest()[:12]}… differs from the uploaded "
            f"{expected_sha256[:12]}… (truncated or altered)"
        )


def upload(
    cache: RemoteCache,
    app: App,
    key: str,
    build_seconds: float = 0.0,
    size_bytes: int | None = None,
) -> int:
    """Sign and store `app.dist` under `key` in the run's write scope; returns the size or 0.

    `size_bytes`: the app's budget size as measured, recorded (signed) for restores."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not (app.dist / MANIFEST_NAME).is_file():
        warn(f"not caching {app.name}: {app.dist}/{MANIFEST_NAME} is missing")
        return 0
    body = pack(app.dist)
    scope = cache.write_scope
    manifest = manifest_sha256(app.dist)
    metadata = signing.sign(cache.secret, scope, app.name, key, manifest)
    if size_bytes is not None:
        metadata.update(signing.sign_size(cache.secret, manifest, budget.MEASURE, size_bytes))
    metadata.update(
        {"sha256": hashlib.sha256(body).hexdigest(), "app": app.name},
        **{BUILD_SECONDS: f"{build_seconds:.3f}"},
    )
    try:
        cache.ready()
        cache.s3.put_object(
            Bucket=cache.bucket,
            Key=cache.object_key(scope, app.name, key),
            Body=body,
            ContentType="application/zstd",
            Metadata=metadata,
        )
    except (BotoCoreError, ClientError) as exc:
        url = cache.url(scope, app.name, key)
        if cache.uploads_required:
            raise MfeError(
                f"{app.name}: could not upload {url} to the build cache ({exc}); "
                "`ci publish` needs it there: fix that and re-run this job"
            ) from None
        warn(f"could not upload {url} to the build cache ({exc}); continuing")
        return 0
    return len(body)
