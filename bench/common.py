"""Helpers shared by the bench modules: the test suite's monorepo copy and doit runner.

The benchmarks need the `test` extra anyway (awscli, playwright), so they reuse
tests/conftest.py (bench/run.py puts tests/ on the import path) instead of twins of it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from conftest import CHROMIUM, CHROMIUM_ARGS, COPY_IGNORE, REPO, run_doit

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "COPY_IGNORE", "REPO", "copy_monorepo", "doit"]


def doit(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run `python -m doit ARGS` in root; its output, or AssertionError if it fails."""
    return run_doit(root, *args, env=env, timeout=900).stdout


def copy_monorepo(target: Path) -> Path:
    """A private copy of this monorepo with JS deps installed and every app built."""
    shutil.copytree(REPO, target, ignore=COPY_IGNORE)
    doit(target, "build")
    return target
