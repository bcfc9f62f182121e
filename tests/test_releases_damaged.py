"""Release state damaged or edited by hand in the bucket (as someone with the AWS CLI or
boto3 could): a pointer older than the history, a state object that is not what mfe
wrote, a deleted history record. Every command refuses with a message naming the key and
what to do, changes nothing, and `doit releases` still lists the rest."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from test_releases import history, live, served

from mfe.errors import MfeError
from mfe.publish import publish
from mfe.publish.history import history_key, write_record
from mfe.publish.pointer import POINTER_KEY
from mfe.publish.preview import publish_preview
from mfe.publish.releases_cmd import show
from mfe.publish.rollback import rollback

from fixtures.s3 import S3Server, Site

RECORD_1 = history_key(1)
RECORD_2 = history_key(2)


@pytest.fixture
def site(tmp_path: Path, moto_s3: S3Server) -> Site:
    """Two releases, seq 1 and seq 2."""
    site = Site(tmp_path / "a", moto_s3)
    site.publish()
    site.change("accounts", "2")
    site.publish()
    return site


def parent(site: Site) -> str:
    return site.bucket("mfe-parent")


def put(site: Site, key: str, body: bytes) -> None:
    site.server.client().put_object(Bucket=parent(site), Key=key, Body=body)


def delete(site: Site, key: str) -> None:
    site.server.client().delete_object(Bucket=parent(site), Key=key)


def body(site: Site, key: str) -> bytes:
    s3 = site.server.client()
    return bytes(s3.get_object(Bucket=parent(site), Key=key)["Body"].read())


def releases(site: Site) -> str:
    return show(site.project, site.project.env("local"), site.outputs)


def state(site: Site) -> tuple[list[str], bytes]:
    """The history keys and the served page: what "nothing was changed" keeps."""
    s3 = site.server.client()
    listed = s3.list_objects_v2(Bucket=parent(site), Prefix="_mfe/history/")
    return sorted(item["Key"] for item in listed.get("Contents", [])), served(site)


def damage_pointer(site: Site, how: str) -> None:
    if how == "deleted":
        delete(site, POINTER_KEY)
    else:  # restored by hand from an older record
        put(site, POINTER_KEY, body(site, RECORD_1))


@pytest.mark.parametrize("how", ["restored", "deleted"])
def test_a_pointer_older_than_the_history_is_refused_and_the_advice_fixes_it(
    site: Site, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    damage_pointer(site, how)
    site.change("payments", "2")
    before = state(site)

    shown = releases(site)
    assert f"warning: {POINTER_KEY}" in shown and RECORD_2 in shown
    assert "commit step is unfinished" not in shown
    capsys.readouterr()
    publish(site.project, "local", outputs=site.outputs, dry_run=True)
    assert f"would be refused: {POINTER_KEY}" in capsys.readouterr().out

    for act in (
        lambda: site.publish(smoke=False),
        lambda: rollback(site.project, "local", outputs=site.outputs, to="2", smoke=False),
    ):
        with pytest.raises(MfeError) as refused:
            act()
        message = str(refused.value)
        assert POINTER_KEY in message and RECORD_2 in message and "aws s3 cp" in message
        assert state(site) == before  # no seq reused, no page served

    # What the message says to do: copy the newest record onto the pointer.
    s3 = site.server.client()
    source = {"Bucket": parent(site), "Key": RECORD_2}
    s3.copy_object(CopySource=source, Bucket=parent(site), Key=POINTER_KEY)
    report = site.publish(smoke=False)
    assert [r.seq for r in history(site)] == [1, 2, 3]
    assert live(site).seq == 3 and history(site)[-1].release == report["release"]
    assert live(site).page.sha256 == hashlib.sha256(served(site)).hexdigest()


def everything(site: Site) -> dict[str, dict[str, str]]:
    """Every bucket's keys and ETags: what a refused command must leave as it was."""
    s3 = site.server.client()
    found = {}
    for app in site.outputs.apps:
        bucket = site.bucket(app)
        listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        found[bucket] = {item["Key"]: item["ETag"] for item in listed}
    return found


