"""The input key of one app: a content hash of everything its build reads.

Computed from file contents (never timestamps or absolute paths), so two clones on
two machines agree; it names the app's archive in the remote build cache.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
from dataclasses import dataclass

from mfe.build import lockslice, shared
from mfe.build.manifest import sha256_file
from mfe.build.sources import app_sources
from mfe.config import App, Project
from mfe.errors import MfeError

FORMAT_VERSION = "mfe-input-key/2"
"""Bump when the key's recipe or the archive layout changes: old entries stop matching.
2: a hash-like part of an app's own file name no longer marks a file immutable."""


@dataclass(frozen=True)
class InputKey:
    key: str
    """sha256 hex over `parts`."""
    parts: dict[str, str]
    """label -> digest: `file:<path>`, `lock:<location>`, `input:<path>`, `env:<VAR>`, `node`, `format`."""


@functools.cache
def node_version() -> str:
    """`node --version` (once per process): a new Node can change bundler output."""
    try:
        result = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, check=True, timeout=30
        )
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        raise MfeError(f"`node --version` failed ({exc}): install Node.js 20+") from None
    return result.stdout.strip()


def input_key(project: Project, app: App, packages: lockslice.Packages | None = None) -> InputKey:
    """Key of `app`; pass the parsed lockfile `packages` when keying several apps."""
    if packages is None:
        packages = lockslice.load_lockfile(project.lockfile)
    parts: dict[str, str] = {"format": FORMAT_VERSION, "node": node_version()}
    for path in app_sources(app):
        parts[f"file:{path.relative_to(project.root).as_posix()}"] = sha256_file(path)
    workspace = lockslice.workspace_of(project.root, app.path)
    if app.role == "shared":
        # The shared modules are built from the shared packages' entries, not a workspace.
        entries = shared.shared_slice(project, packages)
    else:
        entries = lockslice.slice_entries(packages, workspace)
        parts["shared:externals"] = _sha256_text(shared.externals_json(project))
    for location, fingerprint in entries.items():
        parts[f"lock:{location}"] = hashlib.sha256(fingerprint.encode()).hexdigest()
    for name in project.build.inputs:
        path = project.root / name
        parts[f"input:{name}"] = sha256_file(path) if path.is_file() else "missing"
    for var in project.build.env:
        value = os.environ.get(var)
        # Hash the value: build variables may be secrets and `parts` ends up in reports.
        parts[f"env:{var}"] = "unset" if value is None else _sha256_text(value)
    digest = hashlib.sha256()
    for label in sorted(parts):
        digest.update(f"{label}\0{parts[label]}\n".encode())
    return InputKey(digest.hexdigest(), parts)


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
