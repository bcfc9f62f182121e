"""CloudFront invalidation of changed mutable paths only, within CloudFront's limits.

Limits (CloudFront developer guide, "Concurrent invalidation request maximum"): up to
3,000 individual paths and 15 wildcard paths in progress per distribution. Many paths
under one folder collapse to `/folder/*`; past the limits everything becomes `/*`.
The CallerReference is `<release id>-<distribution>`; because not every CloudFront
(moto) deduplicates it, a commit step that reuses a release id (finishing one an earlier
command left undone) checks recent invalidations first, so a re-run of a publish that
died after invalidating does not invalidate twice. A commit step right after its own
swap made the release id just now: no invalidation can carry it yet, so it checks
nothing (a team that publishes often would pay a request per recent invalidation).
"""

from __future__ import annotations

import posixpath
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

from mfe.errors import MfeError, aws_error_code

if TYPE_CHECKING:
    from mypy_boto3_cloudfront import CloudFrontClient

MAX_PATHS = 3000
MAX_WILDCARDS = 15
COLLAPSE_AT = 10
"""Paths sharing one folder from which a `/folder/*` wildcard is cheaper."""


def collapse(paths: list[str]) -> list[str]:
    """Fold many paths under one folder into `/folder/*`; stay within the limits. The
    paths are keys; what goes to CloudFront is `url_path` of each."""
    by_folder: dict[str, list[str]] = defaultdict(list)
    for path in sorted(set(paths)):
        by_folder[posixpath.dirname(path)].append(path)
    result: list[str] = []
    for folder, members in sorted(by_folder.items()):
        if folder != "/" and len(members) >= COLLAPSE_AT:
            result.append(folder.rstrip("/") + "/*")
        else:
            result.extend(members)
    wildcards = sum(p.endswith("*") for p in result)
    if wildcards > MAX_WILDCARDS or len(result) > MAX_PATHS:
        return ["/*"]
    return [url_path(path) for path in result]


def url_path(path: str) -> str:
    """`path` as browsers request it: CloudFront wants non-ASCII and RFC 1738's unsafe
    characters (space, `"#%<>?[\\]^{|}` and the backquote) percent-encoded, and nothing else
    (an encoded `/` or `*` would not match): `/café x?.txt` -> `/caf%C3%A9%20x%3F.txt`."""
    return quote(path, safe="/*!$&'()+,;=:@~")


def caller_reference(release_id: str, distribution_id: str) -> str:
    return f"{release_id}-{distribution_id}"


Lost = Callable[[BaseException], str | None]
"""`Backend.lost`: what a lost connection means for the environment (a local emulator that
no longer listens took its state with it), None when a re-run goes on from it."""


@contextmanager
def cloudfront_errors(
    cf: CloudFrontClient, env_name: str, distribution_id: str, lost: Lost | None = None
) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    from mfe.publish.remote import is_lost

    try:
        yield
    except ClientError as exc:
        code = aws_error_code(exc)
        if code == "NoSuchDistribution":
            raise MfeError(
                f"CloudFront distribution '{distribution_id}' of environment '{env_name}' does "
                f"not exist; run `doit infra env={env_name}` to recreate it"
            ) from None
        if code in ("AccessDenied", "AccessDeniedException"):
            raise MfeError(
                f"access denied invalidating distribution '{distribution_id}' (environment "
                f"'{env_name}'): the credentials need cloudfront:CreateInvalidation, "
                "GetInvalidation and ListInvalidations"
            ) from None
        if code in ("TooManyInvalidationsInProgress", "BatchTooLarge"):
            raise MfeError(
                f"CloudFront refused the invalidation of '{distribution_id}' ({code}): wait for "
                f"running invalidations to finish and run `doit publish env={env_name}` again; "
                "the files are already online and the re-run only invalidates"
            ) from None
        raise MfeError(
            f"CloudFront error {code} on distribution '{distribution_id}' "
            f"(environment '{env_name}'): {exc}"
        ) from None
    except BotoCoreError as exc:
        gone = lost(exc) if lost is not None and is_lost(exc) else None
        if gone is not None:  # as S3's requests say it (`mfe.publish.remote.connection_lost`)
            raise MfeError(
                f"lost the connection to {cf.meta.endpoint_url} while invalidating distribution "
                f"'{distribution_id}' (environment '{env_name}'): {gone}"
            ) from None
        raise MfeError(
            f"CloudFront request failed for distribution '{distribution_id}' "
            f"(environment '{env_name}'): {exc}"
        ) from None


def existing(
    cf: CloudFrontClient, distribution_id: str, reference: str, since: datetime
) -> str | None:
    """The id of an invalidation already made with `reference` (listed since `since`)."""
    listing = cf.list_invalidations(DistributionId=distribution_id, MaxItems="100")
    for item in listing.get("InvalidationList", {}).get("Items", []):
        if item["CreateTime"] < since:
            continue
        found = cf.get_invalidation(DistributionId=distribution_id, Id=item["Id"])
        if found["Invalidation"]["InvalidationBatch"]["CallerReference"] == reference:
            return str(item["Id"])
    return None


def invalidate(
    cf: CloudFrontClient,
    env_name: str,
    distribution_id: str,
    paths: list[str],
    release_id: str,
    reused_since: datetime | None,
    lost: Lost | None = None,
) -> str:
    """Create (at most once per release) the invalidation; returns its id. `reused_since`:
    the release id comes from an earlier command (created then), whose invalidation is
    looked for first; None for a release id this command just made. `lost`: the
    environment's `Backend.lost`."""
    reference = caller_reference(release_id, distribution_id)
    with cloudfront_errors(cf, env_name, distribution_id, lost):
        if reused_since is not None:
            found = existing(cf, distribution_id, reference, reused_since - timedelta(minutes=5))
            if found:
                return found
        made = cf.create_invalidation(
            DistributionId=distribution_id,
            InvalidationBatch={
                "CallerReference": reference,
                "Paths": {"Quantity": len(paths), "Items": paths},
            },
        )
    return str(made["Invalidation"]["Id"])


def wait_all(
    cf: CloudFrontClient,
    env_name: str,
    made: dict[str, str],
    on_status: Callable[[str, str], None],
    timeout: float = 1800,
    interval: float = 5,
    lost: Lost | None = None,
) -> None:
    """Poll until every invalidation is `Completed` (they usually take a minute or two)."""
    deadline = time.monotonic() + timeout
    pending = dict(made)
    while pending:
        for dist, inval_id in list(pending.items()):
            with cloudfront_errors(cf, env_name, dist, lost):
                status = cf.get_invalidation(DistributionId=dist, Id=inval_id)["Invalidation"][
                    "Status"
                ]
            on_status(dist, status)
            if status.lower() == "completed":
                del pending[dist]
        if pending:
            if time.monotonic() > deadline:
                raise MfeError(
                    f"invalidations {pending} not completed after {timeout:.0f}s; the files are "
                    "online, check the CloudFront console"
                )
            time.sleep(interval)
