"""`doit user_add username=NAME`: add a user to the environment's Cognito pool.

The password comes from `MFE_USER_PASSWORD` or an interactive prompt, never from the
command line, so it does not end up in shell history or CI logs.
"""

from __future__ import annotations

import getpass
import os
import sys
from typing import TYPE_CHECKING

from mfe.errors import MfeError, aws_error_code

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

    from mfe.envs.session import Session

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


def add_user(session: Session, username: str) -> str:
    """Create (or reset the password of) `username` in the pool; return a one-line summary."""
    if not username:
        raise MfeError("which user? run `doit user_add username=NAME`")
    env = session.env
    no_login = session.backend.no_login()
    if no_login is not None:  # not "run `doit infra` first": that makes none there
        raise MfeError(no_login)
    session.backend.check(session)
    outputs = session.outputs
    if outputs.auth is None:
        raise MfeError(
            f"environment '{env.name}' has no user pool in its outputs; "
            f"run `doit infra env={env.name}` first"
        )
    from botocore.exceptions import ClientError

    password = read_password(username)
    try:
        created = set_password(session.cognito, outputs.auth.user_pool_id, username, password)
    except ClientError as exc:
        if aws_error_code(exc) != "InvalidPasswordException":
            raise
        try:
            needs = f"it needs {password_policy(session.cognito, outputs.auth.user_pool_id)}"
        except ClientError:  # no cognito-idp:DescribeUserPool: the server's words alone
            needs = "its password policy says which"
        raise MfeError(
            f"the pool of environment '{env.name}' refused the password for {username!r} "
            f"({exc.response['Error']['Message']}); {needs}: pick one that does and run the "
            "task again"
        ) from None
    verb = "added" if created else "updated the password of"
    return f"{verb} user {username!r} in pool {outputs.auth.user_pool_id} ({env.name})"


CLASSES = {
    "RequireUppercase": "an uppercase letter",
    "RequireLowercase": "a lowercase letter",
    "RequireNumbers": "a digit",
    "RequireSymbols": "a symbol",
}


def password_policy(idp: CognitoIdentityProviderClient, pool_id: str) -> str:
    """The pool's password rules in words: the server's refusal does not say which one
    failed (moto: "does not confirm to the configured password policy")."""
    pool = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    policy = pool.get("Policies", {}).get("PasswordPolicy", {})
    rules = [f"at least {policy.get('MinimumLength', 8)} characters"]
    rules += [words for key, words in CLASSES.items() if policy.get(key)]
    return ", ".join(rules[:-1]) + (" and " if len(rules) > 1 else "") + rules[-1]


def set_password(
    idp: CognitoIdentityProviderClient, pool_id: str, username: str, password: str
) -> bool:
    """Create `username` unless present, then set a permanent password; True if created.

    A user this call created is deleted again when its password cannot be set: Cognito
    checks the temporary password against the pool's policy at creation, the emulator
    only at the permanent one, and a user left waiting for a password change
    (FORCE_CHANGE_PASSWORD) would make the next try say "updated" instead of "added".
    """
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
    try:
        idp.admin_set_user_password(
            UserPoolId=pool_id, Username=username, Password=password, Permanent=True
        )
    except Exception as exc:
        if created:
            _undo_create(idp, pool_id, username, exc)
        raise
    return created


def _undo_create(
    idp: CognitoIdentityProviderClient, pool_id: str, username: str, why: Exception
) -> None:
    """Delete the user just created; if that fails too, say both and what to run."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        idp.admin_delete_user(UserPoolId=pool_id, Username=username)
    except (ClientError, BotoCoreError) as exc:
        raise MfeError(
            f"setting the password of the new user {username!r} in pool {pool_id} failed "
            f"({why}), and deleting that user again failed too ({exc}): delete it with "
            f"`aws cognito-idp admin-delete-user --user-pool-id {pool_id} --username "
            f"{username}`, then run the task again"
        ) from None
