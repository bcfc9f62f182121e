"""What is recorded of each published file (`FileRecord`, in app version manifests),
and the git commit / uncommitted-sources / clock helpers release records use."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mfe.build.sources import app_of, editor_temporary
from mfe.config import CONFIG_FILE, Project
from mfe.publish.local import LocalFile


@dataclass(frozen=True)
class FileRecord:
    sha256: str
    md5: str
    etag: str
    size: int
    content_type: str
    cache_control: str
    immutable: bool


def record(file: LocalFile) -> FileRecord:
    return FileRecord(
        file.sha256,
        file.md5,
        file.etag,
        file.size,
        file.content_type,
        file.cache_control,
        file.immutable,
    )


def git_commit(root: Path) -> str | None:
    return (_git(root, "rev-parse", "HEAD") or "").strip() or None


def published_source(project: Project, apps: Iterable[str]) -> tuple[str | None, bool | None]:
    """(HEAD's commit, whether the `apps`' sources differ from it) for a release or preview
    record; (None, None) without a commit."""
    commit = git_commit(project.root)
    return commit, uncommitted(project, apps) if commit else None


def dirty_apps(project: Project, apps: Iterable[str], dirty: bool | None) -> dict[str, bool | None]:
    """app -> whether its sources (or the shared inputs) differ from the commit, for its
    version's `dirty`: asked per app only when the whole is `dirty`, to spare a clean
    checkout the git calls."""
    return {name: uncommitted(project, [name]) if dirty else dirty for name in apps}


def _git(root: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return None
    return result.stdout if result.returncode == 0 else None


def uncommitted(project: Project, apps: Iterable[str]) -> bool | None:
    """Whether the checkout differs from HEAD (modified, staged, deleted or untracked, not
    git-ignored) in what the published bytes are built from, so a record naming HEAD's
    commit says so: the published `apps`' sources (`mfe.build.sources`: not dist/,
    node_modules/, dot folders, editors' temporary files, even where no .gitignore says
    so), the shell template (not an editor's temporary file either), the shared [build]
    inputs, mfe.toml and the npm manifests.
    Not the whole repository: another app's edit (a per-app publish renders it from the
    live pointer), a README or a test are not in the bytes served. None: not a git checkout.
    """
    root = project.root
    folders = [project.bundled_apps[n].path for n in apps if n in project.bundled_apps]
    specs = [p.relative_to(root).as_posix() for p in folders if p.is_relative_to(root)]
    specs += [project.shell_dir.relative_to(root).as_posix(), CONFIG_FILE, "package.json"]
    specs += [project.lockfile.name, *project.build.inputs]
    prefix = _git(root, "rev-parse", "--show-prefix")
    status = _git(
        root, "status", "--porcelain", "-z", "--no-renames", "--untracked-files=all", "--", *specs
    )
    if prefix is None or status is None:
        return None
    for entry in filter(None, status.split("\0")):
        path = entry[3:].removeprefix(prefix.strip())
        if path.startswith("apps/"):
            if app_of(project, path) is not None:
                return True
        elif not editor_temporary(path.rsplit("/", 1)[-1]):  # shell/.index.html.j2.swp
            return True
    return False


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
