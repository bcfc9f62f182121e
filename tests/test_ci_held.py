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


def test_a_held_build_goes_to_the_cache_only_if_a_run_on_a_trusted_ref_recorded_it(
    origin: Path, monorepo_template: Path, moto_server: str, tmp_path: Path
) -> None:
    """A held build is shared on the word of local files: only a record a trusted run
    wrote (not an untrusted run's, not an older record without trust) is uploaded, and
    the report's `cache` says what the cache had: `miss` when it had to be uploaded (or
    was not), `hit` only when it was already there."""
    modules = monorepo_template / "node_modules"
    # A build variable of their own gives these builds keys no other run cached.
    untrusted = {"NODE_ENV": "held-here", "MFE_CI_REF": "refs/heads/held-here"}
    trusted = {"NODE_ENV": "held-here", "MFE_CI_REF": "refs/heads/main"}

    # 1. Recorded by an untrusted ref's run: taken as is, never uploaded, not even to its
    #    own scope (a reused workspace may hold anything that run left).
    other = clone(origin, tmp_path / "other", modules)
    ci(other, "cache=off", env=untrusted)
    report, output = ci(other, env=untrusted)
    for name, app in report["apps"].items():
        assert (app["dist"], app["cache"], app["cache_upload_bytes"]) == ("local", "miss", 0)
        assert "is not from a run on a trusted ref" in " ".join(app["notes"]), name
    assert "is not from a run on a trusted ref" in output
    assert entries(moto_server, report) == set()
    # A trusted run in that workspace takes none of them: they are built again.
    report, _ = ci(other, "cache=off", env=trusted)
    assert {a["dist"] for a in report["apps"].values()} == {"build"}

    # 2. Recorded by a trusted run without the cache, but as an older ci-keys.json (no
    #    trust in it): neither taken nor uploaded by a trusted run, which builds again.
    holder = clone(origin, tmp_path / "holder", modules)
    ci(holder, "cache=off", env=trusted)
    keys_file = holder / ".mfe" / "ci-keys.json"
    recorded = keys_file.read_text()
    older = {
        name: {k: e[k] for k in ("key", "manifest")} for name, e in json.loads(recorded).items()
    }
    keys_file.write_text(json.dumps(older))
    report, _ = ci(holder, "cache=off", env=trusted)
    assert {(a["dist"], a["cache_upload_bytes"]) for a in report["apps"].values()} == {("build", 0)}
    assert entries(moto_server, report) == set()

    # 3. The trusted run's own record: uploaded to the shared scope, and reported a miss.
    keys_file.write_text(recorded)
    summary = tmp_path / "summary.md"
    held, output = ci(holder, env={**trusted, "GITHUB_STEP_SUMMARY": str(summary)})
    for name, app in held["apps"].items():
        assert (app["dist"], app["cache"], app["build_seconds"]) == ("local", "miss", 0.0), name
        assert app["cache_upload_bytes"] > 0, name
        assert f"ci: {name}: took the tested build dist/ holds" in output
        assert f"| {name} | yes | miss |" in summary.read_text()
    assert output.count("the build cache lacked it: uploaded") == len(held["apps"])
    assert entries(moto_server, held) == {
        f"{TRUSTED}{name}/{app['key']}.tar.zst" for name, app in held["apps"].items()
    }

    # A fresh runner restores them; the holder's next run finds them there: a hit.
    runner = clone(origin, tmp_path / "runner", modules)
    report, _ = ci(runner, env=trusted)
    for name, app in report["apps"].items():
        assert (app["dist"], app["cache"], app["build_seconds"]) == ("cache", "hit", 0.0), name
    report, output = ci(holder, env=trusted)
    for name, app in report["apps"].items():
        assert (app["dist"], app["cache"], app["cache_upload_bytes"]) == ("local", "hit", 0), name
    assert output.count("the build cache has it") == len(report["apps"])


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
