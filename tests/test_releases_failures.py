"""Releases under failure: a publish SIGKILLed at every phase boundary, an app rollback
SIGKILLed right after the swap it retried, a store that ignores conditional writes, and
the pointer swap on SeaweedFS.

The kill tests run the publish in a child process behind a loopback proxy that holds the
first request of the next phase; the test kills the child while that request is held, so
the phase boundary is exact without any hook in the code.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from doit.exceptions import TaskFailed
from test_publish import icons
from test_releases import Clone, check_consistent, entry, history

from mfe.config import load_project
from mfe.envs.outputs import write_outputs
from mfe.errors import MfeError
from mfe.publish import publish
from mfe.publish.history import history_key, list_records
from mfe.publish.locking import probe
from mfe.publish.pointer import Live, read_pointer
from mfe.publish.refresh import HOLD_PREFIX
from mfe.publish.releases_cmd import show
from mfe.publish.report import PublishReport, plan_lines, summary
from mfe.publish.rollback import rollback
from mfe.publish.smoke import smoke_check
from mfe.publish.versions import ca_key
from mfe.tasks.publish import run_publish, run_rollback

from fixtures.config import use_port
from fixtures.proxy import POINTER, FailingProxy, lost_race
from fixtures.s3 import S3Server, Site, objects, render_shell, write_app

CHILD = """
import sys
from mfe.config import load_project
from mfe.envs.outputs import read_outputs
from mfe.publish import publish

project = load_project(__import__("pathlib").Path(sys.argv[1]))
env = project.env("local")
publish(project, env, outputs=read_outputs(project, env), smoke=False)
"""

ROLLBACK_CHILD = """
import sys
from mfe.config import load_project
from mfe.envs.outputs import read_outputs
from mfe.publish.rollback import rollback

