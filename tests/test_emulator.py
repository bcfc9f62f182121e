"""The embedded moto emulator: started on demand, reused (also across checkouts), stopped by pid."""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from mfe.config import Project, load_project
from mfe.envs.emulator import START_TIMEOUT, _spawn, ensure_emulator, probe, stop_emulator
from mfe.envs.emulator_log import MAX_BYTES_VAR
from mfe.envs.emulator_process import group, read_records, runs_emulator
from mfe.envs.moto_server import PORT_TAKEN, claim_port, lock_file
from mfe.errors import MfeError

from fixtures.aws import free_port, free_ports, local_client, start_moto, stop_process

TRIALS = 5


def make_project(root: Path, port: int) -> Project:
    """A minimal monorepo (one parent app) whose emulator listens on `port`."""
    app = root / "apps" / "mfe-parent"
    app.mkdir(parents=True)
    (app / "package.json").write_text(json.dumps({"name": "p", "scripts": {"build": "true"}}))
    (root / "mfe.toml").write_text(
        f'[project]\nname = "emu"\n[apps.mfe-parent]\nrole = "parent"\n[env.local]\nport = {port}\n'
    )
    return load_project(root)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    made = make_project(tmp_path / "a", free_port())
    yield made
    stop_emulator(made, made.env("local"))


