"""Fingerprints of a build's inputs taken *before* the bundler reads them.

doit fingerprints `file_dep` when a task finishes, so a file saved while the bundler
ran would be recorded as built although the bundle holds its older bytes. A build
therefore fingerprints its inputs first, checks after the bundler that none moved, and
hands the fingerprints to doit as the state to store (see `mfe.doitdb`).

States have doit's `MD5Checker` shape, `[mtime, size, md5]`. A file modified within
`RACY_SECONDS` of the snapshot may change again without a new mtime (coarse kernel
timestamps), so its mtime is stored as 0: doit then compares its size and md5.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

from doit.dependency import get_file_md5

READ_KEY = "mfe:inputs-read"
"""The task-values key under which a build hands doit the fingerprints it read."""
RACY_SECONDS = 1.0
State = list[float | int | str]


def take(root: Path, files: Iterable[str]) -> dict[str, State]:
    """`[mtime, size, md5]` of each root-relative file, with racy mtimes zeroed."""
    now = time.time()
    states: dict[str, State] = {}
    for name in files:
        path = os.path.join(root, name)
        stat = os.stat(path)
        mtime = 0.0 if stat.st_mtime >= now - RACY_SECONDS else stat.st_mtime
        states[name] = [mtime, stat.st_size, get_file_md5(path)]
    return states


def moved(root: Path, states: dict[str, State], files: Iterable[str]) -> list[str]:
    """Files that differ from `states` now (changed, deleted or new), sorted."""
    names = set(files)
    found = sorted(names.symmetric_difference(states))
    for name in sorted(names & states.keys()):
        mtime, size, md5 = states[name]
        path = os.path.join(root, name)
        try:
            stat = os.stat(path)
        except OSError:
            found.append(name)
            continue
        if stat.st_size != size or (stat.st_mtime != mtime and get_file_md5(path) != md5):
            found.append(name)
    return sorted(found)
