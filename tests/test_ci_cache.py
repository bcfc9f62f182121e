"""The S3 build cache against a real moto server: round trip, nothing corrupt or unsigned
restored, and each scope written only by its own runs."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import zstandard
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from mfe.build.manifest import write_manifest
from mfe.ci import archive, budget, cache, connect, signing
from mfe.config import App, Project, load_project
from mfe.envs.session import Session

KEY = "ab" * 32
SECRET = b"s" * 40


def make_project(root: Path, endpoint: str) -> Project:
    port = endpoint.rsplit(":", 1)[1]
    (root / "mfe.toml").write_text(
        f'[project]\nname = "cachetest"\n[apps.shell]\nrole = "parent"\n[env.local]\nport = {port}\n'
    )
    for name in ("shell", "payments"):
        (root / "apps" / name).mkdir(parents=True)
        (root / "apps" / name / "package.json").write_text('{"scripts": {"build": "x"}}')
    return load_project(root)


def fake_build(app: App, text: str = "console.log(1)") -> None:
    (app.dist / "chunks").mkdir(parents=True, exist_ok=True)
    (app.dist / "main-ABCD1234.js").write_text(text)
    (app.dist / "chunks" / "c-EFGH5678.js").write_text("export {}")
    write_manifest(app.name, app.dist)


@pytest.fixture
def setup(tmp_path: Path, moto_server: str) -> tuple[Project, cache.RemoteCache]:
    project = make_project(tmp_path, moto_server)
    s3 = Session(project, "local").s3
    bucket = f"cache-{tmp_path.name.lower().replace('_', '-')}"[:60]
    s3.create_bucket(Bucket=bucket)
    return project, cache.RemoteCache(s3, bucket, "build-cache", SECRET)


def snapshot(dist: Path) -> dict[str, bytes]:
    return {p.relative_to(dist).as_posix(): p.read_bytes() for p in dist.rglob("*") if p.is_file()}


def test_round_trip_restores_identical_files(setup: tuple[Project, cache.RemoteCache]) -> None:
    project, remote = setup
    app = project.apps["payments"]
    fake_build(app)
    built = snapshot(app.dist)
    assert cache.upload(remote, app, KEY) > 0
    assert archive.pack(app.dist) == archive.pack(app.dist)  # deterministic archives
    (app.dist / "main-ABCD1234.js").write_text("stale")
    assert cache.restore(remote, project, app, KEY).outcome == "hit"
    assert snapshot(app.dist) == built
    assert cache.restore(remote, project, app, "cd" * 32).outcome == "miss"
    assert scratch_left(project) == []


def test_an_archive_holds_the_files_of_linked_folders_the_manifest_lists(tmp_path: Path) -> None:
    """A build script that links a folder into dist/: the manifest lists its files, so the
    archive holds them as files (it held no link, so every restore was corrupt)."""
    dist, shared = tmp_path / "dist", tmp_path / "shared"
    dist.mkdir()
    shared.mkdir()
    (dist / "main-ABCD1234.js").write_text("export {}\n")
    (shared / "a.css").write_text("a {}\n")
    (dist / "styles").symlink_to(shared)
    write_manifest("web", dist)
    (tmp_path / "entry.tar.zst").write_bytes(archive.pack(dist))
    archive.unpack_verified(tmp_path / "entry.tar.zst", tmp_path / "restored", "web")
    assert (tmp_path / "restored/styles/a.css").read_text() == "a {}\n"


def scratch_left(project: Project) -> list[str]:
    """What the restores left in their scratch area (its lock file aside)."""
    area = project.root / ".mfe" / cache.RESTORE_AREA
    return sorted(p.name for p in area.iterdir() if p.name != ".lock")


def restore_after(
    barrier: threading.Barrier, remote: cache.RemoteCache, project: Project, app: App
) -> str:
    """One restore, started together with the others waiting on `barrier`."""
    barrier.wait()
    return cache.restore(remote, project, app, KEY).outcome


def test_concurrent_restores_of_one_app_never_break_each_other(
    setup: tuple[Project, cache.RemoteCache],
) -> None:
    """Two `doit ci` runs, or `ci publish` next to a shard, in one checkout restore the same
    app at once: each downloads into its own scratch folder, so none deletes another's
    archive mid-download; what a killed restore left is removed by the next one."""
    project, remote = setup
    app = project.apps["payments"]
    fake_build(app, os.urandom(1 << 20).hex())  # 2 MB that zstd cannot shrink: a long download
    built = snapshot(app.dist)
    assert cache.upload(remote, app, KEY) > 0
    area = project.root / ".mfe" / cache.RESTORE_AREA
    threads = 6
    for _ in range(5):
        (area / "payments").mkdir(parents=True, exist_ok=True)  # the older fixed folder
        killed = area / "payments-killed0"  # a restore killed mid-download: no lock held
        killed.mkdir(exist_ok=True)
        (killed / ("archive" + cache.SUFFIX)).write_bytes(b"partial")
        shutil.rmtree(app.dist)
        barrier = threading.Barrier(threads)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            outcomes = list(
                pool.map(lambda b: restore_after(b, remote, project, app), [barrier] * threads)
            )
        assert outcomes == ["hit"] * threads
        assert snapshot(app.dist) == built
        assert scratch_left(project) == []
        assert sorted(p.name for p in app.dist.parent.iterdir()) == ["dist", "package.json"]


def put_raw(remote: cache.RemoteCache, app: str, body: bytes, signed: bool = True) -> None:
    """Plant an entry; `signed` signs whatever manifest it holds, as our own upload would."""
    metadata = {}
    if signed:
        manifest = json.dumps({"app": app, "entries": [], "files": {}}).encode()
        try:
            tar_bytes = zstandard.ZstdDecompressor().decompress(body)
            with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
                stream = tar.extractfile("asset-manifest.json")
                manifest = stream.read() if stream else manifest
        except (zstandard.ZstdError, tarfile.TarError, KeyError):
            pass
        digest = hashlib.sha256(manifest).hexdigest()
        metadata = signing.sign(SECRET, "trusted", app, KEY, digest)
    remote.s3.put_object(
        Bucket=remote.bucket,
        Key=remote.object_key("trusted", app, KEY),
        Body=body,
        Metadata=metadata,
    )


def tar_zst(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return bytes(zstandard.ZstdCompressor().compress(buffer.getvalue()))


def assert_rejected(
    setup: tuple[Project, cache.RemoteCache],
    body: bytes,
    capsys: pytest.CaptureFixture[str],
    outcome: str = "corrupt",
    signed: bool = True,
) -> list[str]:
    project, remote = setup
    app = project.apps["payments"]
    fake_build(app, "the current build")
    before = snapshot(app.dist)
    put_raw(remote, "payments", body, signed)
    lookup = cache.restore(remote, project, app, KEY)
    assert lookup.outcome == outcome
    err = capsys.readouterr().err
    assert remote.object_key("trusted", "payments", KEY) in err
    assert len(err.strip().splitlines()) == 1  # one warning line
    assert snapshot(app.dist) == before  # dist untouched
    # A signed entry whose body is bad goes (a plan's HEAD would count it a hit forever);
    # an unsigned one stays: the plan rejects it too, and this job did not write it.
    assert entry_etag(remote) is None if signed else entry_etag(remote) is not None
    assert ("removed it from the cache" in lookup.corrupt) == signed
    return lookup.notes


def entry_etag(remote: cache.RemoteCache, scope: str = "trusted") -> str | None:
    """The ETag of payments' entry under KEY, or None when there is none."""
    try:
        head = remote.s3.head_object(
            Bucket=remote.bucket, Key=remote.object_key(scope, "payments", KEY)
        )
    except ClientError:
        return None
    return str(head["ETag"])


