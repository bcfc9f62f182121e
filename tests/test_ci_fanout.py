"""CI fan-out on 40 small synthetic apps: `ci_plan` -> four shard clones -> a publish clone,
against a real moto server; the result equals one runner publishing everything."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mfe.ci.shards import pack, plan_path, read_plan
from mfe.config import load_project
from mfe.errors import MfeError
from mfe.publish.pointer import read_pointer

from fixtures.aws import DUMMY_AWS_ENV, free_port, local_client, start_moto, stop_process
from fixtures.config import set_config
from fixtures.proxy import FailingProxy
from fixtures.repo import REPO, run_doit

APPS = [f"app-{i:02d}" for i in range(40)]
CACHE_BUCKET = "fanout-local-build-cache"
CI_ENV = {**DUMMY_AWS_ENV, "MFE_CACHE_KEY": "fanout-test-secret-" + "y" * 32}
BUILD_SH = """set -e
mkdir -p "$MFE_OUT_DIR"
hash=$(cat src/main.js | sha256sum | cut -c1-8)
cp src/main.js "$MFE_OUT_DIR/main-$hash.js"
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=ci@example.com", "-c", "user.name=CI", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def write_app(root: Path, index: int, extra: str = "") -> None:
    name = APPS[index]
    app = root / "apps" / name
    (app / "src").mkdir(parents=True, exist_ok=True)
    scripts = {"build": "sh ../../tools/build.sh"}
    if index % 20 == 1:
        scripts["test"] = "node --test"  # a couple of apps have tests (npm costs ~0.2 s)
        (app / "test").mkdir(exist_ok=True)
        (app / "test" / "ok.test.js").write_text(
            "import test from 'node:test';\ntest('ok', () => {});\n"
        )
    (app / "package.json").write_text(
        json.dumps({"name": name, "private": True, "type": "module", "scripts": scripts})
    )
    padding = "// " + "x" * 77 + "\n"
    body = padding * (index * 7 % 40)  # uneven sizes
    (app / "src" / "main.js").write_text(
        f"{body}customElements.define('mfe-{name}', class extends HTMLElement {{}});\n{extra}"
    )


