"""The S3 build cache against a real moto server: round trip, and nothing corrupt restored."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import zstandard
from aws_fixtures import moto_server  # noqa: F401

from mfe.build.manifest import write_manifest
from mfe.ci import cache
from mfe.config import App, Project, load_project
from mfe.envs.session import Session

KEY = "ab" * 32


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
def setup(tmp_path: Path, moto_server: str) -> tuple[Project, cache.RemoteCache]:  # noqa: F811
    project = make_project(tmp_path, moto_server)
    s3 = Session(project, "local").s3
    bucket = f"cache-{tmp_path.name.lower().replace('_', '-')}"[:60]
    s3.create_bucket(Bucket=bucket)
    return project, cache.RemoteCache(s3, bucket, "build-cache")


def snapshot(dist: Path) -> dict[str, bytes]:
    return {p.relative_to(dist).as_posix(): p.read_bytes() for p in dist.rglob("*") if p.is_file()}


def test_round_trip_restores_identical_files(setup: tuple[Project, cache.RemoteCache]) -> None:
    project, remote = setup
    app = project.apps["payments"]
    fake_build(app)
    built = snapshot(app.dist)
    assert cache.upload(remote, app, KEY) > 0
    assert cache.pack(app.dist) == cache.pack(app.dist)  # deterministic archives
    (app.dist / "main-ABCD1234.js").write_text("stale")
    assert cache.restore(remote, project, app, KEY) == "hit"
    assert snapshot(app.dist) == built
    assert cache.restore(remote, project, app, "cd" * 32) == "miss"
    assert not (project.root / ".mfe" / "ci-tmp" / "payments").exists()


def put_raw(remote: cache.RemoteCache, app: str, body: bytes) -> None:
    remote.s3.put_object(Bucket=remote.bucket, Key=remote.object_key(app, KEY), Body=body)


def tar_zst(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return bytes(zstandard.ZstdCompressor().compress(buffer.getvalue()))


def assert_rejected(
    setup: tuple[Project, cache.RemoteCache], body: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    project, remote = setup
    app = project.apps["payments"]
    fake_build(app, "the current build")
    before = snapshot(app.dist)
    put_raw(remote, "payments", body)
    assert cache.restore(remote, project, app, KEY) == "corrupt"
    assert remote.object_key("payments", KEY) in capsys.readouterr().err
    assert snapshot(app.dist) == before  # dist untouched


def test_truncated_archive_is_rejected(
    setup: tuple[Project, cache.RemoteCache], capsys: pytest.CaptureFixture[str]
) -> None:
    fake_build(setup[0].apps["payments"])
    good = cache.pack(setup[0].apps["payments"].dist)
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
    missing_bucket = cache.RemoteCache(remote.s3, "no-such-bucket-mfe", "p")
    assert cache.upload(missing_bucket, app, KEY) == 0
    assert "no-such-bucket-mfe" in capsys.readouterr().err
    assert cache.restore(missing_bucket, project, app, KEY) == "miss"
