"""`doit infra` / `doit destroy` for an S3-compatible store (`[env.NAME] endpoint_url`,
kind `aws`), against a real SeaweedFS: buckets only, made and deleted on the store; no
request to CloudFormation or any other AWS service, ever."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest

from mfe.config import load_project
from mfe.envs.bucket_tags import bucket_tags
from mfe.envs.changes import confirmer
from mfe.envs.session import Session, _botocore_session
from mfe.errors import MfeError
from mfe.publish import publish

from fixtures.aws import DUMMY_AWS_ENV, free_port
from fixtures.repo import REPO, run_doit
from fixtures.s3 import APPS, S3Server, make_site, render_shell

LEAK = "AWS_ENDPOINT_URL"
"""Points every AWS client without its own endpoint at a closed loopback port: a request
meant for AWS (CloudFormation, CloudFront, Cognito) fails loudly instead of leaving."""


@pytest.fixture
def store_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The store's keys, as a user exports them, and AWS itself out of reach."""
    settings = {
        **DUMMY_AWS_ENV,
        LEAK: f"http://127.0.0.1:{free_port()}",
        "AWS_MAX_ATTEMPTS": "1",
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    _botocore_session.cache_clear()  # it keeps what it read first, per process
    yield settings
    _botocore_session.cache_clear()


_names = iter(range(1000))


def store_repo(root: Path, server: S3Server, endpoint: str | None = None) -> str:
    """The synthetic three-app monorepo with `[env.weed]` on the store; its project name."""
    name = f"st{next(_names)}"
    make_site(root, int(server.endpoint.rsplit(":", 1)[1]), name=name)
    shutil.copytree(REPO / "infra", root / "infra")  # what a stack deploy would read
    with (root / "mfe.toml").open("a") as toml:
        toml.write(
            f'\n[env.weed]\nregion = "us-east-1"\nendpoint_url = "{endpoint or server.endpoint}"\n'
        )
    return name


def ours(server: S3Server, name: str) -> set[str]:
    return {
        b["Name"] for b in server.client().list_buckets()["Buckets"] if b["Name"].startswith(name)
    }


def test_infra_publish_destroy_on_a_store(
    tmp_path: Path,
    seaweed_s3: S3Server,
    store_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "repo"
    name = store_repo(root, seaweed_s3)
    project = load_project(root)
    # another environment's bucket that starts like ours, and one made by hand: both stay
    s3 = seaweed_s3.client()
    for bucket, env in ((f"{name}-weed-eu-x", "weed-eu"), (f"{name}-weed-hand", None)):
        s3.create_bucket(Bucket=bucket)
        if env:
            tags = [{"Key": "mfe:project", "Value": name}, {"Key": "mfe:env", "Value": env}]
            tags.append({"Key": "mfe:app", "Value": "x"})
            s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})

    session = Session(project, "weed")
    lines: list[str] = []
    outputs = session.backend.deploy(session, lines.append, confirmer(False, "--yes"))
    assert set(session.requests) == {"s3"}, session.requests  # the store, nothing else
    buckets = {app: f"{name}-weed-{app}" for app in APPS}
    written = json.loads(project.outputs_file("weed").read_text())
    assert written["auth"] is None
    for app, bucket in buckets.items():
        assert written["apps"][app] == {
            "bucket": bucket,
            "base_url": f"{seaweed_s3.endpoint}/{bucket}/",
            "distribution_id": None,
            "domain": None,
        }
    cache = f"{name}-weed-build-cache"
    assert written["cache_bucket"] == cache
    assert ours(seaweed_s3, name) == {
        *buckets.values(),
        cache,
        f"{name}-weed-eu-x",
        f"{name}-weed-hand",
    }

    lines.clear()  # again: nothing to do, and it says so
    again = Session(project, "weed")
    assert again.backend.deploy(again, lines.append) == outputs
    assert set(again.requests) == {"s3"}
    assert any("nothing changed" in line for line in lines), lines

    render_shell(root, outputs, env="weed")
    report = publish(project, "weed")  # reads the outputs infra wrote; smoke-checks the site
    assert report.site_url == f"{seaweed_s3.endpoint}/{buckets['mfe-parent']}/index.html"
    assert httpx.get(report.site_url).status_code == 200
    assert set(report.requests) <= {"s3", "cloudfront"} and report.requests["cloudfront"] == 0

    shutil.rmtree(root / "apps" / "payments")  # an app removed since: its bucket goes too
    project = load_project(root)
    lines.clear()
    gone = Session(project, "weed")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal, no --yes: refused
    with pytest.raises(MfeError, match="no terminal"):
        gone.backend.destroy(gone, lines.append, confirmer(False, "doit destroy --yes"))
    assert f"{name}-weed-mfe-parent" in ours(seaweed_s3, name)
    lines.clear()
    gone.backend.destroy(gone, lines.append, confirmer(True, "doit destroy env=weed --yes"))
    assert set(gone.requests) == {"s3"}
    listed = "\n".join(lines)
    assert f"{buckets['payments']} (emptied: every object version); app 'payments'" in listed
    assert ours(seaweed_s3, name) == {f"{name}-weed-eu-x", f"{name}-weed-hand"}
    assert not project.outputs_file("weed").exists()


