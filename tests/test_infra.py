"""Local provisioning on the emulator, the CloudFormation templates, and the change-set flow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import httpx
import pytest
from aws_fixtures import moto_server  # noqa: F401  (fixture)

from mfe import aws
from mfe.config import Project, load_project
from mfe.outputs import outputs_path
from mfe.provision import ensure_ready

REPO = Path(__file__).resolve().parent.parent


def make_project(root: Path, endpoint: str) -> Project:
    """The repo's mfe.toml and app folders (package.json only), local port = the test server."""
    port = endpoint.rsplit(":", 1)[1]
    for app in (REPO / "apps").glob("*/package.json"):
        target = root / "apps" / app.parent.name
        target.mkdir(parents=True)
        shutil.copy(app, target)
    text = (REPO / "mfe.toml").read_text().replace("port = 4566", f"port = {port}")
    (root / "mfe.toml").write_text(text)
    return load_project(root)


def s3_client(endpoint: str) -> object:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_local_provisioning_is_idempotent_cheap_and_usable(
    moto_server: str, tmp_path: Path
) -> None:  # noqa: F811
    project = make_project(tmp_path / "repo", moto_server)
    env = project.env("local")

    outputs = ensure_ready(project, env)

    assert set(outputs.apps) == set(project.apps)
    parent = outputs.apps["mfe-parent"]
    assert parent.bucket == "mfe-demo-local-mfe-parent"
    assert parent.base_url == f"{moto_server}/mfe-demo-local-mfe-parent/"
    assert parent.distribution_id and parent.domain
    assert outputs.auth is not None and outputs.auth.endpoint == f"{moto_server}/"
    assert outputs.cache_bucket == "mfe-demo-local-build-cache"
    written = json.loads(outputs_path(project, "local").read_text())
    assert written["apps"]["accounts"]["bucket"] == "mfe-demo-local-accounts"

    # The browser's view: anonymous GET with CORS, and an unsigned InitiateAuth as guest.
    s3 = aws.client(env, "s3")
    s3.put_object(
        Bucket=parent.bucket, Key="index.html", Body=b"<h1>hi</h1>", ContentType="text/html"
    )
    page = httpx.get(parent.base_url + "index.html", headers={"Origin": "http://example.test"})
    assert page.status_code == 200 and page.text == "<h1>hi</h1>"
    assert page.headers.get("access-control-allow-origin") in ("*", "http://example.test")
    login = httpx.post(
        outputs.auth.endpoint,
        headers={
            "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
            "Content-Type": "application/x-amz-json-1.1",
        },
        json={
            "AuthFlow": "USER_PASSWORD_AUTH",
            "ClientId": outputs.auth.client_id,
            "AuthParameters": {"USERNAME": "guest", "PASSWORD": "awsguest"},
        },
    )
    assert login.status_code == 200, login.text
    assert "IdToken" in login.json()["AuthenticationResult"]

    # Everything exists: the same outputs, verified with two AWS requests.
    counter = aws.RequestCounter()
    assert ensure_ready(project, env, counter) == outputs
    assert sum(counter.counts.values()) == 2

    # Outputs lost: provisioning finds every resource again, duplicates nothing.
    outputs_path(project, "local").unlink()
    assert ensure_ready(project, env) == outputs
    cloudfront = aws.client(env, "cloudfront")
    assert cloudfront.list_distributions()["DistributionList"]["Quantity"] == len(project.apps)
    idp = aws.client(env, "cognito-idp")
    assert len(idp.list_user_pools(MaxResults=60)["UserPools"]) == 1

    # The emulator restarted (state gone): the next call provisions again.
    httpx.post(f"{moto_server}/moto-api/reset")
    again = ensure_ready(project, env)
    assert again.auth is not None and again.auth.user_pool_id != outputs.auth.user_pool_id
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} >= {
        o.bucket for o in again.apps.values()
    }


@pytest.mark.parametrize("template", ["hosting.yaml", "auth.yaml"])
def test_templates_pass_cfn_lint(template: str) -> None:
    from cfnlint.api import lint_all

    matches = lint_all((REPO / "infra" / template).read_text())
    assert not matches, "\n".join(str(m) for m in matches)
