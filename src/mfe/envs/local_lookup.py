"""What this project has on the local emulator, found without creating anything.

Provisioning (`mfe.envs.local`) looks its resources up here before it makes what is
missing. A command that only reads what is published (`doit releases`), or takes part of
it back (`rollback`, `preview_rm`), uses `find_provisioned` alone: it must not make again
what `doit destroy` removed. Everything is found by the names and distribution comments
provisioning gives (`mfe.envs.stacks.resource_names`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from mfe.envs.outputs import AppOutputs, AuthOutputs, Outputs
from mfe.envs.stacks import Names
from mfe.threads import pool as threads
from mfe.threads import result_of

if TYPE_CHECKING:
    from mfe.envs.session import Session

PARALLEL = 8
"""Requests in flight at once (the emulator serves several at a time)."""


def bucket_names(s3: Any) -> set[str]:
    """The names of the emulator's buckets (one request: it does not page them)."""
    return {b["Name"] for b in s3.list_buckets().get("Buckets", [])}


def missing(session: Session, names: Names, outputs: Outputs) -> list[str]:
    """What `outputs` name that the emulator lacks (a restart loses it all; a resource
    deleted by hand, one): three requests, the buckets, the app client (which names its
    pool: one request for both) and the distributions' ids."""
    have = bucket_names(session.s3)
    wanted = [
        *names.buckets.values(),
        *([session.env.cache_bucket] if session.env.cache_bucket else []),
    ]
    gone = [f"bucket {bucket}" for bucket in wanted if bucket not in have]
    assert outputs.auth is not None
    gone += _missing_auth(session, outputs.auth.user_pool_id, outputs.auth.client_id)
    ids = {app: out.distribution_id for app, out in outputs.apps.items() if out.distribution_id}
    listed = distribution_ids(session) if ids else set()
    gone += [f"distribution {dist} of {app}" for app, dist in ids.items() if dist not in listed]
    return gone


def _missing_auth(session: Session, pool_id: str, client_id: str) -> list[str]:
    """The user pool or its app client, if the emulator lacks it (a second request only
    then, to say which)."""
    idp = session.cognito
    try:
        idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)
        return []
    except idp.exceptions.ResourceNotFoundException:
        pass
    try:
        idp.describe_user_pool(UserPoolId=pool_id)
    except idp.exceptions.ResourceNotFoundException:
        return [f"user pool {pool_id}"]
    return [f"app client {client_id}"]


def distribution_ids(session: Session) -> set[str]:
    """The ids of every distribution on the emulator (one request per 100)."""
    pages = session.cloudfront.get_paginator("list_distributions").paginate()
    return {item["Id"] for page in pages for item in page["DistributionList"].get("Items", [])}


def find_provisioned(
    session: Session, names: Names, have: set[str] | None = None
) -> Outputs | None:
    """The outputs of what provisioning made, as found; None without the parent app's
    bucket, which holds the live pointer and the history: then nothing is published.
    `have`: the bucket names, if the caller listed them already."""
    have = bucket_names(session.s3) if have is None else have
    if names.buckets[session.project.parent.name] not in have:
        return None
    pool_id = user_pool_id(session, names.user_pool)
    client = client_id(session, pool_id, names.client) if pool_id else None
    with threads(PARALLEL) as pool:
        found = distributions_by_comment(session, pool)
    distributions = {
        app: found[comment] for app, comment in names.comments.items() if comment in found
    }
    buckets = {app: bucket for app, bucket in names.buckets.items() if bucket in have}
    auth = (pool_id, client) if pool_id and client else None
    return local_outputs(session, buckets, distributions, auth)


def local_outputs(
    session: Session,
    buckets: dict[str, str],
    distributions: dict[str, tuple[str, str]],
    auth: tuple[str, str] | None,
) -> Outputs:
    """The outputs document of the emulator's resources: app -> bucket, app -> (distribution
    id, domain), (pool id, client id)."""
    env = session.env
    assert env.endpoint_url, "config gives a local environment its endpoint"
    endpoint = env.endpoint_url
    apps = {
        app: AppOutputs(
            bucket=bucket,
            base_url=f"{endpoint}/{bucket}/",
            distribution_id=distributions[app][0] if app in distributions else None,
            domain=distributions[app][1] if app in distributions else None,
        )
        for app, bucket in buckets.items()
    }
    return Outputs(
        env=env.name,
        region=env.region,
        apps=apps,
        endpoint_url=endpoint,
        auth=AuthOutputs(auth[0], auth[1], env.region, f"{endpoint}/") if auth else None,
        cache_bucket=env.cache_bucket,
    )


def distributions_by_comment(
    session: Session, pool: ThreadPoolExecutor
) -> dict[str, tuple[str, str]]:
    """comment -> (distribution id, domain) of every distribution on the emulator (moto's
    list omits the comment, so each one's config is read, in `pool`). Every page: the
    emulator may hold other projects' distributions too."""
    cloudfront = session.cloudfront
    pages = cloudfront.get_paginator("list_distributions").paginate()
    items = [item for page in pages for item in page["DistributionList"].get("Items", [])]
    reads = [pool.submit(cloudfront.get_distribution_config, Id=item["Id"]) for item in items]
    return {
        result_of(read)["DistributionConfig"].get("Comment", ""): (item["Id"], item["DomainName"])
        for item, read in zip(items, reads, strict=True)
    }


def user_pool_id(session: Session, name: str) -> str | None:
    """The pool named `name`, looked for on every page (60 pools each): others' pools on a
    shared emulator would otherwise hide it, and a second one would be made."""
    pages = session.cognito.get_paginator("list_user_pools").paginate(
        PaginationConfig={"PageSize": 60}
    )
    return next((p["Id"] for page in pages for p in page["UserPools"] if p["Name"] == name), None)


def client_id(session: Session, pool_id: str, name: str) -> str | None:
    """The pool's client named `name`, looked for on every page (60 clients each): a pool
    with more clients (added by hand, or by other tools) would otherwise hide it, and a
    second one would be made."""
    pages = session.cognito.get_paginator("list_user_pool_clients").paginate(
        UserPoolId=pool_id, PaginationConfig={"PageSize": 60}
    )
    clients = (c for page in pages for c in page["UserPoolClients"])
    return next((c["ClientId"] for c in clients if c["ClientName"] == name), None)