def test_a_publish_over_a_pointer_older_than_the_history_says_and_uploads_nothing_first(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pointer restored from record 1 names accounts' first version, which this
    checkout's build (published in seq 2) replaced: judged against it, accounts would be
    "held" and payments' new files uploaded before the swap refused. The refusal comes
    first: no note, no upload."""
    damage_pointer(site, "restored")
    site.change("payments", "2")
    before = everything(site)
    capsys.readouterr()
    with pytest.raises(MfeError, match=f"nothing was published: {POINTER_KEY}") as refused:
        site.publish(smoke=False)
    assert RECORD_2 in str(refused.value) and "aws s3 cp" in str(refused.value)
    assert capsys.readouterr().out == ""
    assert everything(site) == before


@pytest.mark.parametrize("how", ["restored", "deleted"])
def test_a_preview_over_a_pointer_older_than_the_history_is_refused(site: Site, how: str) -> None:
    """It would overlay a release older than the one served, as plan and releases warn."""
    damage_pointer(site, how)
    site.change("payments", "2")
    before = everything(site)
    with pytest.raises(MfeError, match=f"preview 'x2' was not written: {POINTER_KEY}") as refused:
        publish_preview(site.project, "local", "x2", outputs=site.outputs, smoke=False)
    assert RECORD_2 in str(refused.value) and "aws s3 cp" in str(refused.value)
    assert everything(site) == before


def test_a_history_record_is_never_kept_over_other_bytes(site: Site) -> None:
    """Writing a record whose seq is taken by another release fails naming it (a lost
    record would be silent otherwise); the same bytes again are fine (a retry)."""
    s3, bucket = site.server.client(), parent(site)
    newest = live(site)
    write_record(s3, bucket, newest)  # already there, same bytes: nothing to do
    older = history(site)[0]
    older.seq = 2
    with pytest.raises(MfeError, match=f"{RECORD_2} in bucket '{bucket}' already holds"):
        write_record(s3, bucket, older)
    assert body(site, RECORD_2) == newest.raw


DAMAGED = {
    "empty": b"",
    "not-utf8": b"\xff\xfe{\x00",
    "empty-object": b"{}",
    "truncated": b'{\n "apps": {\n  "accounts": {',
}


@pytest.mark.parametrize("damage", sorted(DAMAGED))
def test_a_damaged_pointer_is_named_and_the_history_still_listed(site: Site, damage: str) -> None:
    put(site, POINTER_KEY, DAMAGED[damage])
    site.change("payments", "2")
    before = state(site)
    shown = releases(site)
    assert f"warning: {POINTER_KEY} in bucket '{parent(site)}' is damaged" in shown
    assert len([line for line in shown.splitlines() if line.lstrip().startswith(("1 ", "2 "))]) == 2
    for act in (
        lambda: site.publish(smoke=False),
        lambda: publish(site.project, "local", outputs=site.outputs, dry_run=True),
        lambda: rollback(site.project, "local", outputs=site.outputs, smoke=False),
    ):
        with pytest.raises(MfeError, match=f"{POINTER_KEY} in bucket '.*' is damaged"):
            act()
        assert state(site) == before


def test_a_damaged_history_record_is_marked_and_hides_nothing_else(site: Site) -> None:
    put(site, RECORD_1, b"\x00not json")
    shown = releases(site)
    assert f"unreadable: {RECORD_1} in bucket '{parent(site)}'" in shown
    assert f"    2  {live(site).release}" in shown and "live: seq 2" in shown
    before = state(site)
    with pytest.raises(MfeError, match=f"{RECORD_1} in bucket '.*' is damaged"):
        rollback(site.project, "local", outputs=site.outputs, smoke=False)
    assert state(site) == before
    site.change("payments", "2")
    report = site.publish(prune=True, smoke=False)  # published; the prune refuses
    assert live(site).seq == 3
    assert f"--prune deleted nothing: {RECORD_1}" in str(report["prune_refused"])


def test_a_damaged_version_manifest_is_named(site: Site) -> None:
    """payments' live version manifest (the page needs it) is not JSON, with no local
    cache or build of that version: publishing accounts alone and rolling accounts back both render the page."""
    payments = live(site).apps["payments"].version
    key = f"_mfe/versions/payments/{payments}.json"
    bucket = site.bucket("payments")
    site.server.client().put_object(Bucket=bucket, Key=key, Body=b"\xff garbage")
    shutil.rmtree(site.root / ".mfe" / "local" / "versions")  # no local cache
    site.change("payments", "not published")  # nor this build of it: the page reads live's
    site.change("accounts", "3")
    before = state(site)
    for act in (
        lambda: publish(site.project, "local", outputs=site.outputs, app="accounts", smoke=False),
        lambda: rollback(site.project, "local", outputs=site.outputs, app="accounts", smoke=False),
    ):
        with pytest.raises(MfeError, match=f"{key} in bucket '{bucket}' .* is damaged"):
            act()
        assert state(site) == before


def test_a_deleted_history_record_is_named(site: Site) -> None:
    delete(site, RECORD_1)
    shown = releases(site)
    assert f"    1  missing: {RECORD_1}" in shown and f"{RECORD_1} are missing" in shown
    with pytest.raises(MfeError, match=f"{RECORD_1} are missing"):
        rollback(site.project, "local", outputs=site.outputs, smoke=False)
    with pytest.raises(MfeError, match=f"record {RECORD_1} is missing"):
        rollback(site.project, "local", outputs=site.outputs, to="1", smoke=False)


def test_a_pointer_read_just_before_another_publish_swaps_is_no_damage(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another publish swaps the pointer and writes its record right after this one read
    the pointer: the record past the pointer is that publish's, not a pointer restored by
    hand. The first publish merges over it; it was refused as damage before its re-read."""
    from mfe.publish.run import Run

    other = Site(site.root.parent / "b", site.server)  # another checkout of the same site
    other.outputs, other.name = site.outputs, site.name
    read = Run.read_live
    raced: list[bool] = []

    def read_then_lose_the_race(run: Run) -> tuple[object, str | None]:
        found = read(run)
        if not raced:  # once: the other checkout's whole publish lands in between
            raced.append(True)
            other.change("payments", "9")
            other.publish()
        return found

    monkeypatch.setattr(Run, "read_live", read_then_lose_the_race)
    site.change("accounts", "3")
    report = site.publish()
    assert raced and report["changed"] == ["accounts"]
    assert "payments" not in report["changed"]
