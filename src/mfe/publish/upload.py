"""Phased parallel uploads through boto3's transfer manager (multipart for large files).

Phase order is the "never a broken page" rule: every app's fingerprinted files, then
the apps' mutable files, then the shell's `index.html`. A phase only starts when the
previous one finished without error, so a page is never published before its assets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mfe.publish.local import MULTIPART_CHUNK, LocalFile
from mfe.publish.plan import Plan
from mfe.publish.remote import s3_errors

if TYPE_CHECKING:
    from mfe.envs.session import Session

Phase = tuple[str, list[tuple[str, LocalFile]]]


def phases(plan: Plan) -> list[Phase]:
    """(name, [(bucket, file)]) in upload order; empty phases are dropped."""
    immutable, mutable, shell = [], [], []
    for ap in plan.apps.values():
        for f in ap.uploads:
            bucket_file = (ap.bucket, f)
            if f.shell:
                shell.append(bucket_file)
            elif f.immutable:
                immutable.append(bucket_file)
            else:
                mutable.append(bucket_file)
    named = [("immutable", immutable), ("mutable", mutable), ("shell", shell)]
    return [(name, items) for name, items in named if items]


def extra_args(f: LocalFile) -> dict[str, Any]:
    return {
        "ContentType": f.content_type,
        "CacheControl": f.cache_control,
        "Metadata": {"sha256": f.sha256},
    }


class _Subscriber:
    """Forwards the transfer manager's byte progress to our progress display."""

    def __init__(self, on_bytes: Callable[[int], None]) -> None:
        self.on_bytes = on_bytes

    def on_queued(self, **_: Any) -> None:
        pass

    def on_progress(self, bytes_transferred: int, **_: Any) -> None:
        self.on_bytes(bytes_transferred)

    def on_done(self, **_: Any) -> None:
        pass


def upload_all(
    session: Session,
    plan: Plan,
    workers: int,
    on_phase: Callable[[str, int, int], None],
    on_bytes: Callable[[int], None],
    on_file: Callable[[LocalFile], None],
) -> None:
    """Upload the plan's files phase by phase; the first failure stops before the next phase."""
    from s3transfer.manager import TransferConfig, TransferManager
    from s3transfer.subscribers import BaseSubscriber

    class Subscriber(_Subscriber, BaseSubscriber):  # type: ignore[misc]
        pass

    config = TransferConfig(
        multipart_threshold=MULTIPART_CHUNK + 1,
        multipart_chunksize=MULTIPART_CHUNK,
        max_request_concurrency=workers,
    )
    with TransferManager(session.s3, config) as manager:
        for name, items in phases(plan):
            on_phase(name, len(items), sum(f.size for _, f in items))
            futures = [
                (
                    bucket,
                    f,
                    manager.upload(
                        str(f.path), bucket, f.key, extra_args(f), [Subscriber(on_bytes)]
                    ),
                )
                for bucket, f in items
            ]
            failure: tuple[str, LocalFile, BaseException] | None = None
            for bucket, f, future in futures:
                try:
                    future.result()
                except Exception as exc:  # collected, re-raised with advice below
                    failure = failure or (bucket, f, exc)
                else:
                    on_file(f)
            if failure is not None:
                bucket, f, error = failure
                with s3_errors(session, bucket, f"uploading {f.key} (app {f.app})"):
                    raise error
