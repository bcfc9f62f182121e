"""Local provisioning on the emulator, the CloudFormation templates, and the change-set flow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from mfe.config import Project, load_project
from mfe.envs.cloudformation import deploy_stack, outputs_from_stacks
from mfe.envs.outputs import read_outputs, write_outputs
from mfe.envs.session import Session
from mfe.envs.stacks import (
    CACHING_OPTIMIZED,
    CORS_AND_SECURITY_HEADERS,
    auth_parameters,
    cache_parameters,
    hosting_parameters,
)
from mfe.errors import MfeError

from fixtures.aws import local_client
from fixtures.config import use_port
from fixtures.repo import REPO, run_doit


def make_project(root: Path, endpoint: str) -> Project:
    """The repo's mfe.toml, its [build] inputs (tools/), infra/ and app folders (package.json
    only), local port = the test server."""
    port = endpoint.rsplit(":", 1)[1]
    for app in (REPO / "apps").glob("*/package.json"):
        target = root / "apps" / app.parent.name
        target.mkdir(parents=True)
        shutil.copy(app, target)
    shutil.copy(REPO / "mfe.toml", root / "mfe.toml")
    shutil.copytree(REPO / "tools", root / "tools")
    shutil.copytree(REPO / "infra", root / "infra")
    use_port(root, int(port))
    return load_project(root)


def test_an_anonymous_head_on_the_local_site_answers_as_its_get(
    moto_server: str, tmp_path: Path
) -> None:
    """The public-read policy grants `s3:GetObject`, which is also HeadObject's permission:
    `curl -I` and link checkers get the headers a GET gets, not 403."""
    project = make_project(tmp_path / "repo", moto_server)
    session = Session(project, project.env("local"))
    parent = session.outputs.apps["mfe-parent"]
    body = b"<h1>hi</h1>"
    session.s3.put_object(
        Bucket=parent.bucket, Key="index.html", Body=body, ContentType="text/html"
    )
    url = parent.base_url + "index.html"

    got, head = httpx.get(url), httpx.head(url)

    assert got.status_code == 200 and got.content == body
    assert head.status_code == 200, head.text
    assert head.content == b"" and head.headers["content-length"] == str(len(body))
    assert head.headers["etag"] == got.headers["etag"]
    assert head.headers["content-type"].startswith("text/html")
    cache = session.outputs.cache_bucket  # no public policy: its objects stay private
    session.s3.put_object(Bucket=cache, Key="entry", Body=b"x")
    assert httpx.head(f"{moto_server}/{cache}/entry").status_code == 403
    assert httpx.get(f"{moto_server}/{cache}/entry").status_code == 403


def test_local_provisioning_is_idempotent_cheap_and_usable(
    moto_server: str, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "repo", moto_server)
    env = project.env("local")

    session = Session(project, env)
    outputs = session.backend.ready(session)

    assert set(outputs.apps) == set(project.apps)
    parent = outputs.apps["mfe-parent"]
    assert parent.bucket == "mfe-demo-local-mfe-parent"
    assert parent.base_url == f"{moto_server}/mfe-demo-local-mfe-parent/"
    assert parent.distribution_id and parent.domain
    assert outputs.auth is not None and outputs.auth.endpoint == f"{moto_server}/"
    assert outputs.cache_bucket == "mfe-demo-local-build-cache"
    written = json.loads(project.outputs_file("local").read_text())
    assert written["apps"]["accounts"]["bucket"] == "mfe-demo-local-accounts"

    # The browser's view: anonymous GET with CORS, and an unsigned InitiateAuth as guest.
    s3 = session.s3
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

    # Everything exists: the same outputs, verified with three AWS requests (counted by
    # the session like every other request): buckets, app client (and pool), distributions.
    again = Session(project, env)
    assert again.outputs == outputs
    assert again.counts() == {"s3": 1, "cloudfront": 1, "cognito-idp": 1}

    # Outputs lost: provisioning finds every resource again, duplicates nothing.
    project.outputs_file("local").unlink()
    assert Session(project, env).outputs == outputs
    cloudfront = session.cloudfront
    assert cloudfront.list_distributions()["DistributionList"]["Quantity"] == len(project.apps)
    behaviour = cloudfront.get_distribution_config(Id=parent.distribution_id)["DistributionConfig"][
        "DefaultCacheBehavior"
    ]
    # The shell loads every app's modules cross-origin (SRI): the distribution adds CORS.
    assert behaviour["ResponseHeadersPolicyId"] == CORS_AND_SECURITY_HEADERS
    idp = session.cognito
    assert len(idp.list_user_pools(MaxResults=60)["UserPools"]) == 1

    # The emulator restarted (state gone): the next call provisions again.
    httpx.post(f"{moto_server}/moto-api/reset")
    again = Session(project, env).outputs
    assert again.auth is not None and again.auth.user_pool_id != outputs.auth.user_pool_id
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} >= {
        o.bucket for o in again.apps.values()
    }


def test_templates_pass_cfn_lint() -> None:
    templates = [
        str(REPO / "infra" / name)
        for name in ("hosting.yaml", "auth.yaml", "certificate.yaml", "cache.yaml")
    ]
    cfn_lint = str(Path(sys.executable).parent / "cfn-lint")
    lint = subprocess.run(
        [cfn_lint, "--regions", "us-east-1", "eu-west-1", "--", *templates],
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_build_cache_bucket_is_private_encrypted_and_outlives_its_stack() -> None:
    """What moto's CloudFormation does not apply (it makes the bucket with encryption and
    tags only), read from the template AWS gets."""
    from cfnlint.decode import decode_str

    parsed, problems = decode_str((REPO / "infra" / "cache.yaml").read_text())
    assert not problems
    bucket = parsed["Resources"]["Bucket"]
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())
    (statement,) = parsed["Resources"]["BucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # A pull request's and a branch's entries expire; the shared trusted/ ones do not.
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    expiring = {
        rule["Prefix"]["Fn::Sub"]: rule["ExpirationInDays"] for rule in rules if "Prefix" in rule
    }
    assert expiring == {"${KeyPrefix}pr/": 14, "${KeyPrefix}ref/": 14}


def test_the_cache_stack_gets_the_key_prefix_the_cache_uses(tmp_path: Path) -> None:
    from mfe.ci.cache import RemoteCache

    project = make_project(tmp_path / "repo", "http://127.0.0.1:4566")
    env = project.env("prod")
    for prefix in (env.cache_prefix, "", "ci/cache/"):
        env = replace(env, cache_prefix=prefix)
        parameters = cache_parameters(project, env)
        assert parameters is not None
        cache = RemoteCache(None, parameters["BucketName"], env.cache_prefix, b"")
        assert cache.object_key("pr/7", "app", "k").startswith(parameters["KeyPrefix"] + "pr/")


def test_hosting_template_and_local_provisioning_agree_on_the_distribution() -> None:
    from cfnlint.decode import decode_str

    parsed, problems = decode_str((REPO / "infra" / "hosting.yaml").read_text())
    assert not problems
    (distribution,) = [
        r for r in parsed["Resources"].values() if r["Type"] == "AWS::CloudFront::Distribution"
    ]
    behaviour = distribution["Properties"]["DistributionConfig"]["DefaultCacheBehavior"]
    assert behaviour["CachePolicyId"] == CACHING_OPTIMIZED
    assert behaviour["ResponseHeadersPolicyId"] == CORS_AND_SECURITY_HEADERS
    assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"


def test_spa_fallback_is_an_edge_function_not_error_responses(tmp_path: Path) -> None:
    """Missing files stay 404: no 403/404 -> /index.html responses, in AWS or locally."""
    from cfnlint.decode import decode_str

    from mfe.envs.local_provision import _distribution_config
    from mfe.envs.stacks import hosting_parameters, resource_names

    parsed, problems = decode_str((REPO / "infra" / "hosting.yaml").read_text())
    assert not problems
    resources = parsed["Resources"]
    config = resources["Distribution"]["Properties"]["DistributionConfig"]
    assert "CustomErrorResponses" not in config
    association = config["DefaultCacheBehavior"]["FunctionAssociations"]["Fn::If"][1][0]
    assert association["EventType"] == "viewer-request"
    function = resources["SpaFunction"]
    assert function["Condition"] == "Fallback"
    assert function["Properties"]["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    assert function["Properties"]["FunctionCode"] == {"Ref": "SpaFunctionCode"}
    policy = resources["BucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Action"] == "s3:ListBucket" for s in policy)  # missing keys: 404, not 403

    project = make_project(tmp_path / "repo", "http://127.0.0.1:1")
    env = project.env("prod")
    parent = hosting_parameters(project, env, project.parent.name)
    assert parent["SpaFallback"] == "true"
    assert parent["SpaFunctionCode"] == (REPO / "infra" / "spa-fallback.js").read_text()
    assert parent["SpaFunctionName"] == resource_names(project, env).spa_function
    fragment = next(a for a in project.apps if a != project.parent.name)
    assert hosting_parameters(project, env, fragment)["SpaFallback"] == "false"
    local = _distribution_config(project.env("local"), "b", "c")
    assert "CustomErrorResponses" not in local


def test_the_parent_distribution_serves_the_shared_modules(tmp_path: Path) -> None:
    """On the page's own domain, under /_shared/: another domain would cost the parent's
    first paint a DNS lookup and a TLS handshake (the shared build's Lit is not in its bundle)."""
    from cfnlint.decode import decode_str

    from mfe.envs.stacks import hosting_parameters, resource_names

    parsed, problems = decode_str((REPO / "infra" / "hosting.yaml").read_text())
    assert not problems
    config = parsed["Resources"]["Distribution"]["Properties"]["DistributionConfig"]
    condition, (behaviour,), _ = config["CacheBehaviors"]["Fn::If"]
    assert condition == "ServesShared" and behaviour["PathPattern"] == "/_shared/*"
    default = config["DefaultCacheBehavior"]
    for key in ("ViewerProtocolPolicy", "Compress", "CachePolicyId", "ResponseHeadersPolicyId"):
        assert behaviour[key] == default[key], key
    (association,) = behaviour["FunctionAssociations"]  # strips /_shared (tests/js)
    assert association == default["FunctionAssociations"]["Fn::If"][1][0]
    origin = config["Origins"][1]["Fn::If"][1]
    assert behaviour["TargetOriginId"] == origin["Id"]
    assert origin["OriginAccessControlId"] == config["Origins"][0]["OriginAccessControlId"]

    project = make_project(tmp_path / "repo", "http://127.0.0.1:1")
    env = project.env("prod")
    names = resource_names(project, env)
    parent = hosting_parameters(project, env, "mfe-parent", "", "EPARENT")
    shared = hosting_parameters(project, env, "shared", "", "EPARENT")
    accounts = hosting_parameters(project, env, "accounts", "", "EPARENT")
    assert parent["SharedBucketName"] == names.buckets["shared"]
    assert shared["ReaderDistributionId"] == "EPARENT"  # its bucket policy admits the parent's
    assert parent["ReaderDistributionId"] == shared["SharedBucketName"] == ""
    assert accounts["ReaderDistributionId"] == accounts["SharedBucketName"] == ""

    stack = {"BucketName": "b", "DistributionId": "E1", "DistributionDomainName": "d1.net"}
    auth = {"UserPoolId": "p", "UserPoolClientId": "c"}
    hosting = {
        "mfe-parent": {
            **stack,
            "SiteUrl": "https://d1.net/",
            "SharedUrl": "https://d1.net/_shared/",
        },
        "shared": {**stack, "SiteUrl": "https://d4.net/"},
    }
    assert (
        outputs_from_stacks(env, hosting, auth).apps["shared"].base_url == "https://d1.net/_shared/"
    )
    del hosting["mfe-parent"]["SharedUrl"]  # a parent stack from before /_shared/
    assert outputs_from_stacks(env, hosting, auth).apps["shared"].base_url == "https://d4.net/"


def buckets_only(template: str) -> str:
    """hosting.yaml cut down to what moto's CloudFormation supports: the bucket and its output."""
    from cfnlint.decode import decode_str

    parsed, problems = decode_str((REPO / "infra" / template).read_text())
    assert not problems
    parsed["Resources"] = {
        k: v for k, v in parsed["Resources"].items() if v["Type"] == "AWS::S3::Bucket"
    }
    parsed["Outputs"] = {"BucketName": parsed["Outputs"]["BucketName"]}
    return json.dumps(parsed)


def test_change_set_flow_create_no_change_update(moto_server: str, tmp_path: Path) -> None:
    project = make_project(tmp_path / "repo", moto_server)
    env = project.env("prod")
    cfn = local_client(moto_server, "cloudformation")
    body = (REPO / "infra" / "auth.yaml").read_text()
    params = auth_parameters(project, env)
    lines: list[str] = []

    assert deploy_stack(cfn, "t-auth", body, params, poll=0.05, log=lines.append)
    assert cfn.describe_stacks(StackName="t-auth")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    assert any("CREATE_COMPLETE" in line for line in lines)

    assert not deploy_stack(cfn, "t-auth", body, params, poll=0.05, log=lines.append)
    assert lines[-1] == "t-auth: no changes"
    left = cfn.list_change_sets(StackName="t-auth")["Summaries"]
    assert [c for c in left if c["Status"] == "FAILED"] == []  # the empty one is deleted

    changed = {**params, "RefreshTokenDays": "7"}
    assert deploy_stack(cfn, "t-auth", body, changed, poll=0.05, log=lines.append)
    assert cfn.describe_stacks(StackName="t-auth")["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"

    # The hosting template's bucket (the part moto's CloudFormation can create).
    hosting = hosting_parameters(project, env, "accounts")
    assert deploy_stack(cfn, "t-accounts", buckets_only("hosting.yaml"), hosting, poll=0.05)
    # moto does not refresh a change-set stack's Outputs (they stay empty), so check the bucket.
    local_client(moto_server).head_bucket(Bucket="mfe-demo-prod-accounts")


def test_failed_deploy_names_the_stack_and_the_reason(moto_server: str, tmp_path: Path) -> None:
    project = make_project(tmp_path / "repo", moto_server)
    env = project.env("prod")
    local_client(moto_server).create_bucket(Bucket="already-taken-bucket")
    hosting = {**hosting_parameters(project, env, "payments"), "BucketName": "already-taken-bucket"}

    with pytest.raises(MfeError) as caught:
        deploy_stack(
            local_client(moto_server, "cloudformation"),
            "t-taken",
            buckets_only("hosting.yaml"),
            hosting,
            poll=0.05,
        )

    message = str(caught.value)
    assert "stack t-taken failed" in message
    assert "BucketAlreadyExists" in message
    assert "describe-stack-events --stack-name t-taken" in message


def test_outputs_document_from_stack_outputs(tmp_path: Path) -> None:
    project = make_project(tmp_path / "repo", "http://127.0.0.1:4566")
    env = project.env("prod")
    hosting = {
        app: {
            "BucketName": f"b-{app}",
            "DistributionId": f"E{i}",
            "DistributionDomainName": f"d{i}.cloudfront.net",
        }
        for i, app in enumerate(project.apps)
    }
    auth = {"UserPoolId": "eu-west-1_abc", "UserPoolClientId": "client1", "Region": "eu-west-1"}

    write_outputs(project, outputs_from_stacks(env, hosting, auth))

    read = read_outputs(project, env)
    assert read.apps["accounts"].base_url == "https://d1.cloudfront.net/"
    assert read.apps["accounts"].distribution_id == "E1"
    assert read.auth is not None
    assert read.auth.endpoint == "https://cognito-idp.eu-west-1.amazonaws.com/"
    assert read.auth.client_id == "client1"
    with pytest.raises(MfeError, match="lacks the output 'UserPoolClientId'"):
        outputs_from_stacks(env, hosting, {"UserPoolId": "x"})


def test_user_add_reads_the_password_from_the_environment(moto_server: str, tmp_path: Path) -> None:
    project = make_project(tmp_path / "repo", moto_server)
    shutil.copy(REPO / "dodo.py", project.root)

    refused = subprocess.run(  # no terminal to prompt on, no variable: a clear refusal
        [sys.executable, "-m", "doit", "user_add", "username=alice"],
        cwd=project.root,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "MFE_USER_PASSWORD"},
    )
    assert refused.returncode != 0
    assert "set MFE_USER_PASSWORD" in refused.stdout + refused.stderr

    added = run_doit(
        project.root, "user_add", "username=alice", env={"MFE_USER_PASSWORD": "alice-pass-1"}
    )
    assert "added user 'alice'" in added.stdout
    assert "alice-pass-1" not in added.stdout

    auth = read_outputs(project, project.env("local")).auth
    assert auth is not None
    idp = local_client(moto_server, "cognito-idp")
    tokens = idp.initiate_auth(
        ClientId=auth.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "alice", "PASSWORD": "alice-pass-1"},
    )
    assert "IdToken" in tokens["AuthenticationResult"]

    short = run_doit(
        project.root, "user_add", "username=bob", env={"MFE_USER_PASSWORD": "short"}, check=False
    )
    assert short.returncode == 1, short.stdout  # the server's text names no rule
    assert "refused the password for 'bob'" in short.stdout, short.stdout
    assert "it needs at least 8 characters: pick one that does" in short.stdout
    with pytest.raises(idp.exceptions.UserNotFoundException):  # not left half-created
        idp.admin_get_user(UserPoolId=auth.user_pool_id, Username="bob")
    again = run_doit(
        project.root, "user_add", "username=bob", env={"MFE_USER_PASSWORD": "bob-pass-1"}
    )
    assert "added user 'bob'" in again.stdout, again.stdout


@pytest.mark.parametrize("task", [["releases"], ["rollback"], ["preview_rm", "name=x"]])
def test_release_tasks_on_dev_say_it_is_what_serve_renders(tmp_path: Path, task: list[str]) -> None:
    """Not "run `doit infra env=dev`", which answers that dev has no infrastructure."""
    shutil.copy(REPO / "mfe.toml", tmp_path / "mfe.toml")
    shutil.copy(REPO / "dodo.py", tmp_path / "dodo.py")
    shutil.copytree(REPO / "tools", tmp_path / "tools")
    for app in REPO.glob("apps/*/package.json"):
        (tmp_path / app.parent.relative_to(REPO)).mkdir(parents=True)
        shutil.copy(app, tmp_path / app.relative_to(REPO))
    result = run_doit(tmp_path, *task, "env=dev", check=False)
    assert result.returncode == 1, result.stdout
    assert "environment 'dev' is what `doit serve` renders" in result.stdout, result.stdout
    assert "doit infra" not in result.stdout and "Traceback" not in result.stdout
