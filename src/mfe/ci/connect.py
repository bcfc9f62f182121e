"""Opening the remote build cache for one CI job, and what its uploads wait for.

A job that publishes (`doit ci`, `doit ci publish`) needs the environment ready, which on
the emulator means provisioning every app's bucket, policy and distribution: it starts
that in the background (`start_ready`) and its uploads wait for it. A job that only reads
or fills the cache (`ci_plan`, `ci shard=K/N`) never waits for the site: its lookups need
only a reachable endpoint, and its uploads only the cache bucket (one HEAD request; when
the bucket is missing, the environment is made ready after all, which creates it). So N
shard jobs do not provision the site N times.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal

from mfe.ci import cache, trust
from mfe.envs.outputs import Outputs
from mfe.envs.session import Session
from mfe.errors import MfeError, aws_error_code

CacheMode = Literal["on", "off", "force"]
_MISSING_BUCKET = ("NoSuchBucket", "404", "NotFound")


def start_ready(session: Session, pool: ThreadPoolExecutor) -> Future[Outputs]:
    """Check the environment can be talked to, then make it ready in `pool`."""
    session.backend.check(session)
    session.backend.start()
    return pool.submit(lambda: session.outputs)


def open_cache(
    session: Session,
    mode: CacheMode,
    ready: Callable[[], Outputs] | None = None,
    who: trust.Trust | None = None,
) -> tuple[cache.RemoteCache | None, trust.Trust]:
    """The remote cache this run may use, or None (with one warning saying why).

    `ready` (from `start_ready`) blocks until the environment is ready to publish to; a
    job that does not publish passes none and its uploads wait only for the cache bucket.
    `who`: the run's trust, if the caller resolved it already.
    """
    env = session.env
    if ready is None:
        session.backend.check(session)
        session.backend.start()
    # Without [env] cache_bucket, the bucket is an output of the environment's stacks.
    bucket = env.cache_bucket or (ready() if ready else session.outputs).cache_bucket
    who = who or trust.resolve(session.project)
    if mode == "off":
        return None, who
    if not bucket:
        cache.warn(f"no cache_bucket for environment '{env.name}': building without a cache")
        return None, who
    if who.secret is None:
        cache.warn(
            "MFE_CACHE_KEY is not set: the build cache is off for this run (nothing is read, "
            "nothing is written); set the secret to share verified builds"
        )
        return None, who
    print(f"ci: build cache: {who.why}", flush=True)
    remote = cache.RemoteCache(
        session.s3,
        bucket,
        env.cache_prefix,
        who.secret,
        who.write_scope,
        who.read_scopes,
        ready or bucket_ready(session, bucket),
    )
    return remote, who


def bucket_ready(session: Session, bucket: str) -> Callable[[], None]:
    """Blocks the first caller until `bucket` exists (one HEAD request; a missing bucket
    makes the environment ready, which on the emulator creates it); later calls return at
    once. Never raises: an upload that still fails warns and carries on, as uploads do."""
    lock = threading.Lock()
    checked = False

    def wait() -> None:
        nonlocal checked
        from botocore.exceptions import BotoCoreError, ClientError

        with lock:
            if checked:
                return
            checked = True
            try:
                session.s3.head_bucket(Bucket=bucket)
            except ClientError as exc:
                if aws_error_code(exc) in _MISSING_BUCKET:
                    _provision(session, bucket)
            except BotoCoreError:
                pass

    return wait


def _provision(session: Session, bucket: str) -> None:
    try:
        _ = session.outputs  # the emulator provisions the environment, bucket included
    except MfeError as exc:
        cache.warn(f"the build cache bucket {bucket} is missing and could not be made ({exc})")
