"""The emulator's log, bounded by size: a week-long emulator with its request log on must
not fill the disk.

Everything the server and its worker write goes through the cap: log records, moto's
`print` output, a traceback on stderr, granian's own messages. Each process points its
stdout and stderr at a pipe of its own (`capture_output`; the server before it forks the
worker, the worker once it loads moto) and a thread of it (`Pump`) writes what comes out
to the log, whole lines at a time, through `BoundedLog`: before a line that would take the
file over the cap it moves the file to `<log>.1` (replacing the one there) and starts a
new one; a line longer than a quarter of the cap keeps that much of its head, so no file
ever exceeds the cap. No process keeps the file open between writes, so none writes to a
file another has rotated away, and no deleted file is held open. One lock per port makes a rotation
and a write happen one at a time across both processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import multiprocessing.util
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from mfe.errors import MfeError

MAX_BYTES_VAR = "MFE_EMULATOR_LOG_MAX_BYTES"
DEFAULT_MAX_BYTES = 10_000_000
"""Each of `emulator.log` and `emulator.log.1` stays under this (about 100,000 requests)."""
CHUNK = 65536
DRAIN_SECONDS = 5.0
"""At exit, how long a process waits for its pump to write what the pipe still holds."""


def max_bytes(environ: Mapping[str, str]) -> int:
    """The cap of each log file, from `MFE_EMULATOR_LOG_MAX_BYTES` (default 10 MB)."""
    value = environ.get(MAX_BYTES_VAR, "").strip()
    if not value:
        return DEFAULT_MAX_BYTES
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit < 1:
        raise MfeError(
            f"{MAX_BYTES_VAR}={value!r} is not a size in bytes; set it to a positive whole "
            f"number (each emulator log file stays under it) or unset it for the default "
            f"{DEFAULT_MAX_BYTES}"
        )
    return limit


CUT = b" [... cut: the line was longer than the log's cap]\n"


class BoundedLog:
    """Appends lines to `path`, moved to `path.1` when the next line would take it over
    `max_bytes`. A line longer than a quarter of the cap (a data dump, say, which would
    otherwise make a file of its size, or push the lines before it out of both files)
    keeps that much of its head."""

    def __init__(self, path: Path, lock: Path, max_bytes: int) -> None:
        self.path = path
        self.lock_path = lock
        self.max_bytes = max_bytes

    def write(self, lines: Sequence[bytes]) -> None:
        """Write `lines` in order, rotating between them where the cap says."""
        with self.lock_path.open("a") as held:  # a new open file: excludes threads and forks
            fcntl.flock(held, fcntl.LOCK_EX)
            for index, part in enumerate(self._parts(lines)):
                if index:
                    self.path.replace(self.path.with_name(self.path.name + ".1"))
                if part:
                    _append(self.path, b"".join(part))

    def _parts(self, lines: Sequence[bytes]) -> list[list[bytes]]:
        """`lines` split where the file fills up: the first part goes to the current file,
        each next one to a new file after a rotation."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
        parts: list[list[bytes]] = [[]]
        for line in map(self._fit, lines):
            if size and size + len(line) > self.max_bytes:
                parts.append([])
                size = 0
            parts[-1].append(line)
            size += len(line)
        return parts

    @property
    def max_line(self) -> int:
        return max(1, self.max_bytes // 4)

    def _fit(self, line: bytes) -> bytes:
        if len(line) <= self.max_line:
            return line
        return (line[: max(0, self.max_line - len(CUT))] + CUT)[: self.max_line]


def _append(path: Path, data: bytes) -> None:
    out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(out, view) :]
    finally:
        os.close(out)


class Pump:
    """Writes what a process sends to its stdout and stderr (the pipe `source`) to `log`."""

    def __init__(self, log: BoundedLog, source: int) -> None:
        self.log = log
        self.source = source
        self.rest = b""
        self.cutting = False
        """Dropping the rest of a line already written cut (over the cap)."""
        self.mutex = threading.Lock()
        """Held while writing: a fork waits for it, so no child inherits the held log lock."""
        self.thread = threading.Thread(target=self.run, name="mfe-log-pump", daemon=True)

    def run(self) -> None:
        while chunk := os.read(self.source, CHUNK):
            with self.mutex:
                self.feed(chunk)
        with self.mutex:
            self.feed(b"", end=True)

    def feed(self, chunk: bytes, end: bool = False) -> None:
        """Write the complete lines (all of it at the `end`); keep a started line for later
        unless it is already over the longest line the log keeps: then write its head and drop the rest of it."""
        if self.cutting:
            newline = chunk.find(b"\n")
            if newline < 0:
                return
            chunk = chunk[newline + 1 :]
            self.cutting = False
        data = self.rest + chunk
        cut = len(data) if end else data.rfind(b"\n") + 1
        lines = data[:cut].splitlines(keepends=True)
        self.rest = data[cut:]
        if len(self.rest) > self.log.max_line:
            lines.append(self.rest)  # cut to the cap by the log
            self.rest = b""
            self.cutting = True
        if lines:
            # disk full, say: lines lost; a pump that stopped would block the emulator instead
            with contextlib.suppress(OSError):
                self.log.write(lines)

    def close(self) -> None:
        """At exit: send stdout and stderr straight to the file, and let the pump write what
        the pipe still holds (it ends once no one writes to the pipe)."""
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        out = os.open(self.log.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(out, sys.stdout.fileno())
        os.dup2(out, sys.stderr.fileno())
        os.close(out)
        self.thread.join(DRAIN_SECONDS)


_pumps: dict[int, Pump] = {}
"""The pump of each process that called `capture_output` (a fork inherits its parent's)."""


def capture_output(log: BoundedLog) -> None:
    """Send this process's stdout and stderr (file descriptors 1 and 2: whatever writes them)
    through a pipe to `log`, once per process."""
    if os.getpid() in _pumps:
        return
    source, sink = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(sink, sys.stdout.fileno())
    os.dup2(sink, sys.stderr.fileno())
    os.close(sink)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # `print` output shows up as it is made
    pump = _pumps[os.getpid()] = Pump(log, source)
    os.register_at_fork(
        before=pump.mutex.acquire,
        after_in_parent=pump.mutex.release,
        after_in_child=pump.mutex.release,
    )
    pump.thread.start()
    # run at exit by the server (atexit) and by granian's worker (multiprocessing's exit)
    multiprocessing.util.Finalize(None, pump.close, exitpriority=0)
