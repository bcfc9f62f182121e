"""What a bucket holds, from one paginated listing, and S3 errors turned into advice."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mfe.errors import MfeError, aws_error_code, aws_status, missing_key
from mfe.publish.local import RESERVED_PREFIX as STATE

if TYPE_CHECKING:
    from mfe.envs.session import Session


@dataclass(frozen=True)
class RemoteObject:
    key: str
    etag: str
    """Without quotes; multipart ETags contain '-'."""
    size: int
    modified: datetime | None = None


RESUMES = "it goes on from what this one did"
"""Why running a command again after a lost connection is safe, in general."""
UNCHANGED = (
    "uploads are content-addressed, so it uploads only what is missing, and the served "
    "page did not change"
)
"""... while the command had not switched the page yet (its uploads)."""


def is_lost(exc: BaseException) -> bool:
    """Whether `exc` is a connection to the endpoint refused or dropped (not an answer)."""
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

    return isinstance(exc, EndpointConnectionError | ConnectionClosedError | ConnectionError)


def connection_lost(
    session: Session, bucket: str, doing: str, exc: BaseException, why: str
) -> MfeError:
    """The one message for a connection lost mid-command (an emulator stopped, a network
    drop): the endpoint, what was being done, and to run the command again, with `why`;
    unless the endpoint's state went with it (`Backend.lost`: a local emulator no longer
    listening), when a re-run goes on from nothing and the message says so instead."""
    endpoint = session.s3.meta.endpoint_url
    where = f"while {doing} in bucket '{bucket}' (environment '{session.env.name}')"
    gone = session.backend.lost(exc)
    if gone is not None:
        return MfeError(f"lost the connection to {endpoint} {where}: {gone}")
    return MfeError(
        f"lost the connection to {endpoint} {where}: {exc}; run the same command again: {why}"
    )


@contextmanager
def s3_errors(session: Session, bucket: str, doing: str, *, lost: str = RESUMES) -> Iterator[None]:
    """Turn botocore failures into one MfeError naming the bucket, env and what to do;
    `lost`: why running the command again is safe if the connection is lost here."""
    from botocore.exceptions import BotoCoreError, ClientError

    env = session.env
    try:
        yield
    except ClientError as exc:
        code = aws_error_code(exc)
        status = aws_status(exc)
        if code == "NoSuchBucket":
            raise MfeError(
                f"bucket '{bucket}' of environment '{env.name}' does not exist; {session.backend.hint()}"
            ) from None
        refused = refused_credentials(session, code)
        if refused:
            raise MfeError(
                f"{refused} ({code}) while {doing} in bucket '{bucket}' (environment '{env.name}')"
            ) from None
        if code in ("AccessDenied", "Forbidden", "403") or status == 403:
            raise MfeError(
                f"access denied while {doing} in bucket '{bucket}' (environment '{env.name}'): "
                "the credentials need s3:ListBucket, s3:GetObject, s3:PutObject and "
                "s3:DeleteObject on it"
            ) from None
        raise MfeError(
            f"S3 error {code or status} while {doing} in bucket '{bucket}' "
            f"(environment '{env.name}'): {exc}"
        ) from None
    except (BotoCoreError, OSError) as exc:
        if is_lost(exc):
            raise connection_lost(session, bucket, doing, exc, lost) from None
        raise MfeError(
            f"S3 request failed while {doing} in bucket '{bucket}' (environment '{env.name}'): {exc}"
        ) from None


def refused_credentials(session: Session, code: str) -> str:
    """What is wrong with the credentials when the store refused them, not a permission
    (those codes come with a 403 too), and what to check; '' for any other error."""
    key, source = session.access_key() or ("", "no credentials found")
    if code == "InvalidAccessKeyId":
        return (
            f"the store knows no access key id '{key}' (from {source}): check the key id "
            "there, or that it belongs to this store's account and was not deleted"
        )
    if code == "SignatureDoesNotMatch":
        return (
            f"the secret access key does not match access key id '{key}' (from {source}): "
            "check the secret key that goes with it"
        )
    if code in ("ExpiredToken", "InvalidToken", "TokenRefreshRequired"):
        return (
            f"the session token of access key id '{key}' (from {source}) has expired or is "
            "not valid: get fresh credentials (`aws sso login`, a new assume-role session)"
        )
    if code == "RequestTimeTooSkewed":
        return "this machine's clock is too far from the store's: set it right (NTP)"
    return ""


def list_bucket(session: Session, bucket: str) -> dict[str, RemoteObject]:
    """Every key in the bucket but release state (`_mfe/`): what a publish, a rollback or
    `--prune` compares files with. State grows with the history and the app versions; a
    listing that walks past it once costs one page however much there is (`_skipping`)."""
    found: dict[str, RemoteObject] = {}
    with s3_errors(session, bucket, "listing objects"):
        start = ""
        while True:
            page = session.s3.list_objects_v2(Bucket=bucket, **_skipping(start))
            items = page.get("Contents", [])
            for item in items:
                if not item["Key"].startswith(STATE):
                    found[item["Key"]] = _remote(item)
            if not page.get("IsTruncated") or not items:
                return found
            start = page.get("NextContinuationToken", "") if not _in_state(items) else STATE_END


STATE_END = STATE + "~"
"""After every key of release state (its names use letters, digits, '.', '_' and '-'), in
S3's byte order: a listing started after it skips the rest of `_mfe/`."""


