"""What AWS accepts as bucket and stack names, checked when `mfe.toml` loads.

`[project] name`, environment and app names end up in every resource name
(`mfe.envs.stacks.resource_names`); a name S3 or CloudFormation refuses would otherwise
surface as a botocore traceback halfway through provisioning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mfe.errors import ConfigError, shown
from mfe.project import SHARED_APP

if TYPE_CHECKING:  # config calls these checks while it loads
    from mfe.config import Environment, Project

SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
"""Project, environment and app names: what infra/hosting.yaml's parameters allow and
what keeps the names built from them valid S3 bucket names."""
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
STACK = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
_BUCKET_RESERVED = (
    ("xn--", "sthree-", "amzn-s3-demo-"),
    ("-s3alias", "--ol-s3", ".mrap", "--x-s3"),
)


def bucket_problem(name: str) -> str | None:
    """Why S3 would refuse `name` as a bucket name, or None."""
    if not 3 <= len(name) <= 63:
        return f"is {len(name)} characters long; S3 allows 3 to 63"
    if not BUCKET.fullmatch(name) or ".." in name:
        return (
            "may hold only lowercase letters, digits, '-' and '.', starting and ending alphanumeric"
        )
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name):
        return "looks like an IP address"
    prefixes, suffixes = _BUCKET_RESERVED
    if name.startswith(prefixes) or name.endswith(suffixes):
        return "uses a prefix or suffix S3 reserves"
    return None


def stack_problem(name: str) -> str | None:
    if not STACK.fullmatch(name):
        return (
            "must start with a letter and hold only letters, digits and '-', "
            "at most 128 characters (CloudFormation stack names)"
        )
    return None


def check_names(project: Project, file: Path, provisioned: Iterable[Environment]) -> None:
    """Raise ConfigError naming `file` (`mfe.toml`) and the key whose value makes a name of
    a `provisioned` environment (one with AWS or emulator resources) invalid."""
    from mfe.envs.stacks import resource_names

    what = "lowercase letters, digits and '-', starting and ending with a letter or digit"
    provisioned = list(provisioned)
    if not SLUG.fullmatch(project.name):
        raise ConfigError(
            f"{file}: key 'project.name' is {shown(project.name)}; it names S3 buckets and "
            f"CloudFormation stacks, so use {what} (e.g. 'shop')"
        )
    for app in project.apps:
        if not SLUG.fullmatch(app):
            raise ConfigError(
                f"{file}: key 'apps.{app}': the app folder name {shown(app)} names S3 buckets; "
                f"rename apps/{app} using {what}"
            )
    for env in provisioned:
        if not SLUG.fullmatch(env.name):
            raise ConfigError(
                f"{file}: key 'env.{env.name}': the environment name names S3 buckets; use {what}"
            )
        names = resource_names(project, env)
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", names.spa_function):
            raise ConfigError(
                f"{file}: key 'project.name' ({shown(project.name)}) makes the CloudFront Function "
                f"name {shown(names.spa_function)} of environment '{env.name}', longer than the "
                "64 characters CloudFront allows; choose a shorter project name"
            )
        # Buckets before stacks: an app name too long for a stack is too long for S3 first.
        for app, bucket in names.buckets.items():
            problem = bucket_problem(bucket)
            if problem:
                raise ConfigError(_bucket_error(file, project, provisioned, env, app, problem))
        stacks = [*names.hosting_stacks.values(), names.auth_stack, names.cache_stack]
        _check_stacks(file, project, env, stacks)
        if env.cache_bucket:
            problem = bucket_problem(env.cache_bucket)
            if problem:
                key = "cache_bucket" if _explicit_cache_bucket(project, env) else None
                raise ConfigError(
                    f"{file}: key '{f'env.{env.name}.{key}' if key else 'project.name'}' gives "
                    f"the build cache bucket {shown(env.cache_bucket)}, which {problem}"
                )
    _check_collisions(file, project, provisioned)


def _bucket_error(
    file: Path,
    project: Project,
    provisioned: list[Environment],
    env: Environment,
    app: str,
    problem: str,
) -> str:
    """Blame the app's name when it alone makes an invalid bucket name (every other app's
    is valid, as a one-letter app's would be: `doit new_app` with a long name), the
    project's name otherwise."""
    from mfe.envs.stacks import resource_names

    buckets = resource_names(project, env).buckets
    prefix = f"{project.name}-{env.name}-"
    alone = all(bucket_problem(b) is None for a, b in buckets.items() if a != app)
    if alone and app != SHARED_APP and bucket_problem(prefix + "a") is None:
        longest = max(len(f"{project.name}-{e.name}-") for e in provisioned)
        return (
            f"{file}: key 'apps.{app}': the app name {shown(app)} makes the bucket name "
            f"{shown(buckets[app])} of environment '{env.name}', which {problem}; use an app name "
            f"of at most {63 - longest} characters (or a shorter project name)"
        )
    return (
        f"{file}: key 'project.name' ({shown(project.name)}) makes the bucket name {shown(buckets[app])} "
        f"of environment '{env.name}', which {problem}; choose a shorter project name"
    )


