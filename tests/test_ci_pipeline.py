"""`doit ci` end to end: fresh git clones sharing one moto server and its build cache."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mfe.build.installed import NO_NPM
from mfe.build.manifest import write_manifest
from mfe.ci import archive

from fixtures.aws import DUMMY_AWS_ENV, local_client
from fixtures.config import use_port
from fixtures.repo import run_doit

CACHE_BUCKET = "mfe-demo-local-build-cache"  # config.py's default for env local
SECRET_ENV = {"MFE_CACHE_KEY": "test-secret-" + "x" * 32}
CI_ENV = {**DUMMY_AWS_ENV, **SECRET_ENV}


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def origin(
    monorepo_template: Path,
    moto_server: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """A git repo of the monorepo whose `local` env points at this module's moto server."""
    root = tmp_path_factory.mktemp("origin") / "repo"
    shutil.copytree(monorepo_template, root, ignore=shutil.ignore_patterns("node_modules", ".mfe"))
    use_port(root, int(moto_server.rsplit(":", 1)[1]))
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "ci@example.com")
    git(root, "config", "user.name", "CI")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "monorepo")
    return root


def fresh_clone(origin: Path, dest: Path, node_modules: Path | None) -> Path:
    subprocess.run(["git", "clone", "-q", str(origin), str(dest)], check=True)
    if node_modules is not None:
        # Hard links: installed once in the template; npm ci in a clone replaces, never rewrites.
        subprocess.run(["cp", "-al", str(node_modules), str(dest / "node_modules")], check=True)
    return dest


