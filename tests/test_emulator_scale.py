"""A long-lived emulator keeps working as it fills up (issue 15): thousands of objects later,
`doit publish` and `doit plan` still recognise and use it, and its log has not grown; and
publish/prune cycles leave it holding what its buckets hold, not all they ever held.

The scale target (30,000 objects, where the probe's time is measured) is
bench/bench_emulator.py's; this test needs only enough objects that a listing takes several
pages (1,000 keys each) and that a log line per request would be hundreds of kB."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mfe.envs.moto_server import KEPT_INVALIDATIONS, REMEMBERED_HOSTS, remember_backends

from fixtures.aws import fill_bucket, free_port, local_client
from fixtures.config import use_port
from fixtures.repo import run_doit
from fixtures.s3 import S3Server, Site, _distribution, objects, render_shell, write_app

OBJECTS = 5_000


@pytest.fixture
def repo(built_monorepo: Path) -> Iterator[Path]:
    use_port(built_monorepo, free_port())
    yield built_monorepo
    run_doit(built_monorepo, "local_stop", check=False)


def test_publish_and_plan_work_after_5000_objects(repo: Path) -> None:
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


CYCLES = 12


def models(server: S3Server) -> dict[str, int]:
    """How many objects of each of moto's model classes the emulator tracks (its dashboard)."""
    data = httpx.get(f"{server.endpoint}/moto-api/data.json", timeout=60).json()
    return {f"{s}.{name}": len(found) for s, named in data.items() for name, found in named.items()}


def test_publish_and_prune_cycles_leave_the_emulator_holding_only_what_exists(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """A week of publishing: each cycle ships a new chunk (and a new page, pointer, version
    list) and `--prune` deletes the previous release's. The emulator keeps one `FakeKey`
    per object its buckets hold, not one per object ever uploaded, so its memory follows
    what it stores (measured: RSS flat after warm-up over 60 cycles, where it grew ~170 kB
    a cycle while moto kept them all)."""
    site = Site(tmp_path / "a", moto_s3, keep_releases=1, grace_seconds=0)
    for cycle in range(CYCLES):
        chunk = {f"chunk-{os.urandom(5).hex()}.js": os.urandom(20_000)}
        write_app(site.root, "accounts", f"v{cycle}", extra=chunk)
        render_shell(site.root, site.outputs)
        site.publish(prune=True)
    s3 = moto_s3.client()
    stored = sum(len(objects(moto_s3, b["Name"])) for b in s3.list_buckets()["Buckets"])
    tracked = models(moto_s3)
    assert tracked["s3.FakeKey"] == stored
    assert tracked["s3.FakeAcl"] <= stored + len(s3.list_buckets()["Buckets"])


def test_the_emulator_keeps_the_newest_invalidations_of_distributions_that_exist(
    moto_s3: S3Server,
) -> None:
    """moto kept every invalidation ever made, one or more per publish, and those of deleted
    distributions: a week of publishing grew the emulator by each. It keeps the newest
    KEPT_INVALIDATIONS of a distribution (a ListInvalidations page, as much as a publish
    reads looking for its release's) and none of a deleted one."""
    cf = moto_s3.client("cloudfront")
    made = cf.create_distribution(DistributionConfig=_distribution("soak"))["Distribution"]
    dist = made["Id"]
    ids = [
        cf.create_invalidation(
            DistributionId=dist,
            InvalidationBatch={"CallerReference": f"r{n}", "Paths": {"Quantity": 1, "Items": ["/index.html"]}},
        )["Invalidation"]["Id"]
        for n in range(KEPT_INVALIDATIONS + 20)
    ]  # fmt: skip
    listed = cf.list_invalidations(DistributionId=dist)["InvalidationList"]
    assert listed["Quantity"] == KEPT_INVALIDATIONS
    assert {item["Id"] for item in listed["Items"]} == set(ids[-KEPT_INVALIDATIONS:])
    newest = cf.get_invalidation(DistributionId=dist, Id=ids[-1])["Invalidation"]
    assert newest["InvalidationBatch"]["CallerReference"] == f"r{len(ids) - 1}"
    with pytest.raises(cf.exceptions.NoSuchInvalidation):
        cf.get_invalidation(DistributionId=dist, Id=ids[0])

    before = models(moto_s3).get("cloudfront.Invalidation", 0)
    etag = cf.get_distribution(Id=dist)["ETag"]
    cf.delete_distribution(Id=dist, IfMatch=etag)
    assert models(moto_s3).get("cloudfront.Invalidation", 0) == before - KEPT_INVALIDATIONS


def test_the_backend_memo_keeps_the_most_recently_used_host_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The emulator remembers which service a host name belongs to, for every request; a
    client may send any host name (a virtual-hosted bucket's, say), so it remembers the
    REMEMBERED_HOSTS most recently used, not every name it ever saw, and answers the same
    for a name it has forgotten."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    original = DomainDispatcherApplication.get_backend_for_host
    monkeypatch.setattr(DomainDispatcherApplication, "get_backend_for_host", original)
    remember_backends()
    app = DomainDispatcherApplication(create_backend_app)
    for n in range(REMEMBERED_HOSTS * 3):
        assert app.get_backend_for_host(f"bucket-{n}.s3.amazonaws.com") == "s3"
    assert app.get_backend_for_host("bucket-0.s3.amazonaws.com") == "s3"  # forgotten, found
    memo = getattr(app.get_backend_for_host, "cache_info", None)
    assert memo is not None, "the memo has no bound"
    assert memo().currsize == REMEMBERED_HOSTS