def test_doit_infra_and_destroy_on_a_store_reach_no_aws_service(
    tmp_path: Path, seaweed_s3: S3Server, store_env: dict[str, str]
) -> None:
    """The commands as a user runs them; with AWS out of reach, any request meant for it
    (a CloudFormation stack, as `doit infra` deployed before) fails the command."""
    root = tmp_path / "repo"
    name = store_repo(root, seaweed_s3)
    shutil.copy(REPO / "dodo.py", root / "dodo.py")
    made = run_doit(root, "infra", "env=weed", env=store_env)
    assert f"bucket {name}-weed-mfe-parent: created on {seaweed_s3.endpoint}" in made.stdout
    assert len(ours(seaweed_s3, name)) == len(APPS) + 1
    again = run_doit(root, "infra", "env=weed", env=store_env)
    assert "environment 'weed': nothing changed" in again.stdout
    user = {**store_env, "MFE_USER_PASSWORD": "alice-pass-1"}
    added = run_doit(root, "user_add", "env=weed", "username=alice", env=user, check=False)
    assert added.returncode == 1, added.stdout  # after infra: not "run `doit infra` first"
    assert "environment 'weed' is an S3-compatible store" in added.stdout, added.stdout
    assert "its site has no login, so there is no user pool" in added.stdout, added.stdout
    assert "doit infra" not in added.stdout and "Traceback" not in added.stdout
    run_doit(root, "destroy", "env=weed", "--yes", env=store_env)
    assert ours(seaweed_s3, name) == set()


def test_store_errors_name_the_store(
    tmp_path: Path,
    seaweed_s3: S3Server,
    store_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "repo"
    closed = f"http://127.0.0.1:{free_port()}"
    name = store_repo(root, seaweed_s3, endpoint=closed)
    session = Session(load_project(root), "weed")
    with pytest.raises(MfeError) as down:
        session.backend.deploy(session, print)
    assert str(down.value).startswith(f"the S3-compatible store {closed} of environment 'weed'")
    assert "does not answer" in str(down.value) and "endpoint_url" in str(down.value)

    root = tmp_path / "repo2"
    name = store_repo(root, seaweed_s3)
    taken = f"{name}-weed-accounts"  # another environment's bucket by that name
    s3 = seaweed_s3.client()
    s3.create_bucket(Bucket=taken)
    tags = [{"Key": "mfe:project", "Value": "other"}, {"Key": "mfe:env", "Value": "weed"}]
    s3.put_bucket_tagging(Bucket=taken, Tagging={"TagSet": tags})
    session = Session(load_project(root), "weed")
    with pytest.raises(MfeError, match=f"bucket '{taken}' on .* is taken by someone else"):
        session.backend.deploy(session, print)
    destroyed: list[str] = []  # and a destroy leaves it alone
    session.backend.destroy(session, destroyed.append, confirmer(True, "--yes"))
    assert taken in ours(seaweed_s3, name) and taken not in "\n".join(destroyed)

    root = tmp_path / "repo3"
    name = store_repo(root, seaweed_s3)
    taken = f"{name}-weed-payments"  # another user's bucket on the store, untagged
    other = boto3.client(
        "s3",
        endpoint_url=seaweed_s3.endpoint,
        region_name="us-east-1",
        aws_access_key_id="other",
        aws_secret_access_key="other",
    )
    other.create_bucket(Bucket=taken)
    session = Session(load_project(root), "weed")
    with pytest.raises(MfeError, match=f"bucket '{taken}' on .*another owner has it"):
        session.backend.deploy(session, print)
    assert bucket_tags(other, taken) == {}  # not made ours
    destroyed = []  # and a destroy leaves it alone
    session.backend.destroy(session, destroyed.append, confirmer(True, "--yes"))
    assert taken in ours(seaweed_s3, name) and taken not in "\n".join(destroyed)

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "wrong")
    _botocore_session.cache_clear()
    session = Session(load_project(root), "weed")
    with pytest.raises(MfeError) as refused:
        session.backend.deploy(session, print)
    assert str(refused.value).startswith("the store knows no access key id 'wrong'")
    assert seaweed_s3.endpoint in str(refused.value)
