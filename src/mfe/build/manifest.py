"""`asset-manifest.json`: what an app build produced, hashed once for every later step.

The shell reads entries and integrity from it, publish diffs by its md5/sha256, the
dev server and CI trust it. It is written by the orchestrator, not the bundler, so
any bundler that writes fingerprinted names works.

A file is immutable when its name carries a content hash the build put there. A
hash-like part of a name the app's own files already have is no such hash: a build
copies `public/hero-1920x1080.webp` under that name whatever its bytes, so it stays
mutable (cached `no-cache`, invalidated when it changes).
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import re
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from mfe.build.outputs import files_under
from mfe.errors import MfeError

MANIFEST_NAME = "asset-manifest.json"

# A name segment like `-3F2A9CXY.` / `.a1b2c3d4.` (esbuild, Vite, webpack): at least
# 8 word characters that are upper-case base32 (esbuild), lower-case hex (webpack,
# Rollup) or mix a digit with letters (Vite).
_HASH_SEGMENT = re.compile(r"[-.]([A-Za-z0-9_]{8,})(?=\.)")

JS_SUFFIXES = (".js", ".mjs")
"""ES module files: entries, what the import map reads, what a budget counts."""

CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".cjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ico": "image/x-icon",
}


def content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def hash_segments(name: str) -> set[str]:
    """The parts of a file name that look like a content hash (`3F2A9CXY` of `main-3F2A9CXY.js`)."""
    found = set()
    for match in _HASH_SEGMENT.finditer(Path(name).name):
        token = match.group(1)
        has_digit = any(c.isdigit() for c in token)
        has_alpha = any(c.isalpha() for c in token)
        if (
            (has_digit and has_alpha)
            or re.fullmatch(r"[A-Z2-7]{8,}", token)
            or re.fullmatch(r"[0-9a-f]{8,}", token)
        ):
            found.add(token)
    return found


def authored_segments(sources: Iterable[str]) -> frozenset[str]:
    """The hash-like parts of the names of the app's own files (its sources): the author
    wrote them (`1920x1080`, `20240101`), so they say nothing about a file's content."""
    return frozenset(token for name in sources for token in hash_segments(name))


def is_fingerprinted(name: str, authored: Collection[str] = frozenset()) -> bool:
    """True when the file name carries a content hash, so its bytes never change: a
    hash-like segment that is not one of the `authored` ones (see `authored_segments`)."""
    return any(token not in authored for token in hash_segments(name))


def immutable_on_disk(path: Path) -> bool:
    """Whether the manifest of the `dist/` holding `path` lists it as immutable (the dev
    server's question; False for a file no manifest lists)."""
    for folder in path.parents:
        try:
            stat = (folder / MANIFEST_NAME).stat()
        except OSError:
            continue
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        return path.relative_to(folder).as_posix() in _immutable_names(folder, stamp)
    return False


@lru_cache(maxsize=64)
def _immutable_names(folder: Path, stamp: tuple[int, int, int]) -> frozenset[str]:
    """The immutable files of one manifest version (a swapped dist/ is a new `stamp`)."""
    del stamp  # the cache key only
    try:
        manifest = read_manifest("", folder)
    except MfeError:
        return frozenset()
    return frozenset(name for name, entry in manifest.files.items() if entry.immutable)


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    md5: str
    size: int
    content_type: str
    immutable: bool
    integrity: str
    """Subresource-integrity value (sha384) for `<script integrity>`."""


@dataclass(frozen=True)
class AssetManifest:
    app: str
    entries: list[str]
    files: dict[str, FileEntry]
    """Keyed by the POSIX path relative to `dist/`."""
    modules: dict[str, dict[str, str]] = field(default_factory=dict)
    """Shared modules only: variant folder -> module specifier -> file (see mfe.build.shared)."""
    scopes: dict[str, list[str]] = field(default_factory=dict)
    """Shared modules only: variant folder -> the apps the import map scopes to it."""
    fallbacks: dict[str, dict[str, str]] = field(default_factory=dict)
    """Shared modules only: variant folder -> module specifier -> the file to map instead
    when an app imports its default export or namespace (its `modules` file, shared with
    other specifiers, has only its named exports; see tools/build-shared.mjs)."""

    def to_json(self) -> str:
        data: dict[str, object] = {
            "app": self.app,
            "entries": self.entries,
            "files": {name: asdict(entry) for name, entry in self.files.items()},
        }
        if self.modules:
            data["modules"] = self.modules
            data["scopes"] = self.scopes
            data["fallbacks"] = self.fallbacks
        return json.dumps(data, indent=2, sort_keys=True) + "\n"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def hash_file(path: Path, authored: Collection[str] = frozenset()) -> FileEntry:
    sha256, md5, sha384 = hashlib.sha256(), hashlib.md5(), hashlib.sha384()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            size += len(chunk)
            sha256.update(chunk)
            md5.update(chunk)
            sha384.update(chunk)
    return FileEntry(
        sha256=sha256.hexdigest(),
        md5=md5.hexdigest(),
        size=size,
        content_type=content_type(path.name),
        immutable=is_fingerprinted(path.name, authored),
        integrity="sha384-" + base64.b64encode(sha384.digest()).decode(),
    )


def scan_dist(app: str, dist: Path, sources: Iterable[str] = ()) -> AssetManifest:
    """Hash every output file (through symlinks; a name the site cannot take is an error,
    see mfe.build.outputs); entries are the top-level JavaScript files. `sources`: the
    app's own files, whose names' hash-like parts mark no output immutable."""
    authored = authored_segments(sources)
    files = {
        name: hash_file(path, authored)
        for name, path in files_under(dist, f"build:{app}").items()
        if name != MANIFEST_NAME
    }
    entries = [name for name in files if "/" not in name and name.endswith(JS_SUFFIXES)]
    if not entries:
        raise MfeError(
            f"build:{app}: the bundler wrote no top-level .js entry into {dist}; "
            "check the app's build script"
        )
    return AssetManifest(app, entries, files)


def write_manifest(
    app: str,
    dist: Path,
    modules: dict[str, dict[str, str]] | None = None,
    scopes: dict[str, list[str]] | None = None,
    fallbacks: dict[str, dict[str, str]] | None = None,
    sources: Iterable[str] = (),
) -> AssetManifest:
    manifest = scan_dist(app, dist, sources)
    if modules:
        manifest = AssetManifest(
            manifest.app, manifest.entries, manifest.files, modules, scopes or {}, fallbacks or {}
        )
    (dist / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def manifest_from_json(data: dict[str, Any]) -> AssetManifest:
    """The manifest `AssetManifest.to_json` wrote (KeyError, TypeError when it is not one)."""
    return AssetManifest(
        app=data["app"],
        entries=list(data["entries"]),
        files={name: FileEntry(**entry) for name, entry in data["files"].items()},
        modules={str(k): dict(v) for k, v in data.get("modules", {}).items()},
        scopes={str(k): list(v) for k, v in data.get("scopes", {}).items()},
        fallbacks={str(k): dict(v) for k, v in data.get("fallbacks", {}).items()},
    )


def read_manifest(app: str, dist: Path) -> AssetManifest:
    path = dist / MANIFEST_NAME
    try:
        return manifest_from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise MfeError(f"{path}: missing; run `doit build:{app}` first") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise MfeError(
            f"{path}: unreadable manifest ({exc}); run `doit build:{app}` again"
        ) from None
