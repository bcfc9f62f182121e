"""Build cache archives: a deterministic `tar.zst` of an app's `dist/`, and an unpacker that
trusts nothing it has not checked (paths, file types, every file against the manifest).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from mfe.build.manifest import MANIFEST_NAME, sha256_file
from mfe.build.outputs import files_under


class CorruptArchive(Exception):
    """The archive cannot be restored as-is (truncated, bad frame, wrong content)."""


class NotSigned(CorruptArchive):
    """The archive's manifest is not the one the signature covers."""


def unpack_verified(
    archive: Path, dest: Path, app_name: str, manifest_sha256: str | None = None
) -> None:
    """Extract into `dest` (new folder) and check it against its manifest, or raise.

    With `manifest_sha256` (the signed value) the archive's manifest is checked first,
    before a single file is written, and the manifest on disk again after extraction.
    """
    tar_path = archive.with_suffix("")  # archive.tar
    _decompress(archive, tar_path)
    dest.mkdir(parents=True)
    try:
        with tarfile.open(tar_path, mode="r:") as tar:
            members = tar.getmembers()
            _check_names(members)
            if manifest_sha256 is not None:
                _check_manifest(tar, manifest_sha256)
            for member in members:
                _extract_member(tar, member, dest)
    except (tarfile.TarError, EOFError, ValueError) as exc:
        raise CorruptArchive(f"unreadable tar: {exc}") from None
    finally:
        tar_path.unlink(missing_ok=True)
    _verify(dest, app_name, manifest_sha256)


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


def _check_names(members: list[tarfile.TarInfo]) -> None:
    """One spelling per path: extraction writes `./x` or `x/` onto `x`, so a second
    spelling would replace the file checked under the first (say, the signed manifest)."""
    seen: set[str] = set()
    for member in members:
        if PurePosixPath(member.name).as_posix() != member.name:
            raise CorruptArchive(f"member name {member.name!r} is not in normal form")
        if member.name in seen:
            raise CorruptArchive(f"{member.name!r} occurs twice")
        seen.add(member.name)


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


def _verify(dist: Path, app_name: str, manifest_sha256: str | None) -> None:
    """Every file against the manifest on disk, which must itself be the signed one."""
    manifest_path = dist / MANIFEST_NAME
    try:
        raw = manifest_path.read_bytes()
        if manifest_sha256 is not None and hashlib.sha256(raw).hexdigest() != manifest_sha256:
            raise NotSigned(f"the extracted {MANIFEST_NAME} is not the signed one")
        data = json.loads(raw.decode("utf-8"))
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
    """Deterministic `tar.zst` of `dist/` (sorted names, zeroed owners and times), its
    symlinks followed as the manifest scan follows them: the archive holds their files."""
    import zstandard

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in files_under(dist, f"cache: {dist}").items():  # as the manifest
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = path.stat().st_size, 0o644, 0
            with path.open("rb") as stream:
                tar.addfile(info, stream)
    return bytes(zstandard.ZstdCompressor(level=10).compress(buffer.getvalue()))


def _check_manifest(tar: tarfile.TarFile, expected_sha256: str) -> None:
    try:
        member = tar.getmember(MANIFEST_NAME)
    except KeyError:
        raise CorruptArchive(f"no {MANIFEST_NAME} in the archive") from None
    stream = tar.extractfile(member) if member.isfile() else None
    if stream is None:
        raise CorruptArchive(f"{MANIFEST_NAME} is not a regular file")
    if hashlib.sha256(stream.read()).hexdigest() != expected_sha256:
        raise NotSigned(f"its {MANIFEST_NAME} is not the signed one")


def manifest_sha256(dist: Path) -> str:
    return sha256_file(dist / MANIFEST_NAME)