project = load_project(__import__("pathlib").Path(sys.argv[1]))
env = project.env("local")
rollback(project, env, outputs=read_outputs(project, env), app=sys.argv[2], smoke=False)
"""


def nth(count: int, match: Callable[[str, str], bool]) -> Callable[[str, str], bool]:
    seen = [0]

    def hold(method: str, path: str) -> bool:
        if match(method, path):
            seen[0] += 1
            return seen[0] == count
        return False

    return hold


def kill_when_held(
    site: Site, server: S3Server, hold: Callable[[str, str], bool], args: list[str], what: str
) -> None:
    """Run `python -c *args` with the site's S3 calls behind a proxy that holds the first
    request `hold` matches; SIGKILL it there, and point the site back at `server`."""
    port = site.port
    proxy = FailingProxy(server.endpoint, hold=hold)
    try:
        site.point_at(proxy.port)
        child = subprocess.Popen(
            [sys.executable, "-c", *args],
            env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert proxy.held.wait(60), what
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
    finally:
        proxy.close()
        site.point_at(port)


PHASES = {
    # after K=2 uploads of fingerprinted files
    "uploads": nth(3, lambda m, p: m == "PUT" and "/main-" in p),
    # every file up, before the page's content-addressed copy
    "page": nth(1, lambda m, p: m == "PUT" and "/_ca/" in p and p.endswith("/index.html")),
    # page copy up, before the pointer swap
    "swap": nth(1, lambda m, p: m == "PUT" and p.endswith("/_mfe/live.json")),
    # pointer swapped and index.html written, before the CloudFront invalidation
    "invalidation": nth(1, lambda m, p: m == "POST" and "/invalidation" in p),
}


def live(site: Site) -> Live:
    found, _ = read_pointer(site.server.client(), site.bucket("mfe-parent"))
    assert found is not None
    return found


def served(site: Site) -> bytes:
    s3 = site.server.client()
    return bytes(s3.get_object(Bucket=site.bucket("mfe-parent"), Key="index.html")["Body"].read())


@pytest.mark.parametrize("phase", sorted(PHASES))
def test_sigkill_at_a_phase_boundary_leaves_one_release_and_the_rerun_finishes(
    tmp_path: Path, moto_s3: S3Server, phase: str
) -> None:
    site = Site(tmp_path / "repo", moto_s3)
    site.publish()
    old_page = served(site)
    site.change("accounts", "2")
    site.change("payments", "2")
    write_outputs(site.project, site.outputs)
    never = f"the publish never reached the {phase} boundary"
    kill_when_held(site, moto_s3, PHASES[phase], [CHILD, str(site.root)], never)

    url = f"{site.outputs.apps['mfe-parent'].base_url}index.html"
    smoke_check(url, attempts=1)  # the served page and every file it references load
    page = served(site)
    pointer = live(site)
    assert hashlib.sha256(page).hexdigest() == pointer.page.sha256  # one release
    if phase == "invalidation":
        assert pointer.seq == 2 and page != old_page  # swapped; history record still due
        assert [r.seq for r in list_records(site.server.client(), site.bucket("mfe-parent"))] == [1]
    else:
        assert pointer.seq == 1 and page == old_page  # nothing live changed

    before = {app: set(objects(site.server, site.bucket(app))) for app in site.outputs.apps}
    report = site.publish()
    for app, row in report["apps"].items():
        again = [k for k in row["uploaded"] if k not in ("index.html", "favicon.svg")]
        assert not set(again) & before[app], (app, again)  # only what was missing
    records = list_records(site.server.client(), site.bucket("mfe-parent"))
    assert [r.seq for r in records] == [1, 2]
    assert records[-1].page.sha256 == hashlib.sha256(served(site)).hexdigest()
    assert site.invalidation_count("mfe-parent") == 1  # exactly once, resumed or not
    if phase == "invalidation":
        assert report["noop"] is True and report["invalidations"]  # finished, then nothing to do


@pytest.mark.parametrize("then", ["publish", "publish app=payments", "rollback app=payments"])
def test_the_files_finishing_an_interrupted_commit_step_writes_get_report_rows(
    tmp_path: Path, moto_s3: S3Server, then: str
) -> None:
    """A publish of new fixed files of accounts is SIGKILLed in its commit step, at its
    first fixed-URL write (one worker: the others and index.html not sent). The next command
    finishes that commit step before its own: its report and summary table show what the
    finishing wrote under accounts and the parent, as uploaded and invalidated, each key
    once, whether the command then changes nothing, publishes or rolls back."""
    site = Site(tmp_path / "repo", moto_s3)
    toml = site.root / "mfe.toml"
    toml.write_text(toml.read_text().replace("workers = 4", "workers = 1"))
    write_app(site.root, "accounts", public=icons(3))
    render_shell(site.root, site.outputs)
    site.publish()
    public = icons(3, "2")
    write_app(site.root, "accounts", "2", public=public)
    site.change("payments", "2")
    write_outputs(site.project, site.outputs)
    fixed_write = nth(1, lambda m, p: m == "PUT" and "/icons/" in p and "/_ca/" not in p)
    never = "the publish never wrote a fixed-URL file"
    kill_when_held(site, moto_s3, fixed_write, [CHILD, str(site.root)], never)
    s3 = site.server.client()
    records = list_records(s3, site.bucket("mfe-parent"))
    assert live(site).seq == 2 and [r.seq for r in records] == [1]  # swapped, commit step cut
    before = objects(site.server, site.bucket("accounts"))
    assert all(before[k] != hashlib.md5(body).hexdigest() for k, body in public.items())

    if then == "rollback app=payments":
        report = rollback(site.project, "local", outputs=site.outputs, app="payments")
    else:
        if then == "publish app=payments":
            site.change("payments", "3")
        report = publish(
            site.project, "local", outputs=site.outputs, app=then.partition("=")[2] or None
        )
    assert (report.noop, report.seq) == (then == "publish", 2 if then == "publish" else 3)
    keys = sorted(public)
    assert sorted(report.apps["accounts"].uploaded) == keys
    assert report.apps["mfe-parent"].uploaded.count("index.html") == 1
    assert sorted(report.invalidated_by_app["accounts"]) == [f"/{k}" for k in keys]
    assert "/index.html" in report.invalidated_by_app["mfe-parent"]
    assert sorted(report.invalidations[site.dist("accounts")]) == [f"/{k}" for k in keys]
    assert re.search(r"accounts\W+3\W+\d+\W+0\W+3\W", summary(report))
    for key in keys:
        assert s3.get_object(Bucket=site.bucket("accounts"), Key=key)["Body"].read() == public[key]


def page_write(method: str, path: str) -> bool:
    """The commit step's write of the page at its fixed URL (after the pointer swap)."""
    return method == "PUT" and path.endswith("/index.html") and "/_ca/" not in path


