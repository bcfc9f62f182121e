"""`doit user_add username=NAME`: add a user to the environment's Cognito pool.

The password comes from `MFE_USER_PASSWORD` or an interactive prompt, never from the
command line, so it does not end up in shell history or CI logs.
"""

from __future__ import annotations

import getpass
import os
import sys

from mfe.config import Environment, Project
from mfe.errors import MfeError

PASSWORD_VARIABLE = "MFE_USER_PASSWORD"


def read_password(username: str) -> str:
    """From the environment variable, else a no-echo prompt on a terminal."""
    password = os.environ.get(PASSWORD_VARIABLE)
    if password:
        return password
    if not sys.stdin.isatty():
        raise MfeError(
            f"no password for user {username!r}: set {PASSWORD_VARIABLE} "
            "(or run `doit user_add` on a terminal to be prompted)"
        )
    first = getpass.getpass(f"Password for {username}: ")
    if first != getpass.getpass("Repeat it: "):
        raise MfeError(f"the two passwords for {username!r} differ; run the task again")
    return first


def add_user(project: Project, env: Environment, username: str) -> str:
    """Create (or reset the password of) `username` in the pool; return a one-line summary."""
    if not username:
        raise MfeError("which user? run `doit user_add username=NAME`")
    from mfe.envs import session as aws
    from mfe.envs.local import ensure_ready, set_password

    aws.require_credentials(env)
    outputs = ensure_ready(project, env)
    if outputs.auth is None:
        raise MfeError(
            f"environment '{env.name}' has no user pool in its outputs; "
            f"run `doit infra env={env.name}` first"
        )
    from botocore.exceptions import ClientError

    password = read_password(username)
    try:
        created = set_password(env, outputs.auth.user_pool_id, username, password)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "InvalidPasswordException":
            raise
        raise MfeError(
            f"the pool of environment '{env.name}' refused the password for {username!r}: "
            f"{exc.response['Error']['Message']}"
        ) from None
    verb = "added" if created else "updated the password of"
    return f"{verb} user {username!r} in pool {outputs.auth.user_pool_id} ({env.name})"
