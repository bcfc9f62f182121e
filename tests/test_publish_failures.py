"""A publish that dies halfway (an S3 endpoint that starts refusing uploads after K
objects) leaves the previous release served, and the re-run uploads only what is missing."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mfe.config import load_project
from mfe.envs.emulator import stop_emulator
from mfe.errors import MfeError
from mfe.publish import publish
from mfe.publish.local import LocalFile, collect
from mfe.publish.pointer import POINTER_KEY
from mfe.publish.remote import RESUMES
from mfe.publish.report import Progress
from mfe.publish.smoke import smoke_check

from fixtures.aws import free_port, refused, start_moto, stop_process
from fixtures.proxy import FailingProxy
from fixtures.s3 import S3Server, Site, objects, render_shell, write_app
from fixtures.serve import wait_until


@pytest.fixture
def site(tmp_path: Path, moto_s3: S3Server) -> Site:
    return Site(tmp_path / "repo", moto_s3)


@pytest.fixture
def proxy(moto_s3: S3Server) -> Iterator[FailingProxy]:
    found = FailingProxy(moto_s3.endpoint, allow=2)
    yield found
    found.close()


def test_upload_order_assets_then_mutable_then_shell(site: Site, moto_s3: S3Server) -> None:
    recorder = FailingProxy(moto_s3.endpoint, allow=10_000)
    try:
        site.point_at(recorder.port)
        site.publish()
    finally:
        recorder.close()
    keys = [path.split("/", 2)[2] for path in recorder.paths]
    keys = [k for k in keys if k != "_mfe/cas-probe"]  # the once-per-env locking check

    def kind(key: str) -> str:
        if key.startswith("main-"):
            return "fingerprinted"
        if key.startswith("_ca/"):
            return "page copy" if key.endswith("/index.html") else "content-addressed"
        return key.split("/")[1] if key.startswith("_mfe/") else key

    order = [kind(k) for k in keys]
    assert set(order[:6]) == {"fingerprinted"}  # every app's fingerprinted files
    assert order[6:] == [
        "content-addressed",  # favicon.svg's _ca/ copy
        *["versions"] * 3,  # each app version's file list
        "page copy",  # the page's _ca/ copy, then the one write that switches the release:
        "live.json",
        "favicon.svg",  # commit step: fixed URLs, the page last, then the history record
        "index.html",
        "history",
    ]


def test_interrupted_publish_keeps_old_release_and_rerun_finishes(
    site: Site, proxy: FailingProxy
) -> None:
    first = site.publish()
    old_shell = objects(site.server, site.bucket("mfe-parent"))["index.html"]
    site.change("accounts", "2")
    site.change("payments", "2")  # 4 fingerprinted files + the shell to upload

    moto_port = site.port
    site.point_at(proxy.port)
    with pytest.raises(MfeError, match=r"access denied while uploading .* in bucket 'pub"):
        site.publish()
    assert proxy.puts >= 3  # two went through, then refusals

    parent = objects(site.server, site.bucket("mfe-parent"))
    assert parent["index.html"] == old_shell  # the shell never went up
    assert [k for k in parent if k.startswith("_mfe/history/")] == ["_mfe/history/0000000001.json"]
    smoke_check(first["site_url"])  # the old page and all its assets still load

    site.point_at(moto_port)
    report = site.publish()
    uploaded = sorted(k for row in report["apps"].values() for k in row["uploaded"])
    assert len(uploaded) == 4  # 4 - 2 already uploaded, + the page's _ca/ copy and index.html
    assert report["apps"]["mfe-parent"]["uploaded"][-1] == "index.html"
    assert report["invalidations"] == {site.dist("mfe-parent"): ["/index.html"]}
    assert objects(site.server, site.bucket("mfe-parent"))["index.html"] != old_shell


def test_smoke_check_names_a_missing_or_corrupted_asset(site: Site) -> None:
    report = site.publish()
    url = report["site_url"]
    entry = next(k for k in report["apps"]["payments"]["uploaded"] if k.endswith(".js"))
    asset = f"{site.outputs.apps['payments'].base_url}{entry}"
    s3 = site.server.client()
    s3.put_object(
        Bucket=site.bucket("payments"), Key=entry, Body=b"tampered", ContentType="text/javascript"
    )
    with pytest.raises(MfeError, match=rf"smoke check failed for {url}:\n  {asset} does not match"):
        smoke_check(url, attempts=2, first_delay=0.05)
    s3.delete_object(Bucket=site.bucket("payments"), Key=entry)
    with pytest.raises(MfeError, match=rf"{asset} answered 403|{asset} answered 404"):
        smoke_check(url, attempts=2, first_delay=0.05)
    # The pointer vouches for the unchanged app, so nothing is listed, until the smoke check
    # fails: then its bucket is listed and what it lacks uploaded.
    repaired = site.publish()
    assert repaired["noop"] is True and repaired["apps"]["payments"]["uploaded"] == [entry]
    s3.delete_object(Bucket=site.bucket("payments"), Key=entry)
    healed = site.publish(verify=True)  # the listing shows it missing: uploaded, smoke passes
    assert healed["apps"]["payments"]["uploaded"] == [entry]


def tamper(site: Site, app: str, pattern: str = "main-*.js") -> str:
    """Append a line to one of the app's built files, as a step editing a bundle would:
    its bytes no longer match its asset-manifest.json. Returns its root-relative path."""
    path = next((site.root / "apps" / app / "dist").glob(pattern))
    with path.open("a") as stream:
        stream.write('console.log("X");\n')
    return path.relative_to(site.root).as_posix()


def test_a_file_edited_since_its_build_is_refused_and_nothing_live_changes(site: Site) -> None:
    first = site.publish()
    parent = site.bucket("mfe-parent")
    live_before = objects(site.server, parent)
    site.change("payments", "2")
    edited = tamper(site, "payments")

    with pytest.raises(MfeError) as refused:
        site.publish()
    message = str(refused.value)
    assert message.startswith(
        f"{edited}: changed since its build (its bytes no longer match "
        "apps/payments/dist/asset-manifest.json)"
    )
    assert "`doit build:payments`" in message

    live_after = objects(site.server, parent)
    assert live_after["_mfe/live.json"] == live_before["_mfe/live.json"]  # no swap
    assert live_after["index.html"] == live_before["index.html"]
    assert edited.rsplit("/", 1)[1] not in objects(site.server, site.bucket("payments"))
    smoke_check(first["site_url"], attempts=1)  # the old release still loads in full


def test_a_file_edited_since_its_build_is_refused_by_an_upload_worker_process(
    site: Site,
) -> None:
    keys = large_app(site)
    edited = tamper(site, "payments", keys[-1])
    with pytest.raises(MfeError, match=rf"^{edited}: changed since its build"):
        site.publish()
    assert "_mfe/live.json" not in objects(site.server, site.bucket("mfe-parent"))


class Removing(Progress):
    """Removes a built file as the upload phases start (after the plan found it), as a
    clean or a rebuild running meanwhile would."""

    def __init__(self, path: Path) -> None:
        super().__init__(rich=False)
        self.path = path

    def phase(self, name: str, batch: list[LocalFile]) -> None:
        self.path.unlink(missing_ok=True)
        super().phase(name, batch)


def test_a_file_removed_during_the_publish_is_refused_as_changed(site: Site) -> None:
    """It read as a failed S3 request ("No such file or directory"), not a local change."""
    site.publish()
    live_before = objects(site.server, site.bucket("mfe-parent"))["_mfe/live.json"]
    site.change("payments", "2")
    gone = next((site.root / "apps/payments/dist").glob("main-*.js"))
    with pytest.raises(MfeError) as refused:
        publish(site.project, "local", outputs=site.outputs, progress=Removing(gone))
    assert str(refused.value) == (
        f"{gone.relative_to(site.root)}: changed since its build (it is gone, yet listed in "
        "apps/payments/dist/asset-manifest.json); nothing was published: run `doit "
        "build:payments` to rebuild it, then publish again"
    )
    assert objects(site.server, site.bucket("mfe-parent"))["_mfe/live.json"] == live_before


def test_a_file_removed_during_the_publish_is_refused_by_an_upload_worker_process(
    site: Site,
) -> None:
    keys = large_app(site)
    gone = f"apps/payments/dist/{keys[-1]}"
    with pytest.raises(MfeError, match=rf"^{gone}: changed since its build \(it is gone"):
        publish(site.project, "local", outputs=site.outputs, progress=Removing(site.root / gone))
    assert "_mfe/live.json" not in objects(site.server, site.bucket("mfe-parent"))


def test_the_repair_never_sends_again_bytes_that_fail_their_integrity(site: Site) -> None:
    """Edited bytes a publish without the check put online: the repair after the smoke check
    refuses to send them again, naming the file, instead of failing on them twice."""
    site.publish()
    edited = tamper(site, "payments")
    key = edited.rsplit("/", 1)[1]
    s3 = site.server.client()
    bucket = site.bucket("payments")
    body = (site.root / edited).read_bytes()
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/javascript")
    with pytest.raises(MfeError, match=rf"^{edited}: changed since its build") as refused:
        site.publish()
    assert "--verify" not in str(refused.value)
    assert objects(site.server, bucket)[key] == hashlib.md5(body).hexdigest()  # not sent again


def test_unknown_distribution_is_a_clear_error_and_the_rerun_invalidates(site: Site) -> None:
    from dataclasses import replace

    site.publish()
    real = site.outputs
    parent = real.apps["mfe-parent"]
    site.outputs = replace(
        real, apps={**real.apps, "mfe-parent": replace(parent, distribution_id="EDOESNOTEXIST")}
    )
    site.change("accounts", "2")
    with pytest.raises(MfeError, match="distribution 'EDOESNOTEXIST' of environment 'local'"):
        site.publish()
    site.outputs = real
    # The files are online and the release is recorded as not yet invalidated: once the
    # outputs name the right distribution, the re-run resumes that release and invalidates.
    again = site.publish()
    assert all(not row["uploaded"] for row in again["apps"].values())
    assert again["invalidations"] == {parent.distribution_id: ["/index.html"]}
    assert again["release"] == again["previous_release"]  # resumed, not a new release
    assert site.invalidation_count("mfe-parent") == 1
    assert site.publish()["noop"] is True


def large_app(site: Site, count: int | None = None) -> list[str]:
    """payments with `count` extra fingerprinted chunks (default PROCESS_MIN_FILES: a phase
    for processes)."""
    import hashlib

    from mfe.publish.upload import PROCESS_MIN_FILES

    extra = {}
    for index in range(PROCESS_MIN_FILES if count is None else count):
        body = f"export const c = {index};\n".encode()
        extra[f"assets/c{index}-{hashlib.sha256(body).hexdigest()[:8].upper()}7.js"] = body
    write_app(site.root, "payments", extra=extra)
    render_shell(site.root, site.outputs)
    return list(extra)


def test_a_phase_of_thousands_of_files_uploads_over_worker_processes(
    site: Site, moto_s3: S3Server
) -> None:
    """One worker process per core for a large phase: every file lands with its headers and
    every request is counted; a refusal in a worker names the file, as with threads."""
    keys = large_app(site)
    moto_port = site.port
    refusing = FailingProxy(moto_s3.endpoint, allow=100)
    try:
        site.point_at(refusing.port)
        with pytest.raises(MfeError, match=r"access denied while uploading \S+ \(app \w+\) in"):
            site.publish()
    finally:
        refusing.close()
    site.point_at(moto_port)
    report = site.publish()
    uploaded = report["apps"]["payments"]["uploaded"]
    assert set(keys) - set(objects(site.server, site.bucket("payments"))) == set()
    assert 0 < len(set(keys) & set(uploaded)) < len(keys)  # only what the refusals kept out
    assert report["requests"]["s3"] >= len(uploaded)  # the workers' requests are counted
    head = site.server.client().head_object(Bucket=site.bucket("payments"), Key=keys[-1])
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert head["ContentType"].startswith("text/javascript") and head["Metadata"]["sha256"]


class StopsTheEmulator(Progress):
    """Stops the emulator (SIGTERM, as `doit local_stop` does) when the first uploaded file
    is reported, and waits until its port is closed, as `doit local_stop` waits for the
    server and its worker (which served a moment longer: the publish once finished): the
    rest of the upload phase meets a closed port."""

    def __init__(self, emulator: subprocess.Popen[bytes], port: int) -> None:
        super().__init__(rich=False)
        self.emulator = emulator
        self.port = port
        self.stopped = threading.Event()
        self._stop_lock = threading.Lock()

    def file_done(self, file: LocalFile) -> None:
        with self._stop_lock:  # upload threads report their files at once
            if not self.stopped.is_set():
                stop_process(self.emulator)
                wait_until(lambda: refused(self.port), f"port {self.port} still open", timeout=10)
                self.stopped.set()


@pytest.mark.parametrize("env", ["local", "store"])
def test_aws_max_attempts_sets_the_tries_of_each_request_the_gone_emulator_gets_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str
) -> None:
    """As with the AWS CLI, `AWS_MAX_ATTEMPTS` overrides the six tries per request: a request
    to an S3-compatible store that is gone (`endpoint_url` of an AWS environment) is sent
    that many times, then the error. The local emulator's is sent once: nothing listening
    on its loopback port means it is gone, with the state it kept in memory."""
    from botocore.exceptions import EndpointConnectionError
    from test_infra import make_project

    from mfe.envs.session import Session

    project = make_project(tmp_path, f"http://127.0.0.1:{free_port()}")
    with (tmp_path / "mfe.toml").open("a") as toml:
        store = f"http://127.0.0.1:{free_port()}"
        toml.write(f'\n[env.store]\nregion = "us-east-1"\nendpoint_url = "{store}"\n')
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # the store's keys, as a user exports them
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    session = Session(load_project(project.root), env)
    with pytest.raises(EndpointConnectionError):
        session.s3.list_buckets()
    assert session.requests == {"s3": 1 if env == "local" else 2}


@pytest.mark.parametrize("workers", ["threads", "processes"])
def test_a_connection_lost_during_the_uploads_says_to_run_the_command_again(
    tmp_path: Path, workers: str
) -> None:
    """The emulator stops in the middle of the uploads: the error names the endpoint and
    says what to do (uploads are content-addressed, the page switches only after them), and
    comes at once: no request is tried again once the port is closed."""
    from mfe.envs.session import Session

    port = free_port()
    emulator = start_moto(port, tmp_path / "moto.log")
    try:
        site = Site(tmp_path / "repo", S3Server(f"http://127.0.0.1:{port}", cloudfront=True))
        site.publish()
        large_app(site, None if workers == "processes" else 40)
        progress = StopsTheEmulator(emulator, port)
        session = Session(site.project, "local", outputs=site.outputs)
        after_stop: Counter[str] = Counter()

        def record(request: Any, **_: Any) -> None:
            if progress.stopped.is_set():
                after_stop[request.url] += 1

        session.s3.meta.events.register("before-send.s3", record)  # this process's requests
        with pytest.raises(MfeError) as lost:
            publish(site.project, "local", outputs=site.outputs, progress=progress, session=session)
    finally:
        stop_process(emulator)
    # Each request is tried once after the stop, not six times with backoff (20-40 s); the
    # worker processes' clients: test_an_upload_worker_process_tries_a_gone_request_once.
    assert set(after_stop.values()) <= {1}, after_stop
    message = str(lost.value)
    assert f"lost the connection to http://127.0.0.1:{port} while uploading " in message
    assert "in bucket 'pub" in message and "(environment 'local')" in message
    assert message.endswith(GONE), message  # not "uploads only what is missing": all is gone


GONE = (
    "its buckets and release history went with it (it kept them in memory), so nothing is "
    "published there any more; the next `doit publish env=local` starts a new one and "
    "uploads everything"
)
"""How a command whose local emulator stopped under it ends: no promise to go on."""


@pytest.mark.parametrize("env", ["local", "store"])
def test_only_the_local_emulator_gone_loses_the_state_a_store_keeps_the_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str
) -> None:
    """Nothing listens on the port: the local emulator's state went with it; an
    S3-compatible store (an AWS environment's `endpoint_url`) keeps what it was sent, so
    the message still says the command goes on from what it did."""
    from test_infra import make_project

    from mfe.envs.session import Session
    from mfe.publish.remote import list_bucket

    project = make_project(tmp_path, f"http://127.0.0.1:{free_port()}")
    with (tmp_path / "mfe.toml").open("a") as toml:
        toml.write(
            f'\n[env.store]\nregion = "us-east-1"\nendpoint_url = "http://127.0.0.1:{free_port()}"\n'
        )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(MfeError) as lost:
        list_bucket(Session(load_project(project.root), env), "site")
    message = str(lost.value)
    assert message.startswith("lost the connection to http://127.0.0.1:"), message
    if env == "local":
        assert message.endswith(GONE), message
    else:
        assert message.endswith(f"; run the same command again: {RESUMES}"), message


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the emulator and its worker process (the one that holds its state)."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    for pid in [*map(int, children), proc.pid]:
        os.kill(pid, signal.SIGKILL)
    proc.wait()


def killed_mid_publish(
    tmp_path: Path, service: str, when: Callable[[Any], bool]
) -> tuple[Site, int, str]:
    """A site published on its own emulator, then changed and published again with the
    emulator SIGKILLed as `service`'s first request `when` picks is sent: the site, the
    emulator's port and the publish's error message."""
    from mfe.envs.session import Session

    port = free_port()
    emulator = start_moto(port, tmp_path / "moto.log")
    site = Site(tmp_path / "repo", S3Server(f"http://127.0.0.1:{port}", cloudfront=True))
    try:
        site.publish()
        site.change("accounts", "2")
        session = Session(site.project, "local", outputs=site.outputs)

        def kill(request: Any, **_: Any) -> None:
            if when(request):
                kill_tree(emulator)
                wait_until(lambda: refused(port), f"port {port} still open", timeout=10)

        client = session.s3 if service == "s3" else session.cloudfront
        client.meta.events.register(f"before-send.{service}", kill)
        with pytest.raises(MfeError) as lost:
            publish(site.project, "local", outputs=site.outputs, session=session, smoke=False)
    finally:
        stop_process(emulator)
    return site, port, str(lost.value)


def test_an_emulator_killed_at_the_swap_is_said_gone_and_the_next_publish_starts_anew(
    tmp_path: Path,
) -> None:
    """SIGKILL of the emulator as the publish swaps the pointer: its state is gone with it,
    so the message says so (not "run the same command again: it goes on from what this one
    did"), and the next publish starts a new emulator and uploads every file again."""
    site, port, message = killed_mid_publish(
        tmp_path, "s3", lambda r: r.method == "PUT" and r.url.endswith(POINTER_KEY)
    )
    assert message.startswith(
        f"lost the connection to http://127.0.0.1:{port} while swapping the live pointer in "
        f"bucket '{site.bucket('mfe-parent')}' (environment 'local'): the local AWS emulator "
        f"no longer listens on port {port} ("
    ), message
    assert message.endswith(GONE), message

    project = load_project(site.root)
    try:
        again = publish(project, "local", smoke=False)  # starts and provisions a new emulator
    finally:
        stop_emulator(project, project.env("local"))
    local = sum(len(la.files) for la in collect(project, "local", None).values())
    assert again.seq == 1 and sum(len(a.uploaded) for a in again.apps.values()) >= local


def test_an_emulator_killed_before_an_invalidation_is_said_gone(tmp_path: Path) -> None:
    """CloudFront requests on `local` say the emulator's state went with it, as S3's do
    (they said "CloudFront request failed ... Could not connect")."""
    _, port, message = killed_mid_publish(
        tmp_path, "cloudfront", lambda r: r.method == "POST" and r.url.endswith("/invalidation")
    )
    assert message.startswith(
        f"lost the connection to http://127.0.0.1:{port} while invalidating distribution '"
    ), message
    assert "(environment 'local'): the local AWS emulator no longer listens on port" in message
    assert message.endswith(GONE), message


def test_an_upload_worker_process_tries_a_gone_request_once(tmp_path: Path) -> None:
    """Upload worker processes make their clients from the session's picklable spec, the
    emulator's hook with it: each upload of a batch to a closed port is sent once at most
    (the first failure cancels those not started), not six times with backoff."""
    from test_infra import make_project

    from mfe.envs.session import Session
    from mfe.publish.upload import upload_in_processes

    session = Session(make_project(tmp_path, f"http://127.0.0.1:{free_port()}"), "local")
    body = tmp_path / "main.js"
    body.write_text("export {};\n")
    sha256 = hashlib.sha256(body.read_bytes()).hexdigest()  # the upload sends matching bytes only
    files = [
        LocalFile("payments", f"c{n}.js", body, sha256, "0" * 32, body.stat().st_size,
                  "text/javascript", "no-cache", True, "0" * 32)
        for n in range(3)
    ]  # fmt: skip

    def ignore(_: object) -> None:
        pass

    with pytest.raises(MfeError, match=r"lost the connection to http://127\.0\.0\.1:\d+ while"):
        upload_in_processes(
            session, [("bucket", f) for f in files], len(files), ignore, ignore, RESUMES
        )
    assert 1 <= session.requests["s3"] <= len(files), session.requests


class CtrlC(Progress):
    """Sends SIGINT to the main thread, as Ctrl-C in a terminal does, when the first uploaded
    file is reported."""

    def __init__(self) -> None:
        super().__init__(rich=False)
        self.sent = threading.Event()

    def file_done(self, file: LocalFile) -> None:
        if not self.sent.is_set():
            self.sent.set()
            main = threading.main_thread().ident
            assert main is not None
            signal.pthread_kill(main, signal.SIGINT)


def test_ctrl_c_during_an_upload_phase_starts_no_more_uploads(site: Site) -> None:
    """Not every queued upload of the phase before the KeyboardInterrupt comes through (a
    thread pool's exit waits for them all); the old page stays, the re-run finishes."""
    site.publish()
    page = site.shell()
    keys = large_app(site, 300)
    with pytest.raises(KeyboardInterrupt):
        publish(site.project, "local", outputs=site.outputs, progress=CtrlC())
    landed = set(keys) & set(objects(site.server, site.bucket("payments")))
    assert len(landed) < len(keys) // 2, len(landed)
    assert site.shell() == page
    report = site.publish()
    assert set(keys) <= set(objects(site.server, site.bucket("payments")))
    assert len(report["apps"]["payments"]["uploaded"]) >= len(keys) - len(landed)
    assert report["changed"] == ["payments"]


def test_fixed_url_files_are_written_in_parallel(site: Site, moto_s3: S3Server) -> None:
    """The first fixed-URL write of the commit step is held at the proxy until a second one
    arrives: only writes sent `workers` at a time get there."""
    import threading

    public = {f"icons/i{n}.svg": f"<svg>{n} v1</svg>".encode() for n in range(20)}
    write_app(site.root, "accounts", public=public)
    site.publish()
    public = {key: body.replace(b"v1", b"v2") for key, body in public.items()}
    write_app(site.root, "accounts", public=public)
    render_shell(site.root, site.outputs)
    lock, seen, second, overlapped = threading.Lock(), [0], threading.Event(), []

    def gate(method: str, path: str) -> None:
        if method != "PUT" or "/icons/" not in path or "/_ca/" in path:
            return
        with lock:
            seen[0] += 1
            first = seen[0] == 1
        if first:
            overlapped.append(second.wait(10))  # False: nothing came while this one waited
        else:
            second.set()

    moto_port = site.port
    proxy = FailingProxy(moto_s3.endpoint, gate=gate)
    try:
        site.point_at(proxy.port)
        site.publish()
    finally:
        proxy.close()
        site.point_at(moto_port)
    assert overlapped == [True]
    s3 = site.server.client()
    for key, body in public.items():
        assert s3.get_object(Bucket=site.bucket("accounts"), Key=key)["Body"].read() == body


def test_a_fixed_file_that_cannot_be_written_leaves_the_old_page_live(site: Site) -> None:
    """The fixed-URL files go up in parallel, the page after all of them: when one cannot
    be written (its `_ca/` copy is gone), the page is not written; once the copy is back,
    the next publish finishes the commit. Tried with the first, a middle and the last file
    failing, as the others are in flight."""
    import hashlib

    from mfe.publish.versions import ca_key

    public = {f"icons/i{n:02}.svg": f"<svg>{n}</svg>".encode() for n in range(40)}
    write_app(site.root, "accounts", public=public)
    site.publish()
    s3 = site.server.client()
    accounts, parent = site.bucket("accounts"), site.bucket("mfe-parent")
    for trial, broken in enumerate(("icons/i00.svg", "icons/i20.svg", "icons/i39.svg")):
        old_page = objects(site.server, parent)["index.html"]
        for key in public:  # all drifted: the commit step writes every one again
            s3.delete_object(Bucket=accounts, Key=key)
        copy = ca_key(broken, hashlib.sha256(public[broken]).hexdigest())
        s3.delete_object(Bucket=accounts, Key=copy)
        site.change("payments", str(trial + 2))
        with pytest.raises(MfeError, match=rf"NoSuchKey while reading {copy} in bucket"):
            publish(site.project, "local", outputs=site.outputs, app="payments")
        assert objects(site.server, parent)["index.html"] == old_page
        s3.put_object(Bucket=accounts, Key=copy, Body=public[broken])
        publish(site.project, "local", outputs=site.outputs, app="payments")
        assert objects(site.server, parent)["index.html"] != old_page
        assert set(public) <= set(objects(site.server, accounts))