def _in_state(items: list[Any]) -> bool:
    """Whether a truncated page ends inside release state: the next page starts after it."""
    return str(items[-1]["Key"]).startswith(STATE)


def _skipping(start: str) -> dict[str, Any]:
    """ListObjectsV2 arguments going on from `start`: a continuation token, or the key
    after release state (`STATE_END`)."""
    if not start:
        return {}
    return {"StartAfter": start} if start == STATE_END else {"ContinuationToken": start}


def list_prefix(session: Session, bucket: str, prefix: str) -> dict[str, RemoteObject]:
    """Every key under `prefix` (the history, the previews, an app's version records)."""
    return _listed(session, bucket, prefix, None)


def folder_of(key: str) -> str:
    """The folder a key is directly in, as a listing prefix: '' or ending in '/'."""
    return key[: key.rfind("/") + 1]


def list_folder(session: Session, bucket: str, folder: str) -> dict[str, RemoteObject]:
    """The keys directly in `folder` (see `folder_of`), not in its subfolders: a folder of a
    few fixed-URL files costs one request however many `_ca/` copies the bucket holds."""
    return _listed(session, bucket, folder, "/")


def _listed(
    session: Session, bucket: str, prefix: str, delimiter: str | None
) -> dict[str, RemoteObject]:
    """The keys under `prefix`, only those directly in it with `delimiter` '/'."""
    found: dict[str, RemoteObject] = {}
    with s3_errors(session, bucket, f"listing objects in '{prefix or '/'}'"):
        paginator = session.s3.get_paginator("list_objects_v2")
        extra: dict[str, Any] = {"Delimiter": delimiter} if delimiter else {}
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix, **extra):
            for item in page.get("Contents", []):
                found[item["Key"]] = _remote(item)
    return found


def _remote(item: Any) -> RemoteObject:
    etag = item.get("ETag", "").strip('"')
    return RemoteObject(item["Key"], etag, item["Size"], item.get("LastModified"))


def head(s3: Any, bucket: str, key: str) -> RemoteObject | None:
    """One object's ETag and size, or None when the key does not exist."""
    from botocore.exceptions import ClientError

    try:
        found = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if missing_key(exc):
            return None
        raise
    etag = str(found.get("ETag", "")).strip('"')
    return RemoteObject(key, etag, int(found.get("ContentLength", 0)), found.get("LastModified"))