def test_truncated_archive_is_rejected(
    setup: tuple[Project, cache.RemoteCache], capsys: pytest.CaptureFixture[str]
) -> None:
    fake_build(setup[0].apps["payments"])
    good = archive.pack(setup[0].apps["payments"].dist)
    assert_rejected(setup, good[: len(good) // 2], capsys)
    assert_rejected(setup, good[:-1], capsys)
    assert_rejected(setup, b"not zstd at all", capsys)


def test_content_not_matching_the_manifest_is_rejected(
    setup: tuple[Project, cache.RemoteCache], capsys: pytest.CaptureFixture[str]
) -> None:
    app = setup[0].apps["payments"]
    fake_build(app)
    files = snapshot(app.dist)
    tampered = {**files, "main-ABCD1234.js": b"console.log(2)"}
    assert_rejected(setup, tar_zst(tampered), capsys)
    extra = {**files, "evil.js": b"alert(1)"}
    assert_rejected(setup, tar_zst(extra), capsys)
    missing = {k: v for k, v in files.items() if k != "chunks/c-EFGH5678.js"}
    assert_rejected(setup, tar_zst(missing), capsys)
    manifest = json.loads(files["asset-manifest.json"])
    manifest["app"] = "accounts"
    other_app = {**files, "asset-manifest.json": json.dumps(manifest).encode()}
    assert_rejected(setup, tar_zst(other_app), capsys)


def test_a_second_spelling_of_the_manifest_cannot_replace_the_signed_one(
    setup: tuple[Project, cache.RemoteCache], capsys: pytest.CaptureFixture[str]
) -> None:
    """Whoever can write the bucket but lacks the secret keeps the signed manifest under its
    exact name (so its hash checks out) and adds forged files with their own manifest under
    a name that extraction writes onto the same path."""
    project, remote = setup
    app = project.apps["payments"]
    fake_build(app)
    signed = (app.dist / "asset-manifest.json").read_bytes()
    fake_build(app, "alert('poisoned')")
    forged = snapshot(app.dist)
    for spelling in ("./asset-manifest.json", "asset-manifest.json/"):
        body = tar_zst(
            {
                "asset-manifest.json": signed,  # put_raw signs this one, as an upload did
                **{name: data for name, data in forged.items() if name != "asset-manifest.json"},
                spelling: forged["asset-manifest.json"],
            }
        )
        notes = assert_rejected(setup, body, capsys)
        assert notes[0].startswith(f"build cache entry {remote.url('trusted', 'payments', KEY)} ")
        assert "the current build" in (app.dist / "main-ABCD1234.js").read_text()


def test_paths_escaping_dist_are_rejected_before_writing(
    setup: tuple[Project, cache.RemoteCache], capsys: pytest.CaptureFixture[str]
) -> None:
    project = setup[0]
    assert_rejected(setup, tar_zst({"../../escaped.txt": b"x"}), capsys)
    assert_rejected(setup, tar_zst({"/tmp/absolute-mfe-test.txt": b"x"}), capsys)
    assert not list(project.root.rglob("escaped.txt"))
    assert not Path("/tmp/absolute-mfe-test.txt").exists()


def test_failed_upload_warns_and_does_not_raise(
    setup: tuple[Project, cache.RemoteCache], capsys: pytest.CaptureFixture[str]
) -> None:
    project, remote = setup
    app = project.apps["payments"]
    fake_build(app)
    missing_bucket = cache.RemoteCache(remote.s3, "no-such-bucket-mfe", "p", SECRET)
    assert cache.upload(missing_bucket, app, KEY) == 0
    assert "no-such-bucket-mfe" in capsys.readouterr().err
    assert cache.restore(missing_bucket, project, app, KEY).outcome == "miss"


def test_forged_entries_are_rejected_before_unpacking(
    setup: tuple[Project, cache.RemoteCache], capsys: pytest.CaptureFixture[str]
) -> None:
    """A valid zstd archive whose files match its own manifest, planted under a trusted key."""
    app = setup[0].apps["payments"]
    fake_build(app, "alert('planted by a pull request')")
    forged = archive.pack(app.dist)
    notes = assert_rejected(setup, forged, capsys, "rejected", signed=False)
    assert "unsigned" in notes[0]
    remote = setup[1]
    object_key = remote.object_key("trusted", "payments", KEY)

    def plant(metadata: dict[str, str], signature_bad: bool = True) -> list[str]:
        fake_build(app, "the current build")
        before = snapshot(app.dist)
        remote.s3.put_object(Bucket=remote.bucket, Key=object_key, Body=forged, Metadata=metadata)
        # A HEAD sees the signature only; the manifest is checked once the body is read.
        assert cache.probe(remote, "payments", KEY).outcome == (
            "rejected" if signature_bad else "hit"
        )
        lookup = cache.restore(remote, setup[0], app, KEY)
        assert (lookup.outcome, snapshot(app.dist)) == ("rejected", before)
        assert object_key in capsys.readouterr().err
        # ... and then it is removed, so the next plan counts it a miss.
        assert (entry_etag(remote) is None) == (not signature_bad)
        capsys.readouterr()
        return lookup.notes

    manifest = hashlib.sha256((app.dist / "asset-manifest.json").read_bytes()).hexdigest()
    fake_build(app, "alert('planted by a pull request')")
    good = signing.sign(SECRET, "trusted", "payments", KEY, manifest)
    assert "bad signature" in plant({**good, "signature": "0" * 64})[0]
    other_key = signing.sign(
        b"another secret, 40 characters long......", "trusted", "payments", KEY, manifest
    )
    assert "signed with another MFE_CACHE_KEY" in plant(other_key)[0]
    # Signed for a pull request's prefix, then copied under the trusted one.
    pr_signed = signing.sign(SECRET, "pr/7", "payments", KEY, manifest)
    assert "bad signature" in plant(pr_signed)[0]
    # A genuine signature over a different manifest: caught before any file is written.
    stale = signing.sign(SECRET, "trusted", "payments", KEY, "0" * 64)
    assert "not the signed one" in plant(stale, signature_bad=False)[0]


def test_pull_request_scope_writes_only_its_prefix_and_reads_shared_first(
    setup: tuple[Project, cache.RemoteCache],
) -> None:
    project, trusted = setup
    app = project.apps["payments"]
    fake_build(app, "trusted build")
    assert cache.upload(trusted, app, KEY) > 0
    shared = trusted.s3.head_object(
        Bucket=trusted.bucket, Key=trusted.object_key("trusted", "payments", KEY)
    )["ETag"]
    pr = cache.RemoteCache(
        trusted.s3, trusted.bucket, trusted.prefix, SECRET, "pr/7", ("trusted", "pr/7")
    )
    fake_build(app, "pull request build")
    assert cache.upload(pr, app, KEY) > 0
    after = trusted.s3.head_object(
        Bucket=trusted.bucket, Key=trusted.object_key("trusted", "payments", KEY)
    )["ETag"]
    assert after == shared  # the trusted entry is untouched
    assert cache.restore(pr, project, app, KEY).scope == "trusted"
    assert "trusted build" in (app.dist / "main-ABCD1234.js").read_text()
    other_key = "cd" * 32
    assert cache.upload(pr, app, other_key) > 0
    assert cache.restore(pr, project, app, other_key).scope == "pr/7"
    assert cache.restore(trusted, project, app, other_key).outcome == "miss"  # never read by main
    other_pr = cache.RemoteCache(
        trusted.s3, trusted.bucket, trusted.prefix, SECRET, "pr/8", ("trusted", "pr/8")
    )
    assert cache.restore(other_pr, project, app, other_key).outcome == "miss"


def test_jobs_that_only_fill_the_cache_wait_for_its_bucket_never_for_the_site(
    tmp_path: Path, moto_server: str
) -> None:
    project = make_project(tmp_path, moto_server)
    (project.root / "mfe.toml").write_text(
        (project.root / "mfe.toml").read_text().replace('"cachetest"', '"readytest"')
    )
    project = load_project(project.root)
    bucket = project.env("local").cache_bucket
    assert bucket == "readytest-local-build-cache"
    outputs = project.outputs_file("local")

    # The first job on a new emulator: the bucket is missing, so the environment is made
    # ready (the emulator provisions it, cache bucket included); later calls cost nothing.
    first = Session(project, "local")
    wait = connect.bucket_ready(first, bucket)
    wait()
    wait()
    names = {b["Name"] for b in first.s3.list_buckets()["Buckets"]}
    assert {bucket, "readytest-local-shell", "readytest-local-payments"} <= names
    assert outputs.is_file()

    # A shard on a fresh runner (no outputs file): one HEAD request, nothing provisioned.
    outputs.unlink()
    shard = Session(project, "local")
    connect.bucket_ready(shard, bucket)()
    assert shard.counts() == {"s3": 1, "cloudfront": 0}
    assert not outputs.exists()


def test_a_restore_takes_the_budget_size_only_when_its_signature_verifies(
    setup: tuple[Project, cache.RemoteCache],
) -> None:
    project, remote = setup
    app = project.apps["payments"]
    fake_build(app)
    measured = budget.compressed_size(app)
    assert cache.upload(remote, app, KEY, size_bytes=measured) > 0
    assert cache.restore(remote, project, app, KEY).size_bytes == measured

    # Whoever can write the bucket but lacks the secret cannot change the recorded size
    # (say, to pass an over-budget app): the restore still verifies, the size does not.
    entry = remote.object_key("trusted", "payments", KEY)
    metadata = remote.s3.head_object(Bucket=remote.bucket, Key=entry)["Metadata"]
    remote.s3.copy_object(
        Bucket=remote.bucket,
        Key=entry,
        CopySource={"Bucket": remote.bucket, "Key": entry},
        Metadata={**metadata, signing.SIZE: "10"},
        MetadataDirective="REPLACE",
    )
    lookup = cache.restore(remote, project, app, KEY)
    assert (lookup.outcome, lookup.size_bytes) == ("hit", None)
    # An entry without a recorded size (older, or cached before measuring) is measured again.
    assert cache.upload(remote, app, "cd" * 32) > 0
    assert cache.restore(remote, project, app, "cd" * 32).size_bytes is None


def test_records_merge_writes_only_a_change(setup: tuple[Project, cache.RemoteCache]) -> None:
    from mfe.ci import records

    _, remote = setup
    puts: list[str] = []
    remote.s3.meta.events.register("before-send.s3.PutObject", lambda **_: puts.append("put"))
    name = records.sizes_name("local")
    records.merge(remote, name, {"payments": {"bytes": 10, "key": "k"}})
    records.merge(remote, name, {"payments": {"bytes": 10, "key": "k"}})  # a warm re-run
    assert len(puts) == 1
    records.merge(remote, name, {"payments": {"bytes": 11, "key": "k2"}})
    assert len(puts) == 2
    assert records.read(remote, name)["payments"] == {"bytes": 11, "key": "k2"}


def corrupt(remote: cache.RemoteCache, scope: str = "trusted") -> str:
    """Replace payments' entry by half its body under the same signed metadata; its ETag."""
    key = remote.object_key(scope, "payments", KEY)
    entry = remote.s3.get_object(Bucket=remote.bucket, Key=key)
    body = entry["Body"].read()
    remote.s3.put_object(
        Bucket=remote.bucket, Key=key, Body=body[: len(body) // 2], Metadata=entry["Metadata"]
    )
    return entry_etag(remote, scope) or ""


def test_a_corrupt_entry_is_removed_only_where_this_job_writes(
    setup: tuple[Project, cache.RemoteCache], capsys: pytest.CaptureFixture[str]
) -> None:
    """`ci_plan` HEADs entries only: a corrupt one left in place is a hit in every plan.
    A job removes it from its own scope; elsewhere it names the object to delete."""
    project, trusted = setup
    app = project.apps["payments"]
    fake_build(app)
    assert cache.upload(trusted, app, KEY) > 0
    bad = corrupt(trusted)
    pr = cache.RemoteCache(
        trusted.s3, trusted.bucket, trusted.prefix, SECRET, "pr/7", ("trusted", "pr/7")
    )
    lookup = cache.restore(pr, project, app, KEY)
    assert lookup.outcome == "corrupt" and entry_etag(trusted) == bad
    url = f"s3://{trusted.bucket}/{trusted.object_key('trusted', 'payments', KEY)}"
    assert "is corrupt (archive sha256 " in lookup.corrupt
    assert f"writes only pr/7/, not trusted/, so delete it (`aws s3 rm {url}`)" in lookup.corrupt
    assert "until then every ci_plan counts it a hit" in lookup.corrupt
    assert cache.probe(pr, "payments", KEY).outcome == "hit"  # the stuck state it names

    # A delete the store refuses (a role without s3:DeleteObject): the same instructions.
    def refuse(request: Any, **_: Any) -> AWSResponse | None:
        if request.method != "DELETE":
            return None
        return AWSResponse(request.url, 403, {}, Denied())

    trusted.s3.meta.events.register("before-send.s3.DeleteObject", refuse)
    try:
        lookup = cache.restore(trusted, project, app, KEY)
    finally:
        trusted.s3.meta.events.unregister("before-send.s3.DeleteObject", refuse)
    assert lookup.outcome == "corrupt" and entry_etag(trusted) == bad
    assert f"could not remove it (AccessDenied), so delete it (`aws s3 rm {url}`)" in (
        lookup.corrupt
    )

    lookup = cache.restore(trusted, project, app, KEY)  # this job writes trusted/
    assert lookup.outcome == "corrupt" and entry_etag(trusted) is None
    assert lookup.corrupt.endswith(
        "removed it from the cache: the next ci_plan counts it a miss, a shard rebuilds it"
    )
    assert cache.probe(trusted, "payments", KEY).outcome == "miss"
    capsys.readouterr()


class Denied:
    """The raw body of an S3 AccessDenied answer."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b"<Error><Code>AccessDenied</Code><Message>denied</Message></Error>"


def test_removing_a_corrupt_entry_never_removes_a_good_one_uploaded_meanwhile(
    setup: tuple[Project, cache.RemoteCache], capsys: pytest.CaptureFixture[str]
) -> None:
    """Restores find the entry corrupt while another job uploads a good one under the same
    key: only the object each restore read may go (If-Match its ETag), so the good entry
    is what the cache holds in the end, however the requests interleave."""
    project, remote = setup
    app = project.apps["payments"]
    fake_build(app)
    good = snapshot(app.dist)

    # Exactly between a restore's GET and its DELETE, a shard uploads the good entry.
    assert cache.upload(remote, app, KEY) > 0
    corrupt(remote)
    uploader = replace(remote, s3=Session(project, "local").s3)

    def upload_first(**_: Any) -> None:
        cache.upload(uploader, app, KEY)

    remote.s3.meta.events.register("before-send.s3.DeleteObject", upload_first)
    try:
        lookup = cache.restore(remote, project, app, KEY)
    finally:
        remote.s3.meta.events.unregister("before-send.s3.DeleteObject", upload_first)
    assert lookup.outcome == "corrupt"
    assert "another job has replaced it since; kept that entry" in lookup.corrupt
    assert cache.restore(remote, project, app, KEY).outcome == "hit"

    # The same with real threads, several times: the end state is always the good entry.
    for _ in range(5):
        corrupt(remote)
        barrier = threading.Barrier(5)
        with ThreadPoolExecutor(max_workers=5) as pool:
            restores = [pool.submit(restore_after, barrier, remote, project, app) for _ in range(4)]
            barrier.wait()
            cache.upload(uploader, app, KEY)
            assert {f.result() for f in restores} <= {"hit", "corrupt", "miss"}
        shutil.rmtree(app.dist)
        assert cache.restore(remote, project, app, KEY).outcome == "hit"
        assert snapshot(app.dist) == good
        assert scratch_left(project) == []
    capsys.readouterr()
