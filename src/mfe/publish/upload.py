"""Phased parallel uploads: one `PutObject` per file from a thread pool; boto3's managed
transfer (multipart) only above the multipart threshold.

Phase order is the "never a broken page" rule: every app's fingerprinted files, then
the apps' mutable files, then the shell's `index.html`. A phase only starts when the
previous one finished without error, so a page is never published before its assets.

Why not the transfer manager for every file: a site is mostly small files, and
s3transfer's per-file machinery (futures, submission tasks, chunked reads, callbacks)
cost more CPU than the request itself; one `put_object` of bytes read at once is the
least the client can do per file, which is what bounds a publish of thousands of files.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
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


def put_file(s3: Any, bucket: str, f: LocalFile) -> None:
    """One file to `bucket`: a single PutObject, or multipart above MULTIPART_CHUNK with the
    part size the expected ETag was computed for (so the next plan recognises it)."""
    if f.size <= MULTIPART_CHUNK:
        s3.put_object(Bucket=bucket, Key=f.key, Body=f.path.read_bytes(), **extra_args(f))
        return
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(
        multipart_threshold=MULTIPART_CHUNK + 1, multipart_chunksize=MULTIPART_CHUNK
    )
    s3.upload_file(str(f.path), bucket, f.key, ExtraArgs=extra_args(f), Config=config)


def upload_all(
    session: Session,
    plan: Plan,
    workers: int,
    on_phase: Callable[[str, int, int], None],
    on_bytes: Callable[[int], None],
    on_file: Callable[[LocalFile], None],
) -> None:
    """Upload the plan's files phase by phase; the first failure stops before the next phase
    (and cancels the phase's files not yet started)."""
    s3 = session.s3

    def send(bucket: str, f: LocalFile) -> None:
        put_file(s3, bucket, f)
        on_bytes(f.size)
        on_file(f)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mfe-upload") as pool:
        for name, items in phases(plan):
            on_phase(name, len(items), sum(f.size for _, f in items))
            futures: dict[Future[None], tuple[str, LocalFile]] = {
                pool.submit(send, bucket, f): (bucket, f) for bucket, f in items
            }
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()
            wait(pending)
            for future in done:
                error = future.exception()
                if error is not None:
                    bucket, f = futures[future]
                    with s3_errors(session, bucket, f"uploading {f.key} (app {f.app})"):
                        raise error
