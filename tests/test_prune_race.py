"""A publish racing another team's `publish --prune` (moto server, threads as machines).

Prune deletes what no kept pointer names once it is older than `grace_seconds`. A publish
that reuses such an object (a revert brings back a chunk of a release prune has let go)
must not end with a live page that references it deleted. The interleavings are put in
order with a proxy in front of one client that blocks chosen requests, so the code has
no test hook; the last test runs the two at the same instant many times.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_releases import TRIALS, Clone, check_consistent, entry, history, live, together

from mfe.config import load_project
from mfe.errors import MfeError
from mfe.publish.plan import AppPlan
from mfe.publish.preview import preview_rm, publish_preview
from mfe.publish.prune import prune
from mfe.publish.refresh import HOLD_PREFIX
from mfe.publish.rollback import rollback
from mfe.publish.run import Run
from mfe.publish.versions import ca_key, read_version, version_key

from fixtures.config import use_port
from fixtures.proxy import FailingProxy
from fixtures.s3 import S3Server, Site, objects, write_app

GRACE = 3
"""Seconds; the tests wait once for the old release's files to be older than this."""
WAIT = 30


@dataclass
class Interleaving:
    """A writes into `bucket`, later `hold`; B deletes from `bucket`. A's first write there
    waits until B (which listed the bucket before it) is about to delete; B's delete waits
    until A reaches `hold`, so it lands after A's write and before `hold`, which waits for
    `done`."""

    bucket: str
    hold: str
    listed: threading.Event = field(default_factory=threading.Event)
    deciding: threading.Event = field(default_factory=threading.Event)
    reached: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    def gate_a(self, method: str, path: str) -> None:
        if method == "PUT" and path.startswith(self.bucket + "/") and not self.listed.is_set():
            self.listed.set()
            assert self.deciding.wait(WAIT)  # B listed the bucket and is about to delete
        if method == "PUT" and path == self.hold and not self.reached.is_set():
            self.reached.set()
            assert self.done.wait(WAIT)

    def gate_b(self, method: str, path: str) -> None:
        if method == "POST" and path.startswith(self.bucket + "?delete"):
            self.deciding.set()
            assert self.reached.wait(WAIT)


def missing(site: Site) -> list[str]:
    """Every file of the live apps' versions, their file lists (which `--prune` deletes
    once no kept release names them), and the page copy, that is not in its bucket."""
    pointer = live(site)
    state = site.project.state_dir("local")
    s3 = site.server.client()
    gone = []
    for app, version in pointer.apps.items():
        files = read_version(s3, site.bucket(app), app, version.version, state)
        keys = {k if r.immutable else ca_key(k, r.sha256) for k, r in files.items()}
        keys.add(version_key(app, version.version))  # the cache above may hold it
        gone += sorted(keys - set(objects(site.server, site.bucket(app))))
    if ca_key("index.html", pointer.page.sha256) not in objects(
        site.server, site.bucket("mfe-parent")
    ):
        gone.append("page copy")
    return gone


