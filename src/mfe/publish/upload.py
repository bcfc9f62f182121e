"""Phased parallel uploads: one `PutObject` per file from a thread pool; boto3's managed
transfer (multipart) only above the multipart threshold.

Phase order is the "never a broken page" rule: every app's fingerprinted files, then
the apps' mutable files, then the shell's `index.html`. A phase only starts when the
previous one finished without error, so a page is never published before its assets.

Why not the transfer manager for every file: a site is mostly small files, and
s3transfer's per-file machinery (futures, submission tasks, chunked reads, callbacks)
cost more CPU than the request itself; one `put_object` of bytes read at once is the
least the client can do per file. Even so botocore spends ~2 ms of CPU per request under
one interpreter lock, which bounds a phase of thousands of files: such a phase is split
into batches over one worker process per core, each with its own client and threads.
"""

from __future__ import annotations

import functools
import hashlib
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mfe.build.manifest import MANIFEST_NAME, sha256_file
from mfe.errors import MfeError, aws_error_code, aws_status
from mfe.publish.local import MULTIPART_CHUNK, LocalFile
from mfe.publish.plan import Plan
from mfe.publish.remote import UNCHANGED, is_lost, s3_errors
from mfe.threads import completed, parallel

if TYPE_CHECKING:
    from mfe.envs.session import ClientSpec, Session

Phase = tuple[str, list[tuple[str, LocalFile]]]
PROCESS_MIN_FILES = 1000
"""A phase this large is spread over processes (each costs ~0.3 s to start)."""
BATCH = 250
"""Files per task sent to a worker process (progress moves a batch at a time)."""


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


class Changed(Exception):
    """A file's bytes no longer match the sha256 its build recorded: uploading them would
    put bytes online that the page's integrity (or a later plan's diff) does not expect.
    Carries the file, not a message: the root that names it root-relative is the parent's."""

    def __init__(self, file: LocalFile) -> None:
        super().__init__(file.key)
        self.file = file

    def __reduce__(self) -> tuple[type[Changed], tuple[LocalFile]]:
        return Changed, (self.file,)  # raised in upload worker processes too


def changed_error(root: Path, f: LocalFile) -> MfeError:
    """Name the file root-relative, the manifest it no longer matches and the fix."""
    path = _relative(root, f.path)
    manifest = _manifest_of(root, f.path)
    if manifest is None:  # the rendered page (kept under .mfe/<env>/pages/)
        return MfeError(
            f"{path}: changed since it was rendered (its sha256 is no longer {f.sha256}); "
            "nothing was published: run the command again (it renders the page anew)"
        )
    build = f"doit build:{f.app}"
    size = _size(f.path)
    if size == f.size:  # the build task's check compares sizes: it must forget
        build = f"doit forget build:{f.app} && {build}"
    what = "its bytes no longer match" if size is not None else "it is gone, yet listed in"
    return MfeError(
        f"{path}: changed since its build ({what} {manifest}); nothing "
        f"was published: run `{build}` to rebuild it, then publish again"
    )


def _manifest_of(root: Path, path: Path) -> str | None:
    """The asset-manifest of the `dist/` holding `path` (a `_ca/` copy's key is no path
    inside it), root-relative."""
    for folder in path.parents:
        if (folder / MANIFEST_NAME).is_file():
            return _relative(root, folder / MANIFEST_NAME)
        if folder == root:
            break
    return None


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def _checked(f: LocalFile, body: bytes) -> bytes:
    if hashlib.sha256(body).hexdigest() != f.sha256:
        raise Changed(f)
    return body


def put_file(s3: Any, bucket: str, f: LocalFile) -> None:
    """One file to `bucket`: a single PutObject, or multipart above MULTIPART_CHUNK with the
    part size the expected ETag was computed for (so the next plan recognises it).

    The bytes sent are hashed first: a file edited since its build raises `Changed` and is
    not sent (the metadata would vouch for bytes that are not these)."""
    with _gone_is_changed(f):
        if f.size <= MULTIPART_CHUNK:
            body = _checked(f, f.path.read_bytes())
            s3.put_object(Bucket=bucket, Key=f.key, Body=body, **extra_args(f))
            return
        if sha256_file(f.path) != f.sha256:
            raise Changed(f)  # could still change before the parts are read: the ETag differs
        from boto3.s3.transfer import S3Transfer, TransferConfig  # only here: ~40 ms to import

        config = TransferConfig(
            multipart_threshold=MULTIPART_CHUNK + 1, multipart_chunksize=MULTIPART_CHUNK
        )
        transfer = S3Transfer(s3, config)  # type: ignore[arg-type]  # boto3-stubs: botocore's Config
        transfer.upload_file(str(f.path), bucket, f.key, extra_args=extra_args(f))


@contextmanager
def _gone_is_changed(f: LocalFile) -> Iterator[None]:
    """A file removed (or replaced by a folder) since its build is `Changed` like an edited
    one: an OSError naming it read as a failed S3 request."""
    try:
        yield
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        if exc.filename is None or Path(exc.filename) != f.path:
            raise
        raise Changed(f) from None