@dataclass(frozen=True)
class _Use:
    """What an environment uses one bucket for, and the mfe.toml key that names it."""

    key: str
    """`apps.NAME`, an explicit `env.NAME.cache_bucket`, or "" for the default cache bucket."""
    what: str

    @property
    def app(self) -> bool:
        return self.key.startswith("apps.")


def _check_collisions(file: Path, project: Project, provisioned: list[Environment]) -> None:
    """One bucket for two uses would mix their files: an app called `build-cache` would
    host its site in the environment's build cache bucket (and `--prune` would delete cache
    entries); environments and apps whose names overlap (`prod` with app `eu-x`, `prod-eu`
    with app `x`) would publish into one bucket. Bucket names are global on AWS and per
    emulator locally, so every environment counts. Only a cache bucket may be shared."""
    seen: dict[str, _Use] = {}
    for env in provisioned:
        for bucket, use in _claims(project, env):
            first = seen.setdefault(bucket, use)
            if first is not use and (first.app or use.app):
                raise _collision(file, bucket, first, use)


def _claims(project: Project, env: Environment) -> list[tuple[str, _Use]]:
    """Every bucket `env` uses, with what for."""
    from mfe.envs.stacks import resource_names

    claims = []
    for app, bucket in resource_names(project, env).buckets.items():
        what = f"the hosting bucket of app '{app}' in environment '{env.name}'"
        claims.append((bucket, _Use(f"apps.{app}", what)))
    if env.cache_bucket:
        key = f"env.{env.name}.cache_bucket" if _explicit_cache_bucket(project, env) else ""
        what = f"the build cache bucket of environment '{env.name}'"
        claims.append((env.cache_bucket, _Use(key, what)))
    return claims


class NameClash(ConfigError):
    """Two uses of one bucket name; `app` is the app whose name is blamed (None: a cache
    bucket), `reason` what would clash (`doit new_app` says it without "rename the app")."""

    def __init__(self, message: str, app: str | None, reason: str) -> None:
        super().__init__(message)
        self.app, self.reason = app, reason


def _collision(file: Path, bucket: str, first: _Use, second: _Use) -> NameClash:
    """Blame an explicit `cache_bucket`, else the longer app name: it is the one that adds
    what makes the other name (`build-cache`, another environment's suffix)."""
    blamed = max((first, second), key=lambda use: (bool(use.key) and not use.app, len(use.key)))
    other = first if blamed is second else second
    app = blamed.key.removeprefix("apps.") if blamed.app else None
    if app:
        todo = f"rename the app (its folder apps/{app} and any [apps.{app}] table)"
    else:
        todo = "choose another cache bucket name"
    reason = (
        f"the bucket name {shown(bucket)} would be {blamed.what} and also {other.what}, which "
        "would mix their files"
    )
    return NameClash(f"{file}: key '{blamed.key}': {reason}; {todo}", app, reason)


def _explicit_cache_bucket(project: Project, env: Environment) -> bool:
    from mfe.envs.stacks import resource_names

    return env.cache_bucket != resource_names(project, env).cache_bucket


def _check_stacks(file: object, project: Project, env: Environment, stacks: list[str]) -> None:
    explicit = env.stack_prefix != f"{project.name}-{env.name}"
    key = f"env.{env.name}.stack_prefix" if explicit else "project.name"
    for stack in stacks:
        problem = stack_problem(stack)
        if problem:
            raise ConfigError(
                f"{file}: key '{key}' ({shown(env.stack_prefix)}) makes the stack name {shown(stack)} "
                f"of environment '{env.name}', which {problem}"
            )