def writes(report: PublishReport) -> list[str]:
    """A report's upload and invalidation lines, as `doit plan` prints them, sorted."""
    return sorted(line for line in plan_lines(report) if line.startswith(("upload", "invalid")))


@pytest.mark.parametrize("killed", ["publish", "rollback app=accounts", "publish; change"])
def test_plan_after_a_killed_commit_step_lists_what_publish_finishing_it_writes(
    tmp_path: Path, moto_s3: S3Server, killed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A publish or rollback SIGKILLed after its swap, before it wrote index.html: `doit plan`
    says the commit step is unfinished and lists the page write and its invalidation, as
    the plain publish that finishes it then does (no `--verify` advice: it is not needed),
    also when that publish then swaps in a change of its own (`; change`)."""
    site = Site(tmp_path / "repo", moto_s3)
    site.publish()
    site.change("accounts", "2")
    args = [CHILD, str(site.root)]
    if killed.startswith("rollback"):
        site.publish()
        args = [ROLLBACK_CHILD, str(site.root), "accounts"]
    write_outputs(site.project, site.outputs)
    kill_when_held(site, moto_s3, nth(1, page_write), args, f"the {killed} never wrote index.html")
    if killed.endswith("; change"):
        site.change("payments", "2")
    before = objects(site.server, site.bucket("mfe-parent"))
    capsys.readouterr()
    plan = publish(site.project, "local", outputs=site.outputs, dry_run=True)
    said = capsys.readouterr().out
    assert objects(site.server, site.bucket("mfe-parent")) == before  # a plan writes nothing
    pending = live(site)
    assert f"release {pending.release} (seq {pending.seq}) is live but its commit step" in said
    assert "--verify" not in said
    dist = site.dist("mfe-parent")
    planned = writes(plan)
    assert {"upload  mfe-parent: index.html", f"invalidate {dist}: /index.html"} <= set(planned)
    if "change" not in killed:  # the table: 1 to upload, 1 to invalidate
        assert re.search(r"mfe-parent\W+1\W+\d+\W+0\W+1\W", summary(plan))
    report = publish(site.project, "local", outputs=site.outputs)
    assert writes(report) == planned and report.noop is plan.noop is ("change" not in killed)
    assert plan.to_dict()["invalidations"] == report.to_dict()["invalidations"]
    assert hashlib.sha256(served(site)).hexdigest() == live(site).page.sha256


def test_an_app_rollback_killed_after_the_swap_it_retried_leaves_everything_it_names_up(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """`rollback app=accounts` loses its first swap to another checkout's publish of
    payments, re-renders the page over the new pointer, swaps, and is SIGKILLed at the next
    request: every file that pointer names is up, so the next command finishes it."""
    site = Site(tmp_path / "repo", moto_s3)
    site.publish()
    first = live(site)
    other = tmp_path / "other"
    shutil.copytree(site.root, other, ignore=shutil.ignore_patterns(".mfe"))
    write_app(other, "payments", "2")
    site.change("accounts", "bad")
    site.publish()
    write_outputs(site.project, site.outputs)

    def other_publish() -> None:
        publish(load_project(other), "local", outputs=site.outputs, smoke=False)

    hold = lost_race(other_publish, hold_after=2)
    args = [ROLLBACK_CHILD, str(site.root), "accounts"]
    kill_when_held(site, moto_s3, hold, args, "the rollback never swapped twice")

    url = f"{site.outputs.apps['mfe-parent'].base_url}index.html"
    smoke_check(url, attempts=1)  # still the other checkout's release, whole
    pointer = live(site)
    assert (pointer.seq, pointer.action) == (4, "rollback")  # swapped over seq 3, then killed
    assert pointer.apps["accounts"].version == first.apps["accounts"].version
    theirs = list_records(site.server.client(), site.bucket("mfe-parent"))[-1]
    assert theirs.seq == 3 and pointer.apps["payments"] == theirs.apps["payments"]  # merged
    assert ca_key("index.html", pointer.page.sha256) in objects(
        site.server, site.bucket("mfe-parent")
    )
    report = publish(load_project(other), "local", outputs=site.outputs, smoke=False).to_dict()
    assert report["noop"] is True  # finished the rollback's commit step, nothing else to do
    smoke_check(url, attempts=1)
    records = list_records(site.server.client(), site.bucket("mfe-parent"))
    assert [r.seq for r in records] == [1, 2, 3, 4]
    page = hashlib.sha256(served(site)).hexdigest()
    assert page == pointer.page.sha256 == records[-1].page.sha256


class AfterSwap:
    """Stops a publish behind a proxy right after its pointer swap, before its commit step:
    `hold` (the first later request is never forwarded: the publish is then killed) or
    `gate` (every later request waits for `go`: the publish is merely slow)."""

    def __init__(self) -> None:
        self.swapped = False
        self.reached = threading.Event()
        self.go = threading.Event()

    def hold(self, method: str, path: str) -> bool:
        if self.swapped:
            return True
        self.swapped = method == "PUT" and path.endswith(POINTER)
        return False

    def gate(self, method: str, path: str) -> None:
        if self.hold(method, path):
            self.reached.set()
            assert self.go.wait(120)


def stop_after_swap(
    root: Path,
    stop: str,
    proxy: FailingProxy,
    after: AfterSwap,
    children: list[subprocess.Popen[bytes]],
) -> None:
    """Publish `root` in a child process behind `proxy` until it swapped the pointer; then
    SIGKILL it (`stop == "killed"`) or leave it waiting in `after.gate`."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root)],
        env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"},
    )
    children.append(child)
    reached = proxy.held if stop == "killed" else after.reached
    assert reached.wait(60), "publish A never swapped the pointer"
    if stop == "killed":
        child.send_signal(signal.SIGKILL)
        child.wait(10)


