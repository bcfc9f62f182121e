"""AWS settings botocore refuses, as one line naming the variable, file or profile and the
fix: a config or credentials file it cannot parse, a profile that is missing or unusable
(an assumed role whose source profile has no keys), an SSO profile with no login, retry
variables. They came as tracebacks ("infra failed unexpectedly"), some only at the first
request: botocore loads SSO and assumed-role credentials lazily.

`settings_errors` wraps where clients and credentials are made; `settings_problem` is
also asked by the task wrapper (`mfe.tasks.actions.guarded`) about anything a command
raised, so one that surfaces at a request later is told the same way.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator

from mfe.errors import ConfigError

RETRY_VARS = ("AWS_MAX_ATTEMPTS",)
"""Environment variables botocore reads when it makes a client (README: retries; the
retry mode is always `standard`)."""

_FILES = {
    "AWS_CONFIG_FILE": ("config", "~/.aws/config"),
    "AWS_SHARED_CREDENTIALS_FILE": ("credentials", "~/.aws/credentials"),
}
"""The variable naming each file botocore reads: (what it holds, its default)."""


@contextlib.contextmanager
def settings_errors() -> Iterator[None]:
    """botocore's complaints about the AWS settings as ConfigErrors naming their source."""
    try:
        yield
    except Exception as exc:
        problem = settings_problem(exc) or _retry_problem(exc)
        if problem is None:
            raise
        raise ConfigError(problem) from None


def _retry_problem(exc: Exception) -> str | None:
    """A ValueError botocore raised over a retry variable (a bad one, or not a number)."""
    from botocore.exceptions import InvalidMaxRetryAttemptsError

    if not isinstance(exc, InvalidMaxRetryAttemptsError | ValueError):
        return None
    settings = {k: os.environ[k] for k in RETRY_VARS if k in os.environ}
    if not settings:
        return None
    shown = ", ".join(f"{k}={v!r}" for k, v in settings.items())
    return (
        f"{shown} is not valid ({exc}): AWS_MAX_ATTEMPTS is a whole number of at least 1 "
        "(each AWS request is tried that many times)"
    )


def settings_problem(exc: BaseException) -> str | None:
    """One line for a botocore error about the AWS settings, None for anything else."""
    if "botocore.exceptions" not in sys.modules:  # no botocore loaded: not one of its errors
        return None
    from botocore import exceptions as bx

    profile = _profile()
    if isinstance(exc, bx.ProfileNotFound):
        return (
            f"{profile} is in neither {_file('AWS_CONFIG_FILE')} nor "
            f"{_file('AWS_SHARED_CREDENTIALS_FILE')}: create it "
            f"(`aws configure{_option()}`) or unset {_variable() or 'AWS_PROFILE'}"
        )
    if isinstance(exc, bx.ConfigParseError):
        return _parse_problem(str(exc.kwargs.get("path", "")), exc.kwargs.get("error"))
    if isinstance(exc, bx.SSOTokenLoadError | bx.UnauthorizedSSOTokenError):
        return (
            f"{profile} signs in with AWS SSO (IAM Identity Center) and has no valid login: "
            f"run `aws sso login{_option()}`, then this command again"
        )
    if isinstance(exc, bx.InvalidConfigError):
        return f"{profile} cannot be used: {exc} Fix it in {_file('AWS_CONFIG_FILE')}"
    if isinstance(exc, bx.PartialCredentialsError):
        return (
            f"AWS credentials in {exc.kwargs.get('provider')} lack {exc.kwargs.get('cred_var')}: "
            "give the key id and the secret key, or neither"
        )
    if isinstance(exc, bx.CredentialRetrievalError | bx.TokenRetrievalError):
        return f"{profile}: no AWS credentials, {exc}"
    if isinstance(exc, bx.NoCredentialsError):
        return (
            f"no AWS credentials ({profile}): set AWS_PROFILE, "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or use OIDC role assumption in CI"
        )
    if isinstance(exc, bx.InvalidRegionError):
        return (
            f"AWS region {exc.kwargs.get('region_name')!r} is no region name: "
            "give one such as 'eu-west-1' (`region` in mfe.toml)"
        )
    return None


SIGN_IN = (
    "role_arn",
    "sso_session",
    "sso_start_url",
    "credential_process",
    "web_identity_token_file",
)
"""Profile settings botocore gets credentials from instead of keys."""


def profile_without_keys() -> str | None:
    """When no credentials were found and the profile in use (AWS_PROFILE) exists: which
    file it is in and what it lacks, as a ConfigError's message; None otherwise (no profile
    named: the default chain; a missing profile is botocore's ProfileNotFound)."""
    variable = _variable()
    if variable is None:
        return None
    name = os.environ[variable]
    config, credentials = _file("AWS_CONFIG_FILE"), _file("AWS_SHARED_CREDENTIALS_FILE")
    config_section = "default" if name == "default" else f"profile {name}"
    found = [
        f"{path} [{section}]"
        for path, section in ((config, config_section), (credentials, name))
        if section in _sections(path)
    ]
    if not found:
        return None
    return (
        f"{_profile()} has no credentials: its section in {' and '.join(found)} gives no "
        f"aws_access_key_id and aws_secret_access_key, nor any of {', '.join(SIGN_IN)}; add "
        f"the keys (`aws configure{_option()}` writes them to {credentials}) or sign-in "
        "settings, or name a profile that has them"
    )


def _sections(path: str) -> dict[str, object]:
    """The sections of an AWS config or credentials file; none when it is not there."""
    from botocore.configloader import raw_config_parse
    from botocore.exceptions import ConfigNotFound

    try:
        return raw_config_parse(path, parse_subsections=False)
    except ConfigNotFound:
        return {}


def _parse_problem(path: str, error: object) -> str:
    """The file botocore could not parse, the variable that named it and where it broke."""
    variable = next(
        (v for v in _FILES if os.environ.get(v) and os.path.expanduser(os.environ[v]) == path),
        None,
    )
    named = f" ({variable})" if variable else ""
    kind = _FILES[variable][0] if variable else "config"
    where = re.search(r"line:? +(\d+)", str(error or ""))
    reason = str(error or "").splitlines()[0] if error else "unreadable"
    at = f" at line {where.group(1)}" if where else ""
    fix = f", or point {variable} at another file" if variable else ""
    return f"{path}{named} is not a valid AWS {kind} file{at} ({reason}): fix it{fix}"


def _variable() -> str | None:
    """The variable that names the profile in use (botocore reads AWS_DEFAULT_PROFILE
    first), None for the default profile."""
    return next((v for v in ("AWS_DEFAULT_PROFILE", "AWS_PROFILE") if v in os.environ), None)


def _profile() -> str:
    variable = _variable()
    if variable is None:
        return "the default AWS profile"
    return f"AWS profile '{os.environ[variable]}' ({variable})"


def _option() -> str:
    variable = _variable()
    return f" --profile {os.environ[variable]}" if variable else ""


def _file(variable: str) -> str:
    return os.environ.get(variable) or _FILES[variable][1]
