"""`doit serve` as a subprocess on free ports: shared by tests/test_serve.py and the serve bench."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from fixtures.config import set_config

APPS = ("mfe-parent", "accounts", "payments")


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports nothing listens on right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def set_ports(root: Path, shell: int, apps: dict[str, int]) -> None:
    """Point the copy's mfe.toml at free ports (the only place ports are configured)."""
    for app, port in apps.items():
        set_config(root, f"apps.{app}.dev_port", port)
    set_config(root, "env.dev.port", shell)


def use_free_ports(root: Path) -> tuple[int, dict[str, int]]:
    """Free ports for the shell and every app, written into the copy's mfe.toml."""
    shell, *app_ports = free_ports(1 + len(APPS))
    apps = dict(zip(APPS, app_ports, strict=True))
    set_ports(root, shell, apps)
    return shell, apps


class ServeProcess:
    """`python -m doit serve`, its output collected line by line with arrival times."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "doit", "serve"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self.times: list[float] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.times.append(time.perf_counter())
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, since: int = 0, timeout: float = 60) -> int:
        """The index of the first line from `since` on that matches `pattern`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for index in range(since, len(self.lines)):
                if re.search(pattern, self.lines[index]):
                    return index
            if self.proc.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.01)
        raise AssertionError(f"no line matching {pattern!r}:\n" + "\n".join(self.lines))

    def stop(self) -> int:
        """SIGINT (Ctrl-C), then the exit code once the output is fully read."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=20)
        self.reader.join(timeout=5)
        return code
