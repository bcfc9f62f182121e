"""Shared AWS test fixtures: a free loopback port and a real moto server per test module.

Import the fixtures into a test module with
`from aws_fixtures import moto_server  # noqa: F401` (pytest finds them by name).
The server runs as a subprocess (`python -m moto.server`), so its state is private to
the module that started it and it never competes with the tests for the GIL.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from fixtures.config import use_port

__all__ = ["use_port"]  # re-exported: tests point a copy's emulator at a free port with it

DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    """A TCP port nothing listens on right now (bind port 0 on 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def local_client(endpoint: str, service: str = "s3") -> Any:
    """A boto3 client for a loopback emulator with dummy credentials."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def moto_answers(endpoint: str) -> bool:
    try:
        return httpx.get(f"{endpoint}/moto-api/data.json", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def start_moto(port: int, log: Path, timeout: float = 30) -> subprocess.Popen[bytes]:
    """Start `python -m moto.server` on 127.0.0.1:`port`; return once it answers."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **DUMMY_AWS_ENV},
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while not moto_answers(endpoint):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            raise RuntimeError(f"moto server did not start on {endpoint}:\n{log.read_text()}")
        time.sleep(0.1)
    return proc


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(name="free_port")
def free_port_fixture() -> int:
    return free_port()


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server for one test module; yields its endpoint URL (http://127.0.0.1:PORT)."""
    port = free_port()
    proc = start_moto(port, tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


def _put_range(endpoint: str, bucket: str, start: int, stop: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from botocore.config import Config

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(max_pool_connections=16, retries={"mode": "standard"}),
    )

    def put(index: int) -> None:
        s3.put_object(Bucket=bucket, Key=f"objects/{index:06d}.txt", Body=b"x")

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(put, range(start, stop), chunksize=64))


def fill_bucket(endpoint: str, bucket: str, count: int, start: int = 0) -> None:
    """Write `count` one-byte objects into `bucket` (created if missing) with boto3's
    put_object: two processes of 16 threads, so signing does not queue behind one GIL."""
    from concurrent.futures import ProcessPoolExecutor

    s3 = local_client(endpoint)
    if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=bucket)
    middle = start + count // 2
    with ProcessPoolExecutor(max_workers=2) as pool:
        done = [
            pool.submit(_put_range, endpoint, bucket, start, middle),
            pool.submit(_put_range, endpoint, bucket, middle, start + count),
        ]
        for future in done:
            future.result()
