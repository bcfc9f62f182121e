"""Helpers shared by the bench modules: the test suite's monorepo copy and doit runner,
and what the soaks read of a process from /proc.

The benchmarks need the `test` extra anyway (awscli, playwright), so they reuse the
suite's helpers in tests/fixtures/ (bench/run.py puts tests/ on the import path).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fixtures.browser import CHROMIUM, CHROMIUM_ARGS
from fixtures.config import use_port
from fixtures.repo import REPO, copy_sources, run_doit

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "REPO",
    "children",
    "copy_monorepo",
    "copy_sources",
    "doit",
    "held",
    "use_port",
]


def doit(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run `python -m doit ARGS` in root; its output, or AssertionError if it fails."""
    return run_doit(root, *args, env=env, timeout=900).stdout


def copy_monorepo(target: Path) -> Path:
    """A private copy of this monorepo with JS deps installed and every app built."""
    copy_sources(target)  # git's files: never a .venv or node_modules made in the clone
    doit(target, "build")
    return target


def held(pid: int) -> tuple[int, int, int]:
    """(VmRSS kB, open fds, threads) of one process."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    status = dict(line.split(":", 1) for line in lines if ":" in line)
    fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    return int(status["VmRSS"].split()[0]), fds, int(status["Threads"])


def children(pid: int) -> list[int]:
    """The child processes of `pid` (of each of its threads)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:  # the thread ended meanwhile
            continue
    return found
