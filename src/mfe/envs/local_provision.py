"""Provisioning on the local emulator: the API equivalents of `infra/*.yaml`.

moto's CloudFormation cannot create CloudFront distributions, so `mfe.envs.local` makes
the resources through these calls, with the names and parameters of `mfe.envs.stacks`
(one source), idempotently: what exists is found again (`mfe.envs.local_lookup`) and
only what is missing is made.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from mfe.config import Environment
from mfe.envs.local_lookup import (
    PARALLEL,
    bucket_names,
    distributions_by_comment,
    local_outputs,
    user_pool_id,
)
from mfe.envs.local_lookup import client_id as find_client_id
from mfe.envs.outputs import Outputs
from mfe.envs.stacks import (
    CACHING_OPTIMIZED,
    CORS_AND_SECURITY_HEADERS,
    GUEST_PASSWORD,
    GUEST_USER,
    Names,
    auth_parameters,
)
from mfe.envs.users import set_password
from mfe.threads import pool as threads
from mfe.threads import result_of

if TYPE_CHECKING:
    from mypy_boto3_cloudfront.type_defs import (
        DistributionConfigTypeDef,
        OriginTypeDef,
    )
    from mypy_boto3_cognito_idp.type_defs import PasswordPolicyTypeTypeDef
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CORSRuleTypeDef

    from mfe.envs.session import Session


def provision(session: Session, names: Names) -> Outputs:
    """Create whatever is missing on the emulator; return the outputs document.

    The requests go out `PARALLEL` at a time: a fresh checkout has no outputs file, so it
    re-applies every bucket's policy and CORS and reads every distribution's config
    (three requests per app), which one by one kept a 40-app CI job waiting ~1 s.
    """
    env, s3 = session.env, session.s3
    have = bucket_names(s3)
    with threads(PARALLEL) as pool:
        buckets = [
            pool.submit(_ensure_bucket, s3, bucket, env.region, bucket in have)
            for bucket in names.buckets.values()
        ]
        user_pool = pool.submit(_ensure_auth, session, names)
        if env.cache_bucket and env.cache_bucket not in have:
            create_bucket(s3, env.cache_bucket, env.region)
        distributions = _ensure_distributions(session, names, pool)
        for made in buckets:
            result_of(made)
        auth = result_of(user_pool)
    return local_outputs(session, names.buckets, distributions, auth)


def _ensure_bucket(s3: S3Client, bucket: str, region: str, exists: bool) -> None:
    if not exists:
        create_bucket(s3, bucket, region)
    _make_public_readable(s3, bucket)


def create_bucket(s3: S3Client, bucket: str, region: str) -> None:
    """A bucket in the environment's region: outside us-east-1, S3 (and the emulator)
    refuse a CreateBucket that does not name it (IllegalLocationConstraintException)."""
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
        return
    location: Any = {"LocationConstraint": region}  # the stubs list only some regions
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration=location)


def _make_public_readable(s3: S3Client, bucket: str) -> None:
    """Local only: the browser loads the site anonymously from the emulator's S3."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "LocalPublicRead",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    cors: CORSRuleTypeDef = {
        "AllowedOrigins": ["*"],
        "AllowedMethods": ["GET", "HEAD"],
        "AllowedHeaders": ["*"],
    }
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [cors]})


def _ensure_distributions(
    session: Session, names: Names, pool: ThreadPoolExecutor
) -> dict[str, tuple[str, str]]:
    """app -> (distribution id, domain), found again by Comment, made when missing."""
    found = distributions_by_comment(session, pool)
    result: dict[str, tuple[str, str]] = {}
    for app, comment in names.comments.items():
        if comment not in found:
            made = session.cloudfront.create_distribution(
                DistributionConfig=_distribution_config(session.env, names.buckets[app], comment)
            )["Distribution"]
            found[comment] = (made["Id"], made["DomainName"])
        result[app] = found[comment]
    return result


def _distribution_config(env: Environment, bucket: str, comment: str) -> DistributionConfigTypeDef:
    """The API form of hosting.yaml's distribution (the emulator does not enforce OAC).

    Without the SPA fallback function and the parent's `/_shared/*` behavior: moto runs no
    CloudFront Functions, and the local site is served from the emulator's S3 URLs (one
    origin for every app already), not through this distribution.
    """
    origin: OriginTypeDef = {
        "Id": "site",
        "DomainName": f"{bucket}.s3.{env.region}.amazonaws.com",
        "S3OriginConfig": {"OriginAccessIdentity": ""},
    }
    return {
        "CallerReference": comment,
        "Comment": comment,
        "Enabled": True,
        "DefaultRootObject": "index.html",
        "Origins": {"Quantity": 1, "Items": [origin]},
        "DefaultCacheBehavior": {
            "TargetOriginId": "site",
            "ViewerProtocolPolicy": "redirect-to-https",
            "CachePolicyId": CACHING_OPTIMIZED,
            "ResponseHeadersPolicyId": CORS_AND_SECURITY_HEADERS,
            "Compress": True,
        },
    }


def _ensure_auth(session: Session, names: Names) -> tuple[str, str]:
    """The user pool, its web client and the demo guest user; returns (pool id, client id)."""
    params = auth_parameters(session.project, session.env, demo_password=True)
    idp = session.cognito
    pool_id = user_pool_id(session, names.user_pool)
    if pool_id is None:
        classes = params["RequireCharacterClasses"] == "true"
        policy: PasswordPolicyTypeTypeDef = {
            "MinimumLength": int(params["PasswordMinLength"]),
            "RequireUppercase": classes,
            "RequireLowercase": classes,
            "RequireNumbers": classes,
            "RequireSymbols": classes,
        }
        pool_id = idp.create_user_pool(
            PoolName=names.user_pool,
            Policies={"PasswordPolicy": policy},
            AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
        )["UserPool"]["Id"]
    client_id = find_client_id(session, pool_id, names.client)
    if client_id is None:
        client_id = idp.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=names.client,
            GenerateSecret=False,
            EnableTokenRevocation=True,  # the shell's sign-out is a RevokeToken
            ExplicitAuthFlows=[
                "ALLOW_USER_PASSWORD_AUTH",
                "ALLOW_USER_SRP_AUTH",
                "ALLOW_REFRESH_TOKEN_AUTH",
            ],
            AccessTokenValidity=int(params["AccessTokenMinutes"]),
            IdTokenValidity=int(params["AccessTokenMinutes"]),
            RefreshTokenValidity=int(params["RefreshTokenDays"]),
            TokenValidityUnits={
                "AccessToken": "minutes",
                "IdToken": "minutes",
                "RefreshToken": "days",
            },
        )["UserPoolClient"]["ClientId"]
    set_password(idp, pool_id, GUEST_USER, GUEST_PASSWORD)
    return pool_id, client_id
