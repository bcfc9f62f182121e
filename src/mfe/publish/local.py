"""What a publish puts online: every app's `dist/` (as its asset-manifest describes it)
plus the rendered shell `build/<env>/index.html`, which goes to the parent app's bucket.

Hashes come from the manifests written at build time, so planning reads no file bytes
except to compute a multipart ETag for the rare file above the multipart threshold.
"""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

from mfe.build.manifest import (
    MANIFEST_NAME,
    AssetManifest,
    FileEntry,
    hash_file,
    read_manifest,
)
from mfe.config import Project
from mfe.errors import MfeError
from mfe.files import write_atomic

IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
MUTABLE_CACHE = "no-cache"
RESERVED_PREFIX = "_mfe/"
"""Orchestrator state in every bucket: never uploaded from dist, never invalidated."""
SHELL_KEY = "index.html"
MULTIPART_CHUNK = 8 * 1024 * 1024
"""Multipart threshold and part size: fixed, so the multipart ETag is predictable."""


@dataclass(frozen=True)
class LocalFile:
    app: str
    key: str
    path: Path
    sha256: str
    md5: str
    size: int
    content_type: str
    cache_control: str
    immutable: bool
    etag: str
    """The ETag S3 will report: the md5, or md5-of-part-md5s + '-N' for multipart uploads."""
    shell: bool = False


def cache_control(key: str, immutable: bool, rules: tuple[tuple[str, str], ...]) -> str:
    """The first matching `[[publish.cache_control]]` glob wins over the class default."""
    for glob, value in rules:
        if fnmatch.fnmatchcase(key, glob):
            return value
    return IMMUTABLE_CACHE if immutable else MUTABLE_CACHE


def expected_etag(path: Path, md5: str, size: int) -> str:
    if size <= MULTIPART_CHUNK:
        return md5
    digests = []
    with path.open("rb") as stream:
        while chunk := stream.read(MULTIPART_CHUNK):
            digests.append(hashlib.md5(chunk).digest())
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


@dataclass(frozen=True)
class LocalApp:
    files: list[LocalFile]
    entries: list[tuple[str, str]]
    """(entry file, sha384 integrity), as the shell links them."""
    manifest: AssetManifest
    """The build's asset-manifest.json (kept with the app version: the shell needs it)."""


def collect(project: Project, env: str, only: list[str] | None = None) -> dict[str, LocalApp]:
    """Every built file to publish, per app (parent first), from the asset-manifests.

    The shell page is not among them: publish renders it from the merged release.
    `only`: just these apps (`doit publish app=NAME` needs no other build).
    """
    rules = project.publish.cache_control
    found: dict[str, LocalApp] = {}
    for app in project.apps.values():
        if only is not None and app.name not in only:
            continue
        manifest = read_manifest(app.name, app.dist)
        files = []
        for key, entry in sorted(manifest.files.items()):
            if key == MANIFEST_NAME or (app.role == "parent" and key == SHELL_KEY):
                continue
            if key.startswith(RESERVED_PREFIX):
                raise MfeError(
                    f"{app.dist / key}: the '{RESERVED_PREFIX}' prefix is reserved for release "
                    f"state; rename the file in apps/{app.name}"
                )
            path = app.dist / key
            if not path.is_file():
                raise MfeError(
                    f"{path}: listed in {app.manifest_path} but missing; run `doit build:{app.name}`"
                )
            files.append(_local_file(app.name, key, path, entry, rules))
        entries = [(name, manifest.files[name].integrity) for name in manifest.entries]
        found[app.name] = LocalApp(files, entries, manifest)
    return found


def page_file(project: Project, env: str, html: bytes) -> LocalFile:
    """The rendered page as a local file (kept under `.mfe/<env>/pages/` by content)."""
    digest = hashlib.sha256(html).hexdigest()
    path = project.state_dir(env) / "pages" / f"{digest}.html"
    write_atomic(path, html)  # also when there: new, so `--prune` keeps it (mfe.publish.prune)
    entry = hash_file(path)
    rules = project.publish.cache_control
    page = _local_file(project.parent.name, SHELL_KEY, path, entry, rules)
    return replace(
        page, immutable=False, cache_control=cache_control(SHELL_KEY, False, rules), shell=True
    )


def cached_page(project: Project, env: str, sha256: str) -> LocalFile | None:
    """The page `sha256` from `.mfe/<env>/pages/` when the file there has those bytes; one
    that does not (edited, cut short) is deleted, so its `_ca/` copy is used instead."""
    path = project.state_dir(env) / "pages" / f"{sha256}.html"
    try:
        html = path.read_bytes()
    except OSError:
        return None
    if hashlib.sha256(html).hexdigest() != sha256:
        path.unlink(missing_ok=True)
        return None
    return page_file(project, env, html)


def _local_file(
    app: str, key: str, path: Path, entry: FileEntry, rules: tuple[tuple[str, str], ...]
) -> LocalFile:
    return LocalFile(
        app=app,
        key=key,
        path=path,
        sha256=entry.sha256,
        md5=entry.md5,
        size=entry.size,
        content_type=entry.content_type,
        cache_control=cache_control(key, entry.immutable, rules),
        immutable=entry.immutable,
        etag=expected_etag(path, entry.md5, entry.size),
    )
