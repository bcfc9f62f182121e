"""Two runs of one preview name at once (two CI jobs of a pull request finishing out of
order), and `preview_rm` racing a run, on the real moto server.

A run goes in a child process behind a loopback proxy (`FailingProxy`): at one of its
requests of interest (its first record write, its page write, its second record write)
the rival (the other run, or `preview_rm`) runs to its end before that request goes on;
then the child is SIGKILLed at its next record or page write, or left to finish. Whatever
happened, the preview's page and record must agree (a pending record: one record it names
describes the page), `--prune` must leave every file the served preview page references,
and a clean re-run must leave it finished. The last tests run the two at the same instant
`TRIALS` times, with threads.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
import pytest
from test_releases import TRIALS, Clone, together
from test_releases_failures import nth
from test_releases_killed import PREVIEW_CHILD

from mfe.config import load_project
from mfe.envs.outputs import write_outputs
from mfe.publish.preview import preview_rm, publish_preview
from mfe.publish.previews import Preview, read_preview
from mfe.publish.releases_cmd import show
from mfe.publish.smoke import smoke_check

from fixtures.config import use_port
from fixtures.proxy import FailingProxy
from fixtures.s3 import S3Server, Site

Match = Callable[[str, str], bool]
NAME = "pr"


def record_put(m: str, p: str) -> bool:
    return m == "PUT" and p.endswith(f"/_mfe/previews/{NAME}.json")


def page_put(m: str, p: str) -> bool:
    return m == "PUT" and p.endswith(f"/previews/{NAME}/index.html")


RIVAL_AT: dict[str, Callable[[], Match]] = {
    "record 1": lambda: nth(1, record_put),
    "page": lambda: nth(1, page_put),
    "record 2": lambda: nth(2, record_put),
}
KILL_AT: dict[str, Match | None] = {"record": record_put, "page": page_put, "none": None}


def rival_then(rival_at: Match, rival: Callable[[], object], kill_at: Match | None) -> Match:
    """A `hold` predicate: `rival()` runs to its end before the request `rival_at` matches
    goes on; after it, the first request `kill_at` matches is held (the child is killed)."""
    done = [False]

    def hold(method: str, path: str) -> bool:
        if not done[0]:
            if rival_at(method, path):
                rival()
                done[0] = True
            return False
        return kill_at is not None and kill_at(method, path)

    return hold


def run_child(site: Site, root: Path, hold: Match) -> bool:
    """Publish preview NAME of `root` in a child process behind a proxy holding at `hold`;
    SIGKILL it there. True when it was killed, False when it finished first."""
    proxy = FailingProxy(site.server.endpoint, hold=hold)
    use_port(root, proxy.port)
    child = subprocess.Popen(
        [sys.executable, "-c", PREVIEW_CHILD, str(root), NAME],
        env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        while not proxy.held.wait(0.05):
            if child.poll() is not None:
                break
        killed = proxy.held.is_set()
        if killed:
            child.send_signal(signal.SIGKILL)
        _, err = child.communicate(timeout=120)
        assert killed or child.returncode == 0, err.decode()[-2000:]
        return killed
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        proxy.close()
        use_port(root, site.port)


def page_of(site: Site) -> str | None:
    answer = httpx.get(preview_url(site))
    return answer.text if answer.status_code == 200 else None


def preview_url(site: Site) -> str:
    return f"{site.outputs.apps['mfe-parent'].base_url}previews/{NAME}/index.html"


def describes(record: Preview, page: str) -> bool:
    """Whether `page` is the page of `record`: it loads every entry of its pointer's apps."""
    return all(f in page for app in record.pointer.apps.values() for f, _ in app.entries)


def check_agree(site: Site, *, finished: bool = False) -> Preview | None:
    """The preview's record and page agree: no page without a record, a finished record
    describes the page, a pending one (a run killed or under way) names one that does."""
    s3 = site.server.client()
    record = read_preview(s3, site.bucket("mfe-parent"), NAME)
    page = page_of(site)
    if record is None:
        assert page is None, "a preview page without a record: --prune deletes its files"
        return None
    assert not (finished and record.pending), "the record is pending after a finished run"
    if page is None:
        assert record.pending, "a finished preview record without its page"
    else:
        serving = record.serving() if record.pending else [record]
        assert any(describes(r, page) for r in serving), "the page is not the record's"
    return record


def prune_and_load(site: Site, version: str) -> None:
    """A live publish with --prune (one kept release, no grace period); then the preview
    page, if any, and every file it references must load."""
    site.change("accounts", version)
    site.publish(prune=True, smoke=False)
    if page_of(site) is not None:
        smoke_check(preview_url(site), attempts=1)