@contextmanager
def serving(port: int, handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[None]:
    """Another program (or a stand-in for a busy emulator) on 127.0.0.1:`port`."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def pid_file(project: Project) -> Path:
    return project.state_dir("local") / "emulator.pid"


def running_in_group(pgid: int) -> list[int]:
    """The processes of group `pgid` that have not ended (zombies await init's reaping)."""
    running = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
            if int(pgrp) == pgid and state != "Z":
                running.append(int(stat.parent.name))
    return running


def recorded_pid(project: Project) -> int:
    record = json.loads(pid_file(project).read_text())
    assert record["port"] == project.env("local").port
    return int(record["pid"])


def test_starts_reuses_and_stops(project: Project, tmp_path: Path) -> None:
    port = project.env("local").port
    assert port is not None
    assert probe(port) == "free"

    assert ensure_emulator(project, project.env("local")) == f"http://127.0.0.1:{port}"
    pid = recorded_pid(project)
    assert probe(port) == "moto"
    assert (project.state_dir("local") / "emulator.log").exists()

    ensure_emulator(project, project.env("local"))  # reused: no second server
    assert recorded_pid(project) == pid

    other = make_project(tmp_path / "b", port)  # another checkout, same port
    assert ensure_emulator(other, other.env("local")) == f"http://127.0.0.1:{port}"
    assert not pid_file(other).exists()
    assert f"of checkout {project.root.resolve()} did" in stop_emulator(other, other.env("local"))
    assert probe(port) == "moto"

    assert f"pid {pid}" in stop_emulator(project, project.env("local"))
    assert not pid_file(project).exists()
    assert probe(port) == "free"
    assert "no local AWS emulator was running" in stop_emulator(project, project.env("local"))


def test_stale_pid_file_is_replaced(project: Project) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    pid_file(project).parent.mkdir(parents=True)
    pid_file(project).write_text(f"{dead.pid}\n")

    ensure_emulator(project, project.env("local"))

    assert recorded_pid(project) != dead.pid
    assert probe(project.env("local").port or 0) == "moto"


def test_port_taken_by_something_else_is_a_clear_error(project: Project) -> None:
    port = project.env("local").port
    assert port is not None
    with serving(port, http.server.BaseHTTPRequestHandler), pytest.raises(MfeError) as caught:
        ensure_emulator(project, project.env("local"))
    message = str(caught.value)
    assert f"port {port}" in message
    assert "[env.local] port" in message
    assert "mfe.toml" in message
    assert not pid_file(project).exists()


def test_concurrent_starts_make_one_server(project: Project) -> None:
    port = project.env("local").port
    with ThreadPoolExecutor(max_workers=3) as pool:
        endpoints = list(
            pool.map(lambda _: ensure_emulator(project, project.env("local")), range(3))
        )

    assert endpoints == [f"http://127.0.0.1:{port}"] * 3
    assert "stopped" in stop_emulator(project, project.env("local"))
    assert probe(port or 0) == "free"  # no orphan server left answering


def test_a_second_local_environment_has_its_own_emulator(tmp_path: Path) -> None:
    first_port, second_port = free_ports(2)
    project = make_project(tmp_path / "a", first_port)
    config = project.root / "mfe.toml"
    config.write_text(config.read_text() + f'[env.second]\nkind = "local"\nport = {second_port}\n')
    project = load_project(project.root)
    local, second = project.env("local"), project.env("second")
    try:
        assert ensure_emulator(project, second) == f"http://127.0.0.1:{second_port}"
        assert probe(second_port) == "moto"
        assert local.port is not None and probe(local.port) == "free"
        assert (project.state_dir("second") / "emulator.pid").exists()
        assert not pid_file(project).exists()
        assert second.endpoint_url == f"http://127.0.0.1:{second_port}"
        assert second.cache_bucket == "emu-second-build-cache"
    finally:
        stopped = stop_emulator(project, second)
    assert "stopped" in stopped
    assert probe(second_port) == "free"


def test_a_local_environment_without_a_port_shares_the_local_emulator(tmp_path: Path) -> None:
    """`[env.qa] kind = "local"` with no port of its own follows a moved `[env.local] port`
    (its buckets are named by env), instead of starting another emulator on the default."""
    port = free_port()
    project = make_project(tmp_path / "a", port)
    config = project.root / "mfe.toml"
    config.write_text(config.read_text() + '[env.qa]\nkind = "local"\n')
    project = load_project(project.root)
    local, qa = project.env("local"), project.env("qa")
    assert qa.port == port  # checked first: the old default would start one on 4566
    try:
        assert ensure_emulator(project, local) == f"http://127.0.0.1:{port}"
        assert ensure_emulator(project, qa) == f"http://127.0.0.1:{port}"
        assert qa.endpoint_url == f"http://127.0.0.1:{port}"
        assert qa.cache_bucket == "emu-qa-build-cache" != local.cache_bucket
        assert probe(port) == "moto"
    finally:
        stop_emulator(project, local)
    assert probe(port) == "free"


def test_two_checkouts_starting_at_once_share_one_server(tmp_path: Path) -> None:
    """Each checkout locks only its own start, so both may spawn a server on the port; one
    must give way, or the kernel (granian binds with SO_REUSEPORT) splits the connections
    between two emulators: a bucket made through one is missing from half the requests."""
    for trial in range(TRIALS):
        port = free_port()
        checkouts = [make_project(tmp_path / f"{trial}-{name}", port) for name in "ab"]
        try:
            with ThreadPoolExecutor(max_workers=2) as pool:
                started = list(pool.map(lambda p: ensure_emulator(p, p.env("local")), checkouts))
            assert started == [f"http://127.0.0.1:{port}"] * 2
            local_client(started[0]).create_bucket(Bucket=f"trial-{trial}")
            for _ in range(12):  # a new connection each: every one reaches the same state
                names = [b["Name"] for b in local_client(started[0]).list_buckets()["Buckets"]]
                assert names == [f"trial-{trial}"]
        finally:
            for checkout in checkouts:
                stop_emulator(checkout, checkout.env("local"))
        assert probe(port) == "free"  # no second server left answering


def test_a_second_server_on_a_served_port_gives_way(tmp_path: Path) -> None:
    """Started by hand (or by a test) on a port an emulator already serves, the server
    exits with a message instead of sharing the port."""
    port = free_port()
    first = start_moto(port, tmp_path / "first.log")
    try:
        endpoint = f"http://127.0.0.1:{port}"
        local_client(endpoint).create_bucket(Bucket="kept")
        second = subprocess.run(
            [sys.executable, "-m", "mfe.envs.moto_server", "-H", "127.0.0.1", "-p", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == PORT_TAKEN
        assert f"another emulator already serves 127.0.0.1:{port}" in second.stdout
        for _ in range(12):  # a new connection each
            assert [b["Name"] for b in local_client(endpoint).list_buckets()["Buckets"]] == ["kept"]
    finally:
        stop_process(first)


def test_a_busy_emulator_is_not_taken_for_another_program(project: Project) -> None:
    """Under load (a CI job's 40 cache lookups on 8 server threads, say) the emulator
    answers its probe late; a command must reuse it, not report the port as taken."""
    port = project.env("local").port
    assert port is not None

    class Busy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # moto's config endpoint, after the queue's wait
            time.sleep(1.5)
            body = json.dumps({"batch": {}, "lambda": {}}).encode()
            self.send_response(201)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with serving(port, Busy):
        assert ensure_emulator(project, project.env("local")) == f"http://127.0.0.1:{port}"
    assert not pid_file(project).exists()  # reused, not started


def test_a_changed_port_starts_a_new_emulator_and_leaves_the_old_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pid file names the port its server listens on: after `[env.local] port`
    changes, the recorded server (which other checkouts may use) is not taken for the new
    port's, neither waited for nor stopped."""
    old_port, new_port = free_ports(2)
    before = make_project(tmp_path / "a", old_port)
    ensure_emulator(before, before.env("local"))
    old_record = pid_file(before).read_text()
    old_pid = recorded_pid(before)
    keeper = make_project(tmp_path / "keeper", old_port)  # stops the old one at the end
    pid_file(keeper).parent.mkdir(parents=True)
    pid_file(keeper).write_text(old_record)
    config = before.root / "mfe.toml"
    config.write_text(config.read_text().replace(f"port = {old_port}", f"port = {new_port}"))
    after = load_project(before.root)  # the same checkout, another port
    try:
        began = time.monotonic()
        assert ensure_emulator(after, after.env("local")) == f"http://127.0.0.1:{new_port}"
        assert time.monotonic() - began < START_TIMEOUT / 2  # started, not waited for
        assert probe(new_port) == "moto"
        assert probe(old_port) == "moto"  # the old server was left alone
        assert recorded_pid(after) != old_pid
        note = capsys.readouterr().err
        assert f"port {old_port} (pid {old_pid}) still runs" in note
    finally:
        stop_emulator(after, after.env("local"))
        stop_emulator(keeper, keeper.env("local"))
    assert probe(new_port) == "free"
    assert probe(old_port) == "free"


def test_local_stop_leaves_a_server_recorded_for_another_port(tmp_path: Path) -> None:
    """A pid file copied from a checkout on another port (or kept from before a port
    change) does not make `local_stop` stop the server of that port."""
    first_port, second_port = free_ports(2)
    first = make_project(tmp_path / "a", first_port)
    second = make_project(tmp_path / "b", second_port)
    ensure_emulator(first, first.env("local"))
    try:
        pid_file(second).parent.mkdir(parents=True)
        shutil.copy(pid_file(first), pid_file(second))

        said = stop_emulator(second, second.env("local"))

        assert "stopped" not in said
        assert f"port {first_port}" in said
        assert probe(first_port) == "moto"
        assert "no local AWS emulator was running" in said
    finally:
        assert "stopped" in stop_emulator(first, first.env("local"))
    assert probe(first_port) == "free"


def test_a_pid_file_of_the_older_form_names_its_port_by_the_command_line(tmp_path: Path) -> None:
    """Written before ports were recorded (the pid alone): the server's own `-p` decides."""
    first_port, second_port = free_ports(2)
    first = make_project(tmp_path / "a", first_port)
    second = make_project(tmp_path / "b", second_port)
    ensure_emulator(first, first.env("local"))
    pid = recorded_pid(first)
    for checkout in (second, first):
        pid_file(checkout).parent.mkdir(parents=True, exist_ok=True)
        pid_file(checkout).write_text(f"{pid}\n")
    try:
        assert "stopped" not in stop_emulator(second, second.env("local"))
        assert probe(first_port) == "moto"
    finally:
        assert f"pid {pid}" in stop_emulator(first, first.env("local"))
    assert probe(first_port) == "free"


def test_local_stop_stops_the_worker_a_killed_server_left(project: Project) -> None:
    """granian serves from a worker process; killed with SIGKILL, the server leaves it
    serving (orphaned, its state intact). `local_stop` still stops it: it signals the
    server's whole process group, the session `ensure_emulator` made for it."""
    port = project.env("local").port
    assert port is not None
    ensure_emulator(project, project.env("local"))
    pid = recorded_pid(project)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)  # this test's child: reap it, as init would
        assert probe(port) == "moto"  # the worker still answers

        said = stop_emulator(project, project.env("local"))

        assert f"stopped the local AWS emulator (pid {pid}, port {port})" in said
        assert probe(port) == "free"
        assert running_in_group(pid) == []  # nothing of the group is left
        assert not pid_file(project).exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def log_file(project: Project, suffix: str = "") -> Path:
    return project.state_dir("local") / f"emulator.log{suffix}"


def started_line(pid: int) -> str:
    """What the server that claimed the port writes first in its log."""
    return f"(granian, pid {pid}, started"


def test_a_second_server_keeps_the_running_servers_log(project: Project, tmp_path: Path) -> None:
    """A server started for the same checkout while one serves (it gives way, exit 3) adds
    its line to the log; the running server's log stays, and each restart keeps the
    previous run's log as emulator.log.1, no more."""
    port = project.env("local").port
    assert port is not None
    ensure_emulator(project, project.env("local"))
    first = recorded_pid(project)
    assert started_line(first) in log_file(project).read_text()

    second = _spawn(port, tmp_path / "second.pid", log_file(project))
    assert os.waitstatus_to_exitcode(os.waitpid(second, 0)[1]) == PORT_TAKEN
    log = log_file(project).read_text()
    assert started_line(first) in log
    assert f"not starting a second (pid {second}," in log
    assert probe(port) == "moto"

    runs = [first]
    for _ in range(2):  # restarts
        stop_emulator(project, project.env("local"))
        ensure_emulator(project, project.env("local"))
        runs.append(recorded_pid(project))
        assert started_line(runs[-1]) in log_file(project).read_text()
        assert started_line(runs[-2]) not in log_file(project).read_text()
        assert started_line(runs[-2]) in log_file(project, ".1").read_text()
    assert f"not starting a second (pid {second}," not in log_file(project, ".1").read_text()
    assert sorted(p.name for p in project.state_dir("local").glob("emulator.log*")) == [
        "emulator.log",
        "emulator.log.1",
    ]


def test_a_start_that_gives_way_reports_its_own_line_and_keeps_the_log(project: Project) -> None:
    """The port's lock held by something that does not answer (a hung worker of a killed
    server, say): the server started gives way; the error shows why, and the log of the
    emulator that ran before is kept."""
    port = project.env("local").port
    assert port is not None
    ensure_emulator(project, project.env("local"))
    before = recorded_pid(project)
    stop_emulator(project, project.env("local"))
    claim = claim_port("127.0.0.1", port)
    assert claim is not None
    try:
        with pytest.raises(MfeError) as caught:
            ensure_emulator(project, project.env("local"))
    finally:
        claim.close()
    message = str(caught.value)
    assert "exited before answering" in message and str(log_file(project)) in message
    assert f"another emulator already serves 127.0.0.1:{port}" in message.splitlines()[-1]
    assert started_line(before) in log_file(project).read_text()
    assert not pid_file(project).exists()


def emulator_processes(port: int) -> set[int]:
    """Every running process that is an emulator on `port` (ours or not: none may be left)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            if runs_emulator((stat.parent / "cmdline").read_bytes(), port):
                found.add(int(stat.parent.name))
    return found


def assert_consistent(project: Project, port: int, trial: int) -> None:
    """Either a live server recorded in the pid file that answers, and no other emulator on
    the port, or none at all and no pid file."""
    record = next(iter(read_records(pid_file(project))), None)
    if record is None:
        assert not pid_file(project).exists(), f"trial {trial}"
        assert probe(port) == "free", f"trial {trial}"
        assert emulator_processes(port) == set(), f"trial {trial}: orphaned server"
    else:
        assert record.port == port, f"trial {trial}"
        assert probe(port) == "moto", f"trial {trial}: recorded, not answering"
        assert emulator_processes(port) == set(group(record.pid, port)), f"trial {trial}"


def at_once(*calls: tuple[float, Callable[[], object]]) -> None:
    """Run each call in a thread of its own, `delay` seconds after all are ready; raise
    what any raised. The delays stagger the calls over each other's critical steps."""
    barrier = threading.Barrier(len(calls))

    def run(delay: float, call: Callable[[], object]) -> None:
        barrier.wait()
        time.sleep(delay)
        call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        for future in [pool.submit(run, delay, call) for delay, call in calls]:
            future.result()


def test_stops_and_starts_at_once_leave_one_recorded_server_or_none(project: Project) -> None:
    """`doit local_stop` while another command starts (or finds) the emulator: they take
    turns, so the stop never forgets a server a start just made, nor kills one it waits
    for, and the start never fails for it."""
    env = project.env("local")
    port = env.port
    assert port is not None
    delays = [0.0, 0.05, 0.15, 0.3, 0.6, 1.0]
    try:
        for trial, delay in enumerate(delays * 2):
            running = trial < len(delays)  # from a running server (the start comes later)
            if running:
                ensure_emulator(project, env)
            at_once(
                (0.0 if running else delay, lambda: stop_emulator(project, env)),
                (delay if running else 0.0, lambda: ensure_emulator(project, env)),
            )
            assert_consistent(project, port, trial)
    finally:
        stop_emulator(project, env)
        for pid in emulator_processes(port):  # what a failed trial left: started here
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def test_a_command_whose_emulator_is_stopped_meanwhile_says_so(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command that found the emulator up and lost it to `doit local_stop` in another
    terminal before its requests: an error naming the endpoint and what to do, not
    botocore's, at once: the refused request is not retried (six tries with backoff took
    20-40 s). (The test puts the stop right after the start, where it can fall.)"""
    from mfe.envs.local import LocalBackend
    from mfe.envs.session import Session

    def start_then_stopped_elsewhere(self: LocalBackend) -> None:
        ensure_emulator(self.project, self.env)
        stop_emulator(self.project, self.env)

    monkeypatch.setattr(LocalBackend, "start", start_then_stopped_elsewhere)
    session = Session(project, "local")
    with pytest.raises(MfeError) as caught:
        _ = session.outputs
    message = str(caught.value)
    assert f"environment 'local' (http://127.0.0.1:{project.env('local').port})" in message
    assert "`doit local_stop` ran meanwhile" in message and "run the command again" in message
    assert session.requests == {"s3": 1}  # the first request, tried once


def test_an_emulator_started_again_on_its_port_is_not_taken_for_gone(project: Project) -> None:
    """Whether the emulator is gone is decided at each failure, by a fresh connect: one
    started again on the port before the next request, or between two tries of one (forced
    here by a handler that runs before the retry decision), answers it."""
    from botocore.exceptions import EndpointConnectionError

    from mfe.envs.session import Session

    env = project.env("local")
    ensure_emulator(project, env)
    session = Session(project, "local")
    stop_emulator(project, env)
    with pytest.raises(EndpointConnectionError):
        session.s3.list_buckets()
    assert session.requests == {"s3": 1}
    ensure_emulator(project, env)
    session.s3.list_buckets()  # the next request: answered
    assert session.requests == {"s3": 2}

    stop_emulator(project, env)
    started: list[int] = []

    def start_again(attempts: int, caught_exception: Exception | None = None, **_: object) -> None:
        if caught_exception is not None and not started:
            ensure_emulator(project, env)
            started.append(attempts)

    session.s3.meta.events.register_first("needs-retry.s3", start_again)
    session.s3.list_buckets()  # refused, then (the emulator back) answered by the retry
    assert started == [1] and session.requests == {"s3": 4}


class Busy(http.server.BaseHTTPRequestHandler):
    """A busy emulator: drops the first connection unanswered, answers 500 next, then
    lists no buckets."""

    tries = 0

    def do_GET(self) -> None:
        type(self).tries += 1
        if self.tries == 1:
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        body = b"<ListAllMyBucketsResult><Buckets/></ListAllMyBucketsResult>"
        self.send_response(500 if self.tries == 2 else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_busy_emulator_keeps_the_standard_retries(project: Project) -> None:
    """A dropped connection or a 500 from a port that still listens is transient: retried."""
    from mfe.envs.session import Session

    port = project.env("local").port
    assert port is not None
    session = Session(project, "local")
    with serving(port, Busy):
        assert session.s3.list_buckets()["Buckets"] == []
    assert Busy.tries == 3 and session.requests == {"s3": 3}


def get(port: int, path: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        connection.getresponse().read()
    finally:
        connection.close()


def read_logs(project: Project) -> str:
    """emulator.log.1, then emulator.log, read under the log's lock (never mid-rotation)."""
    port = project.env("local").port
    assert port is not None
    with lock_file("127.0.0.1", port, "log").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        return log_file(project, ".1").read_text() + log_file(project).read_text()


def logged_paths(project: Project) -> list[str]:
    """The request paths in the log files, oldest first (emulator.log.1, then emulator.log)."""
    return re.findall(r'"GET (\S+) HTTP', read_logs(project))


def test_the_request_log_rotates_by_size(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long-running emulator with its request log on keeps two log files, each under the
    cap (`MFE_EMULATOR_LOG_MAX_BYTES`), the newest requests in them, however many it
    serves; requests served at once rotate it without losing or tearing a line."""
    cap = 4000
    monkeypatch.setenv("MFE_EMULATOR_REQUEST_LOG", "1")
    monkeypatch.setenv(MAX_BYTES_VAR, str(cap))
    port = project.env("local").port
    assert port is not None
    ensure_emulator(project, project.env("local"))
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: get(port, f"/burst-{i:04d}"), range(300)))
    newest = [f"/newest-{i:02d}" for i in range(30)]
    for path in newest:
        get(port, path)
    # granian logs a request once it has answered it: the next one may be logged first
    deadline = time.monotonic() + 10
    while not set(newest) <= set(logged_paths(project)) and time.monotonic() < deadline:
        time.sleep(0.05)

    files = sorted(project.state_dir("local").glob("emulator.log*"))
    assert [f.name for f in files] == ["emulator.log", "emulator.log.1"]
    assert all(f.stat().st_size <= cap for f in files), [f.stat().st_size for f in files]
    assert log_file(project, ".1").stat().st_size > cap - 200  # rotated when full, not before
    paths = logged_paths(project)
    assert set(newest) <= set(paths)
    assert len(paths) == len(set(paths))
    lines = (log_file(project, ".1").read_text() + log_file(project).read_text()).splitlines()
    assert all(
        re.fullmatch(r'\[.+\] 127\.0\.0\.1 - "GET \S+ HTTP/1\.1" \d{3} [\d.]+', line)
        for line in lines
    )


def unknown_service(port: int, name: str) -> None:
    """A signed request for a service moto does not know: moto `print`s a line saying so
    (output that bypasses logging) and raises, which granian logs with a traceback."""
    scope = f"testing/20260101/us-east-1/{name}/aws4_request"
    auth = f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=0"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/", headers={"Authorization": auth})
        assert connection.getresponse().status == 500
    finally:
        connection.close()


def held_files(pgid: int, port: int) -> list[str]:
    """What the emulator's processes hold open that is a deleted file or a log file no
    longer at `emulator.log` (where nothing can see or cap it)."""
    held = []
    for pid in group(pgid, port):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.endswith(" (deleted)") or target.endswith("emulator.log.1"):
                    held.append(f"{pid}: {target}")
    return held


@pytest.mark.parametrize("request_log", ["0", "1"])
def test_output_that_bypasses_logging_is_capped_and_no_deleted_log_is_held(
    project: Project, monkeypatch: pytest.MonkeyPatch, request_log: str
) -> None:
    """Everything the emulator writes goes through the log's cap: moto's `print` output
    and tracebacks, in the worker and in the server, with the request log off (nothing
    else would rotate the file) or on. After many rotations both files are under the cap,
    no process holds a rotated-away or deleted log file open, and the newest output is in
    the log, also from a worker whose server was killed."""
    cap = 3000
    monkeypatch.setenv("MFE_EMULATOR_REQUEST_LOG", request_log)
    monkeypatch.setenv(MAX_BYTES_VAR, str(cap))
    port = project.env("local").port
    assert port is not None
    ensure_emulator(project, project.env("local"))
    pgid = recorded_pid(project)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: unknown_service(port, f"nosuch{i:04d}"), range(200)))

    def logged(name: str) -> bool:
        return f"backend for {name}.us-east-1.amazonaws.com" in read_logs(project)

    for name in ("newest", "orphaned"):
        if name == "orphaned":
            os.kill(pgid, signal.SIGKILL)  # the worker serves on, and writes its own output
            os.waitpid(pgid, 0)
        unknown_service(port, name)
        deadline = time.monotonic() + 10
        while not logged(name) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert logged(name), name
        files = sorted(project.state_dir("local").glob("emulator.log*"))
        assert [f.name for f in files] == ["emulator.log", "emulator.log.1"]
        assert all(f.stat().st_size <= cap for f in files), [f.stat().st_size for f in files]
        assert held_files(pgid, port) == []


WRITER = """
import logging, sys, threading, time
from pathlib import Path
from mfe.envs.emulator_log import BoundedLog, capture_output
name, count, path, lock, cap, start = sys.argv[1:]
capture_output(BoundedLog(Path(path), Path(lock), int(cap)))

def log(thread):
    \"\"\"A logging handler on stdout, as granian's two.\"\"\"
    log = logging.getLogger(thread)
    log.addHandler(logging.StreamHandler(sys.stdout))
    log.propagate = False
    log.setLevel(logging.INFO)
    for i in range(int(count)):
        log.info("%s %05d", thread, i)

def raw(thread):
    \"\"\"Output that bypasses logging: a traceback on stderr, say.\"\"\"
    for i in range(int(count)):
        sys.stderr.write(f"{thread} {i:05d}\\n")

time.sleep(max(0.0, float(start) - time.time()))  # all writers at once
threads = [
    threading.Thread(target=log, args=(f"{name}a",)),
    threading.Thread(target=log, args=(f"{name}b",)),
    threading.Thread(target=raw, args=(f"{name}c",)),
]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
"""


def test_processes_and_threads_rotating_one_log_lose_no_line(tmp_path: Path) -> None:
    """The server and its worker (processes each sending their output through the log),
    each with two logging handlers and raw stderr output in threads of their own, rotate
    one log: two files stay, each under the cap, and they hold every line each thread wrote
    since its oldest kept one, in order, up to its last (written before the process ends)."""
    cap, count = 3000, 1000
    for trial in range(TRIALS):
        start = str(time.time() + 2)
        folder = tmp_path / str(trial)
        folder.mkdir()
        log, lock = folder / "emulator.log", tmp_path / f"{trial}.lock"
        writers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    WRITER,
                    name,
                    str(count),
                    str(log),
                    str(lock),
                    str(cap),
                    start,
                ]
            )
            for name in ("p", "q", "r")
        ]
        assert [writer.wait(timeout=120) for writer in writers] == [0, 0, 0]
        assert sorted(f.name for f in folder.iterdir()) == ["emulator.log", "emulator.log.1"]
        assert max(f.stat().st_size for f in folder.iterdir()) <= cap, f"trial {trial}"
        lines = ((folder / "emulator.log.1").read_text() + log.read_text()).splitlines()
        assert all(re.fullmatch(r"[pqr][abc] \d{5}", line) for line in lines), f"trial {trial}"
        kept: dict[str, list[int]] = {}
        for line in lines:
            thread, number = line.split()
            kept.setdefault(thread, []).append(int(number))
        for thread, numbers in kept.items():
            assert numbers == list(range(numbers[0], count)), f"trial {trial}: {thread} lost lines"
        assert sum(len(line) + 1 for line in lines) > cap, f"trial {trial}: .1 rotated before full"


LONG_LINES = """
import os, sys
from pathlib import Path
from mfe.envs.emulator_log import BoundedLog, capture_output
path, lock, cap = sys.argv[1:]
capture_output(BoundedLog(Path(path), Path(lock), int(cap)))
os.write(2, b"before\\n")
for _ in range(50):  # one line, written a piece at a time (a dump in progress)
    os.write(2, b"x" * 1000)
os.write(2, b"\\nbetween\\n" + b"y" * 20_000 + b"\\n")  # a whole line at once
os.write(1, b"after\\n")
"""


def test_a_line_longer_than_the_cap_keeps_the_log_under_it(tmp_path: Path) -> None:
    """A line longer than the log's cap (a data dump on stderr, written at once or a piece
    at a time) keeps its head only (a quarter of the cap): both files stay under the cap
    and the lines around it are kept. It used to make a file of its own size."""
    cap = 3000
    log, lock = tmp_path / "emulator.log", tmp_path / "log.lock"
    command = [sys.executable, "-c", LONG_LINES, str(log), str(lock), str(cap)]
    subprocess.run(command, check=True, timeout=60)
    files = sorted(tmp_path.glob("emulator.log*"))
    assert all(f.stat().st_size <= cap for f in files), [f.stat().st_size for f in files]
    lines = "".join(f.read_text() for f in reversed(files)).splitlines()
    assert lines[-1] == "after" and "between" in lines
    cut = [line for line in lines if "longer than the log's cap" in line]
    assert [line[0] for line in cut] == ["x", "y"], lines


def test_a_log_cap_that_is_not_a_size_is_a_clear_error(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MAX_BYTES_VAR, "10MB")
    with pytest.raises(MfeError, match=f"{MAX_BYTES_VAR}='10MB' is not a size in bytes"):
        ensure_emulator(project, project.env("local"))
    assert not pid_file(project).exists()
    assert probe(project.env("local").port or 0) == "free"


def test_local_stop_after_a_port_change_and_back_stops_the_server_this_checkout_started(
    tmp_path: Path,
) -> None:
    """Port A, a command (emulator on A), port B, a command (emulator on B), back to A:
    `local_stop` stopped nothing, saying another checkout had started A's emulator (the
    start on B had replaced its record), and exited 0."""
    a_port, b_port = free_ports(2)
    project = make_project(tmp_path / "a", a_port)
    config = project.root / "mfe.toml"

    def with_port(port: int) -> Project:
        text = re.sub(r"port = \d+", f"port = {port}", config.read_text())
        config.write_text(text)
        return load_project(project.root)

    try:
        ensure_emulator(project, project.env("local"))
        a_pid = recorded_pid(project)
        on_b = with_port(b_port)
        ensure_emulator(on_b, on_b.env("local"))
        b_pid = recorded_pid(on_b)
        back = with_port(a_port)

        said = stop_emulator(back, back.env("local"))

        assert f"stopped the local AWS emulator (pid {a_pid}, port {a_port})" in said, said
        assert probe(a_port) == "free"
        assert probe(b_port) == "moto"  # another port's server: left, with how to stop it
        assert f"port {b_port} (pid {b_pid})" in said and f"`kill -- -{b_pid}`" in said
        on_b = with_port(b_port)
        assert f"(pid {b_pid}, port {b_port})" in stop_emulator(on_b, on_b.env("local"))
        assert not pid_file(project).exists()
    finally:
        for port in (a_port, b_port):
            for pid in emulator_processes(port):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
    assert probe(a_port) == "free" and probe(b_port) == "free"


def test_keys_with_characters_that_urls_encode_are_stored_as_named(tmp_path: Path) -> None:
    """As on S3: `p%25.txt` and `p%.txt` are two objects, `x?1.txt` is not `x`; granian
    hands moto the path decoded, and moto decoded it again."""
    names = ["x?1.txt", "x?2.txt", "p%25.txt", "p%.txt", "a#b.txt", "a+b.txt", "sp ace.txt"]
    names += ["日本.txt", "café/é.txt", "q=1&r.txt"]
    port = free_port()
    proc = start_moto(port, tmp_path / "moto.log")
    try:
        s3 = local_client(f"http://127.0.0.1:{port}")
        s3.create_bucket(Bucket="keys")
        for name in names:
            s3.put_object(Bucket="keys", Key=name, Body=name.encode())
        s3.copy_object(Bucket="keys", Key="copy%25?.txt", CopySource={"Bucket": "keys", "Key": "p%25.txt"})  # fmt: skip
        listed = [o["Key"] for o in s3.list_objects_v2(Bucket="keys")["Contents"]]
        assert sorted(listed) == sorted([*names, "copy%25?.txt"])
        for name in names:
            assert s3.get_object(Bucket="keys", Key=name)["Body"].read() == name.encode()
        assert s3.get_object(Bucket="keys", Key="copy%25?.txt")["Body"].read() == b"p%25.txt"
    finally:
        stop_process(proc)
