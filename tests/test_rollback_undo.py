"""A rollback delayed past `grace_seconds` between its refresh and its swap while another
checkout's `--prune` runs (moto server, a proxy gate holding the swap): the prune, which
read the pointer before the swap, deletes the target's refreshed files and their `_hold/`
spare copies. The pointer must not stay naming them: it is swapped back
(`mfe.publish.undo`), by the rollback itself or by the next command finishing it."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_prune_race import WAIT, holds_left, in_thread, missing, outcome, prune_only
from test_releases import Clone, check_consistent, entry, history, live

from mfe.errors import MfeError
from mfe.publish.rollback import rollback

from fixtures.proxy import POINTER, FailingProxy
from fixtures.s3 import S3Server, Site, objects

GRACE = 1
TRIALS = 3


def older_than_grace() -> None:
    """What is written now is older than the grace period afterwards (the one wait a
    time rule needs; everything else is ordered by gates)."""
    time.sleep(GRACE + 0.6)


def check_whole(site: Site) -> None:
    check_consistent(site)
    assert missing(site) == [] and holds_left(site) == []


class SwapGate:
    """Holds the first pointer PUT through the proxy until `pruned`, as a rollback
    suspended between its refresh and its swap; `stop_after` then holds the next request
    (the rollback suspended right after its swap) until the proxy is closed."""

    def __init__(self, stop_after: bool = False) -> None:
        self.swapping, self.pruned = threading.Event(), threading.Event()
        self.stop_after = stop_after

    def gate(self, method: str, path: str) -> None:
        if method == "PUT" and path.endswith(POINTER) and not self.swapping.is_set():
            self.swapping.set()
            assert self.pruned.wait(WAIT)

    def hold(self, method: str, path: str) -> bool:
        return self.stop_after and self.swapping.is_set() and not path.endswith(POINTER)


def rollback_past_a_prune(site: Site, b: Clone, steps: SwapGate) -> tuple[FailingProxy, Any]:
    """Start the whole rollback through a proxy, let its swap wait past the grace period,
    run B's prune (reading the pointer before the swap), then let the swap land."""
    proxy = FailingProxy(site.server.endpoint, gate=steps.gate, hold=steps.hold)
    site.point_at(proxy.port)
    started = in_thread(lambda: rollback(site.project, "local", outputs=site.outputs, smoke=False))
    assert steps.swapping.wait(WAIT)
    older_than_grace()  # the refreshed files and their spare copies, too
    assert prune_only(b.root, site) >= 1
    steps.pruned.set()
    return proxy, started


def two_releases(tmp_path: Path, moto_s3: S3Server) -> tuple[Site, Clone, str]:
    """Releases 1 and 2 (accounts 2), one release kept by `--prune`, a second checkout and
    release 1's files older than half of grace_seconds (a rollback to it refreshes them);
    also release 1's accounts entry."""
    site = Site(tmp_path / "site", moto_s3, keep_releases=1, grace_seconds=GRACE)
    site.publish()
    first = entry(site.root, "accounts")
    site.change("accounts", "2")
    site.publish()
    b = Clone(site, tmp_path / "b")
    older_than_grace()
    return site, b, first


@pytest.mark.parametrize("trial", range(TRIALS))
def test_a_rollback_whose_files_a_prune_deleted_after_its_refresh_is_undone(
    tmp_path: Path, moto_s3: S3Server, trial: int
) -> None:
    """The rollback swaps back to what it replaced and fails saying so; the page, the
    pointer and the history agree, nothing is missing, and the next publish works."""
    site, b, _ = two_releases(tmp_path, moto_s3)
    current, before = entry(site.root, "accounts"), live(site)
    port, steps = site.port, SwapGate()
    proxy, (thread, result) = rollback_past_a_prune(site, b, steps)
    try:
        with pytest.raises(MfeError) as failed:
            outcome(thread, result)
    finally:
        proxy.close()
        site.point_at(port)
    message = str(failed.value)
    assert "was undone" in message and "--prune" in message and "main-" in message
    assert f"release {before.release} is served again" in message
    now = live(site)
    assert (now.seq, now.page, now.apps) == (before.seq + 2, before.page, before.apps)
    assert history(site)[-2].rollback_of == history(site)[0].release  # the rollback's record
    assert current in site.shell()
    check_whole(site)
    site.change("accounts", "3")
    report = site.publish()  # the next publish is not stuck
    assert report["seq"] == now.seq + 1
    check_whole(site)


def test_a_rollback_stopped_after_its_swap_is_undone_by_the_next_publish(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """The rollback is suspended right after its swap, its target's files deleted by the
    prune: the next publish (another checkout) finishes nothing broken, it swaps back and
    publishes; the rollback, resumed, finds the pointer moved and does not swap over it."""
    site, b, _ = two_releases(tmp_path, moto_s3)
    before = live(site)
    port, steps = site.port, SwapGate(stop_after=True)
    proxy, (thread, result) = rollback_past_a_prune(site, b, steps)
    try:
        assert proxy.held.wait(WAIT)  # swapped, then stopped
        assert live(site).seq == before.seq + 1 and missing(site)
        b.change("payments", "2")
        report = b.publish()
        assert report["seq"] == before.seq + 3  # the rollback's, the undo, this one
        undone = history(site)[before.seq + 1]
        assert (undone.page, undone.apps, undone.took_off) == (
            before.page, before.apps, history(site)[before.seq].release,
        )  # fmt: skip
        proxy.release.set()
        with pytest.raises(MfeError) as failed:
            outcome(thread, result)
    finally:
        proxy.close()
        site.point_at(port)
    message = str(failed.value)
    assert "could not be swapped back" in message and report["release"] in message
    assert live(site).release == report["release"]
    check_whole(site)


def test_a_command_finishing_a_rollback_copies_back_a_file_its_spare_copy_still_holds(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """The rollback is stopped right after its swap and one target file was deleted (by a
    hand) while its `_hold/` spare copy is still there: the next publish copies it back and
    finishes the rollback instead of undoing it; the rollback, resumed, ends normally."""
    site, b, old = two_releases(tmp_path, moto_s3)
    before = live(site)
    port, steps = site.port, SwapGate(stop_after=True)
    steps.pruned.set()  # no prune: the swap goes through at once
    proxy = FailingProxy(site.server.endpoint, gate=steps.gate, hold=steps.hold)
    try:
        site.point_at(proxy.port)
        thread, result = in_thread(
            lambda: rollback(site.project, "local", outputs=site.outputs, smoke=False)
        )
        assert proxy.held.wait(WAIT)  # swapped, then stopped
        site.server.client().delete_object(Bucket=site.bucket("accounts"), Key=old)
        b.change("payments", "2")
        report = b.publish()
        assert report["seq"] == before.seq + 2  # the rollback's, finished, then this one
        assert history(site)[before.seq].action == "rollback"  # finished, not undone
        assert old in objects(site.server, site.bucket("accounts"))
        proxy.release.set()
        outcome(thread, result)
    finally:
        proxy.close()
        site.point_at(port)
    assert live(site).release == report["release"]
    check_whole(site)
