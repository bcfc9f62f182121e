"""`doit ci` and the builds a checkout already holds (`dist: local`, `.mfe/ci-keys.json`):
when they go to the build cache, what the report says, and what counts as held. Fresh git
clones of one origin against this module's own moto server (its own live page)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fixtures.aws import DUMMY_AWS_ENV, local_client
from fixtures.config import use_port
from fixtures.repo import run_doit

CACHE_BUCKET = "mfe-demo-local-build-cache"  # config.py's default for env local
CI_ENV = {**DUMMY_AWS_ENV, "MFE_CACHE_KEY": "held-test-secret-" + "z" * 32}
TRUSTED = "build-cache/trusted/"


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def origin(
    monorepo_template: Path, moto_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A git repo of the monorepo (branch main: trusted) whose `local` env is this
    module's moto server."""
    root = tmp_path_factory.mktemp("origin") / "repo"
    shutil.copytree(monorepo_template, root, ignore=shutil.ignore_patterns("node_modules", ".mfe"))
    use_port(root, int(moto_server.rsplit(":", 1)[1]))
    git(root, "init", "-q", "-b", "main")
    git(root, "-c", "user.email=ci@example.com", "-c", "user.name=CI", "add", "-A")
    git(root, "-c", "user.email=ci@example.com", "-c", "user.name=CI", "commit", "-qm", "repo")
    return root


def clone(origin: Path, dest: Path, modules: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(origin), str(dest)], check=True)
    subprocess.run(["cp", "-al", str(modules), str(dest / "node_modules")], check=True)
    return dest


def ci(root: Path, *args: str, env: dict[str, str]) -> tuple[dict[str, Any], str]:
    result = run_doit(root, "ci", *args, env={**CI_ENV, **env})
    report = json.loads((root / ".mfe" / "local" / "ci-report.json").read_text())
    return report, result.stdout


def cache_objects(endpoint: str) -> set[str]:
    s3 = local_client(endpoint)
    if CACHE_BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        return set()
    listed = s3.list_objects_v2(Bucket=CACHE_BUCKET).get("Contents", [])
    return {item["Key"] for item in listed if "/meta/" not in item["Key"]}


def entries(endpoint: str, report: dict[str, Any]) -> set[str]:
    """The cache entries (any scope) holding the keys of `report`'s apps."""
    keys = {f"/{name}/{app['key']}.tar.zst" for name, app in report["apps"].items()}
    return {key for key in cache_objects(endpoint) if any(key.endswith(k) for k in keys)}


def test_a_held_build_with_a_file_its_manifest_does_not_list_is_not_taken_or_shared(
    origin: Path, monorepo_template: Path, moto_server: str, tmp_path: Path
) -> None:
    """A stray file in a recorded `dist/` makes it no held build: the run builds accounts
    again, and the entry it caches is whole, so other runners restore it (no corrupt entry)."""
    modules = monorepo_template / "node_modules"
    trusted = {"NODE_ENV": "held-stray", "MFE_CI_REF": "refs/heads/main"}
    holder = clone(origin, tmp_path / "holder", modules)
    ci(holder, "cache=off", env=trusted)
    (holder / "apps" / "accounts" / "dist" / "stray-notes.txt").write_text("stray\n")

    report, output = ci(holder, env=trusted)
    assert "accounts: dist/ no longer matches its asset-manifest.json" in output
    accounts = report["apps"]["accounts"]
    assert (accounts["dist"], accounts["cache"]) == ("build", "miss")
    assert not (holder / "apps" / "accounts" / "dist" / "stray-notes.txt").exists()

    runner = clone(origin, tmp_path / "runner", modules)
    report, output = ci(runner, env=trusted)
    assert "not in the manifest" not in output and "corrupt" not in output
    for name, app in report["apps"].items():
        assert (app["dist"], app["cache"]) == ("cache", "hit"), name
