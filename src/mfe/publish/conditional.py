"""Conditional writes and deletes of one object (S3's `If-Match: <etag>` and `If-None-Match:
*`): the live pointer's compare-and-swap (`pointer.swap`) and a preview's record and page
(`preview.write_page`, `preview_rm`) are all written through these."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mfe.errors import aws_error_code, aws_status


class Conflict(Exception):
    """Someone else changed the pointer since we read it (HTTP 412)."""


def put_if(
    s3: Any, bucket: str, key: str, body: bytes, etag: str | None, *, conditional: bool = True,
    **headers: str,
) -> str:  # fmt: skip
    """PUT `body` at `key` only if the object is still the one read (`etag`; None: not
    there), else `Conflict`; unconditionally when `conditional` is False (a store without
    conditional writes, `[publish] locking = "none"`). Returns the new ETag."""
    condition: dict[str, str] = {}
    if conditional:
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
    with _conflicts(etag):
        answer = s3.put_object(Bucket=bucket, Key=key, Body=body, **headers, **condition)
    return str(answer["ETag"])


def delete_if(
    s3: Any, bucket: str, key: str, etag: str | None, *, conditional: bool = True
) -> None:
    """DELETE `key` only if it is still the object read (`etag`), else `Conflict` (S3's
    conditional delete; `etag` None or not `conditional`: unconditionally)."""
    condition = {"IfMatch": etag} if conditional and etag else {}
    with _conflicts(etag):
        s3.delete_object(Bucket=bucket, Key=key, **condition)


@contextmanager
def _conflicts(etag: str | None) -> Iterator[None]:
    """A refused condition as `Conflict`: 412, or the 409 S3 answers to concurrent
    conditional writes, or a 404 to If-Match on a key deleted meanwhile."""
    from botocore.exceptions import ClientError

    try:
        yield
    except ClientError as exc:
        code, status = aws_error_code(exc), aws_status(exc)
        if status in (409, 412) or code in ("PreconditionFailed", "ConditionalRequestConflict"):
            raise Conflict(code or str(status)) from None
        if status == 404 and etag:  # If-Match on a key deleted meanwhile
            raise Conflict("NoSuchKey") from None
        raise
