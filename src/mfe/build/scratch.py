"""A scratch folder per build, so two builds of one app never write into the same one.

`doit serve` and a `doit build` or `doit publish` in another terminal may build the same
app at once. Each build gets its own folder, `.mfe/build-tmp/<app>-XXXXXXXX/`, locks it
while it lives and removes it when done. A build killed on the way leaves its folder
unlocked, and the next build (of any app) removes it. Making a folder and sweeping
abandoned ones hold one lock on the area, so a sweep never sees a folder before its
owner has locked it. Locks are `flock`s: the kernel drops them when a process dies.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mfe.config import STATE_DIR

AREA = "build-tmp"
"""The folder under `.mfe/` that holds the builds' scratch folders."""
AREA_LOCK = ".lock"


@contextmanager
def build_folder(root: Path, app: str, area_name: str = AREA) -> Iterator[Path]:
    """A new folder for one build of `app`, removed with all it holds when the block ends.

    `area_name`: the folder under `.mfe/` it goes in (CI's cache restores use their own)."""
    area = root / STATE_DIR / area_name
    area.mkdir(parents=True, exist_ok=True)
    with locked(area / AREA_LOCK):
        sweep(area)
        folder = Path(tempfile.mkdtemp(prefix=f"{app}-", dir=area))
        handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(handle, fcntl.LOCK_EX)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(handle)  # after the removal: a sweep never races its owner


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (a folder, or a lock file made if missing)."""
    if path.is_dir():
        handle = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    else:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def sweep(area: Path) -> None:
    """Remove what killed builds left: folders no live build holds (and stray files of
    the older layout, `<app>`, `<app>.old`, `<app>.modules.json`). Call with the area locked."""
    for entry in os.scandir(area):
        if entry.name == AREA_LOCK:
            continue
        if not entry.is_dir(follow_symlinks=False):
            Path(entry.path).unlink(missing_ok=True)
            continue
        try:
            handle = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:  # its build just removed it
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a build in progress
        else:
            shutil.rmtree(entry.path, ignore_errors=True)
        finally:
            os.close(handle)
