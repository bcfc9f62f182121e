"""What is recorded of each published file (`FileRecord`, in app version manifests),
and the git commit / clock helpers release records use."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
