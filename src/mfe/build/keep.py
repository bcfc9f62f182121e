"""The previous `dist/` survives a build script that writes there itself.

A build must write into `$MFE_OUT_DIR` (mfe.build.bundle swaps that into `dist/` with its
manifest). A script that ignores it and writes `dist/` directly (`--outdir=dist`, Vite's
`emptyOutDir`) empties the folder readers are serving and drops `asset-manifest.json`.
So the build copies `dist/` into its scratch folder before its script first runs, and a
build that fails after that, for any reason (the script, nothing in `$MFE_OUT_DIR`, the
manifest, the element check, Ctrl-C), puts the copy back (`kept`) unless `dist/` still
matches its manifest (another build of the app may have swapped a newer, whole one in
meanwhile). A copy, not hard links: a bundler that rewrites a file in place would change both.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mfe.build.manifest import MANIFEST_NAME, read_manifest, sha256_file
from mfe.build.outputs import files_under
from mfe.build.scratch import locked
from mfe.errors import MfeError


def copy_of(dist: Path, copy: Path) -> Path | None:
    """A copy of `dist` at `copy` (in the build's scratch folder), or None when there is
    no built `dist/` to keep."""
    if not (dist / MANIFEST_NAME).is_file():
        return None
    shutil.rmtree(copy, ignore_errors=True)
    try:
        shutil.copytree(dist, copy, symlinks=True)
    except (OSError, shutil.Error):  # swapped or removed meanwhile: nothing sure to keep
        shutil.rmtree(copy, ignore_errors=True)
        return None
    return copy


def intact(dist: Path) -> bool:
    """Whether `dist` holds exactly the files its manifest lists, with their bytes."""
    try:
        manifest = read_manifest("", dist)
        found = files_under(dist, "dist")
    except (MfeError, OSError):
        return False
    if set(found) != {*manifest.files, MANIFEST_NAME}:
        return False
    return all(
        found[name].stat().st_size == entry.size and sha256_file(found[name]) == entry.sha256
        for name, entry in manifest.files.items()
    )


def restore(dist: Path, copy: Path | None) -> bool:
    """Put `copy` back as `dist` when the build left `dist` other than whole; whether it
    did. Checked and swapped under the lock `swap_into_place` takes, so a whole `dist/`
    another build swaps in meanwhile is never replaced by this older copy."""
    if copy is None or not copy.is_dir() or not dist.parent.is_dir():
        return False  # nothing kept, or the app folder itself was removed meanwhile
    old = copy.with_name(copy.name + ".old")
    with locked(dist.parent):
        if intact(dist):
            return False
        if dist.exists():
            dist.rename(old)
        copy.rename(dist)
    shutil.rmtree(old, ignore_errors=True)
    return True


@dataclass
class Kept:
    """The `dist/` one build started from, copied once, before its script first runs."""

    dist: Path
    copy: Path
    taken: bool = False
    previous: Path | None = None
    """The copy, or None: there was no built `dist/` to keep."""

    def take(self) -> None:
        """Copy `dist` unless done already: a build run again (inputs changed while it
        ran) keeps the copy of the first run, before any script could touch `dist`."""
        if not self.taken:
            self.taken = True
            self.previous = copy_of(self.dist, self.copy)

    def touched(self) -> bool:
        """Whether a failure now would put the copy back (`dist` is not whole any more)."""
        return self.previous is not None and self.previous.is_dir() and not intact(self.dist)


@contextmanager
def kept(dist: Path, copy: Path) -> Iterator[Kept]:
    """A `Kept` for one build: whatever the block raises after `take`, the copy is put back
    (`restore`) before the error goes on. The one path every failed build takes."""
    keeper = Kept(dist, copy)
    try:
        yield keeper
    except BaseException:
        restore(dist, keeper.previous)
        raise
