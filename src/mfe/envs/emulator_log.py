"""The emulator's log, bounded by size: a week-long emulator with its request log on must
not fill the disk.

The server's output (its stdout and stderr, which granian's worker inherits) is the log
file itself (`moto_server.own_log`), so there is one file per process, not a handler's
file next to an inherited one. Every line granian logs, in the server and in its worker,
goes through `BoundedLog`, which writes it to that output: before a line that would take
the file over the cap it moves the file to `<log>.1` (replacing the one there) and points
the process's stdout and stderr at a new file; a process that finds the file moved by
another (the worker rotates, the server writes next) follows the same way. One lock per
port makes a rotation and a write happen one at a time across both processes, so no line
goes to a file that another has just replaced. Output that bypasses logging (a traceback)
lands in the current file and counts towards the next rotation.
"""

from __future__ import annotations

import copy
import fcntl
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mfe.errors import MfeError

MAX_BYTES_VAR = "MFE_EMULATOR_LOG_MAX_BYTES"
DEFAULT_MAX_BYTES = 10_000_000
"""Each of `emulator.log` and `emulator.log.1` stays under this (about 100,000 requests)."""


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


class BoundedLog(logging.Handler):
    """Writes each record to this process's stdout, kept pointing at `filename`, rotated to
    `filename.1` when the next line would take it over `max_bytes`."""

    def __init__(self, filename: str, lock: str, max_bytes: int) -> None:
        super().__init__()
        self.path = Path(filename)
        self.lock_path = Path(lock)
        self.max_bytes = max_bytes

    def emit(self, record: logging.LogRecord) -> None:
        try:
            with self.lock_path.open("a") as held:  # a new open file: excludes threads and forks
                fcntl.flock(held, fcntl.LOCK_EX)
                line = (self.format(record) + "\n").encode(errors="replace")
                self._follow()
                size = os.fstat(sys.stdout.fileno()).st_size
                if size and size + len(line) > self.max_bytes:
                    self._rotate()  # a line over the cap on its own goes to an empty file
                os.write(sys.stdout.fileno(), line)
        except Exception:
            self.handleError(record)

    def _follow(self) -> None:
        """Point stdout and stderr at the file now at `path` if another process moved it."""
        try:
            current = self.path.stat()
        except FileNotFoundError:
            self._reopen()
            return
        mine = os.fstat(sys.stdout.fileno())
        if (mine.st_dev, mine.st_ino) != (current.st_dev, current.st_ino):
            self._reopen()

    def _rotate(self) -> None:
        """Keep the full file as `<path>.1` (the one before goes) and start a new one."""
        self.path.replace(self.path.with_name(self.path.name + ".1"))
        self._reopen()

    def _reopen(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        log = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, sys.stdout.fileno())
        os.dup2(log, sys.stderr.fileno())
        os.close(log)


def logging_config(path: Path, lock: Path, limit: int) -> dict[str, Any]:
    """granian's logging configuration with both its handlers writing through `BoundedLog`
    (granian applies it in the server and again in its worker)."""
    from granian.log import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    for handler in config["handlers"].values():
        del handler["stream"]
        handler["class"] = f"{__name__}.{BoundedLog.__name__}"
        handler.update(filename=str(path), lock=str(lock), max_bytes=limit)
    return config