def ci(root: Path, *args: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    result = run_doit(root, "ci", *args, env={**CI_ENV, **(env or {})})
    report = json.loads((root / ".mfe" / "local" / "ci-report.json").read_text())
    return report, result.stdout


def cache_objects(endpoint: str) -> dict[str, str]:
    s3 = local_client(endpoint)
    if CACHE_BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        return {}  # not provisioned yet (this test runs alone)
    listed = s3.list_objects_v2(Bucket=CACHE_BUCKET).get("Contents", [])
    return {item["Key"]: item["ETag"] for item in listed if "/meta/" not in item["Key"]}


def test_fresh_clones_share_the_cache_and_build_only_what_changed(
    origin: Path,
    monorepo_template: Path,
    moto_server: str,
    tmp_path: Path,
) -> None:
    apps = {"mfe-parent", "accounts", "payments", "shared"}  # the shared modules: like an app
    modules = monorepo_template / "node_modules"

    # 1. Cold: every app is built, tested, uploaded to the cache and published.
    first = fresh_clone(origin, tmp_path / "one", modules)
    report, output = ci(first)
    assert set(report["apps"]) == apps
    assert output.strip().splitlines()[-1] == report["site_url"]  # the last line, as publish's
    for name, app in report["apps"].items():
        # No base= names a changed file: the build cache lookup says why it built.
        assert app["why"] == [f"the build cache has no entry for its input key {app['key'][:12]}"]
        assert app["affected"] is True and app["cache"] == "miss" and app["build_seconds"] > 0
        assert app["uploaded"] > 0, name
    assert report["apps"]["payments"]["tests"] == "passed"
    cached = cache_objects(moto_server)
    assert {key.split("/")[2] for key in cached if "/trusted/" in key} == apps

    # 2. Warm, no node_modules at all: everything restored, nothing built or uploaded.
    second = fresh_clone(origin, tmp_path / "two", None)
    report, output = ci(second)
    for name, app in report["apps"].items():
        assert (app["cache"], app["build_seconds"], app["uploaded"]) == ("hit", 0.0, 0), name
    assert not (second / "node_modules").exists()  # no npm ci was needed
    assert cache_objects(moto_server) == cached
    for name in apps - {"shared"}:
        assert (second / "apps" / name / "dist" / "asset-manifest.json").read_bytes() == (
            first / "apps" / name / "dist" / "asset-manifest.json"
        ).read_bytes()
    shared_manifest = "build/shared/dist/asset-manifest.json"
    assert (second / shared_manifest).read_bytes() == (first / shared_manifest).read_bytes()

    # 3. A commit changing payments: a third clone builds (and tests) only payments.
    base = git(origin, "rev-parse", "HEAD")
    source = origin / "apps" / "payments" / "src" / "main.js"
    source.write_text(source.read_text() + "\n// a change only payments sees\n")
    git(origin, "commit", "-q", "-am", "payments: change")
    third = fresh_clone(origin, tmp_path / "three", modules)
    summary = tmp_path / "summary.md"
    report, output = ci(third, f"base={base}", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert "npm ci" not in output  # the copied node_modules match the lockfile
    assert "| payments | yes | miss |" in summary.read_text()
    assert "| accounts | no | unaffected |" in summary.read_text()
    payments = report["apps"].pop("payments")
    assert payments["affected"] is True
    assert payments["why"] == ["apps/payments/src/main.js"]
    assert payments["cache"] == "miss" and payments["build_seconds"] > 0
    assert payments["uploaded"] >= 1 and payments["tests"] == "passed"
    for name, app in report["apps"].items():
        assert (app["affected"], app["cache"], app["build_seconds"]) == (
            False,
            "unaffected",
            0.0,
        ), name
        assert app["why"] == []
    assert report["apps"]["accounts"]["uploaded"] == 0
    assert report["apps"]["shared"]["uploaded"] == 0  # an app change leaves the shared modules
    # The shell page counts under the parent: it now points at payments' new entry.
    published = json.loads((third / ".mfe" / "local" / "publish-report.json").read_text())
    assert published["apps"]["mfe-parent"]["uploaded"][-1] == "index.html"  # after its _ca/ copy
    assert published["dirty"] is False  # built dist/, node_modules/, .mfe/ are not sources

    report, output = ci(third, "base=HEAD")  # nothing changed since HEAD
    assert "nothing to build or publish" in output
    assert report["published"] is False
    assert {app["cache"] for app in report["apps"].values()} == {"unaffected"}

    # A commit changing only the page template: no app rebuilds, the page is published.
    template = third / "shell" / "index.html.j2"
    template.write_text(template.read_text() + "<!-- a page-only change -->\n")
    git(third, "-c", "user.name=CI", "-c", "user.email=ci@example.com", "commit", "-qam", "page")
    report, output = ci(third, "base=HEAD~1", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert "no app changed since HEAD~1, the page did (shell/index.html.j2)" in output
    assert report["published"] is True
    assert report["extra"]["page_changed"] == ["shell/index.html.j2"]
    assert {(app["affected"], app["build_seconds"]) for app in report["apps"].values()} == {
        (False, 0.0)
    }
    assert "- **the page**: `shell/index.html.j2`" in summary.read_text()
    with urllib.request.urlopen(report["site_url"], timeout=10) as response:
        assert b"<!-- a page-only change -->" in response.read()

    # 4. A truncated archive is detected, ignored, rebuilt and replaced.
    key = next(k for k in cache_objects(moto_server) if "/accounts/" in k)
    s3 = local_client(moto_server)
    entry = s3.get_object(Bucket=CACHE_BUCKET, Key=key)
    body = entry["Body"].read()
    s3.put_object(  # the signature stays valid: the archive's own checks catch this
        Bucket=CACHE_BUCKET, Key=key, Body=body[: len(body) // 2], Metadata=entry["Metadata"]
    )
    fourth = fresh_clone(origin, tmp_path / "four", modules)
    report, output = ci(fourth)
    assert f"{key} is corrupt" in output
    assert report["apps"]["accounts"]["cache"] == "miss"
    assert report["apps"]["payments"]["cache"] == "hit"
    assert s3.get_object(Bucket=CACHE_BUCKET, Key=key)["Body"].read() == body


def test_a_base_missing_from_the_clone_fails_clearly(origin: Path, tmp_path: Path) -> None:
    clone = fresh_clone(origin, tmp_path / "c", None)
    result = run_doit(clone, "ci", "base=0123456789abcdef", check=False, env=DUMMY_AWS_ENV)
    assert result.returncode != 0
    assert "fetch-depth: 0" in result.stdout
    assert "Traceback" not in result.stdout


def test_an_install_that_fails_is_reported_once_and_says_what_to_do(
    origin: Path, tmp_path: Path
) -> None:
    """A fresh runner without npm: every app's build needs node_modules, in parallel. One
    line naming what to install, once; it was tried, and said, again for each app."""
    clone = fresh_clone(origin, tmp_path / "c", None)
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("node", "git"):  # all of PATH but npm
        (tools / tool).symlink_to(shutil.which(tool) or tool)
    result = run_doit(clone, "ci", "cache=off", check=False, env={**CI_ENV, "PATH": str(tools)})
    assert result.returncode != 0 and "Traceback" not in result.stdout, result.stdout
    assert result.stdout.count("ci: installing JS dependencies (npm ci): ") == 1, result.stdout
    assert result.stdout.count(NO_NPM) == 1, result.stdout
    report = json.loads((clone / ".mfe" / "local" / "ci-report.json").read_text())
    assert report["error"] == NO_NPM


def test_uncommitted_changes_bypass_the_cache_unless_forced(
    origin: Path,
    monorepo_template: Path,
    moto_server: str,
    tmp_path: Path,
) -> None:
    clone = fresh_clone(origin, tmp_path / "dirty", monorepo_template / "node_modules")
    (clone / "apps" / "accounts" / "src" / "scratch-note.js").write_text("// wip\n")
    report, _ = ci(clone)
    accounts = report["apps"]["accounts"]
    assert accounts["cache"] == "miss" and "uncommitted" in accounts["notes"][0]
    wip = f"build-cache/trusted/accounts/{accounts['key']}.tar.zst"
    assert wip not in cache_objects(moto_server)  # a work-in-progress build is not cached
    shutil.rmtree(clone / "apps" / "accounts" / "dist")
    report, _ = ci(clone, "cache=force")
    assert report["apps"]["accounts"]["cache"] == "miss"  # forced, but not cached yet
    assert wip in cache_objects(moto_server)
    shutil.rmtree(clone / "apps" / "accounts" / "dist")
    report, _ = ci(clone, "cache=force")
    assert report["apps"]["accounts"]["cache"] == "hit"


def test_a_run_of_an_older_commit_finishing_last_keeps_the_later_one_and_passes(
    origin: Path, monorepo_template: Path, tmp_path: Path
) -> None:
    """CI runs finish out of order: C1's runner cloned before C2 was pushed, and C2's run
    published accounts first. C1's run keeps C2's accounts live, says so, and passes."""
    modules = monorepo_template / "node_modules"
    source = origin / "apps" / "accounts" / "src" / "main.jsx"
    source.write_text(source.read_text() + "\n// C1\n")
    git(origin, "commit", "-q", "-am", "accounts: C1")
    older = fresh_clone(origin, tmp_path / "older", modules)
    source.write_text(source.read_text() + "// C2\n")
    git(origin, "commit", "-q", "-am", "accounts: C2")
    newer = fresh_clone(origin, tmp_path / "newer", modules)
    ci(newer)
    served = json.loads((newer / ".mfe" / "local" / "publish-report.json").read_text())
    report, output = ci(older)  # run_doit checks the exit code
    assert "superseded, it stays live (nothing to publish for accounts)" in output
    assert report["apps"]["accounts"]["notes"][-1] == (
        "superseded: live from a later commit, kept live"
    )
    published = json.loads((older / ".mfe" / "local" / "publish-report.json").read_text())
    assert (published["superseded"], published["changed"]) == (["accounts"], [])
    assert published["release"] == served["release"]  # still C2's release


def commit_in(clone: Path, message: str) -> None:
    """Commit and push (as a branch of its own): later clones have it, as CI runners would,
    so a publish can place the live commits in history. The commit merges the ones earlier
    tests pushed (keeping this clone's tree, `-s ours`), as a main line's next commit would:
    a publish refuses an app live from a commit not merged here."""
    identity = ["-c", "user.email=ci@example.com", "-c", "user.name=CI"]
    git(clone, "fetch", "-q", "origin")
    pushed = git(clone, "for-each-ref", "--format=%(refname)", "refs/remotes/origin/ci/")
    if pushed:
        git(clone, *identity, "merge", "-q", "-s", "ours", "-m", "earlier runs", *pushed.split())
    git(clone, *identity, "commit", "-qam", message)
    head = git(clone, "rev-parse", "HEAD")
    git(clone, "push", "-q", "origin", f"HEAD:refs/heads/ci/{head}")


def test_unaffected_apps_missing_from_the_cache_and_failing_tests(
    origin: Path,
    monorepo_template: Path,
    moto_server: str,
    tmp_path: Path,
) -> None:
    clone = fresh_clone(origin, tmp_path / "tests", monorepo_template / "node_modules")
    source = clone / "apps" / "payments" / "src" / "main.js"
    source.write_text(source.read_text() + "\n// another payments change\n")
    commit_in(clone, "payments change")
    before = cache_objects(moto_server)
    # A build variable changes every key: unaffected apps are built for the shell only.
    report, _ = ci(clone, "base=HEAD~1", env={"NODE_ENV": "variant"})
    accounts = report["apps"]["accounts"]
    assert (accounts["affected"], accounts["cache"], accounts["tests"]) == (
        False,
        "unaffected",
        "not run",
    )
    assert accounts["dist"] == "build" and "render the shell" in accounts["notes"][0]
    assert report["apps"]["payments"]["cache"] == "miss"
    added = set(cache_objects(moto_server)) - set(before)
    assert [key.split("/")[2] for key in added] == ["payments"]  # untested builds stay out

    test_file = clone / "apps" / "payments" / "test" / "format.test.js"
    test_file.write_text(test_file.read_text() + "\ntest('broken', () => assert.equal(1, 2));\n")
    commit_in(clone, "a failing test")
    before = cache_objects(moto_server)
    result = run_doit(clone, "ci", "base=HEAD~1", check=False, env=CI_ENV)
    assert result.returncode != 0 and "Traceback" not in result.stdout
    # The log ends with the verdict, after the tests' own output (read from its end).
    last = result.stdout.rstrip().splitlines()[-1]
    assert last.startswith("tests of payments failed (`node --test` exited 1)"), result.stdout
    assert last.endswith("nothing was published.")
    report = json.loads((clone / ".mfe" / "local" / "ci-report.json").read_text())
    assert report["published"] is False and "tests of payments failed" in report["error"]
    assert "expected" in report["error"].split("tests of payments failed (")[0]
    assert (report["apps"]["payments"]["tests"], report["apps"]["payments"]["failed"]) == (
        "failed",
        "tests",
    )
    assert cache_objects(moto_server) == before
    # The failed build stays in dist/: the next run tests it again instead of trusting it.
    result = run_doit(clone, "ci", "base=HEAD~1", check=False, env=CI_ENV)
    assert result.returncode != 0 and "tests of payments failed" in result.stdout


def test_a_build_made_outside_ci_is_never_taken_for_the_tested_one(
    origin: Path,
    monorepo_template: Path,
    tmp_path: Path,
) -> None:
    clone = fresh_clone(origin, tmp_path / "outside", monorepo_template / "node_modules")
    ci(clone)
    source = clone / "apps" / "accounts" / "src" / "data.js"
    committed = source.read_text()
    source.write_text(committed + "\nconsole.log('EXPERIMENT-NOT-COMMITTED');\n")
    run_doit(clone, "build:accounts", env=CI_ENV)
    source.write_text(committed)  # the tree is clean again, dist/ is not

    report, _ = ci(clone)
    assert report["apps"]["accounts"]["dist"] != "local"
    bundles = (clone / "apps" / "accounts" / "dist").glob("*.js")
    assert not [path.name for path in bundles if "EXPERIMENT" in path.read_text()]


def test_a_recorded_build_edited_since_is_not_taken_and_the_live_page_matches_its_integrity(
    origin: Path,
    monorepo_template: Path,
    tmp_path: Path,
) -> None:
    """A runner whose `.mfe/` and `dist/` survive between runs: the previous run recorded
    its tested build but published nothing (a budget failed), then a step edited a bundle."""
    from mfe.publish.smoke import smoke_check

    clone = fresh_clone(origin, tmp_path / "kept", monorepo_template / "node_modules")
    toml = clone / "mfe.toml"
    config = toml.read_text()
    toml.write_text(config.replace('element = "mfe-payments"', 'element = "mfe-payments"\nbudget = "1 kB"'))  # fmt: skip
    source = clone / "apps" / "payments" / "src" / "main.js"
    source.write_text(source.read_text() + "\n// a build no other test publishes\n")
    commit_in(clone, "payments: built, tested and recorded, never published")
    failed = run_doit(clone, "ci", "base=HEAD~1", check=False, env=CI_ENV)
    assert failed.returncode != 0 and "over its size budget" in failed.stdout
    toml.write_text(config)
    bundle = next((clone / "apps" / "payments" / "dist").glob("main-*.js"))
    with bundle.open("a") as stream:
        stream.write('console.log("X");\n')

    report, output = ci(clone, "base=HEAD~1")
    assert report["apps"]["payments"]["dist"] in ("build", "cache"), output
    assert "payments: dist/ no longer matches its asset-manifest.json" in output
    assert not [p.name for p in bundle.parent.glob("*.js") if 'console.log("X")' in p.read_text()]
    smoke_check(report["site_url"], attempts=1)  # every module matches its integrity


def forge(clone: Path, app: str, text: str) -> bytes:
    """A well-formed entry (valid zstd, files matching its manifest) with planted code."""
    dist = clone / "apps" / app / "dist"
    entry = next(dist.glob("main-*.js"))
    entry.write_text(text)
    write_manifest(app, dist)
    return archive.pack(dist)


def test_forged_entries_and_untrusted_runs_never_reach_the_shared_cache(
    origin: Path,
    monorepo_template: Path,
    moto_server: str,
    tmp_path: Path,
) -> None:
    modules = monorepo_template / "node_modules"
    first = fresh_clone(origin, tmp_path / "first", modules)
    report, _ = ci(first)
    key = report["apps"]["accounts"]["key"]
    object_key = f"build-cache/trusted/accounts/{key}.tar.zst"
    s3 = local_client(moto_server)
    planted = "alert('planted')"
    s3.put_object(Bucket=CACHE_BUCKET, Key=object_key, Body=forge(first, "accounts", planted))

    # 1. A trusted run does not restore it: it rebuilds, says why, and replaces the entry.
    second = fresh_clone(origin, tmp_path / "second", modules)
    report, output = ci(second)
    accounts = report["apps"]["accounts"]
    assert (accounts["cache"], accounts["dist"]) == ("miss", "build")
    assert any(f"{object_key} rejected: unsigned" in note for note in accounts["notes"])
    assert output.count(f"{object_key} rejected") == 1
    built = second / "apps" / "accounts" / "dist"
    assert planted not in "".join(p.read_text() for p in built.glob("*.js"))
    assert s3.head_object(Bucket=CACHE_BUCKET, Key=object_key)["Metadata"]["signature"]

    # 2. A pull request's run reads the shared entries but writes only its own prefix.
    shared = {k: v for k, v in cache_objects(moto_server).items() if "/trusted/" in k}
    pr = fresh_clone(origin, tmp_path / "pr", modules)
    source = pr / "apps" / "payments" / "src" / "main.js"
    source.write_text(source.read_text() + "\n// a pull request's change\n")
    commit_in(pr, "payments: pr change")
    report, output = ci(pr, "base=HEAD~1", env={"GITHUB_REF": "refs/pull/7/merge"})
    assert "refs/pull/7/merge is a pull request" in output
    assert report["apps"]["payments"]["cache"] == "miss"
    assert report["apps"]["accounts"]["dist"] == "cache"  # read from the shared prefix
    after = cache_objects(moto_server)
    assert {k: v for k, v in after.items() if "/trusted/" in k} == shared
    assert [k.split("/")[3] for k in after if k.startswith("build-cache/pr/7/")] == ["payments"]

    # 3. Without the secret: nothing read, nothing written, said once.
    bare = fresh_clone(origin, tmp_path / "bare", modules)
    result = run_doit(bare, "ci", env={**DUMMY_AWS_ENV, "MFE_CACHE_KEY": ""})
    assert result.stdout.count("MFE_CACHE_KEY is not set") == 1
    report = json.loads((bare / ".mfe" / "local" / "ci-report.json").read_text())
    assert {app["dist"] for app in report["apps"].values()} == {"build"}
    assert cache_objects(moto_server) == after


def test_an_affected_app_over_its_budget_fails_the_run(
    origin: Path,
    monorepo_template: Path,
    tmp_path: Path,
) -> None:
    clone = fresh_clone(origin, tmp_path / "budget", monorepo_template / "node_modules")
    toml = clone / "mfe.toml"
    toml.write_text(
        toml.read_text().replace(
            'element = "mfe-payments"', 'element = "mfe-payments"\nbudget = "1 kB"'
        )
    )
    source = clone / "apps" / "payments" / "src" / "main.js"
    source.write_text(source.read_text() + "\n// grows\n")
    commit_in(clone, "payments: a budget it cannot meet")
    summary = tmp_path / "summary.md"
    result = run_doit(
        clone, "ci", "base=HEAD~1", check=False, env={**CI_ENV, "GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert result.returncode != 0 and "Traceback" not in result.stdout
    report = json.loads((clone / ".mfe" / "local" / "ci-report.json").read_text())
    size = report["apps"]["payments"]["size_bytes"]
    assert size > 1000 and report["published"] is False
    assert f"payments is over its size budget: {size / 1000:.1f} kB" in result.stdout
    assert "> 1.0 kB ([apps.payments] budget in mfe.toml)" in result.stdout
    assert f"| {size / 1000:.1f} kB |" in summary.read_text()
    assert "1.0 kB **over**" in summary.read_text()


def test_the_plan_job_of_an_aws_environment_gets_the_cache_bucket_doit_infra_makes(
    origin: Path, moto_server: str, tmp_path: Path
) -> None:
    """deploy.yml's plan job: `doit infra env=prod`, then `doit ci_plan env=prod` (every AWS
    client on the emulator through AWS_ENDPOINT_URL)."""
    clone = fresh_clone(origin, tmp_path / "plan", None)
    aws = {**CI_ENV, "AWS_ENDPOINT_URL": moto_server}
    bucket = "mfe-demo-prod-build-cache"  # the default: <project>-<env>-build-cache

    before = run_doit(clone, "ci_plan", "env=prod", "shards=2", env=aws, check=False)
    assert f"build cache bucket {bucket} does not exist" in before.stdout, before.stdout
    assert "run `doit infra env=prod`" in before.stdout

    infra = run_doit(clone, "infra", "env=prod", "--yes", env=aws, check=False)
    # moto's change-set stacks keep empty Outputs, so on the emulator `doit infra` stops at
    # writing outputs.json, after every stack is made (the cache's first).
    assert infra.returncode == 0 or "lacks the output" in infra.stdout, infra.stdout
    assert "mfe-demo-prod-cache: CREATE_COMPLETE" in infra.stdout
    s3 = local_client(moto_server)  # (moto's CloudFormation applies encryption and tags only)
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    assert tags == {"mfe:project": "mfe-demo", "mfe:env": "prod", "mfe:purpose": "build-cache"}

    planned = run_doit(clone, "ci_plan", "env=prod", "shards=2", env=aws)
    assert "warning" not in planned.stdout, planned.stdout
    plan = json.loads((clone / ".mfe" / "prod" / "ci-plan.json").read_text())
    assert plan["shards"] and all(app["cache"] == "miss" for app in plan["apps"].values())


def test_a_failed_build_is_a_miss_annotated_where_esbuild_points_and_summarised_whole(
    origin: Path, monorepo_template: Path, tmp_path: Path
) -> None:
    """The report says what happened to each app in this run; on GitHub Actions each
    esbuild error is an annotation at its file, line and column, and the job summary shows
    the whole error and, for the apps it measured, the change against the live size."""
    clone = fresh_clone(origin, tmp_path / "broken", monorepo_template / "node_modules")
    ci(clone)  # a trusted run: publishes and records the live sizes
    source = clone / "apps" / "payments" / "src" / "format.js"
    text = source.read_text()
    assert text.endswith("\n")
    source.write_text(text + "export const broken = 1 x;\n")
    line = len(text.splitlines()) + 1
    commit_in(clone, "payments: a syntax error")
    summary = tmp_path / "summary.md"
    actions = {**CI_ENV, "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTIONS": "true"}
    result = run_doit(clone, "ci", "base=HEAD~1", check=False, env=actions)
    assert result.returncode != 0 and "Traceback" not in result.stdout, result.stdout
    report = json.loads((clone / ".mfe" / "local" / "ci-report.json").read_text())
    payments = report["apps"]["payments"]
    assert (payments["affected"], payments["cache"], payments["failed"], payments["tests"]) == (
        True,
        "miss",
        "build",
        "not run",
    )
    assert (report["commit"], report["ref"]) == (git(clone, "rev-parse", "HEAD"), "refs/heads/main")
    where = f"apps/payments/src/format.js:{line}:24:"  # esbuild's columns count from 0
    assert where in report["error"]
    annotation = f'::error file=apps/payments/src/format.js,line={line},col=25::Expected ";" but'
    assert annotation in result.stdout, result.stdout
    assert "::error title=doit ci env=local failed::build:payments failed" in result.stdout
    written = summary.read_text()
    assert "### `doit ci env=local` since `HEAD~1`" in written
    assert "| payments | yes | miss | 0.0 | **build failed** |" in written
    assert "**Failed:**\n\n```text\nbuild:payments failed" in written and where in written
    accounts = report["apps"]["accounts"]
    assert accounts["size_bytes"] and accounts["live_bytes"] == accounts["size_bytes"]
    (row,) = (x for x in written.splitlines() if x.startswith("| accounts |"))
    assert "| same |" in row and "Nothing to publish" not in written


def test_an_app_kept_off_the_live_site_is_in_the_report_and_the_summary(
    origin: Path, monorepo_template: Path, tmp_path: Path
) -> None:
    """After `doit rollback app=accounts`, a CI run that builds the version the rollback
    took off publishes the rest and keeps the live accounts: the report and the summary
    say so, not only the log."""
    clone = fresh_clone(origin, tmp_path / "held", monorepo_template / "node_modules")
    source = clone / "apps" / "accounts" / "src" / "data.js"
    for version in ("1", "2"):
        source.write_text(source.read_text() + f"\n// accounts {version}\n")
        commit_in(clone, f"accounts {version}")
        ci(clone)
    run_doit(clone, "rollback", "app=accounts", env=CI_ENV)
    summary = tmp_path / "summary.md"
    report, output = ci(clone, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert "accounts built here is a version a rollback took off" in output
    assert report["published"] is True
    assert report["apps"]["accounts"]["notes"][-1].startswith(
        "kept live: the version built here is one a rollback took off; live is from "
    )
    written = summary.read_text()
    assert "ci: nothing to change: release " in output  # the held app was the only change
    assert "Already live: " in written and "Published: " not in written
    assert "- **accounts** not published, kept live: the version built here is one a " in written


def test_a_run_that_only_repairs_the_live_release_says_so(
    origin: Path, monorepo_template: Path, tmp_path: Path
) -> None:
    """A module of the live release deleted by hand: the next run with nothing to publish
    puts it back and says so (it said "nothing to change", as `doit publish` did)."""
    clone = fresh_clone(origin, tmp_path / "repair", monorepo_template / "node_modules")
    first, _ = ci(clone)
    outputs = json.loads((clone / ".mfe" / "local" / "outputs.json").read_text())
    s3 = local_client(outputs["endpoint_url"])
    page = urllib.request.urlopen(first["site_url"]).read().decode()
    # An entry module live from this clone's build (other tests' clones publish too): the
    # smoke check finds it missing, and this clone holds it to put back.
    bucket, module = next(
        (app["bucket"], entry)
        for name, app in outputs["apps"].items()
        for entry in json.loads(
            (clone / "apps" / name / "dist" / "asset-manifest.json").read_text()
        )["entries"]
        if app["base_url"] + entry in page
    )
    s3.delete_object(Bucket=bucket, Key=module)
    report, output = ci(clone)
    release = first["extra"]["release"]
    assert f"ci: repaired 1 file(s) of release {release} (no new release)" in output, output
    assert "nothing to change" not in output
    assert report["extra"]["repaired"] == 1 and report["extra"]["release"] == release


def test_a_pull_requests_preview_says_which_apps_it_kept_at_their_live_version(
    origin: Path, monorepo_template: Path, tmp_path: Path
) -> None:
    """A preview keeps out a build a rollback took off, as a publish does (the branch may
    not have pulled the fix): the log and the CI report say so, like a publish's."""
    clone = fresh_clone(origin, tmp_path / "held", monorepo_template / "node_modules")
    source = clone / "apps" / "accounts" / "src" / "data.js"
    for version in ("1", "2"):
        source.write_text(source.read_text() + f"\n// accounts {version}, previewed\n")
        commit_in(clone, f"accounts {version}, previewed")
        ci(clone)
    run_doit(clone, "rollback", "app=accounts", env=CI_ENV)
    report, output = ci(clone, env={"MFE_CI_REF": "refs/pull/5/merge"})
    assert report["extra"]["preview"] == "pr-5"
    assert "accounts built here is a version a rollback took off" in output
    assert report["apps"]["accounts"]["notes"][-1].startswith(
        "kept live: the version built here is one a rollback took off; live is from "
    )
    preview = json.loads((clone / ".mfe" / "local" / "preview-report.json").read_text())
    assert "accounts" not in preview["changed"]  # other tests' publishes may hold more apps
    assert preview["held"]["accounts"].startswith(
        "the version built here is one a rollback took off; live is from "
    )
