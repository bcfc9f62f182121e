"""Release manifests: what each publish put online, kept in the parent app's bucket under
`_mfe/releases/<id>.json`, so the next publish, `--prune` and `rollback` know the history.

The latest release is found from the bucket listing (ids sort by time), so no pointer
object has to be kept in sync. Mutable files' bytes are kept as content-addressed blobs
(`_mfe/blobs/<sha256>`, a server-side copy in the app's own bucket) so a rollback can
restore them without the old build; fingerprinted files restore themselves by name.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mfe.publish.local import RESERVED_PREFIX, LocalFile

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

RELEASES_PREFIX = RESERVED_PREFIX + "releases/"
BLOBS_PREFIX = RESERVED_PREFIX + "blobs/"


@dataclass(frozen=True)
class FileRecord:
    sha256: str
    md5: str
    etag: str
    size: int
    content_type: str
    cache_control: str
    immutable: bool
    blob: str | None = None
    """Mutable files only: the key of the copy of these bytes, for rollback."""


@dataclass
class Release:
    id: str
    created: str
    content_hash: str
    files: dict[str, dict[str, FileRecord]]
    """app -> key -> record."""
    git_commit: str | None = None
    invalidations: dict[str, list[str]] = field(default_factory=dict)
    """app -> paths this release invalidates (on the app's distribution at the time:
    kept per app so a re-run after a distribution was recreated targets the new one)."""
    invalidated: bool = True
    """False while the invalidations may not have been created yet (resumed on re-run)."""
    rollback_of: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @staticmethod
    def from_json(text: str) -> Release:
        data = json.loads(text)
        files = {
            app: {key: FileRecord(**record) for key, record in records.items()}
            for app, records in data["files"].items()
        }
        return Release(
            id=data["id"],
            created=data["created"],
            content_hash=data["content_hash"],
            files=files,
            git_commit=data.get("git_commit"),
            invalidations=data.get("invalidations", {}),
            invalidated=data.get("invalidated", True),
            rollback_of=data.get("rollback_of"),
        )


def record(file: LocalFile) -> FileRecord:
    blob = None if file.immutable else blob_key(file.sha256)
    return FileRecord(
        file.sha256,
        file.md5,
        file.etag,
        file.size,
        file.content_type,
        file.cache_control,
        file.immutable,
        blob,
    )


def blob_key(sha256: str) -> str:
    return f"{BLOBS_PREFIX}{sha256}"


def release_key(release_id: str) -> str:
    return f"{RELEASES_PREFIX}{release_id}.json"


def content_hash(files: dict[str, dict[str, FileRecord]]) -> str:
    """Identifies what is served: keys, bytes and headers of every app."""
    digest = hashlib.sha256()
    for app in sorted(files):
        for key, rec in sorted(files[app].items()):
            line = f"{app}\t{key}\t{rec.sha256}\t{rec.content_type}\t{rec.cache_control}\n"
            digest.update(line.encode())
    return digest.hexdigest()


STAMP = "%Y%m%dT%H%M%SZ"


def new_release_id(content: str, now: datetime | None = None, after: str | None = None) -> str:
    """`<UTC time>-<content hash>`, always sorting after `after` (the latest release id),
    so the listing order is the release order even for two publishes in one second."""
    moment = now or datetime.now(UTC)
    if after:
        latest = datetime.strptime(after.split("-")[0], STAMP).replace(tzinfo=UTC)
        moment = max(moment.replace(microsecond=0), latest + timedelta(seconds=1))
    return f"{moment.strftime(STAMP)}-{content[:7]}"


def release_ids(keys: list[str] | set[str] | dict[str, Any]) -> list[str]:
    """Release ids found in a bucket listing, oldest first."""
    ids = [
        key[len(RELEASES_PREFIX) : -len(".json")]
        for key in keys
        if key.startswith(RELEASES_PREFIX) and key.endswith(".json") and key.count("/") == 2
    ]
    return sorted(ids)


def read_release(s3: S3Client, bucket: str, release_id: str) -> Release:
    body = s3.get_object(Bucket=bucket, Key=release_key(release_id))["Body"].read()
    return Release.from_json(body.decode("utf-8"))


def write_release(s3: S3Client, bucket: str, release: Release) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=release_key(release.id),
        Body=release.to_json().encode(),
        ContentType="application/json",
        CacheControl="no-store",
    )


def git_commit(root: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def rollback_target(ids: list[str], current: Release, read: Any) -> Release | None:
    """The release before the current one (following rollbacks back), with other content.

    Rolling back twice goes two releases back, not back and forth.
    """
    anchor = current.rollback_of or current.id
    for release_id in reversed([i for i in ids if i < anchor]):
        candidate: Release = read(release_id)
        if candidate.content_hash != current.content_hash:
            return candidate
    return None
