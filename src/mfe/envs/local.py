"""Make an environment ready to publish to: on `local`, provision the emulator by API.

moto's CloudFormation cannot create CloudFront distributions, so on `local` the resources
of `infra/*.yaml` are made through the equivalent API calls, with the names and parameters
of `mfe.envs.stacks` (one source), idempotently: everything is found again by name or comment.
A run where everything exists costs three requests (emulator probe, bucket list, pool).
"""

from __future__ import annotations

import json
from typing import Any

from mfe.config import Environment, Project
from mfe.envs import session as aws
from mfe.envs.emulator import ensure_emulator
from mfe.envs.outputs import AppOutputs, AuthOutputs, Outputs, read_outputs, write_outputs
from mfe.envs.stacks import (
    CACHING_OPTIMIZED,
    CORS_AND_SECURITY_HEADERS,
    GUEST_PASSWORD,
    GUEST_USER,
    Names,
    auth_parameters,
    resource_names,
)
from mfe.errors import MfeError


def ensure_ready(
    project: Project, env: Environment, counter: aws.RequestCounter | None = None
) -> Outputs:
    """The environment's outputs, provisioning the emulator first on `local`."""
    if env.kind != "local":
        return read_outputs(project, env)
    ensure_emulator(project)
    names = resource_names(project, env)
    current = _current_outputs(project, env)
    if current is not None and _still_there(env, names, current, counter):
        return current
    outputs = provision_local(project, env, names, counter)
    write_outputs(project, outputs)
    return outputs


def _current_outputs(project: Project, env: Environment) -> Outputs | None:
    """The outputs file, if it describes this config's apps on this emulator port."""
    if not project.outputs_file(env.name).exists():
        return None
    try:
        outputs = read_outputs(project, env)
    except MfeError:
        return None
    names = resource_names(project, env)
    same_apps = {a: o.bucket for a, o in outputs.apps.items()} == names.buckets
    same_port = outputs.endpoint_url == _endpoint(env) and outputs.auth is not None
    return outputs if same_apps and same_port else None


def _still_there(
    env: Environment, names: Names, outputs: Outputs, counter: aws.RequestCounter | None
) -> bool:
    """Two requests: a restarted emulator has lost both the buckets and the pool."""
    s3 = aws.client(env, "s3", counter)
    have = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    wanted = set(names.buckets.values()) | {env.cache_bucket or ""}
    if not wanted - {""} <= have:
        return False
    assert outputs.auth is not None
    idp = aws.client(env, "cognito-idp", counter)
    try:
        idp.describe_user_pool(UserPoolId=outputs.auth.user_pool_id)
    except idp.exceptions.ResourceNotFoundException:
        return False
    return True


def _endpoint(env: Environment) -> str:
    return f"http://127.0.0.1:{env.port}"


def provision_local(
    project: Project, env: Environment, names: Names, counter: aws.RequestCounter | None = None
) -> Outputs:
    """Create whatever is missing on the emulator; return the outputs document."""
    endpoint = _endpoint(env)
    s3 = aws.client(env, "s3", counter)
    have = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in names.buckets.values():
        if bucket not in have:
            s3.create_bucket(Bucket=bucket)
        _make_public_readable(s3, bucket)
    if env.cache_bucket and env.cache_bucket not in have:
        s3.create_bucket(Bucket=env.cache_bucket)
    distributions = _ensure_distributions(env, names)
    apps = {
        app: AppOutputs(
            bucket=bucket,
            base_url=f"{endpoint}/{bucket}/",
            distribution_id=distributions[app][0],
            domain=distributions[app][1],
        )
        for app, bucket in names.buckets.items()
    }
    pool_id, client_id = _ensure_auth(project, env, names)
    auth = AuthOutputs(pool_id, client_id, env.region, f"{endpoint}/")
    return Outputs(
        env=env.name,
        region=env.region,
        apps=apps,
        endpoint_url=endpoint,
        auth=auth,
        cache_bucket=env.cache_bucket,
    )


def _make_public_readable(s3: Any, bucket: str) -> None:
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
    cors = {"AllowedOrigins": ["*"], "AllowedMethods": ["GET", "HEAD"], "AllowedHeaders": ["*"]}
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [cors]})


def _ensure_distributions(env: Environment, names: Names) -> dict[str, tuple[str, str]]:
    """app -> (distribution id, domain); found again by Comment (moto's list omits it)."""
    cloudfront = aws.client(env, "cloudfront")
    found: dict[str, tuple[str, str]] = {}
    listing = cloudfront.list_distributions()["DistributionList"]
    for item in listing.get("Items", []):
        config = cloudfront.get_distribution_config(Id=item["Id"])["DistributionConfig"]
        found[config.get("Comment", "")] = (item["Id"], item["DomainName"])
    result: dict[str, tuple[str, str]] = {}
    for app, comment in names.comments.items():
        if comment not in found:
            made = cloudfront.create_distribution(
                DistributionConfig=_distribution_config(env, names.buckets[app], comment)
            )["Distribution"]
            found[comment] = (made["Id"], made["DomainName"])
        result[app] = found[comment]
    return result


def _distribution_config(env: Environment, bucket: str, comment: str) -> dict[str, Any]:
    """The API form of hosting.yaml's distribution (the emulator does not enforce OAC)."""
    origin = {
        "Id": "site",
        "DomainName": f"{bucket}.s3.{env.region}.amazonaws.com",
        "S3OriginConfig": {"OriginAccessIdentity": ""},
    }
    not_found = [
        {"ErrorCode": code, "ResponsePagePath": "/index.html", "ResponseCode": "200"}
        for code in (403, 404)
    ]
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
        "CustomErrorResponses": {"Quantity": len(not_found), "Items": not_found},
    }


def _ensure_auth(project: Project, env: Environment, names: Names) -> tuple[str, str]:
    """The user pool, its web client and the demo guest user; returns (pool id, client id)."""
    params = auth_parameters(project, env)
    idp = aws.client(env, "cognito-idp")
    pools = idp.list_user_pools(MaxResults=60)["UserPools"]
    pool_id = next((p["Id"] for p in pools if p["Name"] == names.user_pool), None)
    if pool_id is None:
        classes = params["RequireCharacterClasses"] == "true"
        policy = {
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
    clients = idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
    client_id = next((c["ClientId"] for c in clients if c["ClientName"] == names.client), None)
    if client_id is None:
        client_id = idp.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=names.client,
            GenerateSecret=False,
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
    set_password(env, pool_id, GUEST_USER, GUEST_PASSWORD)
    return pool_id, client_id


def set_password(env: Environment, pool_id: str, username: str, password: str) -> bool:
    """Create `username` unless present, then set a permanent password; True if created."""
    idp = aws.client(env, "cognito-idp")
    created = False
    try:
        idp.admin_get_user(UserPoolId=pool_id, Username=username)
    except idp.exceptions.UserNotFoundException:
        idp.admin_create_user(  # the temporary password is checked against the policy
            UserPoolId=pool_id,
            Username=username,
            TemporaryPassword=password,
            MessageAction="SUPPRESS",
        )
        created = True
    idp.admin_set_user_password(
        UserPoolId=pool_id, Username=username, Password=password, Permanent=True
    )
    return created
