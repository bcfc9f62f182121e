"""Releases as one live pointer (issue 11) on a real moto server: concurrent publishes
from two clones, history in served order, rollback, older-commit refusal, per-app
publish, previews. Library level (threads stand in for two machines: each publish has
its own boto3 client and local files, the only shared thing is the S3 server)."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from mfe.config import load_project
from mfe.envs.outputs import write_outputs
from mfe.errors import MfeError
from mfe.publish import publish
from mfe.publish.commit_order import CI_FORCE_HINT
from mfe.publish.history import lines, list_records
from mfe.publish.merge import REMEMBERED
from mfe.publish.pointer import Live, read_pointer
from mfe.publish.preview import preview_rm, publish_preview
from mfe.publish.releases_cmd import show
from mfe.publish.report import plan_lines
from mfe.publish.rollback import rollback
from mfe.publish.smoke import smoke_check
from mfe.publish.versions import read_version, version_key
from mfe.tasks.publish import _publish, _releases, run_rollback

from fixtures.config import use_port
from fixtures.proxy import POINTER, FailingProxy, lost_race
from fixtures.s3 import S3Server, Site, objects, provision, write_app

TRIALS = int(os.environ.get("MFE_RACE_TRIALS", "10"))
"""Per variant: 10 fast + 10 with slow uploads = the issue's 20 trials."""


class Clone:
    """A second checkout of the same monorepo publishing to the same environment."""

    def __init__(self, site: Site, root: Path) -> None:
        shutil.copytree(site.root, root, ignore=shutil.ignore_patterns(".mfe"))
        self.root, self.site = root, site

    def change(self, app: str, version: str) -> None:
        write_app(self.root, app, version)

    def publish(self, **options: Any) -> dict[str, Any]:
        report = publish(load_project(self.root), "local", outputs=self.site.outputs, **options)
        return report.to_dict()


@pytest.fixture
def site(tmp_path: Path, moto_s3: S3Server) -> Site:
    return Site(tmp_path / "a", moto_s3)


def served(site: Site) -> bytes:
    s3 = site.server.client()
    return bytes(s3.get_object(Bucket=site.bucket("mfe-parent"), Key="index.html")["Body"].read())


def live(site: Site) -> Live:
    found, _ = read_pointer(site.server.client(), site.bucket("mfe-parent"))
    assert found is not None
    return found


def history(site: Site) -> list[Live]:
    return list_records(site.server.client(), site.bucket("mfe-parent"))


def entry(root: Path, app: str) -> str:
    manifest = json.loads((root / "apps" / app / "dist" / "asset-manifest.json").read_text())
    return str(manifest["entries"][0])


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def together(*calls: Any) -> list[Any]:
    """Run the calls in threads released at the same instant; re-raise the first error."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except BaseException as exc:  # surfaced below
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def check_consistent(site: Site) -> bytes:
    """The served page is the newest history record's and the pointer's; it all loads."""
    page = served(site)
    records = history(site)
    assert records[-1].seq == live(site).seq
    assert records[-1].page.sha256 == sha(page) == live(site).page.sha256
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    smoke_check(f"{site.outputs.apps['mfe-parent'].base_url}index.html", attempts=1)
    return page


def swaps(records: list[Live]) -> str:
    """The records' seqs, actions, changed apps and app versions, for a failure message."""
    return "; ".join(
        f"{r.seq} {r.action} changed={r.changed} "
        + " ".join(f"{name}={v.version[:8]}" for name, v in sorted(r.apps.items()))
        for r in records
    )


@pytest.mark.parametrize("delay", [0.0, 0.15], ids=["fast", "slow-uploads"])
def test_concurrent_publishes_of_different_apps_both_land(
    site: Site, tmp_path: Path, delay: float
) -> None:
    site.publish()
    other = Clone(site, tmp_path / "b")
    proxy = FailingProxy(site.server.endpoint, delay=delay)
    try:
        site.point_at(proxy.port)
        toml = other.root / "mfe.toml"
        toml.write_text(
            toml.read_text().replace(
                f"port = {site.server.endpoint.rsplit(':', 1)[1]}\n", f"port = {proxy.port}\n"
            )
        )
        for trial in range(TRIALS):
            site.change("accounts", f"a{trial}")
            other.change("payments", f"b{trial}")
            before = history(site)[-1]
            together(lambda: site.publish(smoke=False), lambda: other.publish(smoke=False))
            page = check_consistent(site).decode()
            said = f"trial {trial}: {swaps(history(site)[-3:])}"
            assert entry(site.root, "accounts") in page, said  # both changes are live
            assert entry(other.root, "payments") in page, said
            records = history(site)
            assert records[-3].seq == before.seq  # exactly two swaps, one per publish
            assert {tuple(r.changed) for r in records[-2:]} == {("accounts",), ("payments",)}
            previous = records[-2].page
            back = rollback(site.project, "local", outputs=site.outputs)  # smoke-checked
            assert sha(served(site)) == previous.sha256  # exactly the previous page
            assert back.rollback_of == records[-2].release
            check_consistent(site)
    finally:
        proxy.close()


def test_concurrent_publishes_of_the_same_app_serialize(site: Site, tmp_path: Path) -> None:
    site.publish()
    other = Clone(site, tmp_path / "b")
    for trial in range(TRIALS):
        site.change("accounts", f"a{trial}")
        other.change("accounts", f"b{trial}")
        start = history(site)[-1].seq
        together(lambda: site.publish(smoke=False), lambda: other.publish(smoke=False))
        page = check_consistent(site).decode()
        records = history(site)
        assert records[-1].seq == start + 2  # both recorded, in the order they were served
        ours, theirs = entry(site.root, "accounts"), entry(other.root, "accounts")
        winner = records[-1].apps["accounts"].entries[0][0]
        assert winner in (ours, theirs) and winner in page
        assert (ours in page) != (theirs in page)  # one version, never a mix
        assert records[-2].apps["accounts"].entries[0][0] == ({ours, theirs} - {winner}).pop()


