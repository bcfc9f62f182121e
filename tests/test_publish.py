"""Publish core on a real moto server (S3 + CloudFront): content-hash diff, ordering,
releases, invalidation, prune, rollback, failures. Library level, no npm needed."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from mfe.envs.session import Session, _botocore_session
from mfe.errors import MfeError
from mfe.publish import publish
from mfe.publish.local import LocalFile
from mfe.publish.report import Progress, plan_lines, summary
from mfe.publish.rollback import rollback

from fixtures.s3 import (
    APPS,
    EMPTY_MD5,
    S3Server,
    Site,
    empty_put_answers,
    objects,
    render_shell,
    write_app,
)


@pytest.fixture
def site(tmp_path: Path, moto_s3: S3Server) -> Site:
    return Site(tmp_path / "repo", moto_s3)


def uploaded(report: dict) -> dict[str, list[str]]:
    return {app: row["uploaded"] for app, row in report["apps"].items() if row["uploaded"]}


def test_first_publish_uploads_everything_then_noop(site: Site) -> None:
    first = site.publish()
    assert sorted(first["apps"]) == sorted(APPS)
    parent = first["apps"]["mfe-parent"]
    assert parent["uploaded"][-1] == "index.html"  # the shell goes last
    assert {"favicon.svg", "index.html"} <= set(parent["uploaded"])  # fixed URLs, at commit
    assert any(k.startswith("_ca/") and k.endswith("/favicon.svg") for k in parent["uploaded"])
    assert all(row["skipped"] == 0 and row["uploaded"] for row in first["apps"].values())
    assert first["invalidations"] == {}  # nothing was cached before the first release
    assert first["site_url"] == f"{site.outputs.apps['mfe-parent'].base_url}index.html"
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{7}", first["release"])

    s3 = site.server.client()
    head = s3.head_object(
        Bucket=site.bucket("accounts"), Key=first["apps"]["accounts"]["uploaded"][0]
    )
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert head["ContentType"].startswith("text/javascript")
    assert len(head["Metadata"]["sha256"]) == 64
    shell = s3.head_object(Bucket=site.bucket("mfe-parent"), Key="index.html")
    assert shell["CacheControl"] == "no-cache" and shell["ContentType"].startswith("text/html")
    keys = objects(site.server, site.bucket("mfe-parent"))
    assert {"_mfe/live.json", "_mfe/history/0000000001.json"} <= set(keys)
    assert "asset-manifest.json" not in keys
    assert not any(k.startswith("_mfe/") for row in first["apps"].values() for k in row["uploaded"])

    saved = json.loads((site.root / ".mfe/local/publish-report.json").read_text())
    assert saved["release"] == first["release"] and saved["requests"]["s3"] > 0

    second = site.publish()
    assert uploaded(second) == {} and second["invalidations"] == {}
    assert second["release"] == first["release"]  # a no-op writes no release
    assert second["requests"]["cloudfront"] == 0
    assert second["noop"] is True
    assert second["requests"]["s3"] == 3  # pointer, its record, no later record: no listing

    # A fresh clone has no remembered conditional-write probe; a no-op publish writes no
    # pointer, so it does not probe either.
    (site.root / ".mfe/local/conditional-writes.json").unlink()
    third = site.publish()
    assert third["noop"] is True and third["requests"]["s3"] == 3
    assert not (site.root / ".mfe/local/conditional-writes.json").exists()


def test_a_one_app_publish_that_changes_nothing_costs_what_a_whole_one_does(site: Site) -> None:
    """`app=accounts` renders the page from the live versions of the other apps: from their
    builds here when those are the live versions (the same bytes), so with nothing changed
    it makes the whole no-op's three requests, not one GET per JavaScript file of each
    other app; a build here of another version is not live, so the page keeps the live one."""
    first = site.publish()
    one = site.publish(app="accounts")
    assert one["noop"] is True and one["release"] == first["release"] and uploaded(one) == {}
    assert one["requests"] == {"s3": 3, "cloudfront": 0}  # pointer, its record, no later one

    site.change("payments", "2")  # built here, not published
    again = site.publish(app="accounts")
    assert again["noop"] is True and again["release"] == first["release"]


def test_a_first_release_reports_no_invalidation_as_it_sends_none(site: Site) -> None:
    """Nothing was cached before the first release, so its commit step sends no
    invalidation: the report's `invalidated_by_app` and the summary's invalidated column
    say so (0 for the parent, not its index.html and favicon), as `doit plan` before it."""
    plan = publish(site.project, "local", outputs=site.outputs, dry_run=True)
    report = publish(site.project, "local", outputs=site.outputs)
    for made in (plan, report):
        assert made.invalidations == {} and made.invalidated_by_app == {}
        for app in APPS:  # app, uploaded, skipped, deleted, invalidated (0), bytes
            assert re.search(rf"{app}\W+\d+\W+0\W+0\W+0\W", summary(made)), summary(made)
    assert site.invalidation_count("mfe-parent") == 0
    site.change("accounts", "2")
    second = publish(site.project, "local", outputs=site.outputs)
    assert second.invalidated_by_app == {"mfe-parent": ["/index.html"]}
    assert re.search(r"mfe-parent\W+2\W+\d+\W+0\W+1\W", summary(second))


def test_clean_rebuild_with_identical_bytes_uploads_nothing(site: Site) -> None:
    site.publish()
    for app in APPS:
        write_app(site.root, app)  # rm -r dist + rebuild: new mtimes, same bytes
    render_shell(site.root, site.outputs)
    again = site.publish()
    assert uploaded(again) == {} and again["invalidations"] == {}


def test_one_app_change_uploads_it_and_invalidates_only_index_html(site: Site) -> None:
    first = site.publish()
    site.change("accounts", "2")
    report = site.publish()
    changed = uploaded(report)
    assert set(changed) == {"accounts", "mfe-parent"}
    page = changed["mfe-parent"]
    assert page[0].startswith("_ca/") and page[1:] == ["index.html"]  # its copy, then the page
    assert len(changed["accounts"]) == 2  # main-<hash>.js and its map
    assert report["invalidations"] == {site.dist("mfe-parent"): ["/index.html"]}
    assert report["release"] != first["release"] and report["previous_release"] == first["release"]
    assert site.invalidation_count("mfe-parent") == 1
    assert site.invalidation_count("accounts") == 0  # fingerprinted files are never invalidated
    # The old entry stays online for open tabs.
    old = first["apps"]["accounts"]["uploaded"][0]
    assert old in objects(site.server, site.bucket("accounts"))


def test_each_answer_stays_on_its_request_around_empty_bodies(site: Site) -> None:
    """botocore's `Expect: 100-continue` on an empty body, answered at once, pinned that
    answer's status on the pooled connection's next request: a write that landed read as
    412 (after a 30 s stall), so a pointer swap could be told it lost when it won."""
    s3 = Session(site.project, "local", site.outputs).s3
    bucket = site.bucket("payments")
    assert empty_put_answers(s3, bucket) == ["ok", "412", "ok", "ok", "412"]
    found = objects(site.server, bucket)
    assert found["seq/b"] == hashlib.md5(b"b").hexdigest() and found["seq/empty"] == EMPTY_MD5
    assert s3.get_object(Bucket=bucket, Key="seq/a")["Body"].read() == b"a"


def test_empty_files_are_published_and_skipped_next_time(site: Site) -> None:
    empty = {"empty1.txt": b"", "more/empty2.txt": b"", "after.txt": b"after"}
    write_app(site.root, "payments", public=empty)
    first = site.publish()
    assert {"empty1.txt", "more/empty2.txt", "after.txt"} <= set(
        first["apps"]["payments"]["uploaded"]
    )
    found = objects(site.server, site.bucket("payments"))
    assert found["empty1.txt"] == found["more/empty2.txt"] == EMPTY_MD5
    assert found["after.txt"] == hashlib.md5(b"after").hexdigest()
    assert uploaded(site.publish()) == {}


def test_dry_run_plans_without_writing(site: Site) -> None:
    report = site.publish(dry_run=True)
    assert report["dry_run"] is True
    parent = uploaded(report)["mfe-parent"]  # entry, map, favicon and page copies, then
    assert len(parent) == 6 and parent[-2:] == ["favicon.svg", "index.html"]  # fixed URLs
    assert report["invalidations"] == {}  # as the first publish: nothing was cached before
    assert objects(site.server, site.bucket("mfe-parent")) == {}
    assert (site.root / ".mfe/local/plan-report.json").exists()
    assert not (site.root / ".mfe/local/publish-report.json").exists()


def test_large_file_goes_multipart_and_is_skipped_next_time(site: Site) -> None:
    big = bytes(range(256)) * (9 * 4096 + 7)  # ~9.0 MiB > the 8 MiB threshold
    write_app(site.root, "payments", extra={"media/intro.bin": big})
    site.publish()
    found = objects(site.server, site.bucket("payments"))
    copy = next(k for k in found if k.startswith("_ca/") and k.endswith("/media/intro.bin"))
    assert found[copy].endswith("-2")  # the content-addressed copy went up in two parts
    assert "media/intro.bin" in found  # and the fixed URL was written at commit
    again = site.publish()
    assert uploaded(again) == {}


def test_cache_control_rules_override_and_header_change_reuploads(site: Site) -> None:
    site.publish()
    toml = site.root / "mfe.toml"
    toml.write_text(
        toml.read_text().replace(
            "[publish]\n",
            '[publish]\ncache_control = [{glob = "*.svg", value = "public, max-age=600"}]\n',
        )
    )
    report = site.publish()
    # Same bytes, so the page (linking the favicon's _ca/ copy) is unchanged: only the
    # fixed URL is rewritten with the new header.
    assert uploaded(report) == {"mfe-parent": ["favicon.svg"]}
    assert report["invalidations"] == {site.dist("mfe-parent"): ["/favicon.svg"]}
    head = site.server.client().head_object(Bucket=site.bucket("mfe-parent"), Key="favicon.svg")
    assert head["CacheControl"] == "public, max-age=600"


def test_a_public_file_named_like_a_hash_is_mutable_and_invalidated(site: Site) -> None:
    """`hero-1920x1080.svg` is copied from public/: new bytes come under the same URL."""
    name = "hero-1920x1080.svg"
    write_app(site.root, "payments", public={name: b"<svg>one</svg>"})
    site.publish()
    write_app(site.root, "payments", public={name: b"<svg>two</svg>"})
    report = site.publish()
    assert report["invalidations"] == {site.dist("payments"): [f"/{name}"]}
    served = site.server.client().get_object(Bucket=site.bucket("payments"), Key=name)
    assert served["CacheControl"] == "no-cache"
    assert served["Body"].read() == b"<svg>two</svg>"


def test_an_unfinished_commit_is_finished_by_the_next_publish(site: Site) -> None:
    site.publish()
    site.change("accounts", "2")
    report = site.publish()
    assert site.invalidation_count("mfe-parent") == 1
    # A publish that died after its pointer swap, before invalidating and recording history.
    s3 = site.server.client()
    bucket = site.bucket("mfe-parent")
    s3.delete_object(Bucket=bucket, Key="_mfe/history/0000000002.json")
    again = site.publish()
    assert again["noop"] is True and uploaded(again) == {}
    assert "_mfe/history/0000000002.json" in objects(site.server, bucket)
    assert site.invalidation_count("mfe-parent") == 1  # found by CallerReference, not re-created
    assert again["release"] == report["release"]


def cloudfront_calls(site: Site) -> tuple[Session, list[str]]:
    """A session for the site whose CloudFront operations are recorded by name."""
    session = Session(site.project, "local", site.outputs)
    calls: list[str] = []
    session.cloudfront.meta.events.register(
        "before-call.cloudfront", lambda model, **_: calls.append(model.name)
    )
    return session, calls


def test_a_fresh_release_looks_up_no_earlier_invalidation_and_a_finished_one_reuses_its_own(
    site: Site,
) -> None:
    """A release id a swap just made is on no invalidation yet: the commit step creates one
    with one request however many recent ones the distribution has. A commit step finished
    by a later command reuses the release id, so it looks for its invalidation first."""
    site.publish()
    cf, dist = site.server.client("cloudfront"), site.dist("mfe-parent")
    for i in range(20):  # another team's recent releases
        batch = {"CallerReference": f"other-{i}", "Paths": {"Quantity": 1, "Items": ["/x"]}}
        cf.create_invalidation(DistributionId=dist, InvalidationBatch=batch)
    site.change("accounts", "2")
    session, calls = cloudfront_calls(site)
    made = publish(site.project, "local", outputs=site.outputs, session=session)
    assert calls == ["CreateInvalidation"] and made.requests["cloudfront"] == 1
    assert site.invalidation_count("mfe-parent") == 21

    # Its commit step left unfinished (no history record): the next publish finishes it.
    site.server.client().delete_object(
        Bucket=site.bucket("mfe-parent"), Key="_mfe/history/0000000002.json"
    )
    session, calls = cloudfront_calls(site)
    again = publish(site.project, "local", outputs=site.outputs, session=session)
    assert again.noop is True and again.release == made.release
    assert "CreateInvalidation" not in calls and "GetInvalidation" in calls
    assert site.invalidation_count("mfe-parent") == 21  # found by CallerReference

    session, calls = cloudfront_calls(site)
    back = rollback(site.project, "local", outputs=site.outputs, session=session)
    assert back.invalidations == {dist: ["/index.html"]}
    assert calls == ["CreateInvalidation"] and back.requests["cloudfront"] == 1


def test_prune_keeps_what_the_last_n_releases_reference(tmp_path: Path, moto_s3: S3Server) -> None:
    site = Site(tmp_path / "repo", moto_s3, keep_releases=2, max_deletes=3, grace_seconds=0)
    entries = []
    for version in "1234":
        site.change("accounts", version)
        report = site.publish()
        entries.append(next(k for k in report["apps"]["accounts"]["uploaded"] if k.endswith(".js")))
    # 4 accounts files + the _ca/ copies of the two oldest pages: over the limit, the plan
    # lists them and says so; a publish deletes nothing and its report says why
    over = site.publish(prune=True, dry_run=True)
    assert sum(len(row["deleted"]) for row in over["apps"].values()) == 6
    refused = site.publish(prune=True)
    assert re.search(r"delete 6 objects.*max_deletes = 3", refused["prune_refused"])
    assert all(not row["deleted"] for row in refused["apps"].values())
    assert set(entries) <= set(objects(site.server, site.bucket("accounts")))
    toml = site.root / "mfe.toml"
    toml.write_text(toml.read_text().replace("max_deletes = 3", "max_deletes = 10"))
    plan = site.publish(prune=True, dry_run=True)
    assert sorted(plan["apps"]["accounts"]["deleted"]) == sorted(
        [entries[0], entries[0] + ".map", entries[1], entries[1] + ".map"]
    )
    report = site.publish(prune=True)
    assert len(report["apps"]["accounts"]["deleted"]) == 4
    left = objects(site.server, site.bucket("accounts"))
    assert entries[2] in left and entries[3] in left
    assert entries[0] not in left and entries[1] not in left
    old_pages = report["apps"]["mfe-parent"]["deleted"]  # parent's own files are all kept
    assert len(old_pages) == 2 and all(k.endswith("/index.html") for k in old_pages)
    assert any(
        k.startswith("_mfe/history/") for k in objects(site.server, site.bucket("mfe-parent"))
    )


def test_rollback_serves_the_previous_release(site: Site) -> None:
    first = site.publish()
    v1_shell = site.shell()
    site.change("accounts", "2")
    second = site.publish()
    assert site.shell() != v1_shell
    report = rollback(site.project, "local", outputs=site.outputs)
    back = report.to_dict()
    assert site.shell() == v1_shell  # smoke check inside rollback passed too
    assert back["rollback_of"] == first["release"] and back["previous_release"] == second["release"]
    assert back["apps"]["mfe-parent"]["uploaded"] == ["index.html"]  # from its verified _ca copy
    assert back["invalidations"] == {site.dist("mfe-parent"): ["/index.html"]}
    # The same document as a publish's (plus rollback_of), and a table that says rollback.
    assert set(back) == set(second) | {"rollback_of"}
    assert back["noop"] is False and back["invalidated_by_app"] == {"mfe-parent": ["/index.html"]}
    written = json.loads((site.project.state_dir("local") / "publish-report.json").read_text())
    assert written == back
    assert summary(report).lstrip().startswith(f"rollback local: {back['release']}")
    with pytest.raises(MfeError, match="no release before"):
        rollback(site.project, "local", outputs=site.outputs)
    # The working tree still holds v2, which the rollback took off: kept out, as after
    # `rollback app=`, unless forced (recorded as forced).
    assert site.publish()["noop"] is True
    again = site.publish(force=True)
    assert again["forced"] == ["accounts"]
    assert uploaded(again) == {"mfe-parent": ["index.html"]}  # its _ca copy is still there


def test_missing_bucket_is_a_clear_error(site: Site) -> None:
    s3 = site.server.client()
    s3.delete_bucket(Bucket=site.bucket("payments"))
    with pytest.raises(
        MfeError, match=rf"bucket '{site.bucket('payments')}' of environment 'local' does not exist"
    ):
        site.publish()


def test_missing_shell_is_a_clear_error(site: Site) -> None:
    (site.root / "shell/index.html.j2").unlink()
    with pytest.raises(MfeError, match=r"shell/index.html.j2: missing; create the shell template"):
        site.publish()
    assert objects(site.server, site.bucket("accounts")) == {}


def test_many_changed_mutable_files_collapse_to_a_wildcard_and_wait(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = {f"docs/page{i}.html": b"<p>v1</p>" for i in range(12)}
    write_app(site.root, "payments", extra=docs)
    site.publish()
    write_app(site.root, "payments", extra={k: b"<p>v2</p>" for k in docs})
    report = site.publish(wait=True)
    assert uploaded(report)["payments"][-len(docs) :] == sorted(docs)  # fixed URLs at commit
    assert report["invalidations"] == {site.dist("payments"): ["/docs/*"]}
    assert site.invalidation_count("payments") == 1 and site.invalidation_count("mfe-parent") == 0
    # AWS (and moto since 5.2.6) says "Completed", older moto "COMPLETED": the status as given.
    out = capsys.readouterr().out.lower()
    assert f"invalidation on {site.dist('payments')}: completed".lower() in out


def test_missing_credentials_for_an_aws_environment(
    site: Site, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    toml = site.root / "mfe.toml"
    toml.write_text(toml.read_text() + '\n[env.prod]\nregion = "eu-west-1"\n')
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # if found anyway: not AWS
    # The process's botocore session keeps the credentials an earlier test's env gave it.
    _botocore_session.cache_clear()
    with pytest.raises(MfeError, match="no AWS credentials for environment 'prod'"):
        publish(site.project, "prod", outputs=site.outputs)


def icons(count: int, version: str = "1") -> dict[str, bytes]:
    """A public/ folder of unhashed files: each a fixed URL written in the commit step."""
    return {f"icons/i{n}.svg": f"<svg><!-- {n} v{version} --></svg>".encode() for n in range(count)}


def test_publishing_one_app_checks_anothers_many_fixed_files_in_one_listing(site: Site) -> None:
    """accounts holds many fixed-URL files; a publish of payments alone finds from one
    listing of accounts' bucket the two a hand changed there (written back from their
    `_ca/` copies), instead of one HEAD per file. The report counts requests as sent."""
    from mfe.publish.run import LIST_ABOVE

    public = icons(3 * LIST_ABOVE)
    write_app(site.root, "accounts", public=public)
    render_shell(site.root, site.outputs)
    site.publish()
    s3 = site.server.client()
    bucket = site.bucket("accounts")
    s3.delete_object(Bucket=bucket, Key="icons/i7.svg")
    s3.put_object(Bucket=bucket, Key="icons/i8.svg", Body=b"<svg>changed by hand</svg>")
    site.change("payments", "2")
    report = publish(site.project, "local", outputs=site.outputs, app="payments").to_dict()
    assert report["requests"]["s3"] < len(public) / 5
    for key in ("icons/i7.svg", "icons/i8.svg"):
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == public[key]
    assert sorted(report["invalidations"][site.dist("accounts")]) == [
        "/icons/i7.svg",
        "/icons/i8.svg",
    ]


def test_the_fixed_file_check_lists_only_the_folders_holding_fixed_files(site: Site) -> None:
    """accounts' fixed files sit in icons/, icons/big/ and the root, beside many `_ca/`
    copies and fingerprinted chunks of old releases: a publish of payments lists only those
    folders' direct children, so the old objects cost it no request, and it still writes
    back exactly the files a hand deleted or changed there, in each of those folders."""
    from concurrent.futures import ThreadPoolExecutor

    from mfe.publish.run import LIST_ABOVE

    public = {**icons(2 * LIST_ABOVE), "icons/big/b0.svg": b"<svg>big</svg>", "robots.txt": b"ok"}
    write_app(site.root, "accounts", public=public)
    render_shell(site.root, site.outputs)
    site.publish()
    for version in ("2", "3"):  # the first reads accounts' live version into the cache
        site.change("payments", version)
        quiet = site.publish(app="payments")
    assert site.dist("accounts") not in quiet["invalidations"]  # nothing drifted

    s3 = site.server.client()
    bucket = site.bucket("accounts")
    old = [f"_ca/{n:064x}/icons/old{n}.svg" for n in range(600)]
    old += [f"assets/chunk{n}-{n:08X}.js" for n in range(600)]  # a bundler's chunk folder
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=b"old"), old))
    assert len(objects(site.server, bucket)) > 1000  # a whole listing would take two pages
    s3.delete_object(Bucket=bucket, Key="icons/i7.svg")
    s3.put_object(Bucket=bucket, Key="icons/big/b0.svg", Body=b"<svg>by hand</svg>")
    s3.put_object(Bucket=bucket, Key="robots.txt", Body=b"by hand")
    site.change("payments", "4")
    report = site.publish(app="payments")

    drifted = ["icons/big/b0.svg", "icons/i7.svg", "robots.txt"]
    assert sorted(report["invalidations"][site.dist("accounts")]) == [f"/{k}" for k in drifted]
    for key in drifted:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == public[key]
    # Each written back costs its `_ca/` read and its write; the listing costs what it did.
    assert report["requests"]["s3"] == quiet["requests"]["s3"] + 2 * len(drifted)


def test_another_apps_fixed_files_written_back_get_its_report_row(site: Site) -> None:
    """A publish of payments writes back two fixed files of accounts (one deleted, one
    changed by hand): the report and the summary table show them under accounts, as
    uploaded and invalidated."""
    public = icons(3)
    write_app(site.root, "accounts", public=public)
    render_shell(site.root, site.outputs)
    site.publish()
    s3 = site.server.client()
    s3.delete_object(Bucket=site.bucket("accounts"), Key="icons/i0.svg")
    s3.put_object(Bucket=site.bucket("accounts"), Key="icons/i1.svg", Body=b"<svg>hand</svg>")
    site.change("payments", "2")
    report = publish(site.project, "local", outputs=site.outputs, app="payments")

    assert sorted(report.apps["accounts"].uploaded) == ["icons/i0.svg", "icons/i1.svg"]
    paths = ["/icons/i0.svg", "/icons/i1.svg"]
    assert sorted(report.invalidated_by_app["accounts"]) == paths
    assert sorted(report.invalidations[site.dist("accounts")]) == paths
    assert re.search(r"accounts\W+2\W+0\W+0\W+2\W", summary(report))
    saved = json.loads((site.root / ".mfe/local/publish-report.json").read_text())
    assert saved["apps"]["accounts"]["uploaded"] == report.apps["accounts"].uploaded


def test_a_rollback_reports_another_apps_fixed_files_it_writes_back(site: Site) -> None:
    """A whole rollback to the previous release while two fixed files of accounts (the same
    in both releases) drifted, one deleted, one changed by hand: its commit step writes them
    back, and the report and summary table show them under accounts as restored and
    invalidated, as a publish's do."""
    public = icons(3)
    write_app(site.root, "accounts", public=public)
    render_shell(site.root, site.outputs)
    site.publish()
    site.change("payments", "2")
    site.publish()
    s3 = site.server.client()
    bucket = site.bucket("accounts")
    s3.delete_object(Bucket=bucket, Key="icons/i0.svg")
    s3.put_object(Bucket=bucket, Key="icons/i1.svg", Body=b"<svg>hand</svg>")
    report = rollback(site.project, "local", outputs=site.outputs)

    assert sorted(report.apps["accounts"].uploaded) == ["icons/i0.svg", "icons/i1.svg"]
    paths = ["/icons/i0.svg", "/icons/i1.svg"]
    assert sorted(report.invalidated_by_app["accounts"]) == paths
    assert sorted(report.invalidations[site.dist("accounts")]) == paths
    assert report.invalidated_by_app["mfe-parent"] == ["/index.html"]
    assert re.search(r"accounts\W+2\W+0\W+0\W+2\W", summary(report))
    saved = json.loads((site.root / ".mfe/local/publish-report.json").read_text())
    assert saved["invalidated_by_app"] == report.invalidated_by_app
    for key in ("icons/i0.svg", "icons/i1.svg"):
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == public[key]


