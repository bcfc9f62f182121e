"""Helpers shared by the bench modules: copies of the monorepo and running doit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COPY_IGNORE = shutil.ignore_patterns(
    "node_modules", "dist", "build", ".mfe", ".git", "__pycache__", "*.egg-info", "bench", "tests"
)


def doit(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run `python -m doit ARGS` in root; raise with its output if it fails."""
    result = subprocess.run(
        [sys.executable, "-m", "doit", *args],
        cwd=root,
        env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"doit {' '.join(args)} failed in {root}:\n{result.stdout}")
    return result.stdout


def copy_monorepo(target: Path) -> Path:
    """A private copy of this monorepo with JS deps installed and every app built."""
    shutil.copytree(REPO, target, ignore=COPY_IGNORE)
    doit(target, "build")
    return target
