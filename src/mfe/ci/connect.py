"""Opening the remote build cache for one CI job, and what its uploads wait for.

A job that publishes (`doit ci`, `doit ci publish`) needs the environment ready, which on
the emulator means provisioning every app's bucket, policy and distribution: it starts
that in the background (`start_ready`) and its uploads wait for it. A job that only reads
or fills the cache (`ci_plan`, `ci shard=K/N`) never waits for the site: its lookups need
only a reachable endpoint, and its uploads only the cache bucket (one HEAD request; when
the bucket is missing, the environment is made ready after all, which creates it on the
emulator; on AWS `doit infra` makes it, so a missing one is a warning saying so). So N
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
    # Every provisioned kind has one ([env] cache_bucket or its own); an outputs file may too.
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
    """Make the environment ready: the emulator's provisioning creates the bucket; AWS
    reads outputs only (its bucket comes from `doit infra`), so a bucket still missing
    is one warning naming what makes it."""
    from botocore.exceptions import ClientError

    from mfe.envs.stacks import resource_names

    try:
        _ = session.outputs
        session.s3.head_bucket(Bucket=bucket)
        return
    except MfeError as exc:
        cache.warn(f"the build cache bucket {bucket} does not exist and could not be made: {exc}")
        return
    except ClientError as exc:
        if aws_error_code(exc) not in _MISSING_BUCKET:
            return  # the uploads will say what is wrong
    if bucket == resource_names(session.project, session.env).cache_bucket:
        what = session.backend.hint()
    else:
        what = f"[env.{session.env.name}] cache_bucket names a bucket mfe does not make; create it"
    cache.warn(f"the build cache bucket {bucket} does not exist; {what}")
