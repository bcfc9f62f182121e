"""Builds a publish keeps out (`merge.stale`): the "kept live" note and the report's `held`
say truly where the live version comes from and advise what helps (`mfe.publish.held`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_releases import Clone, committed, git, history, live

from mfe.publish.commit_order import published_by
from mfe.publish.pointer import Live
from mfe.publish.rollback import rollback

from fixtures.s3 import S3Server, Site

FORCE = "`doit publish --force` serves this build"


@pytest.fixture
def site(tmp_path: Path, moto_s3: S3Server) -> Site:
    return Site(tmp_path / "a", moto_s3)


def note_of(said: str, app: str) -> str:
    (line,) = [line for line in said.splitlines() if line.startswith(f"publish: {app} built")]
    return line


def test_a_build_publishes_replaced_before_rollbacks_is_not_one_a_rollback_took_off(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Team A publishes accounts v2..v4 and rolls it back twice (to v2); team C's checkout
    still holds v1, which ordinary publishes replaced: its publish keeps v1 out as a version
    live has replaced (pull), not one a rollback took off, and `--force` records that."""
    site.publish(smoke=False)
    team_c = Clone(site, tmp_path / "c")
    for version in ("2", "3", "4"):
        site.change("accounts", version)
        site.publish(smoke=False)
    for _ in range(2):
        rollback(site.project, "local", outputs=site.outputs, app="accounts", smoke=False)
    team_c.change("payments", "2")
    capsys.readouterr()
    report = team_c.publish(smoke=False)
    note = note_of(capsys.readouterr().out, "accounts")
    assert note.startswith("publish: accounts built here is a version live has replaced; "), note
    assert note.endswith(f"(pull and rebuild; if you reverted to it on purpose, {FORCE})"), note
    assert report["held"]["accounts"].startswith("the version built here is one live has replaced")
    pointer = json.loads(live(site).to_json())  # as written before `took_off` existed
    del pointer["apps"]["accounts"]["took_off"]
    older = Live.from_json(json.dumps(pointer).encode()).apps["accounts"]
    assert older.took_off == older.replaced[:1] == [live(site).apps["accounts"].took_off[0]]
    forced = team_c.publish(smoke=False, force=True)
    assert forced["forced_over"] == {"accounts": "a version live has replaced"}


def test_a_build_older_than_an_app_live_from_another_branch_names_that_commit(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Team A publishes accounts from branch feat-acc; main's checkout, whose accounts is the
    version that replaced, keeps it live with a note naming the live commit, when and by whom
    it was published, and that pulling cannot help: unpushed (this clone lacks it), then
    fetched but not merged; merging it makes the build one to publish again."""
    git(site.root, "init", "-q", "-b", "main")
    committed(site.root, "v1")
    site.publish(smoke=False)
    team_a = Clone(site, tmp_path / "a2")
    git(team_a.root, "checkout", "-q", "-b", "feat-acc")
    team_a.change("accounts", "2")
    theirs = committed(team_a.root, "accounts 2").strip()
    assert team_a.publish(smoke=False, app="accounts")["changed"] == ["accounts"]
    when = published_by("accounts", live(site))
    site.change("payments", "2")
    committed(site.root, "payments 2")
    capsys.readouterr()
    report = site.publish(smoke=False)
    note = note_of(capsys.readouterr().out, "accounts")
    assert report["changed"] == ["payments"] and "accounts" in report["held"]
    assert (
        f"keeping the live one, from {theirs[:12]}, a commit this clone does not have (another "
        f"branch, or never pushed), {when} (fetch and merge {theirs[:12]} "
    ) in note, note
    assert "pull" not in note and note.endswith(f", or {FORCE})")
    git(site.root, "fetch", "-q", str(team_a.root), "feat-acc")
    site.change("payments", "3")
    committed(site.root, "payments 3")
    capsys.readouterr()
    report = site.publish(smoke=False)
    note = note_of(capsys.readouterr().out, "accounts")
    assert (
        f"keeping the live one, from {theirs[:12]}, a commit not merged here (another branch, "
        f"or not pushed), {when} (merge {theirs[:12]} here, or {FORCE})"
    ) in note, note
    assert report["held"]["accounts"].endswith(
        f"live is from {theirs[:12]}, a commit not merged here (another branch, or not "
        f"pushed), {when}"
    )
    git(site.root, "merge", "-q", "FETCH_HEAD", "-m", "merge feat-acc")
    team_a.change("accounts", "3")  # the merged sources, built
    site.change("accounts", "3")
    committed(site.root, "accounts 3")
    assert site.publish(smoke=False)["changed"] == ["accounts"]


def test_a_thrown_away_uncommitted_build_is_undone_by_the_advised_rollback(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """payments published from uncommitted edits, then the edits thrown away: the clean build
    is kept out with a note saying live is an uncommitted build of this commit and advising
    `doit rollback app=payments`, which serves the clean build again."""
    (site.root / ".gitignore").write_text(".mfe/\n")
    git(site.root, "init", "-q", "-b", "main")
    head = committed(site.root, "v1").strip()
    site.publish(smoke=False)
    clean = live(site).apps["payments"].version
    source = site.root / "apps" / "payments" / "package.json"
    before = source.read_text()
    source.write_text(before.replace('"true"', '"true "'))  # an uncommitted edit
    site.change("payments", "2")
    assert site.publish(smoke=False)["dirty"] is True
    when = published_by("payments", live(site))
    source.write_text(before)  # `git checkout` of the file
    site.change("payments", "1")
    capsys.readouterr()
    report = site.publish(smoke=False)
    note = note_of(capsys.readouterr().out, "payments")
    assert note == (
        "publish: payments built here is a version live has replaced; keeping the live one, "
        f"an uncommitted build of {head[:12]} (this checkout's commit), {when} "
        f"(`doit rollback app=payments` takes it off, or {FORCE})"
    )
    assert report["changed"] == [] and "payments" in report["held"]
    rollback(site.project, "local", outputs=site.outputs, app="payments", smoke=False)
    assert live(site).apps["payments"].version == clean
    capsys.readouterr()
    assert site.publish(smoke=False)["held"] == {}
    dirty = {name: version.dirty for name, version in history(site)[1].apps.items()}
    assert (dirty["payments"], dirty["accounts"]) == (True, False)  # each app's own sources
