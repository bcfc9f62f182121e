"""A long-lived emulator keeps working as it fills up (issue 15): 30,000 objects later,
`doit publish` and `doit plan` still recognise and use it, and its log has not grown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.aws import fill_bucket, free_port, local_client
from fixtures.config import use_port
from fixtures.repo import run_doit

OBJECTS = 30_000


@pytest.fixture
def repo(monorepo: Path) -> Iterator[Path]:
    use_port(monorepo, free_port())
    yield monorepo
    run_doit(monorepo, "local_stop", check=False)


def test_publish_and_plan_work_after_30000_objects(repo: Path) -> None:
    first = run_doit(repo, "publish")
    log = repo / ".mfe" / "local" / "emulator.log"
    assert "started the local AWS emulator" in first.stdout and str(log) in first.stdout
    endpoint = first.stdout.strip().splitlines()[-1].split("/mfe-demo-local")[0]
    assert endpoint.startswith("http://127.0.0.1:")

    fill_bucket(endpoint, "filler", OBJECTS)
    assert local_client(endpoint).list_objects_v2(Bucket="filler")["KeyCount"] == 1000

    again = run_doit(repo, "publish")
    assert "started the local AWS emulator" not in again.stdout  # the same server, reused
    assert again.stdout.strip().splitlines()[-1].startswith(endpoint)
    plan = run_doit(repo, "plan")
    assert plan.stdout.strip().splitlines()[-1].startswith(endpoint)
    assert log.stat().st_size < 10_000, log.read_text()[-2000:]  # no line per request

    stopped = run_doit(repo, "local_stop")
    assert "stopped the local AWS emulator" in stopped.stdout
    assert "in memory" in stopped.stdout and "doit publish" in stopped.stdout
