"""Which buckets are an environment's, told by the tags `infra/hosting.yaml` gives them.

An app's bucket is named `<project>-<env>-<app>` and tagged `mfe:project`, `mfe:env`,
`mfe:app` (on AWS by its stack, on an S3-compatible store by `doit infra`). The name alone
cannot tell a removed app's bucket from another environment's (`shop-prod-eu-x` starts
with `shop-prod-` too), so a destroy deletes a bucket of an app no longer in the checkout
only when its tags name this project and environment.
"""

from __future__ import annotations

from typing import Any

from mfe.errors import aws_error_code

PROJECT, ENV, APP = "mfe:project", "mfe:env", "mfe:app"


def app_tags(project: str, env: str, app: str) -> dict[str, str]:
    return {PROJECT: project, ENV: env, APP: app}


UNSUPPORTED = ("NotImplemented", "NotImplementedError")
"""What a store that keeps no bucket tags answers (R2 did)."""


def tag_bucket(s3: Any, bucket: str, tags: dict[str, str]) -> bool:
    """Tag `bucket`; False when the store keeps no bucket tags (then a destroy finds a
    removed app's bucket by nothing but its name: it leaves it)."""
    from botocore.exceptions import ClientError

    tag_set = [{"Key": key, "Value": value} for key, value in tags.items()]
    try:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set})
    except ClientError as exc:
        if aws_error_code(exc) in UNSUPPORTED:
            return False
        raise
    return True


def bucket_tags(s3: Any, bucket: str) -> dict[str, str]:
    """The bucket's tags; {} when it has none (or is gone)."""
    from botocore.exceptions import ClientError

    try:
        found = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    except ClientError as exc:
        if aws_error_code(exc) in (
            "NoSuchTagSet",
            "NoSuchTagSetError",
            "NoSuchBucket",
            *UNSUPPORTED,
        ):
            return {}
        raise
    return {tag["Key"]: tag["Value"] for tag in found}


def leftover_buckets(
    s3: Any, have: set[str], project: str, env: str, current: set[str]
) -> dict[str, str]:
    """bucket -> app of the buckets in `have` this environment made for apps no longer in
    the checkout: named with its prefix, not in `current` (today's buckets, the cache
    bucket included), and tagged with this project and environment."""
    prefix = f"{project}-{env}-"
    found: dict[str, str] = {}
    for bucket in sorted(have):
        if not bucket.startswith(prefix) or bucket in current:
            continue
        tags = bucket_tags(s3, bucket)
        if tags.get(PROJECT) == project and tags.get(ENV) == env and tags.get(APP):
            found[bucket] = tags[APP]
    return found