def test_plan_lists_every_fixed_file_the_commit_step_writes(site: Site) -> None:
    """Two fixed files of accounts drifted (one deleted, one changed by hand) and the
    parent's favicon too: `doit plan` lists them among the writes and invalidations, and
    the publish that follows writes and invalidates exactly what the plan listed."""
    from mfe.publish.report import plan_lines

    write_app(site.root, "accounts", public=icons(3))
    render_shell(site.root, site.outputs)
    site.publish()
    s3 = site.server.client()
    s3.delete_object(Bucket=site.bucket("accounts"), Key="icons/i0.svg")
    s3.put_object(Bucket=site.bucket("accounts"), Key="icons/i2.svg", Body=b"<svg>hand</svg>")
    s3.put_object(Bucket=site.bucket("mfe-parent"), Key="favicon.svg", Body=b"<svg>hand</svg>")
    site.change("payments", "2")
    plan = publish(site.project, "local", outputs=site.outputs, dry_run=True)

    assert plan.apps["accounts"].uploaded == ["icons/i0.svg", "icons/i2.svg"]
    assert plan.apps["mfe-parent"].uploaded[-2:] == ["favicon.svg", "index.html"]
    lines = plan_lines(plan)
    assert {"upload  accounts: icons/i0.svg", "upload  mfe-parent: favicon.svg"} <= set(lines)
    assert f"invalidate {site.dist('accounts')}: /icons/i2.svg" in lines
    saved = json.loads((site.root / ".mfe/local/plan-report.json").read_text())
    assert saved["apps"]["accounts"]["uploaded"] == plan.apps["accounts"].uploaded

    report = publish(site.project, "local", outputs=site.outputs)
    assert {app: row.uploaded for app, row in report.apps.items()} == {
        app: row.uploaded for app, row in plan.apps.items()
    }
    assert report.invalidations == plan.invalidations
    assert report.invalidated_by_app == plan.invalidated_by_app
    body = s3.get_object(Bucket=site.bucket("accounts"), Key="icons/i0.svg")["Body"].read()
    assert body == icons(3)["icons/i0.svg"]