@pytest.fixture(scope="module")
def origin(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_origin(tmp_path_factory.mktemp("fanout") / "origin", moto_server, len(APPS))


def make_origin(root: Path, endpoint: str, count: int) -> Path:
    """A committed monorepo of the first `count` apps, using the emulator at `endpoint`."""
    (root / "tools").mkdir(parents=True)
    (root / "tools" / "build.sh").write_text(BUILD_SH)
    shutil.copytree(REPO / "shell", root / "shell")
    for index in range(count):
        write_app(root, index)
    (root / "package.json").write_text(
        json.dumps({"name": "fanout", "private": True, "workspaces": ["apps/*"]})
    )
    tables = "".join(f'[apps.{name}]\nelement = "mfe-{name}"\n' for name in APPS[1:count])
    (root / "mfe.toml").write_text(
        '[project]\nname = "fanout"\n[apps.app-00]\nrole = "parent"\nelement = "mfe-app-00"\n'
        f'{tables}[build]\ninputs = ["tools/build.sh"]\n'
    )
    shutil.copy(REPO / "dodo.py", root / "dodo.py")
    set_config(root, "env.local.port", int(endpoint.rsplit(":", 1)[1]))
    (root / ".gitignore").write_text("node_modules/\ndist/\nbuild/\n.mfe/\n")
    subprocess.run(
        ["npm", "install", "--offline", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=root,
        check=True,
    )
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", f"{count} apps")
    return root


def clone(origin: Path, dest: Path, plan: Path | None = None) -> Path:
    git(origin.parent, "clone", "-q", str(origin), str(dest))
    subprocess.run(["cp", "-a", str(origin / "node_modules"), str(dest)], check=True)
    if plan is not None:  # the workflow hands the plan job's file over as an artifact
        (dest / ".mfe" / "local").mkdir(parents=True)
        shutil.copy(plan, dest / ".mfe" / "local" / "ci-plan.json")
    return dest


def doit_json(root: Path, *args: str, name: str = "ci-report.json", **kw: Any) -> dict[str, Any]:
    run_doit(root, *args, env={**CI_ENV, **kw})
    data: dict[str, Any] = json.loads((root / ".mfe" / "local" / name).read_text())
    return data


def fetch_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def site(endpoint: str) -> dict[str, dict[str, str]]:
    """Every app bucket's public objects by key -> ETag (md5), and the page with no port."""
    s3 = local_client(endpoint)
    found: dict[str, dict[str, str]] = {}
    for bucket in (b["Name"] for b in s3.list_buckets()["Buckets"]):
        if "build-cache" in bucket:
            continue
        objects = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        found[bucket] = {
            # The page's content-addressed copy is named by its bytes, which differ by the
            # emulator's URLs and pool ids: compared through index.html below instead.
            o["Key"]: o["ETag"]
            for o in objects
            if not o["Key"].startswith("_mfe/") and not o["Key"].endswith("/index.html")
        }
        if "index.html" in found[bucket]:
            page = s3.get_object(Bucket=bucket, Key="index.html")["Body"].read().decode()
            # Each emulator has its own Cognito pool ids (in the config JSON and the build id
            # derived from it); every script URL and integrity must be the same.
            page = re.sub(r'<script id="mfe-config".*?</script>', "", page.replace(endpoint, ""))
            assert 'integrity="sha384-' in page
            found[bucket]["index.html"] = page
    return found


@pytest.fixture
def second_moto(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = start_moto(port, tmp_path / "moto2.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


def test_four_shards_and_a_publish_equal_one_runner_and_build_nothing_twice(
    origin: Path,
    moto_server: str,
    second_moto: str,
    tmp_path: Path,
) -> None:
    planner = clone(origin, tmp_path / "plan")
    outputs = tmp_path / "github-output"
    plan = doit_json(
        planner, "ci_plan", "shards=4", name="ci-plan.json", GITHUB_OUTPUT=str(outputs)
    )
    shards = plan["shards"]
    assert [s["shard"] for s in shards] == ["1/4", "2/4", "3/4", "4/4"]
    planned = [name for s in shards for name in s["apps"]]
    assert sorted(planned) == APPS  # every app once: a cold cache misses all
    assert 'matrix={"shard":["1/4","2/4","3/4","4/4"]}' in outputs.read_text()
    plan_file = planner / ".mfe" / "local" / "ci-plan.json"

    # Shards 1-3 run (concurrently, as runners do); a publish now fails naming a shard-4 app.
    runners = [clone(origin, tmp_path / f"shard{k}", plan_file) for k in (1, 2, 3, 4)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "doit", "ci", f"shard={k}/4"],
            cwd=runner,
            env={**os.environ, **CI_ENV},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for k, runner in zip((1, 2, 3), runners, strict=False)
    ]
    printed: dict[int, str] = {}  # each shard's output, to explain a report's figures
    for k, proc in enumerate(procs, start=1):
        printed[k], _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, printed[k]
    publisher = clone(origin, tmp_path / "publish", plan_file)
    failed = run_doit(publisher, "ci", "publish", check=False, env=CI_ENV)
    assert failed.returncode != 0 and "Traceback" not in failed.stdout
    assert f"{shards[3]['apps'][0]} is not in the build cache" in failed.stdout
    assert "ci publish never builds" in failed.stdout
    assert not (publisher / "build").exists()  # nothing rendered, nothing published
    printed[4] = run_doit(runners[3], "ci", "shard=4/4", env=CI_ENV).stdout

    built: list[str] = []
    sizes: dict[str, int] = {}
    for k, runner in enumerate(runners, start=1):
        report = json.loads((runner / ".mfe" / "local" / "ci-report.json").read_text())
        assert list(report["apps"]) == shards[k - 1]["apps"]
        assert report["published"] is False
        # A shard needs only the cache bucket (the plan job made it), never the site.
        assert not (runner / ".mfe" / "local" / "outputs.json").exists(), printed[k]
        for name, app in report["apps"].items():
            assert (app["dist"], app["cache"]) == ("build", "miss"), name
            assert app["cache_upload_bytes"] > 0 and app["size_bytes"] > 0, (name, printed[k])
            sizes[name] = app["size_bytes"]
        built += list(report["apps"])
    assert sorted(built) == APPS  # each app built exactly once across the shards
    # A re-run of a shard finds its apps cached by the first attempt: nothing tested or stored.
    rerun = doit_json(runners[0], "ci", "shard=1/4")
    for name, app in rerun["apps"].items():
        tests = "cached" if APPS.index(name) % 20 == 1 else "none"  # write_app's tested apps
        assert (app["cache"], app["tests"], app["cache_upload_bytes"]) == ("hit", tests, 0), name

    report = doit_json(publisher, "ci", "publish")
    assert report["published"] is True
    published = json.loads((publisher / ".mfe" / "local" / "publish-report.json").read_text())
    assert published["dirty"] is False  # dist/ restored from the cache is not a source
    for name, app in report["apps"].items():
        # restored now, or by the failed attempt above (recorded in .mfe/ci-keys.json)
        assert app["dist"] in ("cache", "local") and app["build_seconds"] == 0.0, name
        assert app["size_bytes"] == sizes[name], name  # recorded with the entry, signed
    assert report["apps"][shards[3]["apps"][0]]["dist"] == "cache"
    fanned_out = site(moto_server)
    # The same jobs on a pull request publish a preview, never the live page.
    summary, outputs = tmp_path / "summary.md", tmp_path / "pr-output"
    report = doit_json(
        publisher,
        "ci",
        "publish",
        GITHUB_REF="refs/pull/3/merge",
        GITHUB_STEP_SUMMARY=str(summary),
        GITHUB_OUTPUT=str(outputs),
    )
    url = report["site_url"]
    assert "previews/pr-3/" in url and report["extra"]["preview"] == "pr-3"
    assert f"preview_url={url}\n" in outputs.read_text() and url in summary.read_text()
    previewed = json.loads((publisher / ".mfe" / "local" / "preview-report.json").read_text())
    assert previewed["commit"] and previewed["dirty"] is False  # a fresh clone of the PR
    assert fetch_status(url) == 200
    parent = "fanout-local-app-00"
    assert site(moto_server)[parent]["index.html"] == fanned_out[parent]["index.html"]
    run_doit(publisher, "preview_rm", "name=pr-3", env=CI_ENV)  # the PR was closed
    assert fetch_status(url) != 200

    # One runner doing everything, on its own emulator, without any cache.
    single = clone(origin, tmp_path / "single")
    set_config(single, "env.local.port", int(second_moto.rsplit(":", 1)[1]))
    report = doit_json(single, "ci", "cache=off")
    assert {app["dist"] for app in report["apps"].values()} == {"build"}
    assert site(second_moto) == fanned_out
    assert len(fanned_out) == len(APPS)

    # Warm cache, no change: nothing to build.
    plan = doit_json(planner, "ci_plan", "shards=4", name="ci-plan.json")
    assert plan["shards"] == [] and plan["publish"] is True
    assert {a["cache"] for a in plan["apps"].values()} == {"hit"}

    # A commit changing one app: one shard with that app, estimated by its recorded time.
    write_app(origin, 7, "// changed\n")
    git(origin, "commit", "-qam", "app-07: change")
    changed = clone(origin, tmp_path / "changed")
    for args in (("base=HEAD~1",), ()):
        plan = doit_json(changed, "ci_plan", "shards=4", *args, name="ci-plan.json")
        assert [(s["shard"], s["apps"]) for s in plan["shards"]] == [("1/1", ["app-07"])]
    assert plan["apps"]["app-07"]["estimate_seconds"] > 0
    plan = doit_json(changed, "ci_plan", "shards=4", "base=HEAD", name="ci-plan.json")
    assert (plan["shards"], plan["publish"]) == ([], False)


def test_a_shard_whose_upload_fails_fails_naming_the_app_and_the_entry(
    second_moto: str, tmp_path: Path
) -> None:
    """A shard job's only output is its cache entries: one that could not store them must
    fail itself, not leave `ci publish` to find the apps missing later."""
    origin = make_origin(tmp_path / "origin", second_moto, 3)
    planner = clone(origin, tmp_path / "plan")
    plan = doit_json(planner, "ci_plan", "shards=2", name="ci-plan.json")
    assert [s["shard"] for s in plan["shards"]] == ["1/2", "2/2"]
    shard = clone(origin, tmp_path / "shard", planner / ".mfe" / "local" / "ci-plan.json")
    proxy = FailingProxy(second_moto, allow=0)  # every object PUT answers AccessDenied
    try:
        set_config(shard, "env.local.port", proxy.port)
        failed = run_doit(shard, "ci", "shard=1/2", check=False, env=CI_ENV)
    finally:
        proxy.close()
    assert failed.returncode != 0 and "Traceback" not in failed.stdout, failed.stdout
    report = json.loads((shard / ".mfe" / "local" / "ci-report.json").read_text())
    for name in plan["shards"][0]["apps"]:
        key = plan["apps"][name]["key"]
        url = f"s3://fanout-local-build-cache/build-cache/trusted/{name}/{key}.tar.zst"
        assert f"{name}: could not upload {url}" in report["error"], failed.stdout
        assert report["apps"][name]["cache_upload_bytes"] == 0
    assert "AccessDenied" in report["error"] and "AccessDenied" in failed.stdout

    # `ci publish` names the shard to re-run for each app the plan gave one; an app the
    # plan found cached that has gone since has no shard: the plan must be made again.
    plan_file = planner / ".mfe" / "local" / "ci-plan.json"
    run_doit(clone(origin, tmp_path / "shard2", plan_file), "ci", "shard=2/2", env=CI_ENV)
    plan = doit_json(planner, "ci_plan", "shards=2", name="ci-plan.json")
    (cached,) = (n for n, a in plan["apps"].items() if a["cache"] == "hit")
    local_client(second_moto).delete_object(
        Bucket="fanout-local-build-cache",
        Key=f"build-cache/trusted/{cached}/{plan['apps'][cached]['key']}.tar.zst",
    )
    publisher = clone(origin, tmp_path / "publish", plan_file)
    failed = run_doit(publisher, "ci", "publish", check=False, env=CI_ENV)
    assert failed.returncode != 0 and "Traceback" not in failed.stdout, failed.stdout

    def error_line(name: str) -> str:
        (line,) = (x for x in failed.stdout.splitlines() if f"{name} is not in the build" in x)
        return line

    for shard in plan["shards"]:
        for name in shard["apps"]:
            assert f"re-run it (`doit ci env=local shard={shard['shard']}`)" in error_line(name)
    assert "gone or no longer verifies; run ci_plan again" in error_line(cached)


def test_without_the_secret_plan_and_publish_say_so_once(origin: Path, tmp_path: Path) -> None:
    """Each warned that the cache is off for this run, then failed on the same missing key."""
    root = clone(origin, tmp_path / "plan")
    no_key = {**DUMMY_AWS_ENV, "MFE_CACHE_KEY": ""}
    refused = run_doit(root, "ci_plan", "shards=2", check=False, env=no_key)
    assert refused.returncode != 0, refused.stdout
    assert refused.stdout.count("MFE_CACHE_KEY is not set") == 1, refused.stdout
    doit_json(root, "ci_plan", "shards=2", name="ci-plan.json")
    refused = run_doit(root, "ci", "publish", check=False, env=no_key)
    assert refused.returncode != 0, refused.stdout
    assert refused.stdout.count("MFE_CACHE_KEY is not set") == 1, refused.stdout


def test_a_change_to_the_page_alone_is_planned_and_published(
    second_moto: str, tmp_path: Path
) -> None:
    """A page-level input (the shell template) rebuilds no app, but with base= the plan
    still publishes it; without base=, a miss says what the cache lookup found."""
    origin = make_origin(tmp_path / "origin", second_moto, 2)
    planner = clone(origin, tmp_path / "plan")
    plan = doit_json(planner, "ci_plan", "shards=1", name="ci-plan.json")
    for app in plan["apps"].values():
        assert app["why"] == [f"the build cache has no entry for its input key {app['key'][:12]}"]
    plan_file = planner / ".mfe" / "local" / "ci-plan.json"
    run_doit(clone(origin, tmp_path / "shard", plan_file), "ci", "shard=1/1", env=CI_ENV)
    assert doit_json(clone(origin, tmp_path / "publish", plan_file), "ci", "publish")["published"]

    template = origin / "shell" / "index.html.j2"
    template.write_text(template.read_text() + "<!-- a page-only change -->\n")
    git(origin, "commit", "-qam", "shell: change")
    planner = clone(origin, tmp_path / "plan2")
    plan = doit_json(planner, "ci_plan", "shards=1", "base=HEAD~1", name="ci-plan.json")
    assert (plan["publish"], plan["shards"]) == (True, [])
    assert plan["page"] == ["shell/index.html.j2"]
    assert not any(app["affected"] for app in plan["apps"].values())
    publisher = clone(origin, tmp_path / "publish2", planner / ".mfe" / "local" / "ci-plan.json")
    output = run_doit(publisher, "ci", "publish", env=CI_ENV).stdout
    assert "no app changed since HEAD~1, the page did (shell/index.html.j2)" in output
    report = json.loads((publisher / ".mfe" / "local" / "ci-report.json").read_text())
    assert report["published"] is True
    assert report["extra"]["page_changed"] == ["shell/index.html.j2"]
    with urllib.request.urlopen(report["site_url"], timeout=10) as response:
        assert b"<!-- a page-only change -->" in response.read()


def test_a_shard_names_uncommitted_edits_and_a_bad_plan_says_what_to_do(
    second_moto: str, tmp_path: Path
) -> None:
    origin = make_origin(tmp_path / "origin", second_moto, 2)
    planner = clone(origin, tmp_path / "plan")
    doit_json(planner, "ci_plan", "shards=1", name="ci-plan.json")
    plan_file = planner / ".mfe" / "local" / "ci-plan.json"

    # An uncommitted edit: named before any app of the shard is built.
    shard = clone(origin, tmp_path / "shard", plan_file)
    (shard / "apps" / "app-01" / "src" / "format.js").write_text("export const f = 1;\n")
    failed = run_doit(shard, "ci", "shard=1/1", check=False, env=CI_ENV)
    assert failed.returncode != 0 and "Traceback" not in failed.stdout, failed.stdout
    assert "uncommitted changes" in failed.stdout and "apps/app-01/src/format.js" in failed.stdout
    assert "Node version" not in failed.stdout, failed.stdout
    report = json.loads((shard / ".mfe" / "local" / "ci-report.json").read_text())
    assert report["apps"] == {} and "uncommitted changes" in report["error"]  # reached none

    # The publish job refuses the same edit: a failed report, claiming no app's outcome.
    publisher = clone(origin, tmp_path / "publisher", plan_file)
    (publisher / "apps" / "app-01" / "src" / "format.js").write_text("export const f = 1;\n")
    summary = tmp_path / "refused.md"
    failed = run_doit(
        publisher, "ci", "publish", check=False, env={**CI_ENV, "GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert failed.returncode != 0 and "uncommitted changes" in failed.stdout, failed.stdout
    report = json.loads((publisher / ".mfe" / "local" / "ci-report.json").read_text())
    assert (report["apps"], report["published"]) == ({}, False)
    assert "apps/app-01/src/format.js" in report["error"]
    written = summary.read_text()
    assert "**Failed:**" in written and "| app-0" not in written and "| app |" not in written

    # A plan without shards (nothing changed since its base): nothing to build.
    doit_json(planner, "ci_plan", "shards=1", "base=HEAD", name="ci-plan.json")
    shard = clone(origin, tmp_path / "shard2", plan_file)
    failed = run_doit(shard, "ci", "shard=1/1", check=False, env=CI_ENV)
    assert failed.returncode != 0 and "Traceback" not in failed.stdout, failed.stdout
    assert "the plan has no shards: nothing to build" in failed.stdout
    assert "shard=K/0" not in failed.stdout

    # A plan missing a field: which one, in which file, and what to do.
    local_plan = shard / ".mfe" / "local" / "ci-plan.json"
    data = json.loads(local_plan.read_text())
    del data["env"]
    local_plan.write_text(json.dumps(data))
    failed = run_doit(shard, "ci", "shard=1/1", check=False, env=CI_ENV)
    assert failed.returncode != 0 and "Traceback" not in failed.stdout, failed.stdout
    assert f"{local_plan}: the CI plan has no 'env' field" in failed.stdout, failed.stdout
    assert "run `doit ci_plan env=local shards=N` again" in failed.stdout


def test_a_plan_over_uncommitted_inputs_is_refused_and_writes_no_plan(
    moto_server: str, tmp_path: Path
) -> None:
    """Every later job checks the plan's commit out and would refuse the edits: the plan
    job says so first, naming them, and leaves no plan for those jobs to pick up."""
    origin = make_origin(tmp_path / "origin", moto_server, 2)
    planner = clone(origin, tmp_path / "plan")
    write_app(planner, 2)  # an app folder `doit new_app` made and nobody committed yet
    lockfile = planner / "package-lock.json"
    lockfile.write_text(lockfile.read_text().replace("{", "{\n", 1))  # an edited lockfile
    failed = run_doit(planner, "ci_plan", "shards=2", check=False, env=CI_ENV)
    assert failed.returncode != 0 and "Traceback" not in failed.stdout, failed.stdout
    assert "uncommitted changes to the planned apps' inputs" in failed.stdout, failed.stdout
    assert "apps/app-02/package.json" in failed.stdout and "package-lock.json" in failed.stdout
    assert "commit the change and run `doit ci_plan` again" in failed.stdout, failed.stdout
    assert not (planner / ".mfe" / "local" / "ci-plan.json").exists()

    git(planner, "add", "-A")
    git(planner, "commit", "-qm", "app-02")
    assert doit_json(planner, "ci_plan", "shards=2", name="ci-plan.json")["shards"]


def test_packing_puts_the_longest_builds_apart() -> None:
    seconds = {"a": 9.0, "b": 5.0, "c": 4.0, "d": 3.0, "e": 3.0, "f": 1.0}
    shards = pack(seconds, 3)
    assert [(s.shard, s.apps, s.estimate_seconds) for s in shards] == [
        ("1/3", ["a"], 9.0),
        ("2/3", ["b", "e"], 8.0),
        ("3/3", ["c", "d", "f"], 8.0),
    ]
    assert [s.shard for s in pack({"x": 1.0}, 4)] == ["1/1"]
    assert pack({}, 4) == []


def corrupt_entry(endpoint: str, object_key: str) -> None:
    """Half the entry's body under its signed metadata (a truncated or altered object)."""
    s3 = local_client(endpoint)
    entry = s3.get_object(Bucket=CACHE_BUCKET, Key=object_key)
    body = entry["Body"].read()
    s3.put_object(
        Bucket=CACHE_BUCKET, Key=object_key, Body=body[: len(body) // 2], Metadata=entry["Metadata"]
    )


def entry_is_sound(endpoint: str, object_key: str) -> bool:
    entry = local_client(endpoint).get_object(Bucket=CACHE_BUCKET, Key=object_key)
    return hashlib.sha256(entry["Body"].read()).hexdigest() == entry["Metadata"]["sha256"]


def test_a_corrupt_entry_is_removed_so_the_next_plan_rebuilds_it(
    second_moto: str, tmp_path: Path
) -> None:
    """A plan HEADs entries only, so a signed entry with a bad body counts as a hit; the
    restore that finds it bad removes it, and the next plan gives it to a shard."""
    origin = make_origin(tmp_path / "origin", second_moto, 3)
    planner = clone(origin, tmp_path / "plan")
    plan_file = planner / ".mfe" / "local" / "ci-plan.json"
    doit_json(planner, "ci_plan", "shards=1", name="ci-plan.json")
    shard = clone(origin, tmp_path / "shard", plan_file)
    run_doit(shard, "ci", "shard=1/1", env=CI_ENV)
    victim = "app-01"
    plan = doit_json(planner, "ci_plan", "shards=1", name="ci-plan.json")
    object_key = f"build-cache/trusted/{victim}/{plan['apps'][victim]['key']}.tar.zst"
    corrupt_entry(second_moto, object_key)
    plan = doit_json(planner, "ci_plan", "shards=1", name="ci-plan.json")
    assert (plan["shards"], plan["apps"][victim]["cache"]) == ([], "hit")  # HEAD: looks fine

    publisher = clone(origin, tmp_path / "publish", plan_file)
    failed = run_doit(publisher, "ci", "publish", check=False, env=CI_ENV)
    assert failed.returncode != 0 and "Traceback" not in failed.stdout, failed.stdout
    lines = [x for x in failed.stdout.splitlines() if f"{victim}: build cache entry" in x]
    assert len(lines) == 1, failed.stdout
    line = lines[0]
    assert f"build cache entry s3://{CACHE_BUCKET}/{object_key} is corrupt (" in line
    assert "removed it from the cache" in line and "run `doit ci_plan env=local` again" in line
    assert "nothing was published" in failed.stdout and not (publisher / "build").exists()

    plan = doit_json(planner, "ci_plan", "shards=1", name="ci-plan.json")
    assert [(s["shard"], s["apps"]) for s in plan["shards"]] == [("1/1", [victim])]
    assert plan["apps"][victim]["cache"] == "miss"
    for runner in (shard, publisher):  # the plan job's artifact, handed to the next jobs
        shutil.copy(plan_file, runner / ".mfe" / "local" / "ci-plan.json")
    report = doit_json(shard, "ci", "shard=1/1")
    assert list(report["apps"]) == [victim] and report["apps"][victim]["cache_upload_bytes"] > 0
    assert entry_is_sound(second_moto, object_key)
    report = doit_json(publisher, "ci", "publish")
    assert report["published"] is True and report["apps"][victim]["dist"] == "cache"

    # One runner doing everything rebuilds a corrupt entry at once, and its upload replaces it.
    corrupt_entry(second_moto, object_key)
    report = doit_json(clone(origin, tmp_path / "single"), "ci")
    app = report["apps"][victim]
    assert (app["dist"], app["cache"], report["published"]) == ("build", "miss", True)
    assert app["cache_upload_bytes"] > 0 and entry_is_sound(second_moto, object_key)
    assert any("is corrupt" in note for note in app["notes"]), app["notes"]


def test_ctrl_c_during_a_shards_builds_starts_no_more_builds(origin: Path, tmp_path: Path) -> None:
    """A shard of 40 apps builds a few at a time; Ctrl-C while the first builds run starts
    none of the queued ones (a thread pool's exit would have built every app first)."""
    runner = clone(origin, tmp_path / "runner")
    started, go = tmp_path / "started", tmp_path / "go"
    started.mkdir()
    gate = f'touch "{started}/$(basename "$PWD")"\nwhile [ ! -f "{go}" ]; do sleep 0.05; done\n'
    (runner / "tools" / "build.sh").write_text(gate + BUILD_SH)  # each build waits for `go`
    git(runner, "commit", "-qam", "builds wait for the test")
    doit_json(runner, "ci_plan", "shards=1", name="ci-plan.json")
    proc = subprocess.Popen(
        [sys.executable, "-m", "doit", "ci", "shard=1/1"],
        cwd=runner,
        env={**os.environ, **CI_ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for _ in range(1200):  # the first builds reach the gate
            if any(started.iterdir()) or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert any(started.iterdir()), "no build started"
        proc.send_signal(signal.SIGINT)
        go.touch()
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "Traceback" not in output, output
    built = sorted(path.name for path in started.iterdir())
    assert len(built) < len(APPS) // 2, (built, output)


def live_release(endpoint: str) -> str | None:
    """The release the live page is at (None: nothing published, or not even provisioned)."""
    s3, bucket = local_client(endpoint), "fanout-local-app-00"
    if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        return None
    found, _ = read_pointer(s3, bucket)
    return found.release if found else None


def cache_keys(endpoint: str, prefix: str) -> list[str]:
    listed = local_client(endpoint).list_objects_v2(Bucket=CACHE_BUCKET, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def test_only_a_trusted_ref_publishes_live_from_either_entry_point(
    second_moto: str, tmp_path: Path
) -> None:
    """A feature branch or a detached HEAD is built, tested and cached under its own scope
    and published nowhere; a pull request gets its preview; only the default branch goes
    live, from `doit ci` and from the fan-out's `doit ci publish` alike."""
    origin = make_origin(tmp_path / "origin", second_moto, 3)
    live = doit_json(clone(origin, tmp_path / "main"), "ci")  # main: the default branch
    assert live["published"] is True
    release = live_release(second_moto)

    feature = clone(origin, tmp_path / "feature")
    git(feature, "checkout", "-qb", "feature")
    write_app(feature, 1, "// a feature\n")
    git(feature, "commit", "-qam", "app-01: a feature")
    said = (
        "not published: refs/heads/feature is not a trusted ref (trusted: refs/heads/main); "
        "to deploy it, add it to [ci] trusted_refs in mfe.toml, or run `doit publish` from a "
        "checkout of it"
    )
    result = run_doit(feature, "ci", env=CI_ENV)  # exit 0
    assert f"ci: {said}\n" in result.stdout
    report = json.loads((feature / ".mfe" / "local" / "ci-report.json").read_text())
    assert (report["published"], report["extra"]["not_published"]) == (False, said)
    assert report["apps"]["app-01"]["tests"] == "passed"
    key = report["apps"]["app-01"]["key"]
    assert cache_keys(second_moto, "build-cache/ref/feature/") == [
        f"build-cache/ref/feature/app-01/{key}.tar.zst"
    ]
    assert live_release(second_moto) == release
    summary = tmp_path / "summary.md"

    # The fan-out on the same branch (its run above cached app-01 under ref/feature/, so
    # the plan has no shard): the publish restores every app and publishes nothing.
    plan = doit_json(feature, "ci_plan", "shards=1", name="ci-plan.json")
    assert (plan["shards"], plan["scope"], plan["ref"]) == ([], "ref/feature", "refs/heads/feature")
    report = doit_json(feature, "ci", "publish", GITHUB_STEP_SUMMARY=str(summary))
    assert (report["published"], report["extra"]["not_published"]) == (False, said)
    assert "**Not published:** refs/heads/feature is not a trusted ref" in summary.read_text()
    assert live_release(second_moto) == release

    git(feature, "checkout", "-q", "--detach")
    result = run_doit(feature, "ci", env=CI_ENV)
    assert "ci: not published: a detached HEAD is no trusted ref (trusted: refs/heads/main); " in (
        result.stdout
    )
    assert live_release(second_moto) == release

    # A pull request's plain `doit ci` publishes its preview, never the live page.
    report = doit_json(feature, "ci", GITHUB_REF="refs/pull/7/merge")
    assert report["extra"]["preview"] == "pr-7" and "previews/pr-7/" in report["site_url"]
    assert live_release(second_moto) == release


def test_a_shard_or_publish_for_another_ref_than_the_plan_refuses_at_once(
    second_moto: str, tmp_path: Path
) -> None:
    """A shard writing a scope the plan's publish never reads would pass, and the publish
    would ask to re-run it forever."""
    origin = make_origin(tmp_path / "origin", second_moto, 3)
    runner = clone(origin, tmp_path / "runner")
    git(runner, "checkout", "-qb", "feature")
    doit_json(runner, "ci_plan", "shards=1", name="ci-plan.json", GITHUB_REF="refs/pull/8/merge")
    plan = runner / ".mfe" / "local" / "ci-plan.json"
    refused = run_doit(runner, "ci", "shard=1/1", check=False, env=CI_ENV)
    assert refused.returncode != 0 and "Traceback" not in refused.stdout, refused.stdout
    assert (
        f"{plan} was made for refs/pull/8/merge (cache scope pr/8/), this job runs for "
        "refs/heads/feature (cache scope ref/feature/)"
    ) in refused.stdout
    assert "GITHUB_REF or MFE_CI_REF" in refused.stdout
    assert cache_keys(second_moto, "build-cache/") == []  # nothing was built or stored

    # Its publish, on a trusted ref, would not read pr/8/: refused too, before restoring.
    refused = run_doit(
        runner, "ci", "publish", check=False, env={**CI_ENV, "MFE_CI_REF": "refs/heads/main"}
    )
    assert refused.returncode != 0 and "Traceback" not in refused.stdout, refused.stdout
    assert "this job runs for refs/heads/main (cache scope trusted/), which it does not read" in (
        refused.stdout
    )
    assert "re-run it" not in refused.stdout


def test_outside_a_git_checkout_ci_says_so_once_and_publishes_nothing(
    second_moto: str, tmp_path: Path
) -> None:
    origin = make_origin(tmp_path / "origin", second_moto, 3)
    root = tmp_path / "export"  # the files without their .git, as an archive unpacks
    shutil.copytree(origin, root, ignore=shutil.ignore_patterns(".git"))
    result = run_doit(root, "ci", env=CI_ENV)
    assert "detached" not in result.stdout and "uncommitted" not in result.stdout, result.stdout
    assert result.stdout.count(f"{root} is not a git checkout") == 2, (
        result.stdout
    )  # cache, publish
    report = json.loads((root / ".mfe" / "local" / "ci-report.json").read_text())
    assert report["published"] is False
    assert report["extra"]["not_published"].startswith(f"not published: {root} is not a git")
    assert all(app["notes"] == [] for app in report["apps"].values()), report["apps"]
    assert live_release(second_moto) is None

    for args in (("ci_plan", "shards=1"), ("ci", "publish")):
        refused = run_doit(root, *args, check=False, env=CI_ENV)
        assert refused.returncode != 0 and "Traceback" not in refused.stdout, refused.stdout
        assert f"{root} is not a git checkout" in refused.stdout, refused.stdout
        assert "fatal" not in refused.stdout


def test_ci_names_a_force_it_has_when_live_is_from_a_commit_it_cannot_fetch(
    second_moto: str, tmp_path: Path
) -> None:
    """`doit ci` has no --force: its refusal names the command that has one."""
    origin = make_origin(tmp_path / "origin", second_moto, 3)
    unpushed = clone(origin, tmp_path / "unpushed")
    write_app(unpushed, 1, "// never pushed\n")
    git(unpushed, "commit", "-qam", "app-01: never pushed")
    doit_json(unpushed, "ci")
    runner = clone(origin, tmp_path / "runner")
    write_app(runner, 1, "// this run's change\n")
    git(runner, "commit", "-qam", "app-01: another change")
    refused = run_doit(runner, "ci", check=False, env=CI_ENV)
    assert refused.returncode != 0 and "Traceback" not in refused.stdout, refused.stdout
    assert "app-01 is live at " in refused.stdout and "a commit this clone does not have" in (
        refused.stdout
    )
    assert (
        "or run `doit publish --force` from a checkout of this commit (`doit ci` has no --force)"
        in refused.stdout
    )
    assert "pass --force" not in refused.stdout


def test_shard_and_publish_reports_say_what_each_job_did(second_moto: str, tmp_path: Path) -> None:
    """A shard whose build of one app fails reports that app as a miss whose build failed
    (not "unaffected"), the others against their live sizes; the publish job then reports
    the app it could not restore as not restored (not "cached"), and those it restored as
    hits, whatever the plan found."""
    origin = make_origin(tmp_path / "origin", second_moto, 3)
    doit_json(clone(origin, tmp_path / "single"), "ci")  # a trusted publish: live sizes
    write_app(origin, 1, "// changed\n" * 40)
    broken = origin / "apps" / "app-02" / "package.json"
    package = json.loads(broken.read_text())
    package["scripts"]["build"] = "echo 'app-02: no bundler here' && exit 3"
    broken.write_text(json.dumps(package))
    git(origin, "commit", "-qam", "app-01 grows, app-02's build fails")
    planner = clone(origin, tmp_path / "plan")
    plan = doit_json(planner, "ci_plan", "shards=1", name="ci-plan.json")
    assert sorted(plan["shards"][0]["apps"]) == ["app-01", "app-02"]
    plan_file = planner / ".mfe" / "local" / "ci-plan.json"

    shard = clone(origin, tmp_path / "shard", plan_file)
    summary = tmp_path / "shard.md"
    failed = run_doit(
        shard, "ci", "shard=1/1", check=False, env={**CI_ENV, "GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert failed.returncode != 0 and "Traceback" not in failed.stdout, failed.stdout
    report = json.loads((shard / ".mfe" / "local" / "ci-report.json").read_text())
    app02, app01 = report["apps"]["app-02"], report["apps"]["app-01"]
    assert (app02["cache"], app02["failed"], app02["tests"]) == ("miss", "build", "not run")
    assert (app01["cache"], app01["tests"], app01["failed"]) == ("miss", "passed", None)
    assert app01["live_bytes"] and app01["size_bytes"] > app01["live_bytes"]
    written = summary.read_text()
    assert "### `doit ci env=local shard=1/1`" in written
    (row,) = (x for x in written.splitlines() if x.startswith("| app-01 |"))
    assert "| new |" not in row and "| +" in row
    assert "| app-02 | yes | miss | 0.0 | **build failed** |" in written
    assert "Nothing to publish" not in written and "app-02: no bundler here" in written

    publisher = clone(origin, tmp_path / "publish", plan_file)
    summary = tmp_path / "publish.md"
    failed = run_doit(
        publisher, "ci", "publish", check=False, env={**CI_ENV, "GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert failed.returncode != 0 and "Traceback" not in failed.stdout, failed.stdout
    report = json.loads((publisher / ".mfe" / "local" / "ci-report.json").read_text())
    app02, app01 = report["apps"]["app-02"], report["apps"]["app-01"]
    assert (app02["cache"], app02["failed"], app02["tests"], app02["dist"]) == (
        "miss",
        "restore",
        "not run",
        "",
    )
    assert (app01["cache"], app01["tests"], app01["dist"], app01["build_seconds"]) == (
        "hit",
        "cached",
        "cache",
        0.0,
    )
    assert report["apps"]["app-00"]["cache"] == "hit"
    # The plan's "no entry" reason is told as what happened since: a shard built it. An app
    # without tests (app-00) passed none: its tests are "none", not "cached".
    assert app01["why"] == [
        f"built by shard 1/1 of this run: the plan found no usable build cache entry for its "
        f"input key {app01['key'][:12]}"
    ]
    assert "built by shard 1/1 of this run" in app01["notes"]
    assert report["apps"]["app-00"]["tests"] == "none"
    written = summary.read_text()
    assert "### `doit ci env=local publish`" in written
    assert "| app-01 | yes | hit | 0.0 | cached |" in written
    assert "| app-00 | yes | hit | 0.0 | none |" in written
    assert f"- **app-01**: `{app01['why'][0]}`" in written  # app-02's "no entry" stays true
    assert "| app-02 | yes | miss | 0.0 | **not restored** |" in written
    assert "app-02 is not in the build cache" in written
    assert written.index("app-02 is not in the build cache") < written.index(
        "nothing was published"
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[]", "a JSON list, not an object"),
        ("42", "a JSON int, not an object"),
        ('{"format": "mfe-ci-plan/1", "env": "local", "commit": "c", "base": "", "scope": "",'
         ' "publish": true, "apps": [], "shards": []}', "'list' object"),
    ],
)  # fmt: skip
def test_a_plan_that_is_no_json_object_says_to_plan_again(
    tmp_path: Path, text: str, why: str
) -> None:
    """A plan file of another JSON shape (a list, a number, `apps` a list) raised
    AttributeError; it is an unreadable plan like any other."""
    project = dataclasses.replace(load_project(REPO), root=tmp_path)
    plan_path(project, "local").parent.mkdir(parents=True)
    plan_path(project, "local").write_text(text)
    with pytest.raises(MfeError) as info:
        read_plan(project, "local", "c")
    message = str(info.value)
    assert message.startswith(f"{plan_path(project, 'local')}: unreadable CI plan ("), message
    assert why in message and "run `doit ci_plan env=local shards=N` again" in message
