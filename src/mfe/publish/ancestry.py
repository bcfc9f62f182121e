"""What git says about the order of commits in this clone: whether a live version's commit
is older, newer or on another branch than this checkout's. Publish, rollback and the
"kept live" notes ask it; a clone without git, or without the commit, answers "cannot
tell" rather than guess.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def is_ancestor(root: Path, older: str, newer: str) -> bool:
    """True when `older` is a strict ancestor of `newer` in this clone's history."""
    return older != newer and _ancestry(root, older, newer) == 0


def unmerged(root: Path, live: str, ours: str) -> bool:
    """True when git says `live` is not in `ours`' history (another branch, not merged
    here). False when it cannot tell (no git, a commit this clone lacks) or they are equal:
    no order known, nothing to refuse."""
    return live != ours and _ancestry(root, live, ours) == 1  # 128: an error, not an answer


def _ancestry(root: Path, older: str, newer: str) -> int | None:
    """`git merge-base --is-ancestor`'s exit code (0: it is, 1: it is not); None: no git."""
    try:
        return subprocess.run(
            ["git", "merge-base", "--is-ancestor", older, newer],
            cwd=root,
            capture_output=True,
            check=False,
        ).returncode
    except FileNotFoundError:
        return None


def is_shallow(root: Path) -> bool:
    """A shallow clone's history stops early, so a commit it has can look unmerged."""
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--is-shallow-repository"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        return False
    return found.stdout.strip() == "true"


def has_commit(root: Path, commit: str) -> bool:
    """Is `commit` in this clone's history (a shallow clone lacks older and newer ones)?"""
    try:
        found = subprocess.run(
            ["git", "cat-file", "-e", f"{commit}^{{commit}}"],
            cwd=root,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        return True  # no git: no order to check, as is_ancestor says
    return found.returncode == 0


def fetch_commit(root: Path, commit: str) -> bool:
    """Fetch `commit` from `origin` (a CI run cloned before it was pushed); whether this
    clone has it now. Never prompts: a CI job has no one to answer."""
    ssh = os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    quiet = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": ssh}
    command = ["git", "fetch", "--quiet", "--no-tags", "origin", commit]
    try:
        subprocess.run(command, cwd=root, env=quiet, capture_output=True, check=False, timeout=120)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return has_commit(root, commit)