def test_plan_lists_the_reused_files_the_publish_uploads_again(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """A revert brings back v1's entry, online but old and named by no live version: the
    publish uploads it again before the swap (mfe.publish.refresh). The plan made just
    before lists exactly those keys, as the bucket's modification times show."""
    import time

    from mfe.publish.report import plan_lines

    site = Site(tmp_path / "repo", moto_s3, grace_seconds=2)
    site.publish()
    site.change("accounts", "2")
    site.publish()
    time.sleep(1.2)  # v1's files are now older than half of grace_seconds
    write_app(site.root, "accounts", "1", extra={"notes.txt": b"a revert plus a change\n"})
    render_shell(site.root, site.outputs)
    plan = publish(site.project, "local", outputs=site.outputs, dry_run=True)
    again = plan.refreshed["accounts"]
    assert len(again) == 2 and all(k.startswith("main-") for k in again)  # entry and its map
    lines = plan_lines(plan)
    assert {f"upload  accounts: {key} (again)" for key in again} <= set(lines)
    assert any(line.startswith("refresh accounts: 2 reused file(s)") for line in lines)
    assert plan.apps["accounts"].skipped == 0

    s3 = site.server.client()
    bucket = site.bucket("accounts")

    def dated() -> dict[str, object]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return {o["Key"]: o["LastModified"] for page in pages for o in page.get("Contents", [])}

    before = dated()
    report = site.publish()
    after = dated()
    rewritten = sorted(k for k in before if after[k] != before[k])
    assert rewritten == again == report["refreshed"]["accounts"]
    assert report["refreshed"] == plan.refreshed
    assert set(again) <= set(report["apps"]["accounts"]["uploaded"])
    saved = json.loads((site.root / ".mfe/local/plan-report.json").read_text())
    assert saved["refreshed"] == plan.refreshed


# ------------------------------------------ what publish, plan, prune and rollback print


def test_upload_lines_name_the_files_of_a_small_phase(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two phases of one file each used to read `uploading 1 mutable file(s), 1.5 KB`
    twice: a phase of three files or fewer names them (the page by the key it stands for),
    a larger one gives its count and size."""
    site.publish(smoke=False)
    out = capsys.readouterr().out
    assert "publish: uploading 6 immutable file(s), " in out  # the first release: all of it
    assert re.search(r"publish: uploading mfe-parent/index\.html \(1\.\d kB, its _ca/ copy\)", out)
    site.change("accounts", "2")
    site.publish(smoke=False)
    out = capsys.readouterr().out
    js = next(p.name for p in (site.root / "apps/accounts/dist").glob("main-*.js"))
    assert f"publish: uploading accounts/{js} (75 B), accounts/{js}.map (" in out, out
    assert "file(s)" not in out


def test_prune_that_deletes_nothing_says_what_it_kept_and_why(
    tmp_path: Path, moto_s3: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """Files no kept release names but younger than grace_seconds stay: the publish and
    the plan say so in one line instead of a table of zeros; with nothing unused, they say
    every file is named by what prune keeps."""
    site = Site(tmp_path / "repo", moto_s3, keep_releases=1, grace_seconds=3600)
    site.publish(smoke=False)
    capsys.readouterr()
    report = publish(site.project, "local", outputs=site.outputs, smoke=False, prune=True)
    assert all(not row.deleted for row in report.apps.values())
    said = capsys.readouterr().out
    assert "publish: --prune: nothing to delete: every file is named by the live release" in said
    assert "the last 1 release record(s)" in said
    site.change("accounts", "2")
    site.publish(smoke=False)  # named by no kept release: accounts' first main.js and its
    capsys.readouterr()  # map, the first page's _ca/ copy
    kept = (
        "--prune: nothing to delete: kept 3 file(s) no kept release names: younger than "
        "publish.grace_seconds (3600 s)"
    )
    plan = publish(site.project, "local", outputs=site.outputs, dry_run=True, prune=True)
    assert f"plan: {kept}" in capsys.readouterr().out
    report = publish(site.project, "local", outputs=site.outputs, smoke=False, prune=True)
    assert all(not row.deleted for row in [*plan.apps.values(), *report.apps.values()])
    assert f"publish: {kept}" in capsys.readouterr().out


def test_the_smoke_checks_repair_names_what_failed_and_what_went_up(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """A publish whose smoke check fails (a live file deleted by hand) names the URL and
    status that failed and the file it uploads again, not just a count."""
    report = site.publish()
    entry = next(k for k in report["apps"]["payments"]["uploaded"] if k.endswith(".js"))
    site.server.client().delete_object(Bucket=site.bucket("payments"), Key=entry)
    capsys.readouterr()
    repaired = site.publish()
    assert repaired["apps"]["payments"]["uploaded"] == [entry]
    asset = f"{site.outputs.apps['payments'].base_url}{entry}"
    out = capsys.readouterr().out
    assert re.search(
        rf"publish: the smoke check failed \({re.escape(asset)} answered 40[34]\); "
        rf"uploading 1 missing file\(s\): payments/{re.escape(entry)}\n",
        out,
    ), out


def test_a_plan_says_what_it_would_do_in_its_own_words(site: Site) -> None:
    """A plan's table counts what a publish would upload, delete and invalidate (`to
    upload`, ...), and its lines leave out apps with no unchanged file."""
    plan = publish(site.project, "local", outputs=site.outputs, dry_run=True)
    table = summary(plan)
    assert "to upload" in table and "to delete" in table and "to invalidate" in table
    assert "uploaded" not in table and "deleted" not in table
    assert not any(line.startswith("skip") for line in plan_lines(plan))  # nothing online yet
    site.publish(smoke=False)
    site.change("accounts", "2")
    lines = plan_lines(publish(site.project, "local", outputs=site.outputs, dry_run=True))
    assert "skip    payments: 2 unchanged file(s)" in lines
    assert not any(line.endswith(": 0 unchanged file(s)") for line in lines), lines
    assert "uploaded" in summary(publish(site.project, "local", outputs=site.outputs))


def test_an_app_rollbacks_table_shows_the_app_it_switched(site: Site) -> None:
    """`rollback app=accounts` uploads nothing of accounts (its old files are still in the
    bucket): its row says which release's accounts is live again, the others' say nothing."""
    first = site.publish(smoke=False)
    site.change("accounts", "2")
    site.publish(smoke=False)
    report = rollback(site.project, "local", outputs=site.outputs, app="accounts")
    table = summary(report)
    assert "live as in" in table
    (row,) = [line for line in table.splitlines() if " accounts " in line]
    assert first["release"] in row
    assert all(first["release"] not in line for line in table.splitlines() if "payments" in line)
    assert set(report.to_dict()["apps"]["accounts"]) == {"uploaded", "skipped", "deleted", "bytes"}


def test_a_long_upload_phase_in_a_log_says_how_far_it_got(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a terminal (CI) no bar redraws: a phase of 3,000 files was one line, then
    nothing for 15 s. Now a line every `every` seconds (0 here: after each file but the last)."""
    files = [
        LocalFile("payments", f"f{i}.txt", tmp_path, "", "", 1500, "text/plain", "", False, "")
        for i in range(4)
    ]
    progress = Progress(rich=False, every=0)
    progress.phase("mutable", files)
    for file in files:
        progress.advance(file.size)
        progress.file_done(file)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "publish: uploading 4 mutable file(s), 6.0 kB",
        "publish: uploaded 1/4 files, 1.5 kB of 6.0 kB",
        "publish: uploaded 2/4 files, 3.0 kB of 6.0 kB",
        "publish: uploaded 3/4 files, 4.5 kB of 6.0 kB",
    ]


def test_a_file_no_longer_built_is_said_to_stay_online(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """As `aws s3 sync` without --delete: the file keeps its URL and old bytes; say so."""
    write_app(site.root, "payments", "1", public={"robots.txt": b"v1", "old/a.txt": b"a"})
    site.publish()
    shutil.rmtree(site.root / "apps/payments/public")
    site.change("payments", "2")
    capsys.readouterr()
    site.publish()
    out = capsys.readouterr().out
    assert (
        "payments: 2 file(s) no longer built stay online at their URLs (old/a.txt, robots.txt)"
        in out
    )
    assert "robots.txt" in objects(site.server, site.bucket("payments"))
