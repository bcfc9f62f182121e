"""Which fixed-URL files a commit step writes (`mfe.publish.commit`): new bytes at a fixed
URL, or the same bytes the bucket no longer holds as the release has them (deleted or
changed out of band, so written back).

Whether a bucket still holds a file is looked up in a listing this command already made
of the whole bucket, else in a listing of the folders holding the files when a bucket has
more than LIST_ABOVE to check (direct children only: not its `_ca/` copies, `_mfe/` state
or fingerprinted subfolders), else with one HEAD per file.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mfe.publish.commit import Due, Fixed
from mfe.publish.local import RESERVED_PREFIX, SHELL_KEY
from mfe.publish.pointer import Blob, Live
from mfe.publish.remote import RemoteObject, folder_of, head, list_folder, s3_errors
from mfe.threads import parallel

if TYPE_CHECKING:
    from mfe.envs.session import Session

LIST_ABOVE = 100
"""Fixed-URL files to check in one bucket above which the folders holding them are listed
(`Drift.folder_listings`) instead of HEADing each file: on moto a ListObjectsV2 page (1,000
keys) took as long as ~140 HEADs (420 vs 3 ms)."""


def differs(found: RemoteObject | None, b: Blob) -> bool:
    """Whether a fixed URL does not hold `b`: missing, or other bytes (by ETag)."""
    return found is None or found.etag != b.md5


@dataclass(frozen=True)
class Drift:
    """Whether the apps' buckets still hold fixed-URL files as a release has them."""

    session: Session
    buckets: dict[str, str]
    """app -> bucket; an app without one holds nothing."""
    listings: dict[str, dict[str, RemoteObject]]
    """app -> its bucket but `_mfe/`, as this command listed it (`Run.listings`): looked up
    there, never listed again."""
    workers: int

    def remote(self, app: str, key: str) -> RemoteObject | None:
        """One object as the bucket holds it: from the listing when the bucket was listed,
        else one HEAD (a few fixed-URL files do not justify listing a bucket of thousands).
        Release state (`_mfe/`) is in no listing: always a HEAD."""
        if app in self.listings and not key.startswith(RESERVED_PREFIX):
            return self.listings[app].get(key)
        bucket = self.buckets[app]
        with s3_errors(self.session, bucket, f"checking {key}"):
            return head(self.session.s3, bucket, key)

    def head_differs(self, app: str, key: str, b: Blob) -> bool:
        found = self.remote(app, key) if app in self.buckets else None
        return differs(found, b)

    def folder_listings(self, files: list[Fixed]) -> dict[str, dict[str, RemoteObject]]:
        """app -> the objects directly in the folders of its fixed-URL files, for each bucket
        with more than LIST_ABOVE to check that this command has not listed whole: its
        `_ca/` copies, `_mfe/` state and fingerprinted subfolders are not paged through.
        Each folder is listed once, `workers` at a time; never kept as a whole listing."""
        counts = Counter(app for app, _, _ in files)
        many = {a for a, n in counts.items() if n > LIST_ABOVE and a in self.buckets}
        many -= set(self.listings)
        jobs = sorted({(app, folder_of(key)) for app, key, _ in files if app in many})
        calls = [functools.partial(list_folder, self.session, self.buckets[a], d) for a, d in jobs]
        found: dict[str, dict[str, RemoteObject]] = {app: {} for app in many}
        for (app, _), objects in zip(jobs, parallel(self.workers, calls), strict=True):
            found[app].update(objects)
        return found

    def drifted(self, files: list[Fixed]) -> list[Fixed]:
        """The fixed-URL files their buckets do not hold as `files` has them (to write again):
        looked up in a listing when the bucket was listed whole or has more than LIST_ABOVE
        of them to check (`folder_listings`), else HEADed one each, `workers` at a time."""
        listed = {**self.listings, **self.folder_listings(files)}
        found = {f: differs(listed[f[0]].get(f[1]), f[2]) for f in files if f[0] in listed}
        heads = [f for f in files if f not in found]
        calls = [functools.partial(self.head_differs, *f) for f in heads]
        found.update(zip(heads, parallel(self.workers, calls), strict=True))
        return [f for f in files if found[f]]


def wanted(previous: Live | None, parent: str, drifted: Due) -> Due:
    """Which fixed-URL files a swap from `previous` writes (the publish's commit step and
    the plan): new bytes at a fixed URL, or the same ones the bucket no longer holds
    (`drifted`, one call for all)."""
    before = {}
    if previous is not None:
        before = {(a, k): b for a, v in previous.apps.items() for k, b in v.mutable.items()}
        before[(parent, SHELL_KEY)] = previous.page

    def due(files: list[Fixed]) -> list[Fixed]:
        same = [f for f in files if before.get((f[0], f[1])) == f[2]]
        kept = set(same) - set(drifted(same))
        return [f for f in files if f not in kept]

    return due
