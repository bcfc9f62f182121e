"""Damage to what the commit step and a rollback serve from: a `_ca/` page copy, the local
page and version caches, a live fixed-URL file deleted from its bucket. Each is verified
before it is served, and repaired where the bytes can be had (moto server, real files)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from test_releases import check_consistent, history, live, served
from test_releases_failures import AfterSwap, kill_when_held

from mfe.envs.outputs import write_outputs
from mfe.errors import MfeError
from mfe.publish.local import SHELL_KEY
from mfe.publish.rollback import rollback
from mfe.publish.versions import ca_key, read_version

from fixtures.s3 import S3Server, Site, write_app

WHOLE_ROLLBACK = """
import sys
from mfe.config import load_project
from mfe.envs.outputs import read_outputs
from mfe.publish.rollback import rollback

project = load_project(__import__("pathlib").Path(sys.argv[1]))
env = project.env("local")
rollback(project, env, outputs=read_outputs(project, env), to="1", smoke=False)
"""


@pytest.fixture
def site(tmp_path: Path, moto_s3: S3Server) -> Site:
    """Two releases: accounts 1, then accounts 2."""
    site = Site(tmp_path / "repo", moto_s3)
    site.publish()
    site.change("accounts", "2")
    site.publish()
    return site


def pages(site: Site) -> Path:
    return site.project.state_dir("local") / "pages"


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def corrupt_page_copy(site: Site, seq: int) -> str:
    """Other bytes in the `_ca/` copy of release `seq`'s page, which this checkout's page
    cache no longer holds; returns the copy's key."""
    key = ca_key(SHELL_KEY, history(site)[seq - 1].page.sha256)
    site.server.client().put_object(Bucket=site.bucket("mfe-parent"), Key=key, Body=b"junk")
    for cached in pages(site).glob("*.html"):
        cached.unlink()
    return key


def test_a_rollback_to_a_page_whose_copy_is_corrupted_is_refused_before_its_swap(
    site: Site,
) -> None:
    before, page = live(site), served(site)
    key = corrupt_page_copy(site, 1)
    with pytest.raises(MfeError) as refused:
        rollback(site.project, "local", outputs=site.outputs, to="1")
    assert f"{key} (mfe-parent) in bucket '{site.bucket('mfe-parent')}'" in str(refused.value)
    assert "nothing was changed" in str(refused.value)
    assert live(site) == before and served(site) == page  # no pointer left half committed
    site.publish()  # and nothing left to finish


