"""Releases two or three commands killed in a row leave behind: each is SIGKILLed after
its pointer swap, and each but the first had lost a race to the one before it (so it
swapped past a pointer whose command died before recording it). Whatever point after its
swap the last one is killed at, the next publish must leave a history with every seq
that was ever the pointer, byte for byte the pointer that seq wrote.

Every command runs in a child process behind its own loopback proxy (`FailingProxy`): its
first pointer PUT is held while the rival command runs (so it loses, re-reads and swaps
again), and the first matching request after its winning swap is held while it is killed.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from test_releases import Clone, check_consistent, history
from test_releases_failures import CHILD, kill_when_held, live, nth

from mfe.config import load_project
from mfe.envs.outputs import write_outputs
from mfe.publish.history import history_key
from mfe.publish.preview import publish_preview
from mfe.publish.releases_cmd import show
from mfe.publish.rollback import rollback
from mfe.publish.smoke import smoke_check

from fixtures.config import use_port
from fixtures.proxy import POINTER, FailingProxy
from fixtures.s3 import S3Server, Site

Match = Callable[[str, str], bool]

ROUNDS = 2
"""Each round kills at every point in turn, on the seqs the last one left (the order is
forced by the proxies, not left to timing: a third round only repeated it, for 30 s)."""

POINTS: dict[str, Match] = {
    # recording the pointer it swapped past (`record_replaced`): the hole
    "record": lambda m, p: m == "PUT" and "/_mfe/history/" in p,
    # its commit step, writing the page at its fixed URL
    "page": lambda m, p: m == "PUT" and p.endswith("/index.html") and "/_ca/" not in p,
    # its commit step, invalidating
    "invalidation": lambda m, p: m == "POST" and "/invalidation" in p,
}


def after_swap(rival: Callable[[], None] | None, point: Match) -> Match:
    """A `hold` predicate: the first pointer PUT waits for `rival()` (which swaps first, so
    this one loses); then the first request `point` matches after the winning swap."""
    puts = [0]

    def hold(method: str, path: str) -> bool:
        if method == "PUT" and path.endswith(POINTER):
            puts[0] += 1
            if puts[0] == 1 and rival is not None:
                rival()
            return False
        return puts[0] >= (1 if rival is None else 2) and point(method, path)

    return hold


def killed_after_swap(
    root: Path, server: S3Server, rival: Callable[[], list[bytes]] | None, point: Match
) -> list[bytes]:
    """Publish `root` in a child process (its first swap losing to `rival`'s) and SIGKILL it
    at `point` after its own swap; the pointers the rivals and it swapped in, oldest first."""
    swapped: list[bytes] = []

    def first() -> None:
        assert rival is not None
        swapped.extend(rival())

    proxy = FailingProxy(server.endpoint, hold=after_swap(first if rival else None, point))
    use_port(root, proxy.port)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root)],
        env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proxy.held.wait(60), f"the publish of {root.name} never got past its swap"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        proxy.close()
    mine = [b for p, b in zip(proxy.paths, proxy.bodies, strict=True) if p.endswith(POINTER)]
    return [*swapped, mine[-1]]


def chain(roots: list[Path], server: S3Server, point: Match) -> list[bytes]:
    """Publish the checkouts, each killed after its swap: the first one right after it,
    each next one (which loses its first swap to the one before) at its first record
    write, the last one at `point`. The pointers they swapped in, oldest first."""
    run: Callable[[], list[bytes]] | None = None
    for number, root in enumerate(roots):
        where = point if number == len(roots) - 1 else POINTS["record"]
        run = functools.partial(
            killed_after_swap, root, server, run, where if number else (lambda m, p: True)
        )
    assert run is not None
    return run()


@pytest.mark.parametrize("depth", [2, 3])
def test_releases_swapped_past_by_killed_commands_stay_in_the_history(
    tmp_path: Path, moto_s3: S3Server, depth: int
) -> None:
    """A swaps N -> N+1 and is killed before recording it; B read N, loses its swap to A,
    swaps N+1 -> N+2 and is killed at each point in turn (with depth 3, C likewise swaps
    past B). A plain publish afterwards leaves every seq in the history, as its pointer
    was written."""
    site = Site(tmp_path / "repo", moto_s3)
    site.publish()
    clones = [Clone(site, tmp_path / name) for name in "abc"[:depth]]
    for clone in clones:
        write_outputs(load_project(clone.root), site.outputs)
    apps = ["accounts", "payments", "mfe-parent"]
    s3, bucket = site.server.client(), site.bucket("mfe-parent")
    for trial in range(ROUNDS):
        for point, match in POINTS.items():
            for number, clone in enumerate(clones):
                clone.change(apps[number], f"{'abc'[number]}{trial}{point}")
            base = live(site).seq
            swapped = chain([c.root for c in clones], moto_s3, match)
            assert [json.loads(b)["seq"] for b in swapped] == list(
                range(base + 1, base + 1 + depth)
            )
            assert live(site).seq == base + depth  # every command swapped, then was killed
            report = site.publish(smoke=False)
            assert report["noop"] is True  # finished the last one's commit step, nothing else

            records = history(site)
            assert [r.seq for r in records] == list(range(1, base + depth + 1)), (trial, point)
            for body in swapped:
                pointer = json.loads(body)
                assert (
                    s3.get_object(Bucket=bucket, Key=history_key(pointer["seq"]))["Body"].read()
                    == body
                )
                carried = pointer.get("unrecorded")  # one level at most: pointers stay small
                assert carried is None or "unrecorded" not in json.loads(carried)
            check_consistent(site)


def test_a_command_killed_while_writing_a_history_record_leaves_no_broken_record(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """A publish SIGKILLed while its history record is on the wire: the emulator got half
    the body when the connection dropped. That record must not exist half written (an
    empty record kept by `If-None-Match: *` broke `releases` and every rollback for
    good): the next publish writes it whole, and a rollback reads the history."""
    site = Site(tmp_path / "repo", moto_s3)
    site.publish()
    clone = Clone(site, tmp_path / "a")
    write_outputs(load_project(clone.root), site.outputs)
    clone.change("payments", "killed")
    record = lambda m, p: m == "PUT" and "/_mfe/history/" in p  # noqa: E731
    proxy = FailingProxy(moto_s3.endpoint, cut=record)
    use_port(clone.root, proxy.port)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(clone.root)],
        env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proxy.held.wait(60), "the publish never wrote its history record"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        proxy.close()
    pointer = [b for p, b in zip(proxy.paths, proxy.bodies, strict=True) if p.endswith(POINTER)]
    assert json.loads(pointer[-1])["seq"] == live(site).seq == 2
    assert site.publish(smoke=False)["noop"] is True  # finished the killed one's commit step
    s3, bucket = site.server.client(), site.bucket("mfe-parent")
    assert s3.get_object(Bucket=bucket, Key=history_key(2))["Body"].read() == pointer[-1]
    assert [r.seq for r in history(site)] == [1, 2]
    rollback(load_project(site.root), "local", outputs=site.outputs, smoke=False)
    check_consistent(site)


PREVIEW_CHILD = """
import sys
from mfe.config import load_project
from mfe.envs.outputs import read_outputs
from mfe.publish.preview import publish_preview

project = load_project(__import__("pathlib").Path(sys.argv[1]))
env = project.env("local")
publish_preview(project, env, sys.argv[2], outputs=read_outputs(project, env), smoke=False)
"""

PREVIEW_POINTS: dict[str, Callable[[], Match]] = {
    # the page, and each write of the preview's record (each test counts afresh)
    "page": lambda: lambda m, p: m == "PUT" and p.endswith("/previews/kt/index.html"),
    "record 1": lambda: nth(1, lambda m, p: m == "PUT" and p.endswith("/_mfe/previews/kt.json")),
    "record 2": lambda: nth(2, lambda m, p: m == "PUT" and p.endswith("/_mfe/previews/kt.json")),
}


@pytest.mark.parametrize("first", [True, False], ids=["first", "again"])
@pytest.mark.parametrize("point", sorted(PREVIEW_POINTS))
def test_a_preview_killed_while_written_keeps_what_its_page_serves_through_a_prune(
    tmp_path: Path, moto_s3: S3Server, point: str, first: bool
) -> None:
    """A preview (new, or published again over an earlier one of its name) is SIGKILLed
    at its page or at a write of its record. Whichever page `previews/kt/` serves then
    must keep loading after `--prune` (no grace period, one kept release) deletes what
    nothing keeps, and `doit releases` says when the record is ahead of its page."""
    site = Site(tmp_path / "repo", moto_s3, keep_releases=1, grace_seconds=0)
    site.publish(smoke=False)
    write_outputs(site.project, site.outputs)
    if not first:
        site.change("payments", "pv1")
        publish_preview(site.project, "local", "kt", outputs=site.outputs, smoke=False)
    site.change("payments", "pv2")
    args = [PREVIEW_CHILD, str(site.root), "kt"]
    kill_when_held(site, moto_s3, PREVIEW_POINTS[point](), args, f"no request at its {point}")
    site.change("payments", "3")
    site.publish(prune=True, smoke=False)

    url = f"{site.outputs.apps['mfe-parent'].base_url}previews/kt/index.html"
    page = httpx.get(url)
    if page.status_code == 200:
        smoke_check(url, attempts=1)  # the page and every file it references load
    else:
        assert first and point != "record 2", page.status_code  # its page was never written
    shown = show(site.project, site.project.env("local"), site.outputs)
    unfinished = "was not finished" in shown
    assert unfinished == (point != "record 1"), shown  # its record is ahead of its page
    publish_preview(site.project, "local", "kt", outputs=site.outputs, smoke=False)
    smoke_check(url, attempts=1)  # the next run finishes it
    assert "was not finished" not in show(site.project, site.project.env("local"), site.outputs)
