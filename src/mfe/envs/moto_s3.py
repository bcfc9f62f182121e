"""Where the emulator's S3 answers a browser or a link checker otherwise than AWS.

- HEAD on a public object: moto checks an anonymous request's object action against the
  bucket policy by the HTTP method's name, `s3:HeadObject` for a HEAD. S3 has no such
  permission: HeadObject is allowed by `s3:GetObject`. So the local site's public-read
  policy (`s3:GetObject` to `*`) let a browser GET every file while `curl -I` and link
  checkers got 403 on the same URL (`head_follows_get_object`).
"""

from __future__ import annotations

from typing import Any

HEAD_ACTION = "s3:HeadObject"
"""The action moto derives from a HEAD on an object (`s3:` + the method + `Object`)."""


def head_follows_get_object() -> None:
    """Evaluate a bucket policy for an object HEAD as for `s3:GetObject`, as S3 does: the
    same statements allow (or deny) both."""
    from moto.s3.models import FakeBucket

    get_permission = FakeBucket.get_permission

    def permission(self: Any, action: str, resource: str) -> Any:
        return get_permission(self, "s3:GetObject" if action == HEAD_ACTION else action, resource)

    FakeBucket.get_permission = permission  # type: ignore[method-assign]
