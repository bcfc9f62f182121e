"""The same upload contract on a second S3 implementation: SeaweedFS (`weed server -s3`),
no CloudFront. Library level: `publish()` with `[env.local]` pointing at SeaweedFS."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mfe.envs.session import Session, _botocore_session
from mfe.publish import publish
from mfe.publish.report import summary
from mfe.publish.rollback import rollback

from fixtures.s3 import APPS, S3Server, Site, empty_put_answers, objects, write_app


def uploaded(report: dict) -> dict[str, list[str]]:
    return {app: row["uploaded"] for app, row in report["apps"].items() if row["uploaded"]}


@pytest.fixture
def site(tmp_path: Path, seaweed_s3: S3Server) -> Site:
    return Site(tmp_path / "repo", seaweed_s3)


def test_publish_diff_and_rollback_on_seaweedfs(site: Site) -> None:
    first = site.publish()  # includes the HTTP smoke check against SeaweedFS
    assert all(row["uploaded"] for row in first["apps"].values())
    assert first["invalidations"] == {}
    head = site.server.client().head_object(Bucket=site.bucket("mfe-parent"), Key="index.html")
    assert head["CacheControl"] == "no-cache" and head["ContentType"].startswith("text/html")

    noop = site.publish()
    assert uploaded(noop) == {} and noop["release"] == first["release"]
    assert noop["requests"]["s3"] == 3  # pointer, its record, no later record: no listing

    for app in APPS:
        write_app(site.root, app)  # clean rebuild, identical bytes
    assert uploaded(site.publish()) == {}

    v1_shell = site.shell()
    site.change("accounts", "2")
    changed = site.publish()
    assert set(uploaded(changed)) == {"accounts", "mfe-parent"}
    assert uploaded(changed)["mfe-parent"][-1] == "index.html"  # after its _ca/ copy
    assert changed["invalidations"] == {}  # no distributions on a plain S3 store

    back = rollback(site.project, "local", outputs=site.outputs).to_dict()
    assert back["rollback_of"] == first["release"] and site.shell() == v1_shell


def test_each_answer_stays_on_its_request_around_empty_bodies_on_seaweedfs(site: Site) -> None:
    """SeaweedFS answers an empty body's `Expect: 100-continue` at once too (see the moto
    test in test_publish.py): no answer may land on the next request."""
    s3 = Session(site.project, "local", site.outputs).s3
    assert empty_put_answers(s3, site.bucket("payments")) == ["ok", "412", "ok", "ok", "412"]


def test_multipart_etag_on_seaweedfs_is_skipped_next_time(site: Site) -> None:
    big = bytes(range(256)) * (9 * 4096 + 7)
    write_app(site.root, "payments", extra={"media/intro.bin": big})
    site.publish()
    found = objects(site.server, site.bucket("payments"))
    copy = next(k for k in found if k.startswith("_ca/") and k.endswith("/media/intro.bin"))
    assert "-" in found[copy]
    assert uploaded(site.publish()) == {}


def test_an_s3_compatible_environment_serves_its_page_object(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`[env.NAME] endpoint_url` without CloudFront: no default root object, so the site URL
    (smoke-checked, printed last) is the page object itself, as on the emulator."""
    from dataclasses import replace

    from mfe.publish import publish

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # the store's keys, as a user exports them
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    with (site.root / "mfe.toml").open("a") as toml:
        toml.write(f'\n[env.weed]\nregion = "us-east-1"\nendpoint_url = "{site.server.endpoint}"\n')
    report = publish(site.project, "weed", outputs=replace(site.outputs, env="weed"))
    assert report.site_url == f"{site.server.endpoint}/{site.bucket('mfe-parent')}/index.html"
    assert report.apps["mfe-parent"].uploaded[-1] == "index.html"


def test_a_store_without_distributions_reports_nothing_invalidated(site: Site) -> None:
    """No CloudFront, no invalidation: `invalidated_by_app` and the summary's invalidated
    column say so for a publish, its plan and a rollback (moto's are in test_publish.py)."""
    site.publish()
    site.change("accounts", "2")
    plan = publish(site.project, "local", outputs=site.outputs, dry_run=True)
    made = publish(site.project, "local", outputs=site.outputs)
    back = rollback(site.project, "local", outputs=site.outputs)
    for report in (plan, made, back):
        assert report.invalidations == {} and report.invalidated_by_app == {}
        assert report.requests["cloudfront"] == 0
        assert "index.html" in report.apps["mfe-parent"].uploaded  # written, not invalidated
        for app in APPS:  # app, uploaded, skipped, deleted, invalidated (0), bytes
            assert re.search(rf"{app}\W+\d+\W+\d+\W+0\W+0\W", summary(report)), summary(report)
    saved = json.loads((site.root / ".mfe/local/publish-report.json").read_text())
    assert saved["invalidations"] == {} and saved["invalidated_by_app"] == {}


@pytest.mark.parametrize(
    ("key", "secret", "told"),
    [
        ("wrong", "testing", "the store knows no access key id 'wrong' (from AWS_ACCESS_KEY_ID"),
        ("testing", "wrong", "the secret access key does not match access key id 'testing'"),
    ],
)
def test_wrong_keys_are_named_not_taken_for_missing_permissions(
    site: Site, monkeypatch: pytest.MonkeyPatch, key: str, secret: str, told: str
) -> None:
    """A store that refuses the keys answers 403 as for a missing permission: the message
    names the key and what to check, not IAM actions to grant."""
    from dataclasses import replace

    from mfe.errors import MfeError

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    _botocore_session.cache_clear()  # it keeps the credentials it found first, per process
    with (site.root / "mfe.toml").open("a") as toml:
        toml.write(f'\n[env.weed]\nregion = "us-east-1"\nendpoint_url = "{site.server.endpoint}"\n')
    try:
        with pytest.raises(MfeError) as refused:
            publish(site.project, "weed", outputs=replace(site.outputs, env="weed"))
    finally:
        _botocore_session.cache_clear()
    message = str(refused.value)
    assert message.startswith(told) and "environment 'weed'" in message
    assert "s3:ListBucket" not in message
