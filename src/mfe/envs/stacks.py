"""CloudFormation: the environment's resource names and template parameters.

The names and parameters below are the single source for both the stacks (`mfe.envs.aws`)
and the local provisioning on the emulator (`mfe.envs.local`), so both make the same resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mfe.errors import MfeError
from mfe.project import SHARED_APP

if TYPE_CHECKING:  # config is imported for annotations only: it loads these names' checks
    from mfe.config import Environment, Project

CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
"""The managed CloudFront cache policy `Managed-CachingOptimized`."""
CORS_AND_SECURITY_HEADERS = "e61eb60c-9c35-4d20-a928-2b84e02af89c"
"""The managed response headers policy `Managed-CORS-and-SecurityHeadersPolicy`: the shell
loads every app's modules cross-origin (SRI needs CORS), plus HSTS and nosniff."""
GUEST_USER, GUEST_PASSWORD = "guest", "awsguest"
"""The demo user of the `local` environment (as in the original Amplify demo)."""


@dataclass(frozen=True)
class Names:
    """Every name an environment's resources get, in AWS and on the emulator alike."""

    hosting_stacks: dict[str, str]
    auth_stack: str
    buckets: dict[str, str]
    comments: dict[str, str]
    """Distribution comments: how the local provisioning finds a distribution again."""
    user_pool: str
    client: str
    spa_function: str
    """The parent distribution's SPA fallback CloudFront Function (at most 64 characters)."""
    certificate_stack: str
    """The custom domain's certificate stack (deployed in us-east-1)."""
    cache_stack: str
    """The build cache bucket's stack (`infra/cache.yaml`)."""
    cache_bucket: str
    """The environment's own build cache bucket: the default of `[env] cache_bucket`, made
    by the cache stack on AWS and by the provisioning on the emulator."""


def bucket_name(project: str, env: str, app: str) -> str:
    """An app's bucket: also how a destroy finds the bucket of an app removed since."""
    return f"{project}-{env}-{app}"


def comment_prefix(project: str, env: str) -> str:
    """What every distribution comment of the environment starts with (then the app)."""
    return f"mfe:{project}:{env}:"


def resource_names(project: Project, env: Environment) -> Names:
    apps = list(project.apps)
    return Names(
        hosting_stacks={app: f"{env.stack_prefix}-{app}-hosting" for app in apps},
        auth_stack=f"{env.stack_prefix}-auth",
        buckets={app: bucket_name(project.name, env.name, app) for app in apps},
        comments={app: comment_prefix(project.name, env.name) + app for app in apps},
        user_pool=f"{project.name}-{env.name}-users",
        client=f"{project.name}-{env.name}-web",
        spa_function=f"{project.name}-{env.name}-spa",
        certificate_stack=f"{env.stack_prefix}-certificate",
        cache_stack=f"{env.stack_prefix}-cache",
        cache_bucket=f"{project.name}-{env.name}-build-cache",
    )


def auth_parameters(
    project: Project, env: Environment, *, demo_password: bool = False
) -> dict[str, str]:
    """`infra/auth.yaml` parameters; `demo_password` admits the demo user's `awsguest`."""
    names = resource_names(project, env)
    return {
        "PoolName": names.user_pool,
        "ClientName": names.client,
        "PasswordMinLength": "8" if demo_password else "12",
        "RequireCharacterClasses": "false" if demo_password else "true",
        "AccessTokenMinutes": "60",
        "RefreshTokenDays": "30",
    }


def hosting_parameters(
    project: Project,
    env: Environment,
    app: str,
    certificate_arn: str = "",
    parent_distribution_id: str = "",
) -> dict[str, str]:
    """`infra/hosting.yaml` parameters for one app (`certificate_arn`: of the custom domain).

    The parent's distribution serves the shared modules' bucket under `/_shared/` (so the
    page loads its libraries over its own connection); that bucket's policy lets the
    parent's distribution (`parent_distribution_id`, once it exists) read it."""
    names = resource_names(project, env)
    role = project.apps[app].role
    has_shared = SHARED_APP in project.apps
    return {
        "ProjectName": project.name,
        "EnvName": env.name,
        "AppName": app,
        "BucketName": names.buckets[app],
        "Comment": names.comments[app],
        "SharedBucketName": names.buckets[SHARED_APP] if has_shared and role == "parent" else "",
        "ReaderDistributionId": parent_distribution_id if role == "shared" else "",
        **spa_parameters(project, env, app),
        **domain_parameters(project, env, app, certificate_arn),
    }


def domain_parameters(
    project: Project, env: Environment, app: str, certificate_arn: str
) -> dict[str, str]:
    """The app's custom host, its certificate and zone; empty values without a domain."""
    domain = env.domain
    if domain is None:
        return {"DomainName": "", "CertificateArn": "", "HostedZoneId": ""}
    return {
        "DomainName": domain.host(app, project.parent.name),
        "CertificateArn": domain.certificate_arn or certificate_arn,
        "HostedZoneId": domain.hosted_zone_id or "",
    }


def cache_parameters(project: Project, env: Environment) -> dict[str, str] | None:
    """`infra/cache.yaml` parameters; None when `[env] cache_bucket` names another bucket
    than the environment's own (one made elsewhere, e.g. shared by two environments)."""
    bucket = resource_names(project, env).cache_bucket
    if env.cache_bucket != bucket:
        return None
    prefix = env.cache_prefix.strip("/")
    return {
        "ProjectName": project.name,
        "EnvName": env.name,
        "BucketName": bucket,
        "KeyPrefix": f"{prefix}/" if prefix else "",
    }


def certificate_parameters(env: Environment) -> dict[str, str]:
    """`infra/certificate.yaml` parameters (only when the domain's certificate is ours to make)."""
    assert env.domain is not None and env.domain.hosted_zone_id is not None
    return {"DomainName": env.domain.name, "HostedZoneId": env.domain.hosted_zone_id}


SPA_FUNCTION = "spa-fallback.js"
"""infra/spa-fallback.js: the one source of the SPA fallback function's code."""


def spa_parameters(project: Project, env: Environment, app: str) -> dict[str, str]:
    """The parent gets the SPA fallback function (code read from infra/); fragments none
    (the template still needs both values; they are unused there)."""
    path = project.root / "infra" / SPA_FUNCTION
    try:
        code = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MfeError(f"{path}: missing (the parent's SPA fallback function)") from None
    if len(code.encode()) > 4096:  # CloudFormation's limit on a parameter value
        raise MfeError(f"{path}: {len(code.encode())} bytes; a stack parameter holds 4096")
    return {
        "SpaFallback": "true" if project.apps[app].role == "parent" else "false",
        "SpaFunctionName": resource_names(project, env).spa_function,
        "SpaFunctionCode": code,
    }
