"""App versions: what one build of an app put online, named by a hash of its files.

- `_mfe/versions/<app>/<version>.json` (in the app's bucket) lists every file with its
  sha256; it is content-addressed, so it is written once (`If-None-Match: *`) and can be
  cached locally forever (`.mfe/<env>/versions/`), which keeps previews and rollbacks cheap.
- Files without a content hash in their name also go to `_ca/<sha256[:20]>/<key>`: the
  page references that copy, and the commit step / a rollback restore the fixed URL from it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from mfe.build.manifest import AssetManifest, manifest_from_json
from mfe.errors import MfeError, missing_key
from mfe.files import write_atomic
from mfe.publish.local import RESERVED_PREFIX, LocalFile
from mfe.publish.pointer import DAMAGED, Blob, damage, put_once
from mfe.publish.releases import FileRecord, record

VERSIONS_PREFIX = RESERVED_PREFIX + "versions/"
CA_PREFIX = "_ca/"
"""Public content-addressed copies of the mutable files (the page links to them)."""


def ca_key(key: str, sha256: str) -> str:
    return f"{CA_PREFIX}{sha256[:20]}/{key}"


def version_of(files: list[LocalFile] | dict[str, FileRecord]) -> str:
    """sha256 over keys, bytes and headers of an app's files (the shell page excluded)."""
    rows = (
        [(f.key, f.sha256, f.content_type, f.cache_control) for f in files if not f.shell]
        if isinstance(files, list)
        else [(k, r.sha256, r.content_type, r.cache_control) for k, r in files.items()]
    )
    digest = hashlib.sha256()
    for row in sorted(rows):
        digest.update(("\t".join(row) + "\n").encode())
    return digest.hexdigest()


def blob(file: LocalFile | FileRecord) -> Blob:
    return Blob(file.sha256, file.md5, file.size, file.content_type, file.cache_control)


def version_key(app: str, version: str) -> str:
    return f"{VERSIONS_PREFIX}{app}/{version}.json"


def records(files: list[LocalFile]) -> dict[str, FileRecord]:
    return {f.key: record(f) for f in files if not f.shell}


def _cache(state_dir: Path, app: str, version: str) -> Path:
    return state_dir / "versions" / app / f"{version}.json"


def forget_version(state_dir: Path, app: str, version: str) -> None:
    """Drop a version manifest's local copy (it disagreed with the files it describes)."""
    _cache(state_dir, app, version).unlink(missing_ok=True)


def _decode(body: bytes) -> dict[str, FileRecord]:
    data = json.loads(body)
    return {key: FileRecord(**rec) for key, rec in data["files"].items()}


def same_files(ours: bytes, theirs: bytes) -> bool:
    """Whether a version manifest found in place lists the files this one does: another
    mfe version may have laid it out otherwise; a damaged one does not count."""
    try:
        return _decode(ours) == _decode(theirs)
    except DAMAGED:
        return False


def write_version(
    s3: Any,
    bucket: str,
    app: str,
    version: str,
    files: dict[str, FileRecord],
    manifest: AssetManifest,
    state_dir: Path,
) -> datetime | None:
    """Put the version manifest unless it is there (412 = already written, same content);
    returns when the one found there was written (None: written now), as `--prune` deletes
    an old one no kept release names (`Reuse.records` writes it again before the swap).

    It carries the build's asset-manifest too: rendering the shell for this version (from
    a machine that did not build it) needs every module's integrity."""
    data = {
        "app": app,
        "version": version,
        "files": {k: asdict(r) for k, r in sorted(files.items())},
        "asset_manifest": json.loads(manifest.to_json()),
    }
    body = (json.dumps(data, sort_keys=True) + "\n").encode()
    found = put_once(s3, bucket, version_key(app, version), body, same_files)
    write_atomic(_cache(state_dir, app, version), body)
    return found


def rewrite_version(s3: Any, bucket: str, app: str, version: str, state_dir: Path) -> None:
    """Write a version manifest again from its local copy (`write_version` or `read_version`
    made it), unconditionally: it makes the record young, or puts back one a concurrent
    `--prune` deleted (the same bytes, content-addressed by the version)."""
    body = _version_body(s3, bucket, app, version, state_dir)
    s3.put_object(
        Bucket=bucket,
        Key=version_key(app, version),
        Body=body,
        ContentType="application/json",
        CacheControl="no-store",
    )


def read_version(
    s3: Any, bucket: str, app: str, version: str, state_dir: Path
) -> dict[str, FileRecord]:
    """key -> record of an app version (from the local cache when this machine saw it)."""
    return _decode(_version_body(s3, bucket, app, version, state_dir))


def read_asset_manifest(
    s3: Any, bucket: str, app: str, version: str, state_dir: Path
) -> AssetManifest:
    """The asset-manifest of an app version built elsewhere (for rendering the shell)."""
    data = json.loads(_version_body(s3, bucket, app, version, state_dir))["asset_manifest"]
    return manifest_from_json(data)


def read_version_file(s3: Any, bucket: str, key: str, app: str, version: str) -> bytes:
    """`key` of an app version from its bucket. Missing, it was pruned (only `--prune`
    deletes a version's files: by age, or racing the command that reads them now)."""
    from botocore.exceptions import ClientError

    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as exc:
        if missing_key(exc):
            raise MfeError(
                f"app '{app}' version {version[:12]}: {key} is no longer in bucket '{bucket}' "
                "(pruned?); publish that app again"
            ) from None
        raise


def _version_body(s3: Any, bucket: str, app: str, version: str, state_dir: Path) -> bytes:
    cached = _cache(state_dir, app, version)
    body: bytes
    try:
        body = cached.read_bytes()
        if version_of(_decode(body)) == version:
            os.utime(cached)  # in use: `--prune` keeps it (mfe.publish.prune)
            return body
        cached.unlink()  # edited or cut short: not trusted, read again from the bucket
    except (OSError, ValueError, KeyError, TypeError):
        pass
    key = version_key(app, version)
    body = read_version_file(s3, bucket, key, app, version)
    try:
        decoded = _decode(body)
        json.loads(body)["asset_manifest"]
    except DAMAGED as exc:
        raise MfeError(
            f"{key} in bucket '{bucket}' (the file list of app '{app}' version "
            f"{version[:12]}) is damaged ({damage(exc)}); nothing was changed: restore it "
            f"from a backup, or publish a new build of {app} (a changed version gets a new "
            "file list; the same version is not written again)"
        ) from None
    if version_of(decoded) != version:
        raise MfeError(
            f"{version_key(app, version)} in bucket '{bucket}' does not match its version "
            "hash (corrupted?); publish that app again"
        )
    write_atomic(cached, body)
    return body