def git(root: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=Test", "-c", "user.email=t@example.com", *args]
    return subprocess.run(command, cwd=root, check=True, capture_output=True, text=True).stdout


def test_older_commit_is_refused_and_force_is_recorded(site: Site) -> None:
    git(site.root, "init", "-q")
    git(site.root, "add", "-A")
    git(site.root, "commit", "-qm", "v1")
    old = git(site.root, "rev-parse", "HEAD").strip()
    site.publish()
    site.change("accounts", "2")
    git(site.root, "commit", "-qam", "v2")
    new = git(site.root, "rev-parse", "HEAD").strip()
    site.publish()
    git(site.root, "checkout", "-q", old)
    site.change("accounts", "1-rebuilt")  # an out-of-order CI run of the older commit
    page = served(site)
    with pytest.raises(MfeError) as refused:
        site.publish()
    assert str(refused.value) == (
        f"accounts is live at {new[:12]}, newer than this checkout's {old[:12]}; "
        "pass --force or use doit rollback"
    )
    assert served(site) == page
    report = site.publish(force=True)
    assert report["forced"] == ["accounts"]
    assert report["forced_over"] == {"accounts": f"a newer commit {new[:12]}"}
    record = history(site)[-1]
    assert record.forced == ["accounts"] and record.apps["accounts"].forced
    assert record.forced_over == report["forced_over"]
    assert record.commit == old


def test_a_release_is_credited_to_whoever_ran_the_command_not_heads_author(
    site: Site, tmp_path: Path
) -> None:
    """A teammate pulls Test's commit and publishes, then rolls back: both records name the
    teammate (the clone's configured git user), not the author of HEAD."""
    git(site.root, "init", "-q")
    committed(site.root, "v1")
    site.publish(smoke=False)
    other = Clone(site, tmp_path / "b")
    git(other.root, "config", "user.name", "Runner")
    git(other.root, "config", "user.email", "r@example.com")
    other.change("payments", "2")
    other.publish(smoke=False)
    rollback(load_project(other.root), "local", outputs=site.outputs, smoke=False)
    assert git(other.root, "log", "-1", "--format=%an <%ae>").strip() == "Test <t@example.com>"
    assert [r.by for r in history(site)[1:]] == [
        "Runner <r@example.com>", "Runner <r@example.com>"]  # fmt: skip


def test_without_a_git_identity_a_release_names_the_ci_run_or_the_os_user(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No user.name/user.email anywhere (a fresh runner): git would refuse to commit, but a
    publish goes on, crediting the OS user; GIT_COMMITTER_NAME/EMAIL, which CI systems
    set, come before it, and the GitHub Actions run and its actor before both."""
    git(site.root, "init", "-q")
    committed(site.root, "v1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_AUTHOR_NAME",
                 "GIT_AUTHOR_EMAIL", "EMAIL", "GITHUB_RUN_ID"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    site.publish(smoke=False)
    monkeypatch.setenv("GIT_COMMITTER_NAME", "CI Bot")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "bot@example.com")
    site.change("accounts", "2")
    site.publish(smoke=False)
    monkeypatch.setenv("GITHUB_RUN_ID", "7")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/shop")
    monkeypatch.setenv("GITHUB_ACTOR", "alice")
    monkeypatch.delenv("GITHUB_SERVER_URL", raising=False)
    monkeypatch.setenv("GITHUB_RUN_ATTEMPT", "1")
    site.change("accounts", "3")
    site.publish(smoke=False)
    # A re-run: its attempt's page. A URL, as `acme/shop#7` is GitHub's link to issue 7.
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://git.example.com")
    monkeypatch.setenv("GITHUB_RUN_ATTEMPT", "2")
    site.change("accounts", "4")
    site.publish(smoke=False)
    run = "https://github.com/acme/shop/actions/runs/7"
    assert [r.by for r in history(site)] == [
        getpass.getuser(), "CI Bot <bot@example.com>", f"CI run {run} (alice)",
        "CI run https://git.example.com/acme/shop/actions/runs/7/attempts/2 (alice)"]  # fmt: skip
    shown = [row.split("  ")[-1].strip() for row in lines(history(site))]
    assert shown[2:] == ["CI run 7 (alice)", "CI run 7 attempt 2 (alice)"]  # short in the table


def test_a_live_commit_missing_from_the_clone_is_not_taken_for_older(site: Site) -> None:
    git(site.root, "init", "-q", "-b", "main")
    git(site.root, "add", "-A")
    git(site.root, "commit", "-qm", "v1")
    old = git(site.root, "rev-parse", "HEAD").strip()
    site.change("accounts", "2")
    git(site.root, "commit", "-qam", "v2")
    new = git(site.root, "rev-parse", "HEAD").strip()
    git(site.root, "config", "user.name", "Dana")  # who publishes it, never pushed
    git(site.root, "config", "user.email", "d@example.com")
    site.publish()
    # A shallow CI clone of the older commit: the live one is not in its history.
    git(site.root, "checkout", "-q", "--detach", old)
    git(site.root, "branch", "-qD", "main")
    git(site.root, "reflog", "expire", "--expire=now", "--all")
    git(site.root, "gc", "-q", "--prune=now")
    site.change("accounts", "1-rebuilt")
    page = served(site)
    with pytest.raises(MfeError) as refused:
        site.publish()
    published = live(site).apps["accounts"].published
    assert str(refused.value) == (
        f"accounts is live at {new[:12]}, a commit this clone does not have (published "
        f"{published} by Dana <d@example.com>), so publish cannot tell whether it is newer "
        f"than {old[:12]}: fetch it (in CI: checkout with fetch-depth: 0); if it was never "
        "pushed, ask Dana <d@example.com> to push it; or pass --force"
    )
    assert served(site) == page
    assert site.publish(force=True)["forced"] == ["accounts"]


def ci_clones(site: Site, tmp_path: Path) -> Clone:
    """`site` as a CI clone of commit C1 (pushed to a bare origin) and a second clone to
    commit C2 on top of it, not yet pushed."""
    git(tmp_path, "init", "-q", "--bare", "origin.git")
    git(site.root, "init", "-q", "-b", "main")
    committed(site.root, "C0")
    git(site.root, "remote", "add", "origin", str(tmp_path / "origin.git"))
    site.publish(smoke=False)
    site.change("accounts", "C1")
    committed(site.root, "C1")
    git(site.root, "push", "-q", "origin", "HEAD:refs/heads/main")
    later = Clone(site, tmp_path / "later")
    later.change("accounts", "C2")
    committed(later.root, "C2")
    return later


def test_a_ci_run_of_an_older_commit_finishing_last_keeps_the_later_app(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CI runs finish out of order: C2's run published accounts first. C1's run (which
    cloned before C2 was pushed) fetches C2, finds it later than its own commit, keeps
    C2's accounts live and succeeds; a plain publish refuses as before."""
    later = ci_clones(site, tmp_path)
    git(later.root, "push", "-q", "origin", "HEAD:refs/heads/main")
    later.publish(smoke=False)
    before, c2 = live(site), git(later.root, "rev-parse", "HEAD").strip()
    with pytest.raises(MfeError, match=f"accounts is live at {c2[:12]}, a commit this clone"):
        site.publish(smoke=False)
    capsys.readouterr()
    report = site.publish(smoke=False, keep_newer=True)
    assert (report["superseded"], report["changed"], report["noop"]) == (["accounts"], [], True)
    assert (report["apps"]["accounts"]["uploaded"], report["not_published"]) == ([], [])
    assert live(site) == before
    c1 = git(site.root, "rev-parse", "HEAD").strip()
    assert (
        f"accounts is live from {c2[:12]}, a later commit than this checkout's {c1[:12]}: "
        "superseded, it stays live (nothing to publish for accounts)"
    ) in capsys.readouterr().out
    assert entry(later.root, "accounts") in check_consistent(site).decode()


def test_a_ci_run_that_loses_the_race_to_a_later_commit_keeps_it(
    site: Site, tmp_path: Path
) -> None:
    """C1's run is swapping the pointer when C2's run lands accounts: it re-reads, finds
    accounts live from the later commit, and keeps it instead of reverting it."""
    later = ci_clones(site, tmp_path)

    def rival() -> None:
        git(later.root, "push", "-q", "origin", "HEAD:refs/heads/main")
        later.publish(smoke=False)

    port = site.port
    proxy = FailingProxy(site.server.endpoint, hold=lost_race(rival))
    try:
        site.point_at(proxy.port)
        report = site.publish(smoke=False, keep_newer=True)
    finally:
        proxy.close()
        site.point_at(port)
    assert (report["superseded"], report["changed"]) == (["accounts"], [])
    # Its accounts went up before the swap it lost: listed (wire truth), and said unserved.
    assert report["apps"]["accounts"]["uploaded"] and report["not_published"] == ["accounts"]
    c2 = git(later.root, "rev-parse", "HEAD").strip()
    assert [r.commit for r in history(site)][1:] == [c2]  # C1's run swapped nothing
    assert entry(later.root, "accounts") in check_consistent(site).decode()


def divergent_clones(site: Site, tmp_path: Path) -> tuple[Clone, str]:
    """Alice (`site`, on main) and Bob (a clone on `bobfeat`, branched before her accounts
    commit AL2, with an accounts commit of his own): AL2 pushed and live. Returns Bob's
    clone and AL2."""
    git(tmp_path, "init", "-q", "--bare", "origin.git")
    git(site.root, "init", "-q", "-b", "main")
    git(site.root, "config", "user.name", "Alice")
    git(site.root, "config", "user.email", "a@example.com")
    committed(site.root, "C0")
    git(site.root, "remote", "add", "origin", str(tmp_path / "origin.git"))
    git(site.root, "push", "-q", "origin", "HEAD:refs/heads/main")
    site.publish(smoke=False)
    bob = Clone(site, tmp_path / "bob")
    git(bob.root, "config", "user.name", "Bob")
    git(bob.root, "checkout", "-q", "-b", "bobfeat")
    bob.change("accounts", "BOB2")
    committed(bob.root, "BOB2")
    site.change("accounts", "AL2")
    al2 = committed(site.root, "AL2")
    git(site.root, "push", "-q", "origin", "HEAD:refs/heads/main")
    site.publish(smoke=False)
    return bob, al2


def test_a_branch_that_has_not_merged_the_live_commit_is_refused_fetched_or_not(
    site: Site, tmp_path: Path
) -> None:
    """Bob's branch lacks Alice's live accounts commit: refused while he does not have it,
    and still refused once he fetched it (neither commit descends from the other), saying
    to merge it; `--force` publishes his build, recorded as over a commit not merged here.
    Merged, his branch publishes."""
    bob, al2 = divergent_clones(site, tmp_path)
    page = served(site)
    with pytest.raises(MfeError, match=f"accounts is live at {al2[:12]}, a commit this clone"):
        bob.publish(smoke=False)
    git(bob.root, "fetch", "-q", "origin")
    with pytest.raises(MfeError) as refused:
        bob.publish(smoke=False)
    ours = git(bob.root, "rev-parse", "HEAD").strip()
    published = live(site).apps["accounts"].published
    assert str(refused.value) == (
        f"accounts is live at {al2[:12]} (published {published} by Alice <a@example.com>), "
        f"a commit that this checkout's {ours[:12]} has not merged (another branch?): "
        "publishing would replace it with a build that lacks its changes; merge or rebase "
        f"onto {al2[:12]} and publish again, or pass --force"
    )
    assert served(site) == page
    report = bob.publish(smoke=False, force=True)
    assert (report["changed"], report["forced"]) == (["accounts"], ["accounts"])
    assert report["forced_over"] == {"accounts": f"a commit not merged here {al2[:12]}"}
    assert history(site)[-1].forced_over == report["forced_over"]
    assert entry(bob.root, "accounts") in check_consistent(site).decode()
    site.publish(smoke=False, force=True)  # Alice puts AL2 back; Bob merges it (keeping his)
    git(bob.root, "merge", "-q", "-s", "ours", "-m", "merge main", "origin/main")
    report = bob.publish(smoke=False)
    assert (report["changed"], report["forced"]) == (["accounts"], [])
    assert entry(bob.root, "accounts") in check_consistent(site).decode()


def test_a_ci_run_of_a_commit_that_has_not_merged_the_live_one_is_refused(
    site: Site, tmp_path: Path
) -> None:
    """`doit ci` keeps an app live from a later commit; one live from a commit its own has
    not merged is not later: the run fetches it and refuses, with the CI force hint."""
    bob, al2 = divergent_clones(site, tmp_path)
    page = served(site)
    with pytest.raises(MfeError) as refused:
        bob.publish(smoke=False, keep_newer=True, force_hint=CI_FORCE_HINT)
    message = str(refused.value)
    assert message.startswith(f"accounts is live at {al2[:12]} (published ")
    assert f"merge or rebase onto {al2[:12]} and publish again, or {CI_FORCE_HINT}" in message
    assert served(site) == page and live(site).apps["accounts"].commit == al2


def test_publish_one_app_renders_the_others_from_the_pointer(site: Site, tmp_path: Path) -> None:
    site.publish()
    before = live(site)
    ci = Clone(site, tmp_path / "ci")
    for app in ("mfe-parent", "accounts"):  # this runner built payments only
        shutil.rmtree(ci.root / "apps" / app / "dist")
    ci.change("payments", "2")
    report = ci.publish(app="payments")
    assert set(a for a, row in report["apps"].items() if row["uploaded"]) == {
        "payments", "mfe-parent"}  # fmt: skip
    after = live(site)
    assert after.apps["payments"].version != before.apps["payments"].version
    for app in ("mfe-parent", "accounts"):
        assert after.apps[app] == before.apps[app]
    page = check_consistent(site).decode()
    assert entry(ci.root, "payments") in page and entry(site.root, "accounts") in page
    back = rollback(site.project, "local", outputs=site.outputs, app="payments")
    restored = live(site).apps["payments"]  # the earlier version, having replaced the later
    later = [after.apps["payments"].version]
    assert restored == replace(
        before.apps["payments"], replaced=later, restored=True, took_off=later
    )
    assert sha(served(site)) == before.page.sha256 and back.rollback_of == before.release


def rollback_losing_to(site: Site, rival: Any, **options: Any) -> Any:
    """`site`'s rollback, whose first pointer swap loses to `rival` (run meanwhile)."""
    port = site.port
    proxy = FailingProxy(site.server.endpoint, hold=lost_race(rival))
    try:
        site.point_at(proxy.port)
        return rollback(site.project, "local", outputs=site.outputs, smoke=False, **options)
    finally:
        proxy.close()
        site.point_at(port)


def test_a_rollback_that_loses_the_race_refuses_to_undo_the_release_that_won(
    site: Site, tmp_path: Path
) -> None:
    """The rollback chose its target from seq 2; another team's release landed meanwhile.
    Applying the target now would silently revert that release: refused, nothing changes,
    and the message names the release so the user can decide and run the rollback again."""
    site.publish()
    other = Clone(site, tmp_path / "b")
    site.change("accounts", "bad")
    site.publish()
    other.change("payments", "2")
    with pytest.raises(MfeError) as refused:
        rollback_losing_to(site, lambda: other.publish(smoke=False))
    winner = live(site)
    assert (winner.seq, winner.changed, winner.action) == (3, ["payments"], "publish")
    assert str(refused.value) == (
        f"rollback not applied: while it ran, release {winner.release} (seq 3: publish of "
        f"payments by {winner.by}, commit -) changed the live pointer of environment 'local', "
        f"and rolling back to release {history(site)[0].release} (seq 1) now would undo it too; "
        "nothing was changed: see `doit releases env=local` and run the rollback again"
    )
    page = check_consistent(site).decode()
    assert entry(other.root, "payments") in page and entry(site.root, "accounts") in page
    assert [r.action for r in history(site)] == ["publish"] * 3
    rollback(site.project, "local", outputs=site.outputs, app="accounts")  # decided: one app
    page = check_consistent(site).decode()
    assert entry(other.root, "payments") in page and entry(other.root, "accounts") in page


def test_an_app_rollback_that_loses_the_race_to_another_app_says_what_it_merges_over(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rollback app=accounts` merges over another team's payments release that landed
    while it ran, as a publish does, and says which release that was."""
    site.publish()
    other = Clone(site, tmp_path / "b")
    site.change("accounts", "bad")
    site.publish()
    other.change("payments", "2")
    capsys.readouterr()
    rollback_losing_to(site, lambda: other.publish(smoke=False), app="accounts")
    winner = history(site)[-2]
    assert winner.changed == ["payments"]
    said = capsys.readouterr().out
    assert said.count(f"release {winner.release} (seq {winner.seq}: publish of payments by ") == 1
    assert "landed meanwhile; rolling accounts back over it" in said
    page = check_consistent(site).decode()
    assert entry(other.root, "payments") in page and entry(other.root, "accounts") in page


def test_an_app_rollback_that_loses_the_race_to_its_own_app_refuses(
    site: Site, tmp_path: Path
) -> None:
    """`rollback app=accounts` merges over other apps' new versions after a lost race, but
    not over a new version of accounts itself: that one would be reverted unseen."""
    site.publish()
    other = Clone(site, tmp_path / "b")
    site.change("accounts", "bad")
    site.publish()
    other.change("accounts", "fixed")
    with pytest.raises(MfeError) as refused:
        rollback_losing_to(site, lambda: other.publish(smoke=False), app="accounts")
    winner = live(site)
    assert (winner.seq, winner.changed) == (3, ["accounts"])
    assert str(refused.value).startswith(
        f"rollback of accounts not applied: while it ran, release {winner.release} (seq 3: "
        f"publish of accounts by {winner.by}, commit -) changed accounts in environment 'local'"
    )
    assert "run the rollback again" in str(refused.value)
    page = check_consistent(site).decode()
    assert entry(other.root, "accounts") in page  # the fix stays live
    assert [r.action for r in history(site)] == ["publish"] * 3


def test_a_publish_that_loses_the_race_says_what_landed_before_merging_over_it(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A's swap loses to B's release of payments: A re-reads, says once which release
    landed (by whom, changing what) and that it merges over it; both changes are live."""
    site.publish(smoke=False)
    other = Clone(site, tmp_path / "b")
    git(other.root, "init", "-q")
    git(other.root, "config", "user.name", "Bea")
    git(other.root, "config", "user.email", "b@example.com")
    other.change("payments", "2")
    site.change("accounts", "2")
    port = site.port
    proxy = FailingProxy(site.server.endpoint, hold=lost_race(lambda: other.publish(smoke=False)))
    try:
        site.point_at(proxy.port)
        capsys.readouterr()
        report = site.publish(smoke=False)
        said = capsys.readouterr().out
    finally:
        proxy.close()
        site.point_at(port)
    winner = history(site)[1]
    assert (winner.seq, winner.changed, report["changed"]) == (2, ["payments"], ["accounts"])
    note = (
        f"publish: release {winner.release} (seq 2: publish of payments by Bea "
        "<b@example.com>) landed meanwhile; merging this publish's changes over it\n"
    )
    assert said.count(note) == 1, said
    page = check_consistent(site).decode()
    assert entry(other.root, "payments") in page and entry(site.root, "accounts") in page


def test_an_app_rollback_keeps_out_a_checkout_still_holding_the_bad_build(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After `rollback app=accounts`, the version it took off counts as replaced, like a
    publish's: another team's full publish from a checkout that still holds that build
    (it pulled the bad commit) ships its own change and keeps the bad accounts out."""
    site.publish()
    good = live(site).apps["accounts"].version
    site.change("accounts", "bad")
    site.publish()
    bad = live(site).apps["accounts"].version
    other = Clone(site, tmp_path / "b")
    rollback(site.project, "local", outputs=site.outputs, app="accounts")
    other.change("payments", "2")
    capsys.readouterr()
    report = other.publish(smoke=False)
    assert report["changed"] == ["payments"]
    said = capsys.readouterr().out
    assert "accounts built here is a version a rollback took off" in said
    assert "(publish a fix, or `doit publish --force` serves this build)" in said
    assert live(site).apps["accounts"].version == good
    page = check_consistent(site).decode()
    assert entry(other.root, "payments") in page and entry(other.root, "accounts") not in page
    assert [r.changed for r in history(site)][-2:] == [["accounts"], ["payments"]]
    forced = other.publish(smoke=False, force=True)  # still possible, deliberately
    assert forced["changed"] == ["accounts"] and live(site).apps["accounts"].version == bad


def test_a_checkout_keeps_out_its_old_build_however_often_another_team_replaced_it(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pointer lists only the newest REMEMBERED versions an app replaced. A checkout
    that never pulls payments (and has no git to order commits) still holds the build it
    published first, older than all of them: its publish of accounts keeps payments live
    as the other team left it, because that build is the one it published last."""
    site.publish()
    other = Clone(site, tmp_path / "b")
    for release in range(REMEMBERED + 2):
        other.change("payments", f"b{release}")
        other.publish(smoke=False)
    ours = live(site).apps["payments"]
    assert site.project.apps["payments"].dist.is_dir()  # still the first build
    site.change("accounts", "2")
    capsys.readouterr()
    report = site.publish(smoke=False)
    assert report["changed"] == ["accounts"], swaps(history(site)[-2:])
    assert live(site).apps["payments"] == ours
    assert "payments built here is a version live has replaced" in capsys.readouterr().out
    page = check_consistent(site).decode()
    assert entry(other.root, "payments") in page and entry(site.root, "accounts") in page
    forced = site.publish(smoke=False, force=True)  # still possible, deliberately
    assert forced["changed"] == ["payments"]


def test_a_whole_rollback_keeps_out_a_later_checkout_still_holding_the_bad_build(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A whole rollback takes accounts' bad version off as a publish would: another team's
    checkout at a later commit (it pulled the bad one) ships its payments change and keeps
    the bad accounts out; `--force` ships it, recorded as forced."""
    git(site.root, "init", "-q", "-b", "main")
    committed(site.root, "good")
    site.publish()
    good = live(site).apps["accounts"].version
    site.change("accounts", "bad")
    committed(site.root, "bad")
    site.publish()
    other = Clone(site, tmp_path / "b")
    other.change("payments", "2")
    committed(other.root, "payments")
    rollback(site.project, "local", outputs=site.outputs)
    capsys.readouterr()
    report = other.publish(smoke=False)
    assert report["changed"] == ["payments"]
    said = capsys.readouterr().out
    assert "accounts built here is a version a rollback took off; keeping the live one, " in said
    assert "(publish a fix, or `doit publish --force` serves this build)\n" in said
    assert live(site).apps["accounts"].version == good
    page = check_consistent(site).decode()
    assert entry(other.root, "payments") in page and entry(other.root, "accounts") not in page
    project = load_project(other.root)
    write_outputs(project, site.outputs)
    capsys.readouterr()
    _publish(project, project.env("local"), False, False, False, True, None)
    out = capsys.readouterr().out  # accounts' live commit is an ancestor of the checkout's
    assert "publish: forced accounts over a version a rollback took off\n" in out
    assert "newer" not in out
    forced = json.loads((other.root / ".mfe/local/publish-report.json").read_text())
    assert (forced["changed"], forced["forced"]) == (["accounts"], ["accounts"])
    assert forced["forced_over"] == {"accounts": "a version a rollback took off"}
    assert history(site)[-1].forced == ["accounts"]
    shown = show(site.project, site.project.env("local"), site.outputs)
    assert "[forced: accounts (over a version a rollback took off)]" in shown


def test_a_git_revert_of_the_live_commit_is_published(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bytes equal to a version live replaced, built from a commit after the live one's,
    are a revert made on purpose (`git revert`), not a checkout that did not pull."""
    git(site.root, "init", "-q", "-b", "main")
    committed(site.root, "v1")
    site.publish()
    first = live(site).apps["accounts"].version
    site.change("accounts", "2")
    committed(site.root, "v2")
    site.publish()
    site.change("accounts", "1")  # what `git revert` of v2 gives back
    committed(site.root, "Revert v2")
    capsys.readouterr()
    report = site.publish(smoke=False)
    assert "live has replaced" not in capsys.readouterr().out
    assert report["changed"] == ["accounts"] and report["forced"] == []
    assert live(site).apps["accounts"].version == first


def test_rolling_back_again_skips_a_release_an_earlier_rollback_took_off(site: Site) -> None:
    """A, B, rollback (takes B off), C, rollback (takes C off): rolling back once more must
    not serve B, which was rolled back for a reason; there is nothing before A."""
    site.publish()
    site.change("accounts", "B")
    site.publish()
    rollback(site.project, "local", outputs=site.outputs)
    site.change("accounts", "C")
    site.publish()
    rollback(site.project, "local", outputs=site.outputs)
    served_now = served(site)
    with pytest.raises(MfeError, match="has no release before"):
        rollback(site.project, "local", outputs=site.outputs)
    assert served(site) == served_now


def test_an_app_rollbacks_line_names_the_version_it_took_off_and_the_one_served(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """`doit rollback app=accounts`: its console line names accounts' version it took off
    (of the release the record's `took_off` names) and the version now served."""
    site.publish(smoke=False)
    first = live(site).apps["accounts"].version
    site.change("accounts", "2")
    site.publish(smoke=False)
    second = live(site)
    write_outputs(site.project, site.outputs)
    capsys.readouterr()
    assert run_rollback(site.project, site.project.env("local"), app="accounts") is None
    out = capsys.readouterr().out.splitlines()
    (said,) = [line for line in out if line.startswith("rollback: serving app accounts")]
    assert live(site).took_off == second.release
    assert said.endswith(
        f", taking off accounts version {second.apps['accounts'].version[:12]} (of release "
        f"{second.release}); accounts version {first[:12]} is served"
    )
    assert live(site).apps["accounts"].version == first


def test_rolling_back_never_serves_again_what_a_rollback_took_off_as_a_served_again_release(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """alice publishes accounts v1..v4 and rolls back twice (v3, then v2: that one took
    off v3 served again); bob publishes payments p1; alice rolls back (v2, p1 off: the
    console names bob's release as a lost race does) and once more: v1, never v3, though
    v3's own release was not the one her rollback took off."""
    versions = {}
    for version in ("v1", "v2", "v3", "v4"):
        site.change("accounts", version)
        site.publish(smoke=False)
        versions[live(site).apps["accounts"].version] = version
    bob = Clone(site, tmp_path / "bob")
    before_bob = live(site).apps["payments"].version

    def rollback_serves() -> str:
        rollback(site.project, "local", outputs=site.outputs, smoke=False)
        return versions[live(site).apps["accounts"].version]

    assert [rollback_serves(), rollback_serves()] == ["v3", "v2"]
    bob.change("payments", "p1")
    assert bob.publish(smoke=False, app="payments")["changed"] == ["payments"]
    bobs = live(site)
    write_outputs(site.project, site.outputs)
    capsys.readouterr()
    assert run_rollback(site.project, site.project.env("local")) is None
    (said,) = [line for line in capsys.readouterr().out.splitlines() if "taking off" in line]
    assert said.endswith(
        f", taking off release {bobs.release} (seq 7: publish of payments by {bobs.by})"
    )
    assert versions[live(site).apps["accounts"].version] == "v2"
    assert live(site).apps["payments"].version == before_bob  # p1 taken off
    assert rollback_serves() == "v1", swaps(history(site))
    assert history(site)[0].page.sha256 == sha(check_consistent(site))


def robots(site: Site) -> bytes:
    s3 = site.server.client()
    return bytes(s3.get_object(Bucket=site.bucket("mfe-parent"), Key="robots.txt")["Body"].read())


def test_a_rollback_goes_back_one_release_that_changed_only_a_fixed_url_file(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """Releases that change only robots.txt keep the page: a plain rollback still goes
    back exactly one release (robots v1, payments 2), not to the last other page (payments
    1); once more, to a release without robots.txt, it says the file stays online."""
    site.publish()
    site.change("payments", "2")
    site.publish()
    write_app(site.root, "mfe-parent", public={"robots.txt": b"v1"})
    site.publish()
    good = live(site)
    write_app(site.root, "mfe-parent", public={"robots.txt": b"v2-BAD"})
    site.publish()
    assert live(site).page == good.page
    capsys.readouterr()
    assert rollback(site.project, "local", outputs=site.outputs).rollback_of == good.release
    assert robots(site) == b"v1"
    assert live(site).apps["payments"].version == good.apps["payments"].version
    assert "stays online" not in capsys.readouterr().out

    before = history(site)[1]  # payments 2, no robots.txt
    assert rollback(site.project, "local", outputs=site.outputs).rollback_of == before.release
    out = capsys.readouterr().out
    bucket = site.bucket("mfe-parent")
    assert (
        f"robots.txt (mfe-parent) is not in release {before.release} (seq 2); it stays online "
        f"with the bytes of release " in out
    )
    assert f"`aws s3 rm s3://{bucket}/robots.txt --endpoint-url " in out
    assert robots(site) == b"v1"  # a swap deletes nothing, as publish's


def test_releases_says_when_it_shows_only_the_newest(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """`doit releases` shows the newest 50 by default: past that it says how many it left
    out and how to list them (limit=N|all); a bad limit is refused naming it."""
    site.publish(smoke=False)
    for version in ("2", "3"):
        site.change("accounts", version)
        site.publish(smoke=False)
    write_outputs(site.project, site.outputs)
    env = site.project.env("local")
    capsys.readouterr()
    assert _releases(site.project, env, "2") is None
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()[1:3]] == ["2", "3"]
    assert (
        "showing the newest 2 of 3 releases; `doit releases env=local limit=all` (or "
        "limit=N) lists more"
    ) in out
    for limit in ("all", "3", ""):
        _releases(site.project, env, limit)
        out = capsys.readouterr().out
        assert "showing the newest" not in out and out.splitlines()[1].split()[0] == "1"
    with pytest.raises(MfeError, match=r"doit releases limit='0': give a positive whole number"):
        _releases(site.project, env, "0")


def test_a_whole_rollback_after_an_app_rollback_does_not_undo_it(site: Site) -> None:
    """`rollback app=accounts` took accounts 3 off: a whole rollback right after it does not
    serve it again (it goes back before the app rollback's target, which it serves already,
    payments 2 off), nor does the one after that, which names the release `to=` serves."""
    site.publish()
    site.change("payments", "2")
    site.publish()
    site.change("accounts", "3")
    site.publish()
    first, second, third = history(site)
    rollback(site.project, "local", outputs=site.outputs, app="accounts")
    app_rollback = live(site)
    assert (app_rollback.rollback_app, app_rollback.took_off) == ("accounts", third.release)
    back = rollback(site.project, "local", outputs=site.outputs)  # smoke-checked
    assert back.rollback_of == first.release
    versions = {name: v.version for name, v in live(site).apps.items()}
    assert versions == {name: v.version for name, v in first.apps.items()}
    assert sha(served(site)) == first.page.sha256
    check_consistent(site)
    shown = show(site.project, site.project.env("local"), site.outputs)
    assert f"[rollback of accounts to {second.release} (took off accounts of {third.release})]" in (
        shown
    )
    with pytest.raises(MfeError) as refused:
        rollback(site.project, "local", outputs=site.outputs)
    assert "that a rollback did not take off" in str(refused.value)
    assert "`doit rollback env=local to=4` serves it anyway" in str(refused.value)


def test_a_whole_rollback_records_the_release_it_took_off(site: Site) -> None:
    """`doit releases` says which release a whole rollback restored and which it took
    off; a record written before records had `took_off` still reads, without it."""
    from mfe.publish.releases_cmd import show

    site.publish()
    site.change("accounts", "2")
    site.publish()
    first, second = history(site)
    rollback(site.project, "local", outputs=site.outputs, smoke=False)
    record = history(site)[-1]
    assert (record.rollback_of, record.took_off) == (first.release, second.release)
    assert (record.rollback_app, live(site).took_off) == (None, second.release)
    env = site.project.env("local")
    assert f"[rollback to {first.release} (took off {second.release})]" in show(
        site.project, env, site.outputs
    )
    s3, bucket = site.server.client(), site.bucket("mfe-parent")
    key = f"_mfe/history/{record.seq:010d}.json"
    old = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    del old["took_off"]  # as written before the field existed
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(old).encode())
    assert history(site)[-1].took_off is None
    shown = show(site.project, env, site.outputs).splitlines()
    assert shown[3].endswith(f"[rollback to {first.release}]")


def test_app_rollbacks_go_back_one_version_each_never_to_one_an_app_rollback_took_off(
    site: Site, tmp_path: Path
) -> None:
    """accounts v1, v2, v4; `rollback app=accounts` (v2) records v4 as taken off; bob
    publishes payments; once more: v1, not v4 again (it swapped v4/v2 before); bob again;
    once more: refused, saying a rollback took the earlier versions off and which `to=`
    serves one anyway. A whole rollback then serves no accounts version taken off."""
    versions = {}
    for version in ("v1", "v2", "v4"):
        site.change("accounts", version)
        site.publish(smoke=False)
        versions[live(site).apps["accounts"].version] = version
    bob = Clone(site, tmp_path / "bob")

    def accounts() -> str:
        return versions[live(site).apps["accounts"].version]

    def app_rollback() -> str:
        rollback(site.project, "local", outputs=site.outputs, smoke=False, app="accounts")
        return accounts()

    assert app_rollback() == "v2"
    assert (live(site).took_off, live(site).rollback_app) == (history(site)[2].release, "accounts")
    bob.change("payments", "p1")
    bob.publish(smoke=False, app="payments")
    assert app_rollback() == "v1", swaps(history(site))
    bob.change("payments", "p2")
    bob.publish(smoke=False, app="payments")
    with pytest.raises(MfeError) as refused:
        app_rollback()
    message = str(refused.value)
    assert "has no release of app 'accounts' before" in message
    assert "that a rollback did not take off" in message
    assert "such as accounts of release " in message
    assert "`doit rollback env=local app=accounts to=5` serves it anyway" in message
    assert accounts() == "v1"
    rollback(site.project, "local", outputs=site.outputs, smoke=False)  # payments p1
    rollback(site.project, "local", outputs=site.outputs, smoke=False)  # back before all
    assert accounts() == "v1" and live(site).rollback_of == history(site)[0].release
    check_consistent(site)
    rollback(site.project, "local", outputs=site.outputs, smoke=False, app="accounts", to="5")
    assert accounts() == "v2"  # `to=` still names it


def test_an_app_rollback_records_the_commit_of_the_version_it_restores(site: Site) -> None:
    """payments 2 is from c2; accounts 2 published alone from c3 (its record names c3);
    payments 3 from c4. `rollback app=payments` serves payments 2 again from the accounts
    release: its record (and `doit releases`) names c2, where that version came from, not
    c3 (whose dirt is not that version's: not known)."""
    (site.root / ".gitignore").write_text(".mfe/\n")
    git(site.root, "init", "-q", "-b", "main")
    committed(site.root, "v1")
    site.publish(smoke=False)
    site.change("payments", "2")
    c2 = committed(site.root, "payments 2")
    site.publish(smoke=False)
    site.change("accounts", "2")
    c3 = committed(site.root, "accounts 2")
    publish(site.project, "local", outputs=site.outputs, smoke=False, app="accounts")
    site.change("payments", "3")
    committed(site.root, "payments 3")
    site.publish(smoke=False)
    third = history(site)[2]
    assert (third.commit, third.apps["payments"].commit) == (c3, c2)
    back = roll_back(site, smoke=False)
    assert back.rollback_of == third.release and back.dirty is None
    record = history(site)[-1]
    assert (record.commit, record.apps["payments"].commit, record.dirty) == (c2, c2, None)
    shown = show(site.project, site.project.env("local"), site.outputs).splitlines()
    assert re.search(
        rf"  {c2[:12]} +payments  .*\[rollback of payments to {third.release}", shown[5]
    )


def test_a_publish_finding_anothers_commit_step_under_way_does_not_call_it_stopped(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """B's publish is writing its history record (the last of its commit step) when A's
    starts: A finishes that step too, harmlessly, and says what it found without claiming
    that B's command died; B then ends normally."""
    site.publish(smoke=False)
    other = Clone(site, tmp_path / "b")
    other.change("payments", "2")
    proxy = FailingProxy(
        site.server.endpoint, hold=lambda m, p: m == "PUT" and "/_mfe/history/" in p
    )
    use_port(other.root, proxy.port)
    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(other.publish(smoke=False)))
    thread.start()
    try:
        assert proxy.held.wait(60), "B never wrote its history record"
        capsys.readouterr()
        report = site.publish(smoke=False)
        said = capsys.readouterr().out
    finally:
        proxy.release.set()  # B's held write is refused (503) and retried
        thread.join(60)
        proxy.close()
    pending = live(site)
    assert (pending.seq, pending.changed, report["noop"]) == (2, ["payments"], True)
    assert (
        f"publish: release {pending.release} (seq 2) is live but its commit step is not done "
        "(another command is finishing it, or one was stopped): finishing it\n"
    ) in said
    assert "finishing release" not in said
    assert done and done[0]["release"] == pending.release  # B's own publish ended well
    assert entry(other.root, "payments") in check_consistent(site).decode()


def test_a_cached_copy_cut_short_is_fetched_again(site: Site, tmp_path: Path) -> None:
    """A publish rendering other apps from the pointer caches their JavaScript; a copy a
    killed publish (or a full disk) cut short is not trusted by the next publish."""
    site.publish()
    ci = Clone(site, tmp_path / "ci")
    shutil.rmtree(ci.root / "apps" / "accounts" / "dist")  # this runner built payments only
    ci.change("payments", "2")
    ci.publish(app="payments")
    name = entry(site.root, "accounts")
    version = live(site).apps["accounts"].version
    cached = load_project(ci.root).state_dir("local") / "dist-cache" / "accounts" / version / name
    body = (site.root / "apps" / "accounts" / "dist" / name).read_bytes()
    assert cached.read_bytes() == body
    cached.write_bytes(body[: len(body) // 2])
    ci.change("payments", "3")
    ci.publish(app="payments")
    assert cached.read_bytes() == body


@pytest.mark.parametrize("pruned", ["script", "file list"])
def test_a_version_file_pruned_before_the_page_is_rendered_is_named(
    site: Site, tmp_path: Path, pruned: str
) -> None:
    """Another checkout renders the page with a live version it never built or cached: a
    file of it that a prune deleted (its entry script, or the list of its files that the
    page is rendered from) says which, where, and what to do; nothing is swapped."""
    site.publish()
    other = Clone(site, tmp_path / "b")  # it builds accounts v1 only
    site.change("accounts", "2")
    site.publish(app="accounts")
    before, page = live(site), served(site)
    version = before.apps["accounts"].version
    gone = entry(site.root, "accounts") if pruned == "script" else version_key("accounts", version)
    site.server.client().delete_object(Bucket=site.bucket("accounts"), Key=gone)
    other.change("payments", "2")
    with pytest.raises(MfeError) as refused:
        other.publish(app="payments")
    assert str(refused.value) == (
        f"app 'accounts' version {before.apps['accounts'].version[:12]}: {gone} is no longer "
        f"in bucket '{site.bucket('accounts')}' (pruned?); publish that app again"
    )
    assert live(site) == before and served(site) == page


def test_prune_trims_the_checkouts_caches_to_the_kept_releases(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """A long-lived checkout caches every version of the others' apps it rendered with;
    `--prune` keeps what the kept releases name and anything recent (grace_seconds)."""
    site = Site(tmp_path / "a", moto_s3, keep_releases=1)
    site.publish()
    ci = Clone(site, tmp_path / "ci")
    shutil.rmtree(ci.root / "apps" / "accounts" / "dist")  # accounts comes from the pointer
    for trial in range(3):
        site.change("accounts", f"a{trial}")
        site.publish()
        ci.change("payments", f"p{trial}")
        ci.publish(app="payments")
    state = load_project(ci.root).state_dir("local")

    def cached() -> dict[str, set[str]]:
        return {
            "versions": {f"{p.parent.name}/{p.stem}" for p in state.glob("versions/*/*.json")},
            "dist-cache": {f"{p.parent.name}/{p.name}" for p in state.glob("dist-cache/*/*")},
            "pages": {p.stem for p in state.glob("pages/*.html")},
        }

    before = cached()
    assert len({v for v in before["dist-cache"] if v.startswith("accounts/")}) == 3  # a0-a2
    # What writes killed between write_atomic's create and rename leave, in each cache.
    written = [f for f in state.rglob("*") if f.is_file()]
    assert {f.relative_to(state).parts[0] for f in written} >= {"versions", "dist-cache", "pages"}
    leftovers = [f.parent / f".{f.name}.k1ll3d.tmp" for f in written]
    for leftover in leftovers:
        leftover.write_text("half")
    ci.publish(app="payments", prune=True)
    kept = cached()  # all younger than grace_seconds: another command may use them
    assert all(before[name] <= kept[name] for name in before), (before, kept)
    assert all(leftover.exists() for leftover in leftovers)  # or be writing them now
    hours_ago = time.time() - 7200
    for path in state.rglob("*"):
        os.utime(path, (hours_ago, hours_ago))
    ci.publish(app="payments", prune=True)
    now = live(site)
    named = {f"{app}/{v.version}" for app, v in now.apps.items()}
    after = cached()
    assert f"accounts/{now.apps['accounts'].version}" in after["dist-cache"]
    assert after["dist-cache"] <= named and after["versions"] <= named
    assert after["pages"] == {now.page.sha256}
    assert not list(state.rglob(".*.tmp"))
    previous = history(site)[-2].page
    rollback(load_project(ci.root), "local", outputs=site.outputs)  # fetches what it needs
    assert sha(served(site)) == previous.sha256


def test_two_commands_fill_one_cold_version_cache_at_once(site: Site, tmp_path: Path) -> None:
    """Two commands of one checkout (a rollback during a preview, say) read the same app
    version from the bucket at once and both cache it."""
    site.publish()
    version, bucket = live(site).apps["accounts"].version, site.bucket("accounts")
    s3 = site.server.client()  # botocore clients are thread-safe
    expected = read_version(s3, bucket, "accounts", version, tmp_path / "reference")
    for trial in range(2 * TRIALS):
        state = tmp_path / f"state-{trial}"
        read = [partial(read_version, s3, bucket, "accounts", version, state)] * 2
        assert together(*read) == [expected, expected]
        assert [p.name for p in state.rglob("*") if p.is_file()] == [f"{version}.json"]


def test_preview_is_live_listed_removed_and_kept_by_prune(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    site = Site(tmp_path / "a", moto_s3, grace_seconds=0)
    site.publish()
    page = served(site)
    site.change("accounts", "preview")
    report = publish_preview(site.project, "local", "pr-7", outputs=site.outputs)  # smoke-checked
    base = site.outputs.apps["mfe-parent"].base_url
    assert report["url"] == f"{base}previews/pr-7/index.html"
    assert report["changed"] == ["accounts"]
    uploaded = report["apps"]["accounts"]["uploaded"]
    assert (
        len(uploaded) == 2 and report["requests"]["s3"] <= len(uploaded) + 8
    )  # + reads, the history check, the page's and record's ETags, record, page, record
    preview_page = httpx.get(report["url"]).text
    assert entry(site.root, "accounts") in preview_page
    assert served(site) == page  # live page byte-identical
    from mfe.publish.releases_cmd import show

    assert "preview pr-7: accounts over seq 1" in show(
        site.project, site.project.env("local"), site.outputs
    )
    write_app(site.root, "accounts", "1")  # back to the live build; prune keeps the preview's files
    site.publish(prune=True)
    assert set(uploaded) <= set(objects(site.server, site.bucket("accounts")))
    smoke_check(report["url"], attempts=1)
    preview_rm(site.project, "local", "pr-7", outputs=site.outputs)
    assert httpx.get(report["url"]).status_code in (403, 404)
    with pytest.raises(MfeError, match="no preview named 'pr-7'"):
        preview_rm(site.project, "local", "pr-7", outputs=site.outputs)
    site.publish(prune=True)
    assert not set(uploaded) & set(objects(site.server, site.bucket("accounts")))


def test_a_preview_records_and_shows_the_commit_it_was_published_from(site: Site) -> None:
    """A preview's pointer and report say which commit it shows and whether its sources
    were uncommitted, and `doit releases` shows it as a release's (`<commit>-dirty`); a
    preview pointer written before those fields still reads and shows as before."""
    from mfe.publish.previews import list_previews
    from mfe.publish.releases_cmd import show

    (site.root / ".gitignore").write_text(".mfe/\n")
    git(site.root, "init", "-q", "-b", "main")
    committed(site.root, "v1")
    site.publish(smoke=False)
    site.change("payments", "pr")
    head = committed(site.root, "payments pr")
    clean = publish_preview(site.project, "local", "pr-1", outputs=site.outputs, smoke=False)
    assert (clean["commit"], clean["dirty"]) == (head, False)
    source = site.root / "apps" / "accounts" / "package.json"
    source.write_text(source.read_text().replace('"true"', '"true "'))  # an uncommitted edit
    site.change("accounts", "pr")
    dirty = publish_preview(site.project, "local", "pr-2", outputs=site.outputs, smoke=False)
    assert (dirty["commit"], dirty["dirty"]) == (head, True)
    state = site.root / ".mfe" / "local" / "preview-report.json"
    assert json.loads(state.read_text())["dirty"] is True
    s3, bucket = site.server.client(), site.bucket("mfe-parent")
    found = {p.name: (p.commit, p.dirty) for p in list_previews(s3, bucket)}
    assert found == {"pr-1": (head, False), "pr-2": (head, True)}
    shown = show(site.project, site.project.env("local"), site.outputs)
    assert f"preview pr-1: payments over seq 1 from {head[:12]}  http" in shown
    assert f"preview pr-2: accounts,payments over seq 1 from {head[:12]}-dirty  http" in shown
    key = "_mfe/previews/pr-1.json"
    old = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    del old["commit"], old["dirty"]  # as written before the fields existed
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(old).encode())
    assert {p.name: p.commit for p in list_previews(s3, bucket)}["pr-1"] is None
    shown = show(site.project, site.project.env("local"), site.outputs)
    assert "preview pr-1: payments over seq 1  http" in shown


def test_a_preview_says_which_builds_it_kept_at_their_live_version(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """After `rollback app=accounts` this checkout still holds the build it took off: a
    preview shows live's accounts, as a publish would, and says so (the terminal, the
    report's `held`): never "same as live", which it is not."""
    from mfe.tasks.publish import _preview

    site.publish(smoke=False)
    site.change("accounts", "bad")
    site.publish(smoke=False)
    rollback(site.project, "local", outputs=site.outputs, app="accounts", smoke=False)
    good = live(site).apps["accounts"].version
    write_outputs(site.project, site.outputs)
    env = site.project.env("local")
    capsys.readouterr()
    _preview(site.project, env, "try1")
    out = capsys.readouterr().out
    assert "accounts built here is a version a rollback took off; keeping the live one, " in out
    assert " (publish a fix)\n" in out
    assert "preview try1: no app changed (held: accounts, a version a rollback took off) " in out
    assert "same as live" not in out
    report = json.loads((site.root / ".mfe/local/preview-report.json").read_text())
    assert report["changed"] == []
    assert report["held"]["accounts"].startswith(
        "the version built here is one a rollback took off; live is from a checkout without "
        "a commit, published "
    )
    assert entry(site.root, "accounts") not in httpx.get(report["url"]).text
    assert live(site).apps["accounts"].version == good

    site.change("payments", "2")
    capsys.readouterr()
    _preview(site.project, env, "try2")
    out = capsys.readouterr().out
    assert "preview try2: payments (held: accounts, a version a rollback took off) " in out
    site.change("accounts", "fix")  # a new build: previewed, nothing held
    _preview(site.project, env, "try3")
    assert "preview try3: accounts, payments over release " in capsys.readouterr().out


def test_prune_keeps_the_files_a_preview_shares_with_the_version_it_overlays(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """A preview whose changed app keeps most of its live files (here the entry) uploads
    only what is new; those shared files must outlive the live version's keep window."""
    site = Site(tmp_path / "a", moto_s3, keep_releases=1, grace_seconds=0)
    site.publish()
    write_app(site.root, "accounts", "1", extra={"notes.txt": b"pr change\n"})
    report = publish_preview(site.project, "local", "pr-8", outputs=site.outputs)
    shared = entry(site.root, "accounts")
    assert shared not in report["apps"]["accounts"]["uploaded"]  # already online
    for version in ("2", "3"):  # the version the preview overlays leaves the kept releases
        site.change("accounts", version)
        site.publish(prune=True)
    assert shared in objects(site.server, site.bucket("accounts"))
    smoke_check(report["url"], attempts=1)


def test_a_preview_overlays_a_release_a_prune_let_go_while_it_was_written(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """B writes a preview over release 1; before its preview pointer is written (which
    `--prune` would keep), A publishes accounts 2 with --prune, which lets release 1's
    accounts go. The preview must not end naming deleted files: it is written again over
    the release A made live, and loads."""
    site = Site(tmp_path / "a", moto_s3, keep_releases=1, grace_seconds=0)
    site.publish(smoke=False)
    other = Clone(site, tmp_path / "b")
    other.change("payments", "pr")
    write_outputs(load_project(other.root), site.outputs)
    first = entry(site.root, "accounts")
    pointer_puts = [0]

    def gate(method: str, path: str) -> None:
        if method == "PUT" and "/_mfe/previews/" in path:
            pointer_puts[0] += 1
            if pointer_puts[0] == 1:  # A's release and prune land before it
                site.change("accounts", "2")
                site.publish(prune=True, smoke=False)

    proxy = FailingProxy(site.server.endpoint, gate=gate)
    try:
        use_port(other.root, proxy.port)
        report = publish_preview(load_project(other.root), "local", "pr-3", outputs=site.outputs, smoke=False)  # fmt: skip
    finally:
        proxy.close()
    assert first not in objects(site.server, site.bucket("accounts"))  # pruned meanwhile
    smoke_check(report["url"], attempts=1)  # names no deleted file
    page = httpx.get(report["url"]).text
    assert entry(site.root, "accounts") in page and entry(other.root, "payments") in page
    assert report["base_release"] == live(site).release


def test_prune_keeps_what_an_old_format_preview_record_uses(
    tmp_path: Path, moto_s3: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """A preview record written before records had `files` names only what the preview
    uploaded; the files its page shares with the version it overlays must still outlive
    that version's keep window, and prune says once why it keeps more."""
    site = Site(tmp_path / "a", moto_s3, keep_releases=1, grace_seconds=0)
    site.publish()
    write_app(site.root, "accounts", "1", extra={"notes.txt": b"pr change\n"})
    report = publish_preview(site.project, "local", "pr-old", outputs=site.outputs)
    shared = entry(site.root, "accounts")
    assert shared not in report["apps"]["accounts"]["uploaded"]  # already online
    s3, bucket = site.server.client(), site.bucket("mfe-parent")
    key = "_mfe/previews/pr-old.json"
    record = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    del record["files"]  # as written before the field existed
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(record).encode())
    for version in ("2", "3"):  # the version the preview overlays leaves the kept releases
        site.change("accounts", version)
        capsys.readouterr()
        site.publish(prune=True)
        out = capsys.readouterr().out
        assert out.count("preview 'pr-old' was written before preview records listed") == 1
    assert shared in objects(site.server, site.bucket("accounts"))
    smoke_check(report["url"], attempts=1)
    preview_rm(site.project, "local", "pr-old", outputs=site.outputs)
    site.publish(prune=True)  # once removed, its files go
    assert shared not in objects(site.server, site.bucket("accounts"))


def test_preview_rm_fails_when_s3_refuses_the_deletes(site: Site) -> None:
    """A policy denying s3:DeleteObject: the removal must fail, naming the bucket, the page
    stays up and `doit releases` says the removal was not finished."""
    site.publish()
    site.change("accounts", "pr")
    report = publish_preview(site.project, "local", "pr-9", outputs=site.outputs)
    moto_port = site.port
    proxy = FailingProxy(site.server.endpoint, refuse_deletes=True)
    try:
        site.point_at(proxy.port)
        with pytest.raises(
            MfeError, match=r"access denied while removing preview pr-9 in bucket 'pub"
        ):
            preview_rm(site.project, "local", "pr-9", outputs=site.outputs)
    finally:
        proxy.close()
        site.point_at(moto_port)
    assert httpx.get(report["url"]).status_code == 200
    shown = show(site.project, site.project.env("local"), site.outputs)
    assert "preview pr-9 is being removed" in shown
    preview_rm(site.project, "local", "pr-9", outputs=site.outputs)  # allowed again: removed
    assert httpx.get(report["url"]).status_code in (403, 404)


# ------------------------------------------------------- a live app this checkout lacks


def add_app(site: Site, root: Path, app: str) -> None:
    """What the team adding `app` commits: its folder and `[apps.<app>]` in mfe.toml; its
    bucket (as `doit infra` would make it) is in the environment's outputs."""
    (root / "apps" / app).mkdir(parents=True)
    (root / "apps" / app / "package.json").write_text(
        json.dumps({"name": app, "scripts": {"build": "true"}})
    )
    write_app(root, app)
    toml = root / "mfe.toml"
    toml.write_text(toml.read_text().replace("[publish]", f"[apps.{app}]\n\n[publish]", 1))
    if app not in site.outputs.apps:
        extra = provision(site.server, site.name, apps=(app,)).apps
        site.outputs = replace(site.outputs, apps={**site.outputs.apps, **extra})


def remove_app(root: Path, app: str) -> None:
    shutil.rmtree(root / "apps" / app)
    toml = root / "mfe.toml"
    toml.write_text(toml.read_text().replace(f"[apps.{app}]\n\n", ""))


def store(site: Site) -> dict[str, dict[str, str]]:
    """Every bucket's keys and ETags."""
    return {app: objects(site.server, out.bucket) for app, out in site.outputs.apps.items()}


def committed(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    return git(root, "rev-parse", "HEAD").strip()


def refused_after_a_lost_race(site: Site, other: Clone, act: Any) -> MfeError:
    """`act()` on `site`, whose first pointer write waits while `other` publishes `orders`
    (so it loses and re-reads): the refusal it must end with, after that one write."""
    port = site.port
    proxy = FailingProxy(
        site.server.endpoint, hold=lost_race(lambda: other.publish(smoke=False, app="orders"))
    )
    try:
        site.point_at(proxy.port)
        with pytest.raises(MfeError) as refused:
            act()
    finally:
        proxy.close()
        site.point_at(port)
    pointer_puts = [path for path in proxy.paths if path.endswith(POINTER)]
    assert len(pointer_puts) == 1  # it passed the first check, lost its swap, then refused
    return refused.value


def test_an_older_checkout_does_not_take_another_teams_app_off_the_page(
    site: Site, tmp_path: Path
) -> None:
    """The walkthrough: B added orders and published it; A, without orders, publishes
    payments. Refused before anything is written (plan too); after pulling, both are live."""
    git(site.root, "init", "-q", "-b", "main")
    committed(site.root, "v1")
    site.publish()
    other = Clone(site, tmp_path / "b")
    add_app(site, other.root, "orders")
    added = committed(other.root, "add orders")
    other.publish(smoke=False)
    before, page = store(site), served(site)
    site.change("payments", "2")
    message = (
        f"publish to environment 'local' refused: the live page has orders (published from "
        f"{added[:12]}), which this checkout does not have (no apps/<name>/package.json) "
        "and which no commit this checkout descends from removed (an older commit, or "
        "another branch?), so publishing would take orders off the page; pull and publish "
        "again; to take orders off the page on purpose, pass --force"
    )
    for dry_run in (True, False):
        with pytest.raises(MfeError) as refused:
            site.publish(dry_run=dry_run)
        assert str(refused.value) == message
    assert store(site) == before and served(site) == page
    assert "orders" in live(site).apps and entry(other.root, "orders") in page.decode()
    committed(site.root, "payments 2")
    git(site.root, "pull", "-q", "--no-rebase", "--no-edit", str(other.root), "main")
    report = site.publish()
    assert (report["changed"], report["removed"], report["forced"]) == (["payments"], [], [])
    page = check_consistent(site)
    assert entry(site.root, "orders") in page.decode() and entry(site.root, "payments") in page.decode()  # fmt: skip
    assert set(live(site).apps) == {"mfe-parent", "accounts", "payments", "orders"}


def test_an_app_published_from_uncommitted_changes_is_refused_saying_no_pull_brings_it(
    site: Site, tmp_path: Path
) -> None:
    """B published orders from files it never committed (`doit releases`: `<commit>-dirty`):
    "pull and publish again" could never bring it, so the refusal says what it is and who
    can (its publisher, by committing), or --force to take it off."""
    git(site.root, "init", "-q", "-b", "main")
    head = committed(site.root, "v1")
    site.publish()
    other = Clone(site, tmp_path / "b")
    add_app(site, other.root, "orders")  # not committed
    other.publish(smoke=False)
    site.change("payments", "2")
    with pytest.raises(MfeError) as refused:
        site.publish()
    message = str(refused.value)
    assert "\n" not in message
    assert f"the live page has orders (published from uncommitted changes of {head[:12]} by " in (
        message
    )
    assert message.endswith(
        "; no pull can bring orders (uncommitted changes): ask whoever published it to commit "
        "and push, then pull and publish again; to take orders off the page on purpose, pass "
        "--force"
    ), message


def test_a_removal_in_a_newer_commit_takes_the_app_off_pointer_and_page(
    site: Site, tmp_path: Path
) -> None:
    git(site.root, "init", "-q", "-b", "main")
    add_app(site, site.root, "orders")
    committed(site.root, "v1 with orders")
    site.publish()
    remove_app(site.root, "orders")
    committed(site.root, "orders retired")
    plan = publish(site.project, "local", outputs=site.outputs, dry_run=True)
    assert (plan.removed, plan.forced, plan.noop) == (["orders"], [], False)
    assert "remove  orders: off the page (removed in a commit after its live version)" in (
        plan_lines(plan)
    )
    report = site.publish()
    assert (report["removed"], report["forced"], report["changed"]) == (["orders"], [], [])
    assert set(live(site).apps) == {"mfe-parent", "accounts", "payments"}
    page = check_consistent(site).decode()
    assert "orders" not in page
    record = history(site)[-1]
    assert (record.changed, record.forced) == (["orders (removed)"], [])
    assert "orders (removed)" in lines([record])[0]
    assert site.publish()["noop"]  # pointer and page agree: nothing left to do
    with_orders = history(site)[-2]
    rollback(site.project, "local", outputs=site.outputs)  # a stored page: this checkout's
    assert live(site).apps == with_orders.apps  # apps play no part, orders comes back whole
    assert sha(check_consistent(site)) == with_orders.page.sha256


def test_force_takes_off_an_app_whose_removal_cannot_be_told(site: Site, tmp_path: Path) -> None:
    """No git: the live orders has no commit, so publish cannot tell whether this checkout
    is older than it; refused, and --force takes it off (recorded as forced)."""
    site.publish()
    other = Clone(site, tmp_path / "b")
    add_app(site, other.root, "orders")
    other.publish(smoke=False)
    site.change("payments", "2")
    with pytest.raises(MfeError) as refused:
        site.publish()
    assert "the live page has orders (published without a commit)" in str(refused.value)
    report = site.publish(force=True)
    assert (report["changed"], report["removed"], report["forced"]) == (
        ["payments"], ["orders"], ["orders"])  # fmt: skip
    assert set(live(site).apps) == {"mfe-parent", "accounts", "payments"}
    page = check_consistent(site).decode()
    assert entry(site.root, "payments") in page and "orders" not in page
    record = history(site)[-1]
    assert (record.changed, record.forced) == (["payments", "orders (removed)"], ["orders"])


def test_an_app_added_during_the_publish_is_not_taken_off(site: Site, tmp_path: Path) -> None:
    """A reads the pointer without orders and uploads; B puts orders live before A's swap.
    A's retry applies the rule to the pointer it lost to: refused before its swap, and B's
    release stays served, whole."""
    site.publish()
    other = Clone(site, tmp_path / "b")
    add_app(site, other.root, "orders")
    for trial in range(3):
        other.change("orders", f"o{trial}")
        site.change("payments", f"p{trial}")
        refused = refused_after_a_lost_race(site, other, lambda: site.publish(smoke=False))
        assert str(refused).endswith(
            "so publishing would take orders off the page (another publish put it live while "
            "this one ran; what this one uploaded is content-addressed and changes nothing "
            "served); pull and publish again; to take orders off the page on purpose, pass --force"
        )
        winner = live(site)
        assert winner.changed == ["orders"] and winner.apps["orders"].commit is None
        page = check_consistent(site).decode()
        assert entry(other.root, "orders") in page and entry(site.root, "payments") not in page
        site.publish(force=True, smoke=False)  # A takes it off on purpose, for the next trial
        assert "orders" not in live(site).apps


# ------------------------------------------- an app rollback re-renders this checkout's page


def roll_back(site: Site, **options: Any) -> Any:
    return rollback(site.project, "local", outputs=site.outputs, app="payments", **options)


def two_payments(site: Site) -> str:
    """Releases 1 and 2 (payments 1, then 2) from `site`'s git checkout; payments 1's entry."""
    (site.root / ".gitignore").write_text(".mfe/\n")  # local state, as in a real monorepo
    git(site.root, "init", "-q", "-b", "main")
    committed(site.root, "v1")
    site.publish(smoke=False)
    first = entry(site.root, "payments")
    site.change("payments", "2")
    committed(site.root, "payments 2")
    site.publish(smoke=False)
    return first


def test_a_publish_from_uncommitted_sources_is_recorded_and_shown_dirty(site: Site) -> None:
    """A release published with an app's source edited but not committed says so (record,
    report, `doit releases`: `<commit>-dirty`); its commit stays the ancestry checks' input.
    Rebuilt dist/ files (tracked here: nothing ignores them), another app's edit under a
    per-app publish, and a clean checkout record no dirt."""
    from mfe.publish.releases_cmd import show

    (site.root / ".gitignore").write_text(".mfe/\n")
    git(site.root, "init", "-q", "-b", "main")
    head = committed(site.root, "v1")
    assert site.publish(smoke=False)["dirty"] is False
    source = site.root / "apps" / "payments" / "package.json"
    source.write_text(source.read_text().replace('"true"', '"true "'))  # an uncommitted edit
    site.change("payments", "2")
    assert site.publish(smoke=False)["dirty"] is True
    site.change("accounts", "2")  # payments' edit is not in a publish of accounts alone
    accounts = publish(site.project, "local", outputs=site.outputs, smoke=False, app="accounts")
    assert accounts.dirty is False
    first, second, third = history(site)
    assert (first.dirty, second.dirty, third.dirty) == (False, True, False)
    assert second.commit == head and live(site).dirty is False
    shown = show(site.project, site.project.env("local"), site.outputs).splitlines()
    assert f"  {head[:12]}  " in shown[1] and f"  {head[:12]}  " in shown[3]
    assert f"  {head[:12]}-dirty  payments  " in shown[2]
    now = committed(site.root, "payments 2")
    site.change("payments", "3")  # a rebuild from the committed sources: clean again
    assert site.publish(smoke=False)["dirty"] is False
    assert (history(site)[-1].dirty, history(site)[-1].commit) == (False, now)
    back = rollback(site.project, "local", outputs=site.outputs, smoke=False, to="2")
    assert back.dirty is True and history(site)[-1].dirty is True  # the bytes it serves again
    s3, bucket = site.server.client(), site.bucket("mfe-parent")
    key = f"_mfe/history/{second.seq:010d}.json"
    old = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    del old["dirty"]  # as written before the field existed
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(old).encode())
    assert history(site)[1].dirty is None
    shown = show(site.project, site.project.env("local"), site.outputs).splitlines()
    assert re.search(rf"  {head[:12]} +  payments  ", shown[2])  # columns sized to the rows


def test_releases_columns_line_up_with_their_header(site: Site) -> None:
    """`doit releases` sizes each column to its widest cell: a `-dirty` commit and a
    three-app list start where their header does, on every line."""
    from mfe.publish.history import commit_label
    from mfe.publish.releases_cmd import show

    (site.root / ".gitignore").write_text(".mfe/\n")
    git(site.root, "init", "-q", "-b", "main")
    committed(site.root, "v1")
    site.publish(smoke=False)
    source = site.root / "apps" / "payments" / "package.json"
    source.write_text(source.read_text().replace('"true"', '"true "'))  # an uncommitted edit
    site.change("payments", "2")
    site.publish(smoke=False)
    header, *rows = show(site.project, site.project.env("local"), site.outputs).splitlines()
    records = history(site)
    assert header.split() == ["seq", "release", "time", "commit", "apps", "by"]
    for row, rec in zip(rows, records, strict=False):
        cells = {
            "release": rec.release,
            "time": rec.created,
            "commit": commit_label(rec.commit, rec.dirty),
            "apps": ",".join(rec.changed),
            "by": rec.by,
        }
        for column, value in cells.items():
            assert row.index(value) == header.index(column), (column, header, row)
        assert row.index(str(rec.seq)) + len(str(rec.seq)) == header.index("seq") + len("seq")
    assert [r.dirty for r in records] == [False, True]


def test_a_plan_says_plan_for_an_app_it_holds_back(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A checkout whose build of accounts another team replaced keeps the live one; its
    `doit plan` says so as a plan, not as `publish:`."""
    site.publish(smoke=False)
    other = Clone(site, tmp_path / "b")
    other.change("accounts", "2")
    other.publish(smoke=False)
    capsys.readouterr()
    publish(site.project, "local", outputs=site.outputs, dry_run=True)
    out = capsys.readouterr().out
    assert "plan: accounts built here is a version live has replaced" in out, out
    assert "publish:" not in out


def test_an_app_rollback_from_an_older_checkout_keeps_another_teams_app(
    site: Site, tmp_path: Path
) -> None:
    """B put orders live; A, without it, rolls payments back: refused before anything is
    written (the page it renders would lack orders); after pulling, both are on the page."""
    first = two_payments(site)
    other = Clone(site, tmp_path / "b")
    add_app(site, other.root, "orders")
    added = committed(other.root, "add orders")
    other.publish(smoke=False)
    before, page = store(site), served(site)
    with pytest.raises(MfeError) as refused:
        roll_back(site)
    assert str(refused.value) == (
        f"rollback of payments in environment 'local' refused: the live page has orders "
        f"(published from {added[:12]}), which this checkout does not have (no "
        "apps/<name>/package.json) and which no commit this checkout descends from removed "
        "(an older commit, or another branch?), so rolling payments back would take orders "
        "off the page; pull and roll back again, or roll back the whole page with `doit "
        "rollback env=local to=1` (its stored page)"
    )
    assert store(site) == before and served(site) == page
    git(site.root, "pull", "-q", "--no-rebase", "--no-edit", str(other.root), "main")
    report = roll_back(site)
    assert (report.changed, report.removed, report.rollback_of) == (
        ["payments"], [], history(site)[0].release)  # fmt: skip
    page = check_consistent(site)
    assert entry(other.root, "orders") in page.decode() and first in page.decode()
    assert set(live(site).apps) == {"mfe-parent", "accounts", "payments", "orders"}


def test_an_app_rollback_after_a_removal_takes_the_app_off_pointer_and_page(site: Site) -> None:
    add_app(site, site.root, "orders")
    first = two_payments(site)
    remove_app(site.root, "orders")
    committed(site.root, "orders retired")
    report = roll_back(site)
    assert (report.changed, report.removed) == (["payments"], ["orders"])
    assert set(live(site).apps) == {"mfe-parent", "accounts", "payments"}
    page = check_consistent(site).decode()
    assert first in page and "orders" not in page
    assert history(site)[-1].changed == ["payments", "orders (removed)"]


def test_an_app_added_during_an_app_rollback_is_not_taken_off(site: Site, tmp_path: Path) -> None:
    """A chooses its target from a pointer without orders; B puts orders live before A's
    swap. A's retry applies the rule to the pointer it lost to: refused before its swap,
    and B's release stays served, whole."""
    two_payments(site)
    other = Clone(site, tmp_path / "b")
    add_app(site, other.root, "orders")
    for trial in range(3):
        other.change("orders", f"o{trial}")
        refused = refused_after_a_lost_race(site, other, lambda: roll_back(site, smoke=False))
        assert str(refused).endswith(
            "so rolling payments back would take orders off the page (another publish put it "
            "live while this one ran; what this one uploaded is content-addressed and changes "
            "nothing served); no pull can bring orders (uncommitted changes): ask whoever "
            "published it to commit and push, then pull and roll back again, or roll back the "
            "whole page with `doit rollback env=local to=1` (its stored page)"
        )  # B's clone published orders from uncommitted changes
        winner = live(site)
        assert winner.changed == ["orders"] and winner.action == "publish"
        page = check_consistent(site).decode()
        assert entry(other.root, "orders") in page and entry(site.root, "payments") in page
        site.publish(force=True, smoke=False)  # A takes orders off on purpose, for the next trial
        assert "orders" not in live(site).apps


def test_a_whole_rollback_to_before_an_app_was_added_says_it_took_it_off(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rolling back the whole page to a release older than `orders` serves that release's
    page, without orders: the report, the record and the console say so, and the rollback's
    progress lines (its invalidation) are its own, not publish's."""
    site.publish(smoke=False)
    add_app(site, site.root, "orders")
    site.publish(smoke=False)
    write_outputs(site.project, site.outputs)
    capsys.readouterr()
    assert run_rollback(site.project, site.project.env("local")) is None
    out = capsys.readouterr().out.splitlines()
    report = json.loads((site.root / ".mfe/local/publish-report.json").read_text())
    assert report["removed"] == ["orders"]
    assert history(site)[-1].changed == ["orders (removed)"]
    assert "orders" not in live(site).apps and "orders" not in served(site).decode()
    first = history(site)[0].release
    assert f"rollback: took off the page: orders (not in release {first})" in out, out
    labelled = r"rollback: invalidating /index\.html on distribution \w+ \(invalidation \w+\)"
    assert any(re.fullmatch(labelled, line) for line in out), out
    assert not [line for line in out if line.startswith("publish:")], out


def test_releases_lists_the_previews_left_when_one_is_removed_while_it_reads_them(
    site: Site,
) -> None:
    """`doit preview_rm` between `doit releases`' listing and its read of that preview:
    the other previews are listed, the removed one is not, nothing fails (it failed on the
    missing key)."""
    from mfe.publish.previews import pointer_key
    from mfe.publish.releases_cmd import show

    site.publish(smoke=False)
    for name in ("pr-1", "pr-2", "pr-3"):
        site.change("accounts", name)
        publish_preview(site.project, "local", name, outputs=site.outputs, smoke=False)
    s3 = site.server.client()

    removed = threading.Event()

    def remove_pr_2_first(method: str, path: str) -> None:
        if method == "GET" and path.split("?")[0].endswith(pointer_key("pr-2")):
            s3.delete_object(Bucket=site.bucket("mfe-parent"), Key=pointer_key("pr-2"))
            removed.set()

    port = site.port
    proxy = FailingProxy(site.server.endpoint, gate=remove_pr_2_first)
    try:
        site.point_at(proxy.port)
        shown = show(site.project, site.project.env("local"), site.outputs)
    finally:
        proxy.close()
        site.point_at(port)
    assert removed.is_set()  # after the listing, as it read pr-2
    assert "preview pr-1: accounts over seq 1" in shown and "preview pr-3:" in shown
    assert "pr-2" not in shown


def test_an_app_rollback_or_publish_leaves_off_an_app_not_yet_live(site: Site) -> None:
    """The checkout added `orders` (mfe.toml, built) but never published it; another team's
    urgent `rollback app=payments`, then `publish app=payments`, from it: the page leaves
    orders off, as live does (it refused, saying to build and publish orders first, which
    would have put an unreleased app live to roll another one back)."""
    first = two_payments(site)
    add_app(site, site.root, "orders")
    report = roll_back(site)
    assert (report.changed, report.removed) == (["payments"], [])
    orders = f"/{site.bucket('orders')}/"  # its entry's URL, were it on the page
    page = check_consistent(site).decode()
    assert first in page and orders not in page
    assert "orders" not in live(site).apps
    site.change("payments", "3")
    site.publish(smoke=False, app="payments")
    page = check_consistent(site).decode()
    assert entry(site.root, "payments") in page and orders not in page
    site.publish(smoke=False)  # a whole publish puts it on
    assert orders in check_consistent(site).decode()
