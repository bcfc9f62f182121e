"""Failures read as one user-facing message: no doit task ids, no internal task names."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.aws import free_port
from fixtures.config import use_port
from fixtures.repo import run_doit


@pytest.fixture
def not_moto() -> Iterator[int]:
    """A plain HTTP server on a loopback port: something that is not the emulator."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", free_port()), http.server.SimpleHTTPRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_failed_preparation_step_shows_the_message_only(monorepo: Path, not_moto: int) -> None:
    use_port(monorepo, not_moto)
    result = run_doit(monorepo, "publish", check=False)
    assert result.returncode != 0
    lines = [line for line in result.stdout.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stdout
    assert f"port {not_moto}" in lines[0] and "[env.local] port" in lines[0]
    for internal in ("taskid", "_ready", "TaskFailed", "UnmetDependency", "Traceback"):
        assert internal not in result.stdout
