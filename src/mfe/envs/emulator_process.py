"""The emulator server a checkout started: its pid file records the pid and the port.

The port matters: after `[env.NAME] port` changes, or with a pid file copied from another
checkout, the recorded server listens on another port, where other checkouts may use it.
It is then neither this port's server to wait for nor this environment's to stop.
"""

from __future__ import annotations

import json
import os
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


def read_record(path: Path) -> Record | None:
    """The record, or None when there is none (or it is unreadable: treated as stale)."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    if isinstance(data, int):  # the older form: the pid alone
        return Record(data, None)
    try:
        return Record(int(data["pid"]), int(data["port"]))
    except (TypeError, KeyError, ValueError):
        return None


def write_record(path: Path, pid: int, port: int) -> None:
    """Atomically: a command reading it at the same time sees no half-written record."""
    write_atomic(path, json.dumps({"pid": pid, "port": port}) + "\n")


def runs_emulator(cmdline: bytes, port: int) -> bool:
    """Whether a `/proc/<pid>/cmdline` is an emulator's (ours, or the `moto.server` that
    older versions started) listening on `port`."""
    args = cmdline.split(b"\0")
    if SERVER_MODULE.encode() not in args and b"moto.server" not in args:
        return False
    wanted = str(port).encode()
    return any(flag in (b"-p", b"--port") and value == wanted for flag, value in pairwise(args))


def alive(pid: int, port: int) -> bool:
    """True while `pid` runs and is an emulator on `port` (not a reused pid, not a zombie,
    not an emulator on another port)."""
    try:  # reap it if it is our own child (tests start and stop in one process)
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
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
