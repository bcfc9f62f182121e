"""The emulator server a checkout started: its pid file records the pid and the port.

The port matters: after `[env.NAME] port` changes, or with a pid file copied from another
checkout, the recorded server listens on another port, where other checkouts may use it.
It is then neither this port's server to wait for nor this environment's to stop. It stays
recorded (`earlier`, while it runs) when a server is started for the new port, so changing
the port back finds the server this checkout started there.

The server is more than its pid: granian serves from a worker process it forks, which
keeps serving (orphaned, state intact) if the server is killed. The server runs in a
session of its own, so its process group (id = the recorded pid) holds both; it is
stopped as a group.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from mfe.files import write_atomic

SERVER_MODULE = "mfe.envs.moto_server"


@dataclass(frozen=True)
class Record:
    """What a pid file says."""

    pid: int
    port: int | None
    """None in a file written before the port was recorded (the pid alone)."""

    def for_port(self, port: int) -> bool:
        """Whether the recorded server was started for `port` (as far as the file says)."""
        return self.port is None or self.port == port


def read_records(path: Path) -> list[Record]:
    """Every server the file records, the newest first, then those started for earlier
    ports (`earlier`); none when the file is missing or unreadable (treated as stale)."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return []
    if isinstance(data, int):  # the older form: the pid alone
        return [Record(data, None)]
    try:
        entries = [data, *data.get("earlier", [])]
        return [Record(int(entry["pid"]), int(entry["port"])) for entry in entries]
    except (AttributeError, TypeError, KeyError, ValueError):
        return []


def write_record(path: Path, pid: int, port: int, earlier: Sequence[Record] = ()) -> None:
    """Atomically: a command reading it at the same time sees no half-written record.
    `earlier`: servers started for other ports that still run (a reader of the older
    single-record form sees the newest only)."""
    data: dict[str, object] = {"pid": pid, "port": port}
    if earlier:
        data["earlier"] = [{"pid": record.pid, "port": record.port} for record in earlier]
    write_atomic(path, json.dumps(data) + "\n")


def runs_emulator(cmdline: bytes, port: int) -> bool:
    """Whether a `/proc/<pid>/cmdline` is an emulator's (ours, or the `moto.server` that
    older versions started) listening on `port`."""
    args = cmdline.split(b"\0")
    if SERVER_MODULE.encode() not in args and b"moto.server" not in args:
        return False
    wanted = str(port).encode()
    return any(flag in (b"-p", b"--port") and value == wanted for flag, value in pairwise(args))


@dataclass(frozen=True)
class Server:
    """The emulator found serving a port by its command line, whatever pid file says so."""

    pid: int
    pgid: int
    """Its process group: the server's pid when an mfe started it (a session of its own)."""
    log: Path | None
    """Its `--log`: its starter's `.mfe/<env>/` file (which checkout and environment)."""

    @property
    def kill(self) -> str:
        """The command that ends it: its whole group when it leads one (the worker too)."""
        if self.pid == self.pgid:
            return f"kill -- -{self.pgid}"
        return f"kill {self.pid}"


def serving(port: int) -> Server | None:
    """The emulator process serving `port` (the server, else its worker if the server died),
    if one runs."""
    found: list[Server] = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
            stat = (cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if stat[0] == "Z" or not runs_emulator(b"\0".join(args), port):
            continue
        log = None
        if b"--log" in args[:-1]:
            log = Path(os.fsdecode(args[args.index(b"--log") + 1]))
        found.append(Server(int(cmdline.parent.name), int(stat[2]), log))
    leaders = [server for server in found if server.pid == server.pgid]
    return next(iter(leaders or found), None)


def server_log(port: int) -> Path | None:
    """The `--log` of the emulator process serving `port` (its starter's `.mfe/<env>/`
    file: which checkout and environment started it), if one runs and says."""
    server = serving(port)
    return server.log if server else None


def alive(pid: int, port: int) -> bool:
    """True while `pid` runs and is an emulator on `port` (not a reused pid, not a zombie,
    not an emulator on another port)."""
    if _reap(pid):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no procfs: trust the signal check
    try:
        if ") Z" in (proc / "stat").read_text():
            return False
        cmdline = (proc / "cmdline").read_bytes()
        if not cmdline:  # mid-exec (just spawned) or exiting: the signal check decides
            return True
        return runs_emulator(cmdline, port)
    except OSError:
        return False


def group(pgid: int, port: int) -> list[int]:
    """The running processes of process group `pgid` that are an emulator on `port` (the
    server, its worker; a process mid-exec or exiting counts). A pid outlives its process
    as long as its group does, so a group id is not reused while anything of it runs."""
    _reap(pgid)
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):  # none, or another user's: not one we started
        return []
    proc = Path("/proc")
    if not (proc / "self").exists():
        return [pgid]  # no procfs: trust the signal check
    found: list[int] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, _, pgrp, session = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:4]
            if state == "Z" or int(pgrp) != pgid or int(session) != pgid:
                continue  # `_spawn` made the group a session of its own
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue  # gone meanwhile
        if not cmdline or runs_emulator(cmdline, port):
            found.append(int(entry.name))
    return found


def terminate(pgid: int, port: int, grace: float = 5.0) -> bool:
    """SIGTERM to the emulator's process group, up to `grace` seconds for all of it to end,
    then SIGKILL likewise; True once nothing of it runs."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        if not group(pgid, port):
            return True
        try:
            os.killpg(pgid, signum)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + grace
        while group(pgid, port):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        else:
            return True
    return False


def _reap(pid: int) -> bool:
    """Reap `pid` if it is our own child that ended (tests start and stop in one process)."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return False