def finish_cleanly(site: Site, clone: Clone, version: str) -> None:
    """A clean re-run of the preview leaves it finished, agreeing and prune-proof."""
    publish_preview(load_project(clone.root), "local", NAME, outputs=site.outputs, smoke=False)
    check_agree(site, finished=True)
    prune_and_load(site, version)
    shown = show(site.project, site.project.env("local"), site.outputs)
    assert "was not finished" not in shown and "being removed" not in shown, shown
    check_agree(site, finished=True)


def setup(tmp_path: Path, moto_s3: S3Server) -> tuple[Site, Clone, Clone]:
    site = Site(tmp_path / "site", moto_s3, keep_releases=1, grace_seconds=0)
    site.publish(smoke=False)
    clones = Clone(site, tmp_path / "a"), Clone(site, tmp_path / "b")
    for clone in clones:
        write_outputs(load_project(clone.root), site.outputs)
    return site, *clones


def preview_of(site: Site, clone: Clone) -> Callable[[], object]:
    return partial(
        publish_preview, load_project(clone.root), "local", NAME, outputs=site.outputs,
        smoke=False,
    )  # fmt: skip


def remove(site: Site) -> Callable[[], object]:
    return partial(preview_rm, site.project, "local", NAME, outputs=site.outputs)


@pytest.mark.parametrize("kill_at", sorted(KILL_AT))
@pytest.mark.parametrize("rival_at", sorted(RIVAL_AT))
def test_two_runs_of_one_preview_name_never_leave_it_mislinked(
    tmp_path: Path, moto_s3: S3Server, rival_at: str, kill_at: str
) -> None:
    """A publishes preview `pr`; B's run of `pr` (another build) starts and ends at A's
    request `rival_at`; A is then killed at `kill_at` or finishes."""
    site, a, b = setup(tmp_path, moto_s3)
    for first in (True, False):  # a new preview, then one published again
        tag = "new" if first else "again"
        a.change("payments", f"a-{tag}")
        b.change("payments", f"b-{tag}")
        hold = rival_then(RIVAL_AT[rival_at](), preview_of(site, b), KILL_AT[kill_at])
        run_child(site, a.root, hold)
        assert check_agree(site) is not None
        prune_and_load(site, f"{tag}-1")
        check_agree(site)
        finish_cleanly(site, a, f"{tag}-2")


@pytest.mark.parametrize("kill_at", sorted(KILL_AT))
@pytest.mark.parametrize("rival_at", sorted(RIVAL_AT))
def test_removing_a_preview_while_it_is_published_leaves_no_half_of_it(
    tmp_path: Path, moto_s3: S3Server, rival_at: str, kill_at: str
) -> None:
    """`preview_rm pr` starts and ends at A's request `rival_at` while A publishes `pr`
    again; A is then killed at `kill_at` or finishes. Page and record go together."""
    site, a, b = setup(tmp_path, moto_s3)
    b.change("payments", "b")
    preview_of(site, b)()
    a.change("payments", "a")
    run_child(site, a.root, rival_then(RIVAL_AT[rival_at](), remove(site), KILL_AT[kill_at]))
    record = check_agree(site)
    if kill_at == "none":  # A completed last: its preview stands
        assert record is not None and not record.pending
    prune_and_load(site, "1")
    check_agree(site)
    finish_cleanly(site, a, "2")
    preview_rm(site.project, "local", NAME, outputs=site.outputs)
    assert check_agree(site) is None and page_of(site) is None


def test_runs_of_one_preview_name_at_the_same_instant_agree(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    site, a, b = setup(tmp_path, moto_s3)
    for trial in range(TRIALS):
        a.change("payments", f"a{trial}")
        b.change("payments", f"b{trial}")
        together(preview_of(site, a), preview_of(site, b))
        check_agree(site, finished=True)
        prune_and_load(site, f"{trial}")
        check_agree(site, finished=True)


def test_a_removal_at_the_same_instant_as_a_run_leaves_one_outcome(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """Whichever completes last wins: the preview, whole, or nothing of it."""
    site, a, _ = setup(tmp_path, moto_s3)
    for trial in range(TRIALS):
        a.change("payments", f"a{trial}")
        if read_preview(site.server.client(), site.bucket("mfe-parent"), NAME) is None:
            preview_of(site, a)()
            a.change("payments", f"a{trial}-again")
        together(preview_of(site, a), remove(site))  # neither fails
        check_agree(site, finished=True)
        prune_and_load(site, f"{trial}")
        check_agree(site, finished=True)
