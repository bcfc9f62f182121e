"""`doit serve` after a day of editing: nothing it holds grows with the work it did.

A real `doit serve` (doit in-process, esbuild, watchdog, HTTP servers) on a private copy
is driven through many saves, rebuilds, mfe.toml edits that move a server, and
live-reload clients that come and go (closed, reset, mid-stream, stale). Its open file
descriptors, threads, inotify watches and child processes are read from /proc and must
come back to what they were after the first round.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from fixtures.aws import free_ports
from fixtures.config import set_config
from fixtures.serve import Served, serving, wait_until

SAVES = 100
"""Saves per run; one in ten changes the bytes (a bundler build), the rest rewrite the
same bytes (doit checks and finds it up to date): the cycle, cheaply."""
CLIENTS = 50
CONFIG_EDITS = 4
TOLERANCE = 2
"""Fds and threads allowed above the baseline: a request thread of the test's own last
call may still be finishing."""


@dataclass(frozen=True)
class Held:
    """What the serve process holds right now."""

    fds: int
    threads: int
    watches: int
    children: int
    rss_kb: int


def held(pid: int) -> Held:
    proc = Path(f"/proc/{pid}")
    fds = os.listdir(proc / "fd")
    watches = 0
    for fd in fds:
        try:
            info = (proc / "fdinfo" / fd).read_text()
        except OSError:  # closed meanwhile
            continue
        watches += sum(line.startswith("inotify wd:") for line in info.splitlines())
    children = 0
    for task in (proc / "task").iterdir():
        try:
            children += len((task / "children").read_text().split())
        except OSError:  # the thread ended meanwhile
            continue
    rss = re.search(r"^VmRSS:\s+(\d+) kB", (proc / "status").read_text(), re.M)
    assert rss
    return Held(len(fds), len(os.listdir(proc / "task")), watches, children, int(rss.group(1)))


def settled(pid: int, baseline: Held) -> bool:
    now = held(pid)
    return (
        now.fds <= baseline.fds + TOLERANCE
        and now.threads <= baseline.threads + TOLERANCE
        and now.watches == baseline.watches
        and now.children == baseline.children
    )


def version(served: Served) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", served.shell_port, timeout=10)
    connection.request("GET", "/")
    match = re.search(r'data-version="([^"]+)"', connection.getresponse().read().decode())
    connection.close()
    assert match
    return match.group(1)


def open_stream(served: Served, since: str) -> socket.socket:
    """An event stream as a tab opens it; returns once its first event arrived."""
    client = socket.create_connection(("127.0.0.1", served.shell_port), timeout=10)
    client.sendall(f"GET /_mfe/events?since={since} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    received = b""
    while b"\n\n" not in received.partition(b"\r\n\r\n")[2]:
        chunk = client.recv(4096)
        assert chunk, received
        received += chunk
    return client


def drop(client: socket.socket, abruptly: bool) -> None:
    """A tab going away: a plain close, or a reset (a killed or crashed tab)."""
    if abruptly:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


def clients(served: Served, count: int) -> None:
    """`count` tabs: each opens its stream and goes, half of them by a reset, a third
    with a stale version (told to reload first)."""
    current = version(served)
    for index in range(count):
        since = "stale.0" if index % 3 == 0 else current
        drop(open_stream(served, since), abruptly=index % 2 == 0)


def save(served: Served, source: Path, text: str) -> None:
    """Write `text` and wait for serve's cycle to finish."""
    mark = len(served.server.lines)
    source.write_text(text)
    served.server.wait_for(r"^serve: rebuilt ", since=mark)


def round_(served: Served, source: Path, saves: int, clients_: int, edits: int) -> None:
    """`saves` saves (every tenth flips the heading), `clients_` tabs, `edits` mfe.toml
    saves moving payments' server to a spare port and back."""
    original = source.read_text()
    texts = [original, original.replace(">Payments</h2>", ">Payments soak</h2>")]
    port = served.ports["payments"]
    (spare,) = free_ports(1)
    for index in range(saves):
        tab = open_stream(served, version(served)) if index % 5 == 0 else None
        save(
            served, source, texts[(index // 10 + 1) % 2] if index % 10 == 0 else source.read_text()
        )
        if tab is not None:  # a tab open across the save goes mid-stream
            drop(tab, abruptly=index % 10 == 0)
    save(served, source, original)
    for index in range(edits + edits % 2):  # even: payments ends on its own port
        mark = len(served.server.lines)
        moved = spare if index % 2 == 0 else port
        set_config(served.root, "apps.payments.dev_port", moved)
        served.server.wait_for(rf"^serve: payments: http://127\.0\.0\.1:{moved}/", since=mark)
        served.server.wait_for(r"^serve: rebuilt ", since=mark)
    clients(served, clients_)  # last: no later build's event finds their streams gone


def test_a_day_of_editing_leaves_nothing_behind(monorepo_built: Path, tmp_path: Path) -> None:
    with serving(monorepo_built, tmp_path) as served:
        pid = served.server.proc.pid
        source = served.root / "apps/payments/src/payments-app.js"
        round_(served, source, saves=10, clients_=5, edits=2)  # warm: every path once
        save(served, source, source.read_text())  # a cycle: the last tabs' threads ended
        baseline = held(pid)
        round_(served, source, saves=SAVES, clients_=CLIENTS, edits=CONFIG_EDITS)
        wait_until(
            lambda: settled(pid, baseline),
            f"serve holds more than after the first round: {held(pid)} vs {baseline}\n"
            + "\n".join(served.server.lines[-20:]),
            timeout=10,
        )
        grown = held(pid).rss_kb - baseline.rss_kb
        assert grown < 10_000, f"memory grew by {grown} kB: {held(pid)} vs {baseline}"


MISSING_IMPORTS = 2000
"""Imports of missing files in the failing save: esbuild's errors then run to ~400 KB."""
FAILING_SAVES = 12


def test_what_serve_printed_is_not_kept(monorepo_built: Path, tmp_path: Path) -> None:
    """Serve's output goes to the terminal only: a day of failed builds, each printing
    the bundler's errors, leaves serve no bigger than the first few did."""
    with serving(monorepo_built, tmp_path) as served:
        pid = served.server.proc.pid
        source = served.root / "apps/payments/src/payments-app.js"
        original = source.read_text()
        imports = "".join(f'import "./missing-{i}.js";\n' for i in range(MISSING_IMPORTS))

        def fail(index: int) -> None:
            mark = len(served.server.lines)
            source.write_text(f"{imports}// save {index}\n{original}")
            served.server.wait_for(r"^serve: payments (failed|still failing)", since=mark)

        for index in range(3):  # warm: the first failure, then the same one again
            fail(index)
        baseline = held(pid)
        for index in range(3, 3 + FAILING_SAVES):
            fail(index)
        save(served, source, original)
        grown = held(pid).rss_kb - baseline.rss_kb
        printed = sum(len(line) for line in served.server.lines) // 1024
        assert grown < 3_000, f"memory grew by {grown} kB after {printed} kB of output"