GATED_TRIALS = 2
"""The interleavings below are forced by gates, not left to timing: the first round on a
fresh history, the second on the seqs the first left, show the end state holds; a third
only repeated the second (as test_releases_killed's ROUNDS)."""


@pytest.mark.parametrize("stop", ["killed", "slow"])
def test_a_release_whose_publish_stopped_before_recording_it_stays_in_the_history(
    tmp_path: Path, moto_s3: S3Server, stop: str
) -> None:
    """Publish A swaps seq N -> N+1 and stops before its commit step records N+1 (killed,
    or just slow); publish B read seq N before that swap, loses its own, re-reads and swaps
    N+1 -> N+2. N+1 was served: its record must exist, byte for byte the pointer A wrote
    (so a slow A writing it later changes nothing), and `doit releases` lists it."""
    site = Site(tmp_path / "repo", moto_s3)
    site.publish()
    a = Clone(site, tmp_path / "a")
    write_outputs(load_project(a.root), site.outputs)
    moto_port = site.port
    for trial in range(GATED_TRIALS):
        a.change("accounts", f"a{trial}")
        site.change("payments", f"b{trial}")
        base = live(site).seq
        stopped = AfterSwap()
        if stop == "killed":
            proxy_a = FailingProxy(moto_s3.endpoint, hold=stopped.hold)
        else:
            proxy_a = FailingProxy(moto_s3.endpoint, gate=stopped.gate)
        use_port(a.root, proxy_a.port)
        children: list[subprocess.Popen[bytes]] = []
        publish_a = functools.partial(stop_after_swap, a.root, stop, proxy_a, stopped, children)
        proxy_b = FailingProxy(moto_s3.endpoint, hold=lost_race(publish_a))
        try:
            site.point_at(proxy_b.port)
            site.publish(smoke=False)
            seqs = [r.seq for r in history(site)]  # A is still stopped (or dead)
        finally:
            site.point_at(moto_port)
            proxy_b.close()
            stopped.go.set()  # a slow A goes on: its commit step, then its record
            for child in children:
                assert child.wait(60) == (-signal.SIGKILL if stop == "killed" else 0)
            proxy_a.close()
        assert seqs == list(range(1, base + 3)), trial
        records = history(site)
        assert [r.seq for r in records] == seqs
        assert (records[base].changed, records[base + 1].changed) == (["accounts"], ["payments"])
        swapped = [
            b for p, b in zip(proxy_a.paths, proxy_a.bodies, strict=True) if p.endswith(POINTER)
        ]
        s3, bucket = site.server.client(), site.bucket("mfe-parent")
        recorded = s3.get_object(Bucket=bucket, Key=history_key(base + 1))["Body"].read()
        assert swapped == [recorded]  # the pointer A wrote, byte for byte
        page = check_consistent(site).decode()
        assert entry(a.root, "accounts") in page and entry(site.root, "payments") in page
    shown = show(site.project, site.project.env("local"), site.outputs)
    for record in history(site):
        assert f"{record.seq:>5}  {record.release}  " in shown
    assert len(history(site)) == 1 + 2 * GATED_TRIALS


