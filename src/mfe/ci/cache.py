"""Remote build cache: an app's `dist/` as `s3://<bucket>/<prefix>/<app>/<key>.tar.zst`.

A restore never trusts the archive: it is unpacked into a scratch folder, every file is
checked against the archive's own `asset-manifest.json` (sha256 and size, nothing
missing or extra, no path leaving the folder) and only then swapped into `dist/`.
Anything wrong is a warning and a rebuild, never a half-restored app. Uploads are
best-effort: a cache that cannot be written slows CI down but never fails it.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from mfe.build.bundle import swap_into_place
from mfe.build.manifest import MANIFEST_NAME, sha256_file
from mfe.config import STATE_DIR, App, Project
from mfe.errors import aws_error_code

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Outcome = Literal["hit", "miss", "corrupt"]
SUFFIX = ".tar.zst"


class CorruptArchive(Exception):
    """The archive cannot be restored as-is (truncated, bad frame, wrong content)."""


@dataclass(frozen=True)
class RemoteCache:
    s3: S3Client
    """The session's S3 client (`mfe.envs.session.Session.s3`)."""
    bucket: str
    prefix: str
    ready: Callable[[], object] = lambda: None
    """Blocks until the bucket is provisioned (uploads wait for it; lookups need not)."""

    def object_key(self, app: str, key: str) -> str:
        return f"{self.prefix.strip('/')}/{app}/{key}{SUFFIX}".lstrip("/")

    def url(self, app: str, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(app, key)}"


def warn(message: str) -> None:
    print(f"mfe: warning: {message}", file=sys.stderr, flush=True)


def _scratch(project: Project, app: App) -> Path:
    folder = project.root / STATE_DIR / "ci-tmp" / app.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def restore(cache: RemoteCache, project: Project, app: App, key: str) -> Outcome:
    """Look the key up (one GET) and, on a verified hit, replace `app.dist` with it."""
    from botocore.exceptions import BotoCoreError, ClientError

    scratch = _scratch(project, app)
    archive = scratch / ("archive" + SUFFIX)
    try:
        try:
            response = cache.s3.get_object(Bucket=cache.bucket, Key=cache.object_key(app.name, key))
        except ClientError as exc:
            code = aws_error_code(exc)
            # NoSuchBucket: a new emulator whose cache bucket is still being provisioned.
            if code not in ("NoSuchKey", "404", "NotFound", "NoSuchBucket"):
                warn(f"build cache lookup of {cache.url(app.name, key)} failed ({code}); building")
            return "miss"
        except BotoCoreError as exc:
            warn(f"build cache lookup of {cache.url(app.name, key)} failed ({exc}); building")
            return "miss"
        try:
            expected = response.get("Metadata", {}).get("sha256")
            _download(response["Body"], archive, expected)
            unpack_verified(archive, scratch / "dist", app.name)
        except CorruptArchive as exc:
            warn(f"build cache entry {cache.url(app.name, key)} is corrupt ({exc}); rebuilding")
            return "corrupt"
        except (BotoCoreError, ClientError, OSError) as exc:
            warn(f"build cache download of {cache.url(app.name, key)} failed ({exc}); building")
            return "miss"
        swap_into_place(scratch / "dist", app.dist)
        return "hit"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


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


def unpack_verified(archive: Path, dest: Path, app_name: str) -> None:
    """Extract into `dest` (new folder) and check it against its manifest, or raise."""
    tar_path = archive.with_suffix("")  # archive.tar
    _decompress(archive, tar_path)
    dest.mkdir(parents=True)
    try:
        with tarfile.open(tar_path, mode="r:") as tar:
            for member in tar:
                _extract_member(tar, member, dest)
    except (tarfile.TarError, EOFError, ValueError) as exc:
        raise CorruptArchive(f"unreadable tar: {exc}") from None
    finally:
        tar_path.unlink(missing_ok=True)
    _verify(dest, app_name)


def _decompress(source: Path, dest: Path) -> None:
    """zstd -> tar, insisting on a complete frame (a truncated one reads as 'no data')."""
    import zstandard

    decompressor = zstandard.ZstdDecompressor().decompressobj()
    try:
        with source.open("rb") as raw, dest.open("wb") as out:
            while chunk := raw.read(1 << 20):
                if decompressor.eof:
                    raise CorruptArchive("trailing bytes after the zstd frame")
                out.write(decompressor.decompress(chunk))
    except zstandard.ZstdError as exc:
        raise CorruptArchive(f"bad zstd data: {exc}") from None
    if not decompressor.eof:
        raise CorruptArchive("truncated zstd frame")


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or "\\" in member.name:
        raise CorruptArchive(f"path {member.name!r} escapes the dist folder")
    if member.isdir():
        (dest / path).mkdir(parents=True, exist_ok=True)
        return
    if not member.isfile():
        raise CorruptArchive(f"{member.name!r} is not a regular file")
    target = dest / path
    target.parent.mkdir(parents=True, exist_ok=True)
    source = tar.extractfile(member)
    assert source is not None  # regular files always have a stream
    with target.open("wb") as out:
        shutil.copyfileobj(source, out)


def _verify(dist: Path, app_name: str) -> None:
    manifest_path = dist / MANIFEST_NAME
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = {
            name: (entry["sha256"], int(entry["size"])) for name, entry in data["files"].items()
        }
        owner = data["app"]
    except FileNotFoundError:
        raise CorruptArchive(f"no {MANIFEST_NAME} in the archive") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptArchive(f"unreadable {MANIFEST_NAME}: {exc}") from None
    if owner != app_name:
        raise CorruptArchive(f"{MANIFEST_NAME} belongs to app {owner!r}, not {app_name!r}")
    found = {
        path.relative_to(dist).as_posix()
        for path in dist.rglob("*")
        if path.is_file() and path != manifest_path
    }
    if missing := sorted(set(files) - found):
        raise CorruptArchive(f"missing {missing[0]} (and {len(missing) - 1} more)")
    if extra := sorted(found - set(files)):
        raise CorruptArchive(f"{extra[0]} is not in the manifest")
    for name, (sha256, size) in files.items():
        path = dist / name
        if path.stat().st_size != size or sha256_file(path) != sha256:
            raise CorruptArchive(f"{name} does not match its manifest hash")


def pack(dist: Path) -> bytes:
    """Deterministic `tar.zst` of `dist/` (sorted names, zeroed owners and times)."""
    import zstandard

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(dist.rglob("*")):
            if not path.is_file() or path.is_symlink():
                continue
            info = tarfile.TarInfo(path.relative_to(dist).as_posix())
            info.size, info.mode, info.mtime = path.stat().st_size, 0o644, 0
            with path.open("rb") as stream:
                tar.addfile(info, stream)
    return bytes(zstandard.ZstdCompressor(level=10).compress(buffer.getvalue()))


def upload(cache: RemoteCache, app: App, key: str) -> int:
    """Store `app.dist` under `key`; returns the archive size, or 0 after a warning."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not (app.dist / MANIFEST_NAME).is_file():
        warn(f"not caching {app.name}: {app.dist}/{MANIFEST_NAME} is missing")
        return 0
    body = pack(app.dist)
    try:
        cache.ready()
        cache.s3.put_object(
            Bucket=cache.bucket,
            Key=cache.object_key(app.name, key),
            Body=body,
            ContentType="application/zstd",
            Metadata={"sha256": hashlib.sha256(body).hexdigest(), "app": app.name},
        )
    except (BotoCoreError, ClientError) as exc:
        warn(f"could not upload {cache.url(app.name, key)} to the build cache ({exc}); continuing")
        return 0
    return len(body)
