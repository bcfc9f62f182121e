"""The commit step after a pointer swap: write the fixed-URL files (every app's mutable
files, `workers` at a time, then the parent's `index.html` last, once all of them were
written), invalidate them, record the history.

Everything the page references is content-addressed and was uploaded before the swap,
so writing `index.html` switches the whole release at once. Fixed-URL bytes come from
the local build, or from their `_ca/` copy verified by sha256 (never from another live
key). Two publishes that swapped one after the other may write their pages in either
order; each re-reads the pointer after writing and writes the newer pointer's files
until they agree, so the last page written is always the newest pointer's.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mfe.errors import MfeError
from mfe.publish.history import write_record
from mfe.publish.invalidate import collapse, invalidate, wait_all
from mfe.publish.local import SHELL_KEY, LocalFile
from mfe.publish.pointer import AppVersion, Blob, Live, read_pointer
from mfe.publish.remote import s3_errors
from mfe.publish.versions import ca_key
from mfe.threads import parallel

if TYPE_CHECKING:
    from mfe.envs.session import Session

CONVERGE_ROUNDS = 20

Written = dict[str, list[str]]
"""app -> fixed-URL keys written."""
Fixed = tuple[str, str, Blob]
"""(app, key, blob) of a fixed-URL file."""
Due = Callable[[list[Fixed]], list[Fixed]]
"""Which of these fixed-URL files to write (one call for all: it may list a bucket)."""


class BadCopy(MfeError):
    """A `_ca/` copy whose bytes do not match the sha256 it is named by: the fixed URL
    cannot be restored from it (`mfe.publish.pending` renders it again or swaps back)."""

    def __init__(self, bucket: str, key: str, blob: Blob) -> None:
        self.bucket, self.key, self.source = bucket, key, ca_key(key, blob.sha256)
        super().__init__(
            f"{self.source} in bucket '{bucket}' does not match its sha256 {blob.sha256[:12]} "
            "(corrupted?); publish that app again"
        )


def verified_copy(session: Session, bucket: str, key: str, blob: Blob) -> bytes:
    """The `_ca/` copy of a fixed-URL file, checked against its sha256 (BadCopy if not)."""
    source = ca_key(key, blob.sha256)
    with s3_errors(session, bucket, f"reading {source}"):
        body: bytes = session.s3.get_object(Bucket=bucket, Key=source)["Body"].read()
    if hashlib.sha256(body).hexdigest() != blob.sha256:
        raise BadCopy(bucket, key, blob)
    return body


def body_for(
    session: Session, bucket: str, key: str, blob: Blob, local: dict[str, LocalFile]
) -> bytes:
    """The bytes of a fixed-URL file: local when built here, else its verified `_ca/` copy."""
    mine = local.get(blob.sha256)
    if mine is not None:
        return mine.path.read_bytes()
    return verified_copy(session, bucket, key, blob)


def put_fixed(session: Session, bucket: str, key: str, blob: Blob, body: bytes) -> None:
    with s3_errors(session, bucket, f"writing {key}"):
        session.s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType=blob.content_type,
            CacheControl=blob.cache_control,
            Metadata={"sha256": blob.sha256},
        )


def fixed_files(apps: dict[str, AppVersion], page: Blob, parent: str) -> list[Fixed]:
    """(app, key, blob) of every fixed-URL file of a release, the parent's page last."""
    found = [(app, key, b) for app, v in sorted(apps.items()) for key, b in v.mutable.items()]
    return [*found, (parent, SHELL_KEY, page)]


def due_fixed(
    apps: dict[str, AppVersion], page: Blob, parent: str, buckets: dict[str, str], wanted: Due
) -> list[Fixed]:
    """The fixed-URL files the commit step writes for a release of `apps` and `page`, page
    last: those of apps with a bucket that `wanted` picks. `doit plan` lists these too."""
    return wanted([f for f in fixed_files(apps, page, parent) if f[0] in buckets])


def keys_by_app(files: list[Fixed]) -> Written:
    written: Written = {}
    for app, key, _blob in files:
        written.setdefault(app, []).append(key)
    return written


def apply_fixed(
    session: Session,
    live: Live,
    parent: str,
    buckets: dict[str, str],
    wanted: Due,
    local: dict[str, LocalFile],
    workers: int,
) -> Written:
    """Write the wanted fixed-URL files, `workers` at a time; the page only after every
    other one was written (a failure before it leaves the old page live)."""
    due = due_fixed(live.apps, live.page, parent, buckets, wanted)
    page = [f for f in due if f[:2] == (parent, SHELL_KEY)]
    for batch in ([f for f in due if f not in page], page):
        parallel(
            workers, [functools.partial(write_fixed, session, buckets, f, local) for f in batch]
        )
    return keys_by_app(due)


def write_fixed(
    session: Session, buckets: dict[str, str], fixed: Fixed, local: dict[str, LocalFile]
) -> None:
    app, key, blob = fixed
    bucket = buckets[app]
    put_fixed(session, bucket, key, blob, body_for(session, bucket, key, blob, local))