def upload_all(
    session: Session,
    plan: Plan,
    workers: int,
    on_phase: Callable[[str, list[LocalFile]], None],
    on_bytes: Callable[[int], None],
    on_file: Callable[[LocalFile, datetime], None],
    lost: str = UNCHANGED,
) -> None:
    """Upload the plan's files phase by phase; the first failure stops before the next phase
    (and cancels the phase's files not yet started). `lost`: see `s3_errors`. `on_file` is
    told each file once it is up, with when its own upload started (no later than the
    LastModified the store gives it: `mfe.publish.refresh` dates it by that)."""
    s3 = session.s3

    def send(bucket: str, f: LocalFile) -> None:
        started = datetime.now(UTC)
        with s3_errors(session, bucket, f"uploading {f.key} (app {f.app})", lost=lost):
            put_file(s3, bucket, f)
        on_bytes(f.size)
        on_file(f, started)

    try:
        for name, items in phases(plan):
            on_phase(name, [f for _, f in items])
            if len(items) >= PROCESS_MIN_FILES and _cores() > 1:
                upload_in_processes(session, items, workers, on_bytes, on_file, lost)
                continue
            parallel(workers, [functools.partial(send, bucket, f) for bucket, f in items])
    except Changed as changed:
        raise changed_error(session.project.root, changed.file) from None


def _cores() -> int:
    return len(os.sched_getaffinity(0))


@dataclass(frozen=True)
class Failed:
    """An upload that failed in a worker process, as plain data (botocore's exceptions do
    not all survive pickling)."""

    key: str
    code: str
    status: int | None
    message: str
    lost: bool = False
    """The connection was refused or dropped (`mfe.publish.remote.is_lost`)."""

    def error(self) -> Exception:
        from botocore.exceptions import ClientError

        if self.lost:
            return ConnectionError(self.message)
        if not self.code:
            return OSError(self.message)
        answer: Any = {"Error": {"Code": self.code, "Message": self.message}}
        answer["ResponseMetadata"] = {"HTTPStatusCode": self.status}
        return ClientError(answer, "PutObject")


def upload_in_processes(
    session: Session,
    items: list[tuple[str, LocalFile]],
    workers: int,
    on_bytes: Callable[[int], None],
    on_file: Callable[[LocalFile, datetime], None],
    lost: str,
) -> None:
    """One phase over a process per core, `workers` threads each; the first failure stops
    the batches not yet started and is raised as the threads' path raises it."""
    batches = [items[i : i + BATCH] for i in range(0, len(items), BATCH)]
    spec = session.spec("s3")
    with _worker_pool(spec, workers) as pool:
        futures = {pool.submit(put_batch, batch): batch for batch in batches}
        for future in completed(futures):
            sent, failed, started = future.result()
            session.add_requests("s3", sent)
            batch = futures[future]
            if failed is not None:
                for other in futures:
                    other.cancel()
                bucket, f = next((b, f) for b, f in batch if f.key == failed.key)
                with s3_errors(session, bucket, f"uploading {f.key} (app {f.app})", lost=lost):
                    raise failed.error()
            for (_bucket, f), at in zip(batch, started, strict=True):
                on_bytes(f.size)
                on_file(f, datetime.fromtimestamp(at, UTC))


@contextmanager
def _worker_pool(spec: ClientSpec, workers: int) -> Iterator[ProcessPoolExecutor]:
    # spawn, not fork: the parent has threads (and boto3's connection pools) running.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(_cores(), context, _start_worker, (spec, workers))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_worker: dict[str, Any] = {}
"""In a worker process: its client, threads and request count."""


def _start_worker(spec: ClientSpec, workers: int) -> None:
    client = spec.make()
    sent = [0]

    def count(**_: Any) -> None:
        sent[0] += 1  # one event per request, from this process's threads: under the GIL

    client.meta.events.register("before-send", count)
    _worker.update(client=client, threads=ThreadPoolExecutor(workers), sent=sent)


def put_batch(batch: list[tuple[str, LocalFile]]) -> tuple[int, Failed | None, list[float]]:
    """In a worker process: upload a batch; (requests sent, the first failure or None, when
    each file's upload started, as a timestamp: a batch's files are reported once it is
    done, so that is the date the caller keeps). The first failure cancels the batch's
    uploads not started: each would only fail too, after its retries (an emulator gone:
    minutes for a batch)."""
    from botocore.exceptions import BotoCoreError, ClientError

    client, threads, sent = _worker["client"], _worker["threads"], _worker["sent"]
    before = sent[0]
    started = [0.0] * len(batch)

    def put(i: int, bucket: str, f: LocalFile) -> None:
        started[i] = time.time()
        put_file(client, bucket, f)

    futures = {threads.submit(put, i, bucket, f): f for i, (bucket, f) in enumerate(batch)}
    failed: Failed | None = None
    for future in as_completed(futures):
        if future.cancelled():
            continue
        error = future.exception()
        if error is None or failed is not None:
            continue
        for other in futures:
            other.cancel()
        key = futures[future].key
        if isinstance(error, ClientError):
            code = aws_error_code(error) or "Unknown"
            failed = Failed(key, code, aws_status(error), str(error))
        elif isinstance(error, BotoCoreError | OSError):
            failed = Failed(key, "", None, str(error), is_lost(error))
        else:
            raise error
    return sent[0] - before, failed, started
