"""The local emulator drifting from what `.mfe/local/outputs.json` names: resources deleted
by hand are made again (and said so), and a local environment outside us-east-1."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from test_infra import make_project

from mfe.config import Project, load_project
from mfe.envs.session import Session
from mfe.errors import NothingPublished
from mfe.publish import publish

from fixtures.aws import local_client
from fixtures.s3 import make_site, render_shell


def test_a_local_environment_in_another_region_provisions_and_publishes(
    moto_server: str, tmp_path: Path
) -> None:
    """S3 refuses a CreateBucket outside us-east-1 that does not name its region."""
    root = make_site(tmp_path / "repo", int(moto_server.rsplit(":", 1)[1]), name="euwest")
    with (root / "mfe.toml").open("a") as toml:
        toml.write('region = "eu-west-1"\n')  # under [env.local], the file's last table
    project = load_project(root)
    outputs = Session(project, "local").outputs
    render_shell(root, outputs)

    report = publish(project, "local")  # smoke-checks the site too

    s3 = local_client(moto_server, region="eu-west-1")
    buckets = [o.bucket for o in outputs.apps.values()] + [outputs.cache_bucket or ""]
    locations = {s3.get_bucket_location(Bucket=b)["LocationConstraint"] for b in buckets}
    assert locations == {"eu-west-1"}
    assert outputs.auth is not None and outputs.auth.region == "eu-west-1"
    page = httpx.get(report.site_url)
    assert page.status_code == 200 and "<mfe-parent>" in page.text


def published_site(root: Path, moto_server: str, name: str) -> Project:
    """The synthetic three-app site, provisioned by mfe and published once."""
    make_site(root, int(moto_server.rsplit(":", 1)[1]), name=name)
    project = load_project(root)
    render_shell(root, Session(project, "local").outputs)
    publish(project, "local")
    return project


def test_a_distribution_deleted_by_hand_is_made_again_before_a_publish_needs_it(
    moto_server: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """It was left in the outputs: the publish swapped the pointer, then its invalidation
    failed, advising `doit infra`, which found nothing missing either."""
    project = published_site(tmp_path / "repo", moto_server, "distgone")
    before = Session(project, "local").outputs
    gone = before.apps["mfe-parent"].distribution_id
    assert gone is not None
    cloudfront = local_client(moto_server, "cloudfront")
    etag = cloudfront.get_distribution(Id=gone)["ETag"]
    cloudfront.delete_distribution(Id=gone, IfMatch=etag)
    capfd.readouterr()

    with (tmp_path / "repo" / "shell" / "index.html.j2").open("a") as template:
        template.write("<!-- a new page -->\n")
    report = publish(project, "local")

    made = Session(project, "local").outputs.apps["mfe-parent"].distribution_id
    assert made is not None and made != gone
    assert report.invalidations == {made: ["/index.html"]}
    err = capfd.readouterr().err
    assert f"lacks distribution {gone} of mfe-parent" in err and "restarted" not in err


def test_an_app_client_deleted_by_hand_is_made_again(
    moto_server: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The page would name a client that no longer exists: nobody could sign in."""
    project = make_project(tmp_path / "repo", moto_server)
    before = Session(project, "local").outputs.auth
    assert before is not None
    idp = local_client(moto_server, "cognito-idp")
    idp.delete_user_pool_client(UserPoolId=before.user_pool_id, ClientId=before.client_id)
    capfd.readouterr()

    after = Session(project, "local").outputs.auth

    assert after is not None and after.user_pool_id == before.user_pool_id
    assert after.client_id != before.client_id
    client = idp.describe_user_pool_client(UserPoolId=after.user_pool_id, ClientId=after.client_id)
    assert client["UserPoolClient"]["ClientName"]
    assert f"lacks app client {before.client_id}" in capfd.readouterr().err


def test_releases_after_the_parent_bucket_alone_was_deleted_names_it(
    moto_server: str, tmp_path: Path
) -> None:
    """Not 'not provisioned' while the other apps' buckets are there."""
    project = published_site(tmp_path / "repo", moto_server, "parentgone")
    session = Session(project, "local")
    parent = session.outputs.apps["mfe-parent"].bucket
    s3 = local_client(moto_server)
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=parent):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=parent, Key=item["Key"], VersionId=item["VersionId"])
    s3.delete_bucket(Bucket=parent)

    with pytest.raises(NothingPublished) as refused:
        session.backend.existing(session)

    assert f"lacks the parent app's bucket {parent}" in str(refused.value)
    assert "not provisioned" not in str(refused.value)