@pytest.mark.parametrize("render", ["same page", "other template"])
def test_finishing_a_commit_step_whose_page_copy_is_corrupted_does_not_fail_forever(
    site: Site, moto_s3: S3Server, render: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rollback swapped and was killed; then the copy of its page went bad. A checkout
    that renders the same page from the pointer uploads it again and finishes the rollback;
    one that cannot (another template) swaps back to the release before it, naming the
    copy, and its publish goes on."""
    first, second = history(site)
    write_outputs(site.project, site.outputs)  # for the child
    kill_when_held(site, moto_s3, AfterSwap().hold, [WHOLE_ROLLBACK, str(site.root)], "no swap")
    assert (live(site).seq, live(site).rollback_of) == (3, first.release)
    key = corrupt_page_copy(site, 1)
    if render == "other template":
        template = site.root / "shell" / "index.html.j2"
        template.write_text(template.read_text() + "<!-- v2 -->\n")
    capsys.readouterr()
    site.publish()
    said = capsys.readouterr().out
    records = history(site)
    if render == "same page":
        assert "renders the same page from the live pointer: uploading it again" in said
        assert [r.seq for r in records] == [1, 2, 3] and sha(served(site)) == first.page.sha256
        copy = site.server.client().get_object(Bucket=site.bucket("mfe-parent"), Key=key)
        assert sha(copy["Body"].read()) == first.page.sha256
    else:
        assert f"{key} (mfe-parent) named by release {records[2].release} (seq 3)" in said
        assert f"serving release {second.release} again" in said
        assert records[3].page == second.page and records[3].rollback_of == second.release
        assert [r.seq for r in records] == [1, 2, 3, 4, 5]  # then this checkout's page
        assert "<!-- v2 -->" in served(site).decode()
    check_consistent(site)
    site.publish()  # nothing left to finish


def test_a_tampered_page_cache_is_not_served(site: Site) -> None:
    first = history(site)[0]
    cached = pages(site) / f"{first.page.sha256}.html"
    assert cached.is_file()
    cached.write_text("<html>EVIL</html>")
    rollback(site.project, "local", outputs=site.outputs, to="1")
    assert sha(served(site)) == first.page.sha256
    assert not cached.is_file() or sha(cached.read_bytes()) == first.page.sha256  # not EVIL


def test_a_tampered_version_cache_is_read_again_from_the_bucket(site: Site) -> None:
    """Another checkout's accounts is rendered from its cached version manifest: one whose
    module integrity was edited is dropped, so the page gets the right SRI."""
    import shutil

    version = live(site).apps["accounts"].version
    cached = site.project.state_dir("local") / "versions" / "accounts" / f"{version}.json"
    data = json.loads(cached.read_text())
    entry = data["asset_manifest"]["entries"][0]
    right = data["asset_manifest"]["files"][entry]["integrity"]
    wrong = "sha384-" + "A" * 64
    data["asset_manifest"]["files"][entry]["integrity"] = wrong
    cached.write_text(json.dumps(data))
    shutil.rmtree(site.root / "apps" / "accounts" / "dist")
    write_app(site.root, "payments", "2")  # the page is rendered by the publish, not here
    site.publish(app="payments")  # smoke-checked: every module's SRI
    page = served(site).decode()
    assert right in page and wrong not in page

    files = dict(data["files"])  # a record edited: the version hash no longer matches
    key = next(iter(files))
    data["files"][key] = {**files[key], "sha256": "0" * 64}
    cached.write_text(json.dumps(data))
    state = site.project.state_dir("local")
    found = read_version(site.server.client(), site.bucket("accounts"), "accounts", version, state)
    assert found[key].sha256 == files[key]["sha256"]


@pytest.mark.parametrize("command", ["publish", "publish --verify", "rollback to=2"])
def test_a_live_fixed_url_file_deleted_from_its_bucket_is_written_back(
    site: Site, command: str
) -> None:
    """index.html (the smoke check fails: it is repaired) or, with `--verify`, the favicon
    too (the page links its `_ca/` copy: no check notices it gone) come back."""
    s3, bucket = site.server.client(), site.bucket("mfe-parent")
    page = served(site)
    favicon = s3.get_object(Bucket=bucket, Key="favicon.svg")["Body"].read()
    deleted = ["index.html", "favicon.svg"] if command != "publish" else ["index.html"]
    for key in deleted:
        s3.delete_object(Bucket=bucket, Key=key)
    if command == "rollback to=2":
        report = rollback(site.project, "local", outputs=site.outputs, to="2").to_dict()
    else:
        report = site.publish(verify=command.endswith("--verify"))
    assert served(site) == page
    assert sorted(report["apps"]["mfe-parent"]["uploaded"]) == sorted(deleted)
    if "favicon.svg" in deleted:
        assert s3.get_object(Bucket=bucket, Key="favicon.svg")["Body"].read() == favicon
    assert [r.seq for r in history(site)] == [1, 2]  # written back, no new release


def plan(site: Site, verify: bool = False) -> list[str]:
    """`doit plan`'s lines (with `--verify`)."""
    from mfe.publish import publish
    from mfe.publish.report import plan_lines

    report = publish(site.project, "local", outputs=site.outputs, dry_run=True, verify=verify)
    return plan_lines(report)


def test_a_damaged_copy_of_the_live_page_is_what_plan_and_publish_verify_agree_on(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plain publish of the same builds trusts the pointer and uploads nothing: the plan
    says so, and warns; `--verify` uploads the copy again, as its plan says."""
    s3, bucket = site.server.client(), site.bucket("mfe-parent")
    key = corrupt_page_copy(site, 2)
    upload = f"upload  mfe-parent: {key}"
    assert upload not in plan(site)
    assert "its page's `_ca/` copy missing or changed" in capsys.readouterr().out
    assert site.publish()["apps"]["mfe-parent"]["uploaded"] == []
    assert upload in plan(site, verify=True)
    report = site.publish(verify=True)
    assert report["noop"] is True and report["apps"]["mfe-parent"]["uploaded"] == [key]
    assert sha(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) == live(site).page.sha256
    capsys.readouterr()
    assert upload not in plan(site, verify=True)
    assert "missing or changed" not in capsys.readouterr().out
    rollback(site.project, "local", outputs=site.outputs, to="1")
    rollback(site.project, "local", outputs=site.outputs, to="2")  # from the copy: intact


def test_plan_lists_the_fixed_url_files_the_bucket_lost_as_publish_writes_them_back(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """index.html and favicon.svg deleted by hand: a plain plan warns naming both (a plain
    publish writes them back only when its smoke check fails); `plan --verify` lists what
    `publish --verify` then writes and invalidates."""
    s3, bucket = site.server.client(), site.bucket("mfe-parent")
    for key in ("index.html", "favicon.svg"):
        s3.delete_object(Bucket=bucket, Key=key)
    plain = plan(site)
    assert not any(line.startswith(("upload", "invalidate")) for line in plain)
    said = capsys.readouterr().out
    assert "2 fixed-URL file(s) (favicon.svg (mfe-parent), index.html (mfe-parent))" in said
    assert "`doit publish --verify` writes them back" in said
    lines = plan(site, verify=True)
    wanted = [line for line in lines if line.startswith(("upload", "invalidate"))]
    assert {"upload  mfe-parent: favicon.svg", "upload  mfe-parent: index.html"} <= set(wanted)
    dist = site.dist("mfe-parent")
    assert {f"invalidate {dist}: /favicon.svg", f"invalidate {dist}: /index.html"} <= set(wanted)
    from mfe.publish import publish
    from mfe.publish.report import plan_lines

    report = publish(site.project, "local", outputs=site.outputs, verify=True)
    assert sorted(report.apps["mfe-parent"].uploaded) == ["favicon.svg", "index.html"]
    done = [line for line in plan_lines(report) if line.startswith(("upload", "invalidate"))]
    assert sorted(done) == sorted(wanted)  # what the plan said, no more
    assert [r.seq for r in history(site)] == [1, 2]
    assert not any(line.startswith(("upload", "invalidate")) for line in plan(site, verify=True))
