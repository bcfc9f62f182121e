"""`doit infra`: the environment's CloudFormation stacks, deployed through change sets.

The names and parameters below are the single source for both the stacks (AWS) and the
local provisioning on the emulator (`mfe.provision`), so both produce the same resources.
"""

from __future__ import annotations

from dataclasses import dataclass

from mfe.config import Environment, Project

CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
"""The managed CloudFront cache policy `Managed-CachingOptimized`."""
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


def resource_names(project: Project, env: Environment) -> Names:
    apps = list(project.apps)
    return Names(
        hosting_stacks={app: f"{env.stack_prefix}-{app}-hosting" for app in apps},
        auth_stack=f"{env.stack_prefix}-auth",
        buckets={app: f"{project.name}-{env.name}-{app}" for app in apps},
        comments={app: f"mfe:{project.name}:{env.name}:{app}" for app in apps},
        user_pool=f"{project.name}-{env.name}-users",
        client=f"{project.name}-{env.name}-web",
    )


def auth_parameters(project: Project, env: Environment) -> dict[str, str]:
    """`infra/auth.yaml` parameters. `local` admits the demo password `awsguest`."""
    names = resource_names(project, env)
    local = env.kind == "local"
    return {
        "PoolName": names.user_pool,
        "ClientName": names.client,
        "PasswordMinLength": "8" if local else "12",
        "RequireCharacterClasses": "false" if local else "true",
        "AccessTokenMinutes": "60",
        "RefreshTokenDays": "30",
    }


def hosting_parameters(project: Project, env: Environment, app: str) -> dict[str, str]:
    """`infra/hosting.yaml` parameters for one app."""
    names = resource_names(project, env)
    return {
        "ProjectName": project.name,
        "EnvName": env.name,
        "AppName": app,
        "BucketName": names.buckets[app],
        "Comment": names.comments[app],
    }