def test_an_app_rollback_records_the_release_it_swapped_past(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """`rollback app=accounts` read seq N; another checkout's publish of payments swaps
    N -> N+1 and is killed before recording it; the rollback merges over it and swaps
    N+1 -> N+2: it records N+1, as a publish would."""
    site = Site(tmp_path / "repo", moto_s3)
    site.publish()
    a = Clone(site, tmp_path / "a")
    write_outputs(load_project(a.root), site.outputs)
    moto_port = site.port
    for trial in range(GATED_TRIALS):
        site.change("accounts", f"bad{trial}")
        site.publish(smoke=False)
        a.change("payments", f"p{trial}")
        base = live(site).seq
        stopped = AfterSwap()
        proxy_a = FailingProxy(moto_s3.endpoint, hold=stopped.hold)
        use_port(a.root, proxy_a.port)
        children: list[subprocess.Popen[bytes]] = []
        publish_a = functools.partial(stop_after_swap, a.root, "killed", proxy_a, stopped, children)
        proxy_b = FailingProxy(moto_s3.endpoint, hold=lost_race(publish_a))
        try:
            site.point_at(proxy_b.port)
            rollback(site.project, "local", outputs=site.outputs, app="accounts", smoke=False)
        finally:
            site.point_at(moto_port)
            proxy_b.close()
            for child in children:
                assert child.wait(60) == -signal.SIGKILL
            proxy_a.close()
        records = history(site)
        assert [r.seq for r in records] == list(range(1, base + 3)), trial
        assert [(r.action, r.changed) for r in records[-2:]] == [
            ("publish", ["payments"]),
            ("rollback", ["accounts"]),
        ]
        swapped = [
            b for p, b in zip(proxy_a.paths, proxy_a.bodies, strict=True) if p.endswith(POINTER)
        ]
        s3, bucket = site.server.client(), site.bucket("mfe-parent")
        recorded = s3.get_object(Bucket=bucket, Key=history_key(base + 1))["Body"].read()
        assert swapped == [recorded]
        page = check_consistent(site).decode()
        assert entry(a.root, "payments") in page and entry(site.root, "accounts") not in page


def test_a_store_ignoring_conditional_writes_is_refused_unless_locking_none(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    site = Site(tmp_path / "repo", moto_s3)
    proxy = FailingProxy(moto_s3.endpoint, strip_conditions=True)
    try:
        site.point_at(proxy.port)
        with pytest.raises(MfeError, match=r"ignores conditional writes .*`locking = \"none\"`"):
            site.publish()
        assert "_mfe/live.json" not in objects(site.server, site.bucket("mfe-parent"))
        with pytest.raises(MfeError, match="ignores conditional writes"):  # remembered
            site.publish()
        toml = site.root / "mfe.toml"
        toml.write_text(toml.read_text().replace("[publish]\n", '[publish]\nlocking = "none"\n'))
        site.publish()
        assert live(site).seq == 1
    finally:
        proxy.close()


def test_seaweedfs_honours_conditional_writes_and_the_pointer_swaps(
    tmp_path: Path, seaweed_s3: S3Server
) -> None:
    site = Site(tmp_path / "repo", seaweed_s3)
    s3 = seaweed_s3.client()
    assert probe(s3, site.bucket("mfe-parent")) is True  # If-None-Match / If-Match refused
    site.publish()
    site.change("accounts", "2")
    site.publish()
    pointer = live(site)
    assert pointer.seq == 2 and pointer.changed == ["accounts"]
    stale_etag = '"' + "0" * 32 + '"'
    from mfe.publish.pointer import Conflict, swap

    with pytest.raises(Conflict):  # a swap from a pointer read before seq 2 loses
        swap(s3, site.bucket("mfe-parent"), pointer, stale_etag)


def chunks(site: Site, version: str, count: int) -> None:
    """payments at `version` with `count` fingerprinted chunks of that version's own."""
    extra = {}
    for index in range(count):
        body = f"export const c = '{version}-{index}';\n".encode()
        extra[f"assets/c{index}-{hashlib.sha256(body).hexdigest()[:8].upper()}7.js"] = body
    write_app(site.root, "payments", version, extra=extra)
    render_shell(site.root, site.outputs)


def interrupt_main() -> None:
    """SIGINT to the main thread, as Ctrl-C in a terminal does."""
    main = threading.main_thread().ident
    assert main is not None
    signal.pthread_kill(main, signal.SIGINT)


CHUNKS = 100


def test_ctrl_c_during_a_rollbacks_refresh_starts_no_more_copies(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """A rollback to a release whose 100 chunks are old and named by no live version copies
    each onto itself (after a spare copy under `_hold/`); Ctrl-C at the first copy stops
    it there (a thread pool's exit would run every queued copy first; measured, 2 copies
    were made of 300, so 100 keep the margin), the pointer and page stay, and the re-run
    rolls back."""
    site = Site(tmp_path / "site", moto_s3, grace_seconds=0)  # every target file is old
    chunks(site, "1", CHUNKS)
    site.publish()
    first = live(site)
    chunks(site, "2", CHUNKS)
    site.publish()
    second, page = live(site), served(site)

    def a_copy(method: str, path: str) -> bool:
        return method == "PUT" and f"/{HOLD_PREFIX}" in path

    with ctrl_c_at(site, a_copy) as proxy, pytest.raises(KeyboardInterrupt):
        rollback(site.project, "local", outputs=site.outputs, smoke=False)
    copies = [path for path in proxy.paths if f"/{HOLD_PREFIX}" in path]
    assert len(copies) < CHUNKS // 2, len(copies)
    assert live(site).seq == second.seq and served(site) == page
    back = rollback(site.project, "local", outputs=site.outputs, smoke=False)
    assert back.rollback_of == first.release and live(site).page == first.page
    assert served(site) != page


@contextmanager
def ctrl_c_at(site: Site, when: Callable[[str, str], bool]) -> Iterator[FailingProxy]:
    """The site's S3 requests go through a proxy that sends Ctrl-C to this (main) thread at
    the first request `when` picks (the request itself still goes through)."""
    sent = threading.Event()

    def gate(method: str, path: str) -> None:
        if not sent.is_set() and when(method, path):
            sent.set()
            interrupt_main()

    proxy = FailingProxy(site.server.endpoint, gate=gate)
    port = site.port
    try:
        site.point_at(proxy.port)
        yield proxy
    finally:
        proxy.close()
        site.point_at(port)
    assert sent.is_set(), "no request was the one to send Ctrl-C at"


def ctrl_c_rollback(site: Site, when: Callable[[str, str], bool], **options: str) -> str:
    """`doit rollback`'s action, with Ctrl-C sent to it at the first S3 request `when` picks;
    its failure message."""
    write_outputs(site.project, site.outputs)
    with ctrl_c_at(site, when):
        failed = run_rollback(site.project, site.project.env("local"), **options)
    assert isinstance(failed, TaskFailed), failed
    return str(failed.message)


def after_the_swap() -> Callable[[str, str], bool]:
    """The first request after the pointer PUT: the swap is made, the commit step is not."""
    after = AfterSwap()
    return after.hold


@pytest.mark.parametrize("app", [None, "accounts"])
def test_ctrl_c_after_a_rollbacks_swap_names_what_is_live_and_the_command_that_finishes_it(
    tmp_path: Path, moto_s3: S3Server, app: str | None
) -> None:
    """The swap is made, its commit step is not: a plain `doit rollback` would go one
    release further back, so the message names the release live and `to=` the target,
    which finishes the commit step and swaps nothing more."""
    site = Site(tmp_path / "site", moto_s3)
    site.publish()
    first = live(site)
    site.change("accounts", "2")
    site.publish()
    second = live(site)
    options = {"app": app} if app else {}
    message = ctrl_c_rollback(site, after_the_swap(), **options)
    now = live(site)
    assert now.seq == second.seq + 1 and now.rollback_of == first.release, message
    assert message.startswith(
        f"rollback interrupted (Ctrl-C): its switch was made: the live pointer names release "
        f"{now.release} (seq {now.seq}, "
    ), message
    command = f"doit rollback env=local{f' app={app}' if app else ''} to={first.seq}"
    assert f"run `{command}` to finish it" in message and "one release further back" in message

    project = site.project
    assert run_rollback(project, project.env("local"), to=str(first.seq), **options) is None
    assert live(site).seq == now.seq  # finished, not rolled back again
    assert [r.seq for r in history(site)] == [1, 2, now.seq]
    assert hashlib.sha256(served(site)).hexdigest() == now.page.sha256
    assert entry(site.root, "accounts") not in served(site).decode()  # accounts v1 again


def test_ctrl_c_before_a_rollbacks_swap_says_nothing_changed_and_the_command_to_run(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """Stopped at its first spare copy (the refresh before the swap): the message names the
    release still served and the command that rolls back to the chosen target."""
    site = Site(tmp_path / "site", moto_s3, grace_seconds=0)  # the target's files: refreshed
    site.publish()
    first = live(site)
    site.change("accounts", "2")
    site.publish()
    second, page = live(site), served(site)
    message = ctrl_c_rollback(site, lambda method, path: f"/{HOLD_PREFIX}" in path)
    assert live(site).seq == second.seq and served(site) == page
    assert message == (
        f"rollback interrupted (Ctrl-C): nothing was switched: release {second.release} (seq "
        f"{second.seq}) is still served; run `doit rollback env=local to={first.seq}` to serve "
        f"release {first.release} (seq {first.seq})"
    )
    project = site.project
    assert run_rollback(project, project.env("local"), to=str(first.seq)) is None
    assert live(site).rollback_of == first.release and live(site).page == first.page


def ctrl_c_publish(site: Site, when: Callable[[str, str], bool]) -> str:
    """`doit publish`'s action, with Ctrl-C sent to it at the first S3 request `when`
    picks; its failure message."""
    write_outputs(site.project, site.outputs)
    with ctrl_c_at(site, when):
        failed = run_publish(site.project, site.project.env("local"))
    assert isinstance(failed, TaskFailed), failed
    return str(failed.message)


def test_ctrl_c_after_a_publishs_swap_names_the_release_it_switched_to(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """Publish knows it swapped: the message names the new release (not "the previous
    one or the new one"), served once its commit step is finished, which a re-run does."""
    site = Site(tmp_path / "site", moto_s3)
    site.publish()
    first = live(site)
    site.change("accounts", "2")
    message = ctrl_c_publish(site, after_the_swap())
    now = live(site)
    assert now.seq == first.seq + 1, message
    assert message == (
        f"publish interrupted (Ctrl-C): its switch was made: the live pointer names release "
        f"{now.release} (seq {now.seq}), served once its commit step is finished (until then "
        f"the page of release {first.release} (seq {first.seq})); run `doit publish env=local` "
        "again to finish it"
    )
    assert run_publish(site.project, site.project.env("local")) is None
    assert [r.seq for r in history(site)] == [1, 2] and live(site).seq == now.seq
    assert hashlib.sha256(served(site)).hexdigest() == now.page.sha256


def test_ctrl_c_before_a_publishs_swap_names_the_release_still_served(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    site = Site(tmp_path / "site", moto_s3)
    site.publish()
    first, page = live(site), served(site)
    site.change("accounts", "2")
    message = ctrl_c_publish(site, lambda method, path: method == "PUT" and "-accounts/" in path)
    assert live(site).seq == first.seq and served(site) == page
    assert message == (
        f"publish interrupted (Ctrl-C): nothing was switched: release {first.release} (seq "
        f"{first.seq}) is still served; run `doit publish env=local` again: it uploads only "
        "what is missing and finishes"
    )
