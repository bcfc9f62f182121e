"""AWS settings botocore refuses end in one line naming the variable, file or profile and
the fix, never a traceback ("infra failed unexpectedly"). Every case fails before a request:
AWS_ENDPOINT_URL points at a closed loopback port all the same, so nothing reaches AWS."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_infra import make_project

from mfe.envs.cloudformation import stack_status
from mfe.envs.session import Session, _botocore_session
from mfe.tasks.actions import guarded

from fixtures.repo import REPO

CONFIG = """\
[profile sso]
sso_session = corp
sso_account_id = 123456789012
sso_role_name = Admin
region = eu-west-1

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = eu-west-1
sso_registration_scopes = sso:account:access

[profile assume]
role_arn = arn:aws:iam::123456789012:role/Deploy
source_profile = nokeys

[profile nokeys]
region = eu-west-1
"""


@pytest.fixture
def aws_env(tmp_path: Path) -> dict[str, str]:
    """An environment with no credentials but the config above: the files of a user who
    signs in with profiles. `broken` is a file no INI parser takes."""
    (tmp_path / "config").write_text(CONFIG)
    (tmp_path / "credentials").write_text("")
    (tmp_path / "broken").write_text("[default\naws_access_key_id = x\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {
        **env,
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "SSO_CACHE": str(tmp_path / "sso-cache"),
        "HOME": str(tmp_path),  # no SSO token cache of the machine's (~/.aws/sso/cache)
    }


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            {"AWS_CONFIG_FILE": "broken"},
            "{broken} (AWS_CONFIG_FILE) is not a valid AWS config file at line 1",
        ),
        (
            {"AWS_SHARED_CREDENTIALS_FILE": "broken"},
            "{broken} (AWS_SHARED_CREDENTIALS_FILE) is not a valid AWS credentials file at line 1",
        ),
        (
            {"AWS_PROFILE": "sso"},
            "AWS profile 'sso' (AWS_PROFILE) signs in with AWS SSO (IAM Identity Center) and has "
            "no valid login: run `aws sso login --profile sso`",
        ),
        (
            {"AWS_PROFILE": "assume"},
            "AWS profile 'assume' (AWS_PROFILE) cannot be used: The source profile \"nokeys\" "
            "must have credentials.",
        ),
        (
            {"AWS_PROFILE": "nokeys"},
            "AWS profile 'nokeys' (AWS_PROFILE) has no credentials: its section in {config} "
            "[profile nokeys] gives no aws_access_key_id and aws_secret_access_key, nor any of "
            "role_arn,",
        ),
        (
            {"AWS_DEFAULT_PROFILE": "nope"},
            "AWS profile 'nope' (AWS_DEFAULT_PROFILE) is in neither",
        ),
    ],
)
def test_doit_infra_names_the_aws_setting_in_one_line(
    tmp_path: Path, aws_env: dict[str, str], settings: dict[str, str], expected: str
) -> None:
    root = tmp_path / "repo"
    make_project(root, "http://127.0.0.1:4566")
    shutil.copy(REPO / "dodo.py", root / "dodo.py")
    broken = str(tmp_path / "broken")
    given = {k: broken if v == "broken" else v for k, v in settings.items()}
    result = subprocess.run(
        [sys.executable, "-m", "doit", "infra", "env=prod", "--yes"],
        cwd=root,
        env={**aws_env, **given},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output and "unexpectedly" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert (
        len(errors) == 1 and expected.format(broken=broken, config=tmp_path / "config") in errors[0]
    ), output


def test_a_refusal_at_the_first_request_is_one_line_too(
    tmp_path: Path, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SSO credentials load at the first request, which a command that makes no credentials
    check first (releases, rollback) reaches: the task wrapper tells it the same way."""
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in {**aws_env, "AWS_PROFILE": "sso"}.items():
        monkeypatch.setenv(name, value)
    _botocore_session.cache_clear()  # botocore reads the profile once per session
    try:
        session = Session(make_project(tmp_path / "repo", "http://127.0.0.1:4566"), "prod")
        failed = guarded(stack_status, session.cloudformation, "mfe-demo-prod-cache")
    finally:
        _botocore_session.cache_clear()
    assert failed is not None and "run `aws sso login --profile sso`" in failed.message
    assert session.counts() == {"s3": 0, "cloudfront": 0}  # refused before sending