def converge(
    session: Session,
    written_for: Live,
    parent: str,
    buckets: dict[str, str],
    local: dict[str, LocalFile],
    workers: int,
) -> Written:
    """Re-read the pointer; while it moved on, write its fixed files (see module doc)."""
    extra: Written = {}
    applied = written_for
    for _ in range(CONVERGE_ROUNDS):
        with s3_errors(session, buckets[parent], "reading the live pointer"):
            now, _etag = read_pointer(session.s3, buckets[parent])
        if now is None or now.seq <= applied.seq:
            return extra
        before = {(a, k): b for a, k, b in fixed_files(applied.apps, applied.page, parent)}

        def newer(files: list[Fixed], seen: dict[Any, Blob] = before) -> list[Fixed]:
            return [(app, key, b) for app, key, b in files if seen.get((app, key)) != b]

        done = apply_fixed(session, now, parent, buckets, newer, local, workers)
        for app, keys in done.items():
            extra.setdefault(app, []).extend(keys)
        applied = now
    return extra


def invalidated(changed: dict[str, list[str]], written: Written) -> dict[str, list[str]]:
    """app -> fixed-URL paths to invalidate, each once: the pointer's changed ones and every
    key written (also healed files and what a newer pointer needed), so the report's rows
    show what was sent."""
    return merged(changed, {app: ["/" + key for key in keys] for app, keys in written.items()})


def to_invalidate(live: Live, written: Written) -> dict[str, list[str]]:
    """app -> the paths the commit step of `live` invalidates: none for the first release
    (nothing was served, so nothing is cached), so the report counts only what is sent."""
    return {} if live.seq == 1 else invalidated(live.invalidations, written)


def merged(first: dict[str, list[str]], then: dict[str, list[str]]) -> dict[str, list[str]]:
    """`first`, then `then`'s items not in it yet, per name: each once, in order."""
    found = {name: list(items) for name, items in first.items()}
    for name, items in then.items():
        mine = found.setdefault(name, [])
        mine.extend(item for item in items if item not in mine)
    return found


@dataclass
class Committed:
    """What a command's commit steps did (finishing an earlier command's, then its own):
    the report's rows, `invalidated_by_app` and `invalidations`, each key or path once."""

    written: Written = field(default_factory=dict)
    invalidated: dict[str, list[str]] = field(default_factory=dict)
    """app -> fixed-URL paths invalidated (`invalidated`)."""
    sent: dict[str, list[str]] = field(default_factory=dict)
    """distribution -> paths sent."""

    def add(
        self,
        live: Live,
        written: Written,
        sent: dict[str, list[str]],
        distributions: dict[str, str | None],
    ) -> None:
        """Count the commit step of `live` that wrote `written` and sent `sent` (the paths
        of apps with a distribution: the others had nothing to invalidate)."""
        self.written = merged(self.written, written)
        mine = with_distribution(to_invalidate(live, written), distributions)
        self.invalidated = merged(self.invalidated, mine)
        self.sent = merged(self.sent, sent)

    @property
    def by_app(self) -> dict[str, list[str]]:
        """app -> paths invalidated, for the apps with any."""
        return {app: paths for app, paths in self.invalidated.items() if paths}


def with_distribution(
    per_app: dict[str, list[str]], distributions: dict[str, str | None]
) -> dict[str, list[str]]:
    """app -> paths, for the apps with paths and a distribution to send them to: a store
    without CloudFront (plain S3, SeaweedFS) invalidates nothing, and says so."""
    return {app: paths for app, paths in per_app.items() if paths and distributions.get(app)}


def by_distribution(
    per_app: dict[str, list[str]], distributions: dict[str, str | None]
) -> dict[str, list[str]]:
    """app -> paths into distribution -> collapsed paths (apps without one are skipped)."""
    found: dict[str, set[str]] = {}
    for app, paths in with_distribution(per_app, distributions).items():
        found.setdefault(str(distributions[app]), set()).update(paths)
    return {dist: collapse(sorted(paths)) for dist, paths in sorted(found.items())}


def commit(
    session: Session,
    live: Live,
    parent: str,
    buckets: dict[str, str],
    distributions: dict[str, str | None],
    wanted: Due,
    local: dict[str, LocalFile],
    *,
    wait: bool,
    note: Callable[[str], None],
    workers: int,
    finishing: bool,
) -> tuple[Written, dict[str, list[str]]]:
    """Fixed URLs, invalidation, history record; returns (written, distribution -> paths).
    `finishing`: the commit step of a pointer an earlier command swapped, which may have
    invalidated already (otherwise this command's own swap just made `live`'s release id)."""
    written = apply_fixed(session, live, parent, buckets, wanted, local, workers)
    written = merged(written, converge(session, live, parent, buckets, local, workers))
    sent = by_distribution(to_invalidate(live, written), distributions)
    made: dict[str, str] = {}
    if sent:
        cf = session.cloudfront
        since = datetime.fromisoformat(live.created) if finishing else None
        for dist, found in sent.items():
            lost = session.backend.lost
            made[dist] = invalidate(cf, session.env.name, dist, found, live.release, since, lost)
            note(
                f"invalidating {', '.join(found)} on distribution {dist} (invalidation {made[dist]})"
            )
    with s3_errors(session, buckets[parent], f"recording release {live.release}"):
        write_record(session.s3, buckets[parent], live)
    if wait and made:
        wait_all(
            session.cloudfront,
            session.env.name,
            made,
            lambda d, s: note(f"invalidation on {d}: {s}"),
            lost=session.backend.lost,
        )
    return written, sent