def old_release_left_behind(tmp_path: Path, moto_s3: S3Server) -> tuple[Site, Clone, Clone]:
    """accounts v1, then v2: v1's files are named by no kept release (keep_releases = 1)
    and, after the wait, older than the grace period. Clone A still has the v1 build."""
    site = Site(tmp_path / "site", moto_s3, keep_releases=1, grace_seconds=GRACE)
    site.publish()
    a = Clone(site, tmp_path / "a")
    site.change("accounts", "2")
    site.publish()
    b = Clone(site, tmp_path / "b")
    time.sleep(GRACE + 0.5)
    # Team A reverts accounts' entry to v1's bytes and adds a file: v1's chunk comes back.
    write_app(a.root, "accounts", "1", extra={"notes.txt": b"a revert plus a change\n"})
    return site, a, b


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as exc:  # surfaced by the test
            result.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def outcome(thread: threading.Thread, result: list[Any]) -> Any:
    thread.join(WAIT * 2)
    assert result, "the publish did not finish"
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def test_a_prune_between_listing_and_swap_does_not_break_the_page(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """B publishes with --prune after A listed its bucket (A found v1's chunk there) and
    before A uploads or swaps: B deletes the chunk; A's page must load all the same."""
    site, a, b = old_release_left_behind(tmp_path, moto_s3)
    reused = entry(a.root, "accounts")
    listed, pruned = threading.Event(), threading.Event()
    accounts = f"/{site.bucket('accounts')}/"

    def gate(method: str, path: str) -> None:
        if method == "PUT" and path.startswith(accounts) and not listed.is_set():
            listed.set()  # A's first upload: its listing is done
            assert pruned.wait(WAIT)

    proxy = FailingProxy(site.server.endpoint, gate=gate)
    try:
        use_port(a.root, proxy.port)
        thread, result = in_thread(a.publish)  # smoke-checked
        assert listed.wait(WAIT)
        b.change("payments", "2")
        try:
            deleted = b.publish(prune=True)["apps"]["accounts"]["deleted"]
        finally:
            pruned.set()
        assert reused in deleted  # the race took place
        report = outcome(thread, result)
    finally:
        proxy.close()
    assert reused in report["apps"]["accounts"]["uploaded"]
    check_consistent(site)
    assert missing(site) == []
    assert httpx.get(site.outputs.apps["accounts"].base_url + reused).status_code == 200


def test_a_prune_deleting_after_the_refresh_does_not_break_the_page(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """B's prune lists the bucket before A uploads v1's chunk again and deletes it after,
    just before A's swap (B decided on the old copy): A's page must load all the same."""
    site, a, b = old_release_left_behind(tmp_path, moto_s3)
    reused = entry(a.root, "accounts")
    # A's swap holds: everything A uploads is up
    steps = Interleaving(
        f"/{site.bucket('accounts')}", f"/{site.bucket('mfe-parent')}/_mfe/live.json"
    )
    proxy_a = FailingProxy(site.server.endpoint, gate=steps.gate_a)
    proxy_b = FailingProxy(site.server.endpoint, gate=steps.gate_b)
    try:
        use_port(a.root, proxy_a.port)
        use_port(b.root, proxy_b.port)
        thread_a, result_a = in_thread(a.publish)
        assert steps.listed.wait(WAIT)
        thread_b, result_b = in_thread(lambda: b.publish(prune=True))  # B changes nothing
        try:
            deleted = outcome(thread_b, result_b)["apps"]["accounts"]["deleted"]
        finally:
            steps.done.set()
        assert reused in deleted and steps.reached.is_set()  # deleted after A's refresh
        report = outcome(thread_a, result_a)
    finally:
        proxy_a.close()
        proxy_b.close()
    assert reused in report["apps"]["accounts"]["uploaded"]
    check_consistent(site)
    assert missing(site) == []


def test_a_prune_deleting_during_the_commit_step_does_not_break_the_page(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """B's prune reads the pointer for the last time before A's swap and deletes v1's chunk
    only while A's commit step writes the page, after A checked it once: A, not smoke-checked,
    must still end with every file of its page there."""
    site, a, b = old_release_left_behind(tmp_path, moto_s3)
    reused = entry(a.root, "accounts")
    # A's page write holds: swapped and checked, the commit step writes the page
    steps = Interleaving(f"/{site.bucket('accounts')}", f"/{site.bucket('mfe-parent')}/index.html")
    proxy_a = FailingProxy(site.server.endpoint, gate=steps.gate_a)
    proxy_b = FailingProxy(site.server.endpoint, gate=steps.gate_b)
    try:
        use_port(a.root, proxy_a.port)
        use_port(b.root, proxy_b.port)
        thread_a, result_a = in_thread(lambda: a.publish(smoke=False))
        assert steps.listed.wait(WAIT)
        thread_b, result_b = in_thread(lambda: b.publish(prune=True))  # B changes nothing
        try:
            deleted = outcome(thread_b, result_b)["apps"]["accounts"]["deleted"]
        finally:
            steps.done.set()
        assert reused in deleted and steps.reached.is_set()
        report = outcome(thread_a, result_a)
    finally:
        proxy_a.close()
        proxy_b.close()
    assert reused in report["apps"]["accounts"]["uploaded"]
    assert missing(site) == []
    check_consistent(site)


def test_a_prune_that_decided_before_the_swap_and_deletes_after_it_keeps_the_file(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """B's prune lists the bucket before A uploads v1's chunk again, then stalls until A's
    publish (refresh, swap, check) is over, then deletes what it decided: the chunk is now
    live and must stay."""
    site, a, b = old_release_left_behind(tmp_path, moto_s3)
    reused = entry(a.root, "accounts")
    a_listed, b_listed, a_done = (threading.Event() for _ in range(3))
    accounts = f"/{site.bucket('accounts')}"
    listings: list[str] = []

    def gate_a(method: str, path: str) -> None:
        if method == "PUT" and path.startswith(accounts + "/") and not a_listed.is_set():
            a_listed.set()
            assert b_listed.wait(WAIT)

    def gate_b(method: str, path: str) -> None:
        if listings and not b_listed.is_set():  # B's next request after listing accounts
            b_listed.set()
            assert a_done.wait(WAIT)
        if method == "GET" and path.startswith(accounts + "?list-type=2"):
            listings.append(path)

    proxy_a = FailingProxy(site.server.endpoint, gate=gate_a)
    proxy_b = FailingProxy(site.server.endpoint, gate=gate_b)
    try:
        use_port(a.root, proxy_a.port)
        use_port(b.root, proxy_b.port)
        thread_a, result_a = in_thread(a.publish)
        assert a_listed.wait(WAIT)
        thread_b, result_b = in_thread(lambda: b.publish(prune=True))  # B changes nothing
        try:
            report = outcome(thread_a, result_a)
        finally:
            a_done.set()
        deleted = outcome(thread_b, result_b)["apps"]["accounts"]["deleted"]
    finally:
        proxy_a.close()
        proxy_b.close()
    assert b_listed.is_set() and reused in report["apps"]["accounts"]["uploaded"]
    assert reused not in deleted
    check_consistent(site)
    assert missing(site) == []


def test_publishes_racing_prunes_never_leave_the_page_missing_a_file(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """Each trial: A publishes a revert to an old build whose files nothing keeps any more,
    B publishes (or not) with --prune, at the same instant."""
    site = Site(tmp_path / "site", moto_s3, keep_releases=1, grace_seconds=GRACE)
    site.publish()
    a, b = Clone(site, tmp_path / "a"), Clone(site, tmp_path / "b")
    for trial in range(TRIALS):  # old builds, each kept by a preview until its trial
        write_app(site.root, "accounts", f"old{trial}")
        publish_preview(site.project, "local", f"old-{trial}", outputs=site.outputs, smoke=False)
    time.sleep(GRACE + 0.5)

    def revert(root: Path, trial: int) -> None:
        write_app(root, "accounts", f"old{trial}", extra={"notes.txt": f"{trial}\n".encode()})

    payments = "1"
    for trial in range(TRIALS):
        preview_rm(site.project, "local", f"old-{trial}", outputs=site.outputs)
        revert(a.root, trial)
        # Each team pulled the other's last release: a build older than that is kept out
        # only while the pointer remembers replacing it.
        if trial:
            revert(b.root, trial - 1)
        a.change("payments", payments)
        if trial % 2:
            payments = f"p{trial}"
            b.change("payments", payments)
        together(a.publish, lambda: b.publish(prune=True))
        check_consistent(site)
        assert missing(site) == [], f"trial {trial}"
        assert entry(a.root, "accounts") in site.shell()


def test_a_plain_publish_repairs_a_live_file_a_prune_deleted(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """What the remaining window (or a hand) leaves: a live page whose entry module is gone.
    Publishing the same builds again changes nothing, but must not end with that page."""
    site = Site(tmp_path / "site", moto_s3)
    site.publish()
    site.change("accounts", "2")
    site.publish()
    gone = entry(site.root, "accounts")
    site.server.client().delete_object(Bucket=site.bucket("accounts"), Key=gone)
    report = site.publish()  # smoke-checked
    assert report["noop"] is True and report["apps"]["accounts"]["uploaded"] == [gone]
    check_consistent(site)
    assert missing(site) == []


def prune_only(root: Path, site: Site, apps: tuple[str, ...] | None = None) -> int:
    """What `publish --prune` does after a publish that changed nothing (the checkout at
    `root`, through its configured port), without depending on that checkout's builds."""
    run = Run.start(load_project(root), "local", site.outputs, None, only=None,
                    collect_local=False)  # fmt: skip
    run.plans = {
        app: AppPlan(app, bucket, None, [], {})
        for app, bucket in run.buckets.items()
        if apps is None or app in apps
    }
    return prune(run)


def holds_left(site: Site) -> list[str]:
    return [
        key
        for app in ("mfe-parent", "accounts", "payments")
        for key in objects(site.server, site.bucket(app))
        if key.startswith(HOLD_PREFIX)
    ]


def test_a_prune_deleting_after_a_rollbacks_refresh_does_not_break_the_page(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """A rolls back to release 1, whose accounts chunk prune lets go (keep_releases = 1,
    older than the grace period). B's prune of the accounts bucket lists it before A makes
    the chunk young and deletes it after, just before A's swap (B decided on the old
    copy): A's page must load all the same, with no spare copy left behind."""
    site = Site(tmp_path / "site", moto_s3, keep_releases=1, grace_seconds=GRACE)
    site.publish()
    old = entry(site.root, "accounts")
    site.change("accounts", "2")
    site.publish()
    b = Clone(site, tmp_path / "b")
    time.sleep(GRACE + 0.5)
    # A's first write to accounts begins the refresh; A's swap holds
    steps = Interleaving(
        f"/{site.bucket('accounts')}", f"/{site.bucket('mfe-parent')}/_mfe/live.json"
    )
    proxy_a = FailingProxy(site.server.endpoint, gate=steps.gate_a)
    proxy_b = FailingProxy(site.server.endpoint, gate=steps.gate_b)
    port = site.port
    try:
        site.point_at(proxy_a.port)
        use_port(b.root, proxy_b.port)
        thread_a, result_a = in_thread(
            lambda: rollback(site.project, "local", outputs=site.outputs, smoke=False)
        )
        assert steps.listed.wait(WAIT)
        thread_b, result_b = in_thread(lambda: prune_only(b.root, site, ("accounts",)))
        try:
            assert outcome(thread_b, result_b) >= 1
        finally:
            steps.done.set()
        assert steps.reached.is_set()  # B deleted after A's refresh, before A's swap
        outcome(thread_a, result_a)
    finally:
        proxy_a.close()
        proxy_b.close()
        site.point_at(port)
    assert old in site.shell()
    check_consistent(site)
    assert missing(site) == [] and holds_left(site) == []


def test_rollbacks_racing_prunes_never_leave_the_page_missing_a_file(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """Each trial: a rollback (of the whole page, or of accounts) to a release whose files
    nothing keeps any more, and a prune, at the same instant. A rollback may be refused
    (the prune deleted a file first); either way the live page and all it names are there."""
    site = Site(tmp_path / "site", moto_s3, keep_releases=1, grace_seconds=GRACE)
    site.publish()
    b = Clone(site, tmp_path / "b")
    seqs = []
    for trial in range(TRIALS):  # old releases, each kept by a preview until its trial
        write_app(site.root, "accounts", f"old{trial}", extra={"notes.txt": f"{trial}\n".encode()})
        site.publish()
        seqs.append(live(site).seq)
        site.change("payments", f"pv{trial}")  # a preview over it keeps its page and files
        publish_preview(site.project, "local", f"old-{trial}", outputs=site.outputs, smoke=False)
        site.change("payments", "1")
    site.change("accounts", "current")
    site.publish()
    time.sleep(GRACE + 0.5)
    rolled = 0
    for trial in range(TRIALS):
        preview_rm(site.project, "local", f"old-{trial}", outputs=site.outputs)
        before = live(site)
        app = "accounts" if trial % 2 else None
        back = partial(rollback, site.project, "local", outputs=site.outputs, smoke=False,
                       app=app, to=str(seqs[trial]))  # fmt: skip
        try:
            together(back, lambda: prune_only(b.root, site))
            rolled += 1
            assert live(site).rollback_of == history(site)[seqs[trial] - 1].release
        except MfeError as refused:  # pruned before the rollback made it young
            assert "(a concurrent --prune?)" in str(refused) or "(pruned?)" in str(refused), refused
            assert live(site).seq == before.seq
        check_consistent(site)
        assert missing(site) == [], f"trial {trial}"
        assert holds_left(site) == []
    assert rolled, "every rollback was refused: the race never happened"


def test_a_publish_does_not_upload_again_what_it_just_uploaded(
    tmp_path: Path, moto_s3: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """A slow link holds the first upload longer than half the grace period; the files
    uploaded after it are young at the swap and go up once (each is dated by its own
    upload, not the phase's start). The held one may go up again, but is not called reused."""
    site = Site(tmp_path / "site", moto_s3, grace_seconds=GRACE)
    toml = site.root / "mfe.toml"
    toml.write_text(toml.read_text().replace("workers = 4", "workers = 1"))  # one at a time
    site.publish()
    site.change("accounts", "2")
    accounts = f"/{site.bucket('accounts')}/"
    held: list[str] = []

    def gate(method: str, path: str) -> None:
        if method == "PUT" and path.startswith(accounts) and not held:
            held.append(path.removeprefix(accounts))
            time.sleep(GRACE / 2 + 0.5)

    proxy = FailingProxy(site.server.endpoint, gate=gate)
    try:
        site.point_at(proxy.port)
        capsys.readouterr()
        report = site.publish()
    finally:
        proxy.close()
    uploaded = report["apps"]["accounts"]["uploaded"]
    assert len(uploaded) > 1 and held[0] in uploaded
    assert report["refreshed"].get("accounts", []) in ([], held)
    sent = [p.removeprefix(accounts) for p in proxy.paths if p.startswith(accounts)]
    sent = [k for k in sent if not k.startswith("_mfe/")]  # its version's file list
    assert sorted(k for k in sent if k != held[0]) == sorted(k for k in uploaded if k != held[0])
    assert "reused" not in capsys.readouterr().out
