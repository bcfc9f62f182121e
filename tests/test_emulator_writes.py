"""The emulator's conditional writes hold as S3's do when two clients write one key at once:
of two `If-Match` writes on the same ETag (two publishes swapping the pointer), or two
`If-None-Match: *` creates, exactly one lands and the other is refused, whatever the
interleaving.

moto checks the condition, then builds and stores the object. The test widens that gap on
purpose: the first write, once past its check, waits (up to a second) for the second one to
make its own check, so without the emulator's fix both pass. The server is moto's own
threaded server in this process, with the emulator's patch applied, and real HTTP clients.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mfe.envs.moto_patches import OBJECT_WRITES, atomic_object_writes
from mfe.errors import aws_status

from fixtures.aws import free_port, local_client

GAP_SECONDS = 1.0
"""How long the first write waits, past its check, for the second to check."""


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A client of moto's threaded server in this process, the emulator's patch applied (and
    taken off again after the test)."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.s3.responses import S3Response

    for name in OBJECT_WRITES:
        monkeypatch.setattr(S3Response, name, getattr(S3Response, name))
    atomic_object_writes()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        client = local_client(f"http://127.0.0.1:{port}")
        client.create_bucket(Bucket="pointer")
        yield client
    finally:
        server.stop()


@pytest.fixture
def gap(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Arms a gap: the next object stored waits until another request has read the key (its
    condition check), or GAP_SECONDS; the interleaving that lets two conditional writes both
    pass."""
    from moto.s3.models import S3Backend

    armed, storing, checked = threading.Event(), threading.Event(), threading.Event()
    store, read = S3Backend.put_object, S3Backend.get_object

    def put_object(self: Any, *args: Any, **kwargs: Any) -> Any:
        if armed.is_set() and not storing.is_set():
            storing.set()
            checked.wait(GAP_SECONDS)
        return store(self, *args, **kwargs)

    def get_object(self: Any, *args: Any, **kwargs: Any) -> Any:
        if storing.is_set():
            checked.set()
        return read(self, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "put_object", put_object)
    monkeypatch.setattr(S3Backend, "get_object", get_object)
    return armed.set


def at_once(*writes: Callable[[], object]) -> list[int]:
    """Run `writes` in threads started together: each one's HTTP status."""
    statuses = [0] * len(writes)

    def run(index: int) -> None:
        try:
            writes[index]()
            statuses[index] = 200
        except ClientError as exc:
            statuses[index] = aws_status(exc) or -1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(writes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return statuses


def test_two_if_match_writes_on_one_etag_let_exactly_one_land(
    s3: Any, gap: Callable[[], None]
) -> None:
    etag = s3.put_object(Bucket="pointer", Key="live.json", Body=b"seq 1")["ETag"]
    gap()

    def swap(body: bytes) -> Callable[[], object]:
        return lambda: s3.put_object(Bucket="pointer", Key="live.json", Body=body, IfMatch=etag)

    statuses = at_once(swap(b"seq 2 from A"), swap(b"seq 2 from B"))
    assert sorted(statuses) == [200, 412]
    body = s3.get_object(Bucket="pointer", Key="live.json")["Body"].read()
    winner = [b"seq 2 from A", b"seq 2 from B"][statuses.index(200)]
    assert body == winner  # the refused write stored nothing


def test_two_creates_of_one_key_let_exactly_one_land(s3: Any, gap: Callable[[], None]) -> None:
    gap()

    def create(body: bytes) -> Callable[[], object]:
        return lambda: s3.put_object(Bucket="pointer", Key="record/2", Body=body, IfNoneMatch="*")

    statuses = at_once(create(b"A"), create(b"B"))
    assert sorted(statuses) == [200, 412]
    body = s3.get_object(Bucket="pointer", Key="record/2")["Body"].read()
    assert body == [b"A", b"B"][statuses.index(200)]
