"""`doit publish` / `plan` / `rollback` end to end on a fresh copy of the monorepo: real npm
builds, the embedded moto emulator (own free port), the shell, the publish report.
(Signing in and seeing the micro-frontends in Chromium is tests/test_login.py.)"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from mfe.publish.previews import pointer_key

from fixtures.aws import free_port, local_client
from fixtures.config import emulator_port, use_port
from fixtures.repo import executed_tasks, run_doit, up_to_date_tasks


@pytest.fixture
def repo(built_monorepo: Path) -> Iterator[Path]:
    use_port(built_monorepo, free_port())
    try:
        yield built_monorepo
    finally:
        run_doit(built_monorepo, "local_stop", check=False)


def publish(root: Path, *args: str) -> tuple[str, dict]:
    result = run_doit(root, "publish", *args)
    url = result.stdout.strip().splitlines()[-1]
    report = json.loads((root / ".mfe/local/publish-report.json").read_text())
    assert url == report["site_url"]
    return url, report


def uploads(report: dict) -> dict[str, list[str]]:
    return {app: row["uploaded"] for app, row in report["apps"].items() if row["uploaded"]}


def test_publish_cycle_with_doit(repo: Path) -> None:
    url, first = publish(repo)
    assert url.startswith("http://127.0.0.1:") and url.endswith("/index.html")
    assert set(uploads(first)) == {"mfe-parent", "accounts", "payments", "shared"}
    assert "index.html" in first["apps"]["mfe-parent"]["uploaded"]
    shared_js = {p for p in uploads(first)["shared"] if p.endswith(".js")}
    built = {p.name for p in (repo / "build/shared/dist").glob("*.js")}
    assert shared_js == built and len(built) >= 2  # Lit, React (and React's own modules)
    first_page = httpx.get(url).text
    outputs = json.loads((repo / ".mfe/local/outputs.json").read_text())
    parent_dist = outputs["apps"]["mfe-parent"]["distribution_id"]

    _, second = publish(repo)
    assert uploads(second) == {} and second["invalidations"] == {}
    assert second["requests"]["s3"] <= 3 * 4 and second["requests"]["cloudfront"] == 0

    for app in ("mfe-parent", "accounts", "payments"):
        shutil.rmtree(repo / "apps" / app / "dist")
    shutil.rmtree(repo / "build/shared/dist")
    _, rebuilt = publish(repo)  # rebuilds the three apps and the shared modules: same bytes
    assert uploads(rebuilt) == {} and rebuilt["release"] == first["release"]

    source = repo / "apps/accounts/src/data.js"
    source.write_text(source.read_text() + "\nexport const publishedBy = 'test';\n")
    _, changed = publish(repo)
    assert set(uploads(changed)) == {"accounts", "mfe-parent"}  # the shared modules stay
    page_copy, page = uploads(changed)["mfe-parent"]  # the page's _ca/ copy, then the page
    assert page_copy.startswith("_ca/") and page == "index.html"
    assert changed["invalidations"] == {parent_dist: ["/index.html"]}
    new_page = httpx.get(url).text

    _, pruned = publish(repo, "--prune", "--wait")  # both long options parse; nothing to prune
    assert uploads(pruned) == {} and all(not row["deleted"] for row in pruned["apps"].values())

    plan = run_doit(repo, "plan")
    assert "skip    accounts: 2 unchanged file(s)" in plan.stdout
    planned = json.loads((repo / ".mfe/local/plan-report.json").read_text())
    assert planned["dry_run"] is True and uploads(planned) == {}

    back = run_doit(repo, "rollback")
    assert back.stdout.strip().splitlines()[-1] == url
    assert f"serving release {first['release']} again" in back.stdout
    (said,) = [line for line in back.stdout.splitlines() if line.startswith("rollback: serving")]
    assert f", taking off release {changed['release']} (seq {changed['seq']}: publish of " in said
    assert "rollback: invalidating /index.html" in back.stdout and "publish:" not in back.stdout
    assert httpx.get(url).text == first_page != new_page


def test_a_publish_that_changes_nothing_says_so_whole_or_one_app(repo: Path) -> None:
    """With nothing changed, `doit publish` and `doit publish app=accounts` each say the
    live release stays, and make the same three S3 requests (the pointer, its history
    record, no later record), as the summary's `requests:` line and the report count."""
    _, first = publish(repo)
    release = first["release"]
    for args, scope in (((), ""), (("app=accounts",), " for accounts")):
        result = run_doit(repo, "publish", *args)
        said = f"publish: nothing to change{scope}: release {release} stays live"
        assert said in result.stdout.splitlines(), result.stdout
        assert "requests: cloudfront 0, s3 3" in result.stdout, result.stdout
        report = json.loads((repo / ".mfe/local/publish-report.json").read_text())
        assert report["noop"] is True and report["requests"]["s3"] == 3

    source = repo / "apps/accounts/src/data.js"
    source.write_text(source.read_text() + "\nexport const publishedBy = 'test';\n")
    changed = run_doit(repo, "publish", "app=accounts").stdout
    assert "nothing to change" not in changed


def test_failed_build_publishes_nothing(repo: Path) -> None:
    url, _ = publish(repo)
    before = httpx.get(url).text
    source = repo / "apps/payments/src"
    broken = next(p for p in sorted(source.rglob("*")) if p.suffix in (".ts", ".js"))
    broken.write_text(broken.read_text() + "\nthis is not ( valid\n")
    result = run_doit(repo, "publish", check=False)
    assert result.returncode != 0
    assert "build:payments failed" in result.stdout
    assert ".  publish" not in result.stdout
    assert httpx.get(url).text == before


def change_source(repo: Path, app: str, line: str) -> None:
    """An edit of one of the app's sources, built."""
    source = repo / "apps" / app / "src" / "format.js"
    source.write_text(source.read_text() + f"\nexport const {line} = 1;\n")
    run_doit(repo, f"build:{app}")


def test_a_dist_edited_by_hand_is_built_again_or_refused(repo: Path) -> None:
    """A step that edits a bundle after the build: a change of size makes the build task
    run again (publish uploads the build's bytes); one of the same size passes that cheap
    check and the upload refuses it, naming the command that rebuilds it."""
    url, _ = publish(repo)
    change_source(repo, "payments", "first")
    bundle = next((repo / "apps/payments/dist").glob("main-*.js"))
    with bundle.open("a") as stream:
        stream.write('console.log("X");\n')
    result = run_doit(repo, "publish")
    assert "build:payments" in executed_tasks(result.stdout)
    assert 'console.log("X")' not in bundle.read_text()
    assert "main-" in "".join(json.loads((repo / ".mfe/local/publish-report.json").read_text())["apps"]["payments"]["uploaded"])  # fmt: skip

    change_source(repo, "payments", "second")
    before = httpx.get(url).text
    bundle = next((repo / "apps/payments/dist").glob("main-*.js"))
    body = bundle.read_bytes()
    bundle.write_bytes(body[:-2] + (b"x" if body[-2:-1] != b"x" else b"y") + body[-1:])
    refused = run_doit(repo, "publish", check=False)
    assert refused.returncode != 0
    edited = bundle.relative_to(repo).as_posix()
    assert (
        f"{edited}: changed since its build (its bytes no longer match "
        "apps/payments/dist/asset-manifest.json); nothing was published: run "
        "`doit forget build:payments && doit build:payments`"
    ) in refused.stdout
    assert httpx.get(url).text == before  # nothing live changed
    run_doit(repo, "forget", "build:payments")
    run_doit(repo, "build:payments")
    _, fixed = publish(repo)  # its smoke check passed: every module matches its integrity
    assert any(k.startswith("main-") for k in fixed["apps"]["payments"]["uploaded"])


@pytest.mark.parametrize("task", ["publish", "plan", "rollback"])
def test_an_unknown_app_fails_at_once_naming_the_apps(repo: Path, task: str) -> None:
    """Not after building every app (and starting the emulator) for nothing."""
    source = repo / "apps/payments/src/payments-app.js"
    source.write_text(source.read_text() + "\n// edited: a build is due\n")
    for given, hint in (("paymnts", " (did you mean app=payments?)"), ("nope", "")):
        result = run_doit(repo, task, f"app={given}", check=False)
        assert result.returncode == 2, result.stdout  # as a misspelled variable is
        assert f"error: unknown app '{given}'{hint}; the apps are accounts, mfe-parent, " in (
            result.stdout
        )
        assert "(apps come from apps/*/package.json)" in result.stdout
        assert executed_tasks(result.stdout) == set(), result.stdout
        assert not up_to_date_tasks(result.stdout), result.stdout  # no task was even checked
        assert "started the local AWS emulator" not in result.stdout


def test_a_preview_name_no_url_can_hold_fails_at_once(repo: Path) -> None:
    """Not after building every app (and starting the emulator) for nothing."""
    source = repo / "apps/payments/src/payments-app.js"
    source.write_text(source.read_text() + "\n// edited: a build is due\n")
    result = run_doit(repo, "publish", "preview=PR 42", check=False)
    assert result.returncode == 2, result.stdout
    assert "preview name 'PR 42' is not usable in a URL path" in result.stdout
    assert executed_tasks(result.stdout) == set(), result.stdout
    assert "started the local AWS emulator" not in result.stdout


def test_options_a_preview_has_no_use_for_are_refused(repo: Path) -> None:
    """`app=` and `--prune` with `preview=` were ignored: a whole preview went up, nothing
    was pruned, and nothing said so. (The options are known only once the task runs.)"""
    source = repo / "apps/payments/src/payments-app.js"
    source.write_text(source.read_text() + "\n// edited: a build is due\n")
    result = run_doit(repo, "publish", "app=payments", "preview=pr-2", check=False)
    assert result.returncode == 2, result.stdout  # before any task, as a bad variable is
    assert "preview=pr-2 cannot take app=payments: " in result.stdout, result.stdout
    assert executed_tasks(result.stdout) == set(), result.stdout
    result = run_doit(repo, "publish", "--prune", "--force", "preview=pr-2", check=False)
    assert result.returncode == 2, result.stdout
    assert "preview=pr-2 cannot take --prune and --force: " in result.stdout, result.stdout
    assert executed_tasks(result.stdout) == set(), result.stdout  # no build, nothing published
    assert "started the local AWS emulator" not in result.stdout


def test_ctrl_c_during_publish_says_what_is_served_and_the_rerun_finishes(repo: Path) -> None:
    url, _ = publish(repo)
    page = httpx.get(url).text
    public = repo / "apps/payments/public"
    public.mkdir()
    for index in range(300):  # an upload phase long enough to be interrupted in
        (public / f"f{index}.txt").write_text(f"file {index}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "doit", "publish"],
        cwd=repo,
        env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("publish: uploading"):
            proc.send_signal(signal.SIGINT)
            break
    output = "".join(lines) + proc.stdout.read()
    assert proc.wait(60) == -signal.SIGINT, output  # ended by SIGINT, after its message
    assert "error: publish interrupted (Ctrl-C): nothing was switched: release " in output
    assert "run `doit publish env=local` again" in output and "Traceback" not in output
    assert httpx.get(url).text == page

    again = run_doit(repo, "publish")
    assert again.stdout.strip().splitlines()[-1] == url
    assert httpx.get(
        url.replace("index.html", "f299.txt").replace("mfe-parent", "payments")
    ).text == ("file 299\n")


def piped_to_head(root: Path, *args: str) -> tuple[str, str, str]:
    """`doit ARGS | head -1` in bash, through a real pipe: head's line, doit's status as
    the shell reports it (141: SIGPIPE), doit's stderr."""
    script = '"$0" -m doit "$@" | head -1; echo "status ${PIPESTATUS[0]}"'
    result = subprocess.run(
        ["bash", "-c", script, sys.executable, *args],
        cwd=root,
        env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    line, status = result.stdout.splitlines()
    return line, status, result.stderr


def test_plan_piped_to_head_ends_quietly(repo: Path) -> None:
    """`doit plan | head -1`, printing more than a pipe holds: no BrokenPipeError traceback,
    ended by SIGPIPE as Unix tools are (the plan talks to S3: SIGPIPE itself stays ignored),
    and doit's dep file intact: the next run finds every build up to date."""
    publish(repo)
    public = repo / "apps/payments/public"
    public.mkdir()
    for index in range(1500):  # 1500 planned uploads: ~130 kB of plan lines
        (public / f"f{index:04d}.txt").write_text(f"file {index}\n")
    line, status, errors = piped_to_head(repo, "plan")
    assert line and status == "status 141", (line, status, errors)
    assert "Traceback" not in errors and "BrokenPipe" not in errors, errors
    again = run_doit(repo, "plan")
    assert executed_tasks(again.stdout) == {"plan"}, again.stdout
    assert "upload  payments: _ca/" in again.stdout


def test_releases_piped_to_head_ends_quietly(repo: Path) -> None:
    """`doit releases | head -1` with more previews than a pipe holds lines of: no
    BrokenPipeError traceback, ended by SIGPIPE, and nothing changed."""
    url, _ = publish(repo)
    run_doit(repo, "publish", "preview=p")
    outputs = json.loads((repo / ".mfe/local/outputs.json").read_text())
    s3 = local_client(outputs["endpoint_url"])
    bucket = outputs["apps"]["mfe-parent"]["bucket"]
    source = {"Bucket": bucket, "Key": pointer_key("p")}

    def copy(index: int) -> None:
        s3.copy_object(Bucket=bucket, Key=pointer_key(f"p{index:03d}"), CopySource=source)

    with ThreadPoolExecutor(max_workers=8) as pool:  # one by one, the copies took seconds
        list(pool.map(copy, range(650)))  # a line each: ~70 kB
    line, status, errors = piped_to_head(repo, "releases")
    assert line and status == "status 141", (line, status, errors)
    assert "Traceback" not in errors and "BrokenPipe" not in errors, errors
    assert httpx.get(url).status_code == 200 and up_to_date_tasks(run_doit(repo).stdout)


def test_emulator_that_lost_its_state_is_provisioned_and_filled_again(repo: Path) -> None:
    url, _ = publish(repo)
    endpoint = url.split("/mfe-demo-local-")[0]
    httpx.post(f"{endpoint}/moto-api/reset")  # what a restarted emulator looks like
    assert httpx.get(url).status_code == 404

    lost = (
        f"local: the emulator on port {endpoint.rsplit(':', 1)[1]} has lost its state "
        "(restarted); provisioning it again, empty, so a publish uploads everything"
    )
    listed = run_doit(repo, "releases")  # a listing provisions nothing
    assert "environment 'local' is not provisioned: nothing is published" in listed.stdout
    assert "lost its state" not in listed.stdout, listed.stdout
    assert local_client(endpoint).list_buckets()["Buckets"] == []
    result = run_doit(repo, "publish")
    said = [line for line in result.stdout.splitlines() if "lost its state" in line]
    assert said == [lost]
    assert result.stdout.strip().splitlines()[-1] == url
    report = json.loads((repo / ".mfe/local/publish-report.json").read_text())
    assert set(uploads(report)) == {"mfe-parent", "accounts", "payments", "shared"}
    assert httpx.get(url).status_code == 200


def test_preview_one_app_publish_releases_and_app_rollback_with_doit(repo: Path) -> None:
    url, first = publish(repo)
    live_page = httpx.get(url).text
    source = repo / "apps/payments/src"
    edited = next(p for p in sorted(source.rglob("*")) if p.suffix in (".ts", ".js"))
    edited.write_text(edited.read_text() + "\nexport const previewed = 'yes';\n")

    preview = run_doit(repo, "publish", "preview=pr-1")
    preview_url = preview.stdout.strip().splitlines()[-1]
    assert preview_url.endswith("/previews/pr-1/index.html")
    assert "preview pr-1: payments over release" in preview.stdout
    said = [line.split(":")[0] for line in preview.stdout.splitlines() if ": " in line]
    assert "preview pr-1: uploading payments/" in preview.stdout and "publish" not in said
    assert httpx.get(preview_url).status_code == 200 and httpx.get(url).text == live_page

    listed = run_doit(repo, "releases").stdout
    assert "preview pr-1: payments over seq 1" in listed
    assert (
        run_doit(repo, "preview_rm", "name=pr-1")
        .stdout.strip()
        .endswith("preview 'pr-1' removed from environment 'local'")
    )
    assert httpx.get(preview_url).status_code in (403, 404)

    _, one = publish(repo, "app=payments")  # only payments built and published
    assert set(uploads(one)) == {"mfe-parent"}  # payments' new files went up with the preview
    assert one["changed"] == ["payments"] and one["seq"] == 2

    listed = run_doit(repo, "releases").stdout.splitlines()
    rows = [line.split() for line in listed if line.split() and line.split()[0].isdigit()]
    assert [(row[0], row[1]) for row in rows] == [("1", first["release"]), ("2", one["release"])]

    back = run_doit(repo, "rollback", "app=payments")
    assert f"serving app payments of release {first['release']} again" in back.stdout
    assert httpx.get(url).text == live_page  # the page of release 1, byte for byte


def store(repo: Path) -> dict[str, dict[str, str]]:
    """bucket -> key -> ETag of every object of the environment: to prove it unchanged."""
    s3 = local_client(f"http://127.0.0.1:{emulator_port(repo)}")
    found: dict[str, dict[str, str]] = {}
    for bucket in (b["Name"] for b in s3.list_buckets()["Buckets"]):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        found[bucket] = {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}
    return found


def test_an_app_rollback_to_a_release_without_that_app_names_it_and_changes_nothing(
    repo: Path, tmp_path: Path
) -> None:
    """payments is added after release 1: `rollback app=payments to=1` has nothing to restore."""
    config = (repo / "mfe.toml").read_text()
    table = '[apps.payments]\ndev_port = 5173\nelement = "mfe-payments"\n'
    assert table in config
    (repo / "mfe.toml").write_text(config.replace(table, ""))
    shutil.move(repo / "apps/payments", tmp_path / "payments")
    _, first = publish(repo)
    assert "payments" not in first["apps"]
    shutil.move(tmp_path / "payments", repo / "apps/payments")
    (repo / "mfe.toml").write_text(config)
    url, second = publish(repo)
    assert second["changed"] == ["payments"] and second["seq"] == 2
    page, before = httpx.get(url).text, store(repo)

    for to in ("1", first["release"]):
        result = run_doit(repo, "rollback", "app=payments", f"to={to}", check=False)
        assert result.returncode != 0, result.stdout
        assert "Traceback" not in result.stdout and "KeyError" not in result.stdout
        assert (
            f"release {first['release']} (seq 1) of environment 'local' has no app 'payments' "
            "(its apps: accounts, mfe-parent, shared); nothing was changed: pick a release that "
            "has payments from `doit releases env=local`"
        ) in result.stdout, result.stdout
        assert "or roll back the whole page with `doit rollback env=local to=1`" in result.stdout
        assert store(repo) == before and httpx.get(url).text == page  # pointer, history, files


def test_one_app_publishes_on_an_empty_environment_send_to_a_whole_publish(repo: Path) -> None:
    """Each app-only publish on a fresh emulator lacked the others: the advice to publish
    the missing app alone went round in circles (payments -> mfe-parent -> shared -> ...)."""
    for app in ("payments", "mfe-parent", "shared"):
        result = run_doit(repo, "publish", f"app={app}", check=False)
        assert result.returncode == 1, result.stdout
        (error,) = [line for line in result.stdout.splitlines() if line.startswith("error: ")]
        assert error.startswith("error: nothing is live in environment 'local' yet, so "), error
        assert "publish every app first with `doit publish env=local`" in error, error
        assert " app=mfe-parent`" not in error and " app=shared`" not in error, error
    url, _ = publish(repo)  # the advice works
    assert publish(repo, "app=payments")[0] == url


def test_a_publish_that_repairs_the_live_release_says_so_in_the_order_it_happened(
    repo: Path,
) -> None:
    """Files deleted by hand: a fingerprinted module (the smoke check finds it missing) and
    a fixed-URL file. The re-run said "nothing to change" after repairing both, and named
    the fixed-URL write-back before the smoke check that led to it."""
    url, first = publish(repo)
    outputs = json.loads((repo / ".mfe/local/outputs.json").read_text())
    s3 = local_client(f"http://127.0.0.1:{emulator_port(repo)}")
    module = next(k for k in first["apps"]["payments"]["uploaded"] if k.startswith("main-"))
    s3.delete_object(Bucket=outputs["apps"]["payments"]["bucket"], Key=module)
    s3.delete_object(Bucket=outputs["apps"]["mfe-parent"]["bucket"], Key="favicon.svg")
    result = run_doit(repo, "publish")
    said = [line for line in result.stdout.splitlines() if line.startswith("publish: ")]
    order = [
        next(i for i, line in enumerate(said) if line.startswith(start))
        for start in (
            "publish: the smoke check failed (",
            f"publish: uploading payments/{module} ",
            "publish: release ",  # ... favicon.svg (mfe-parent)) missing ...: writing back
            "publish: invalidating /favicon.svg on distribution ",
            "publish: repaired 2 file(s) of release ",
        )
    ]
    assert order == sorted(order), said
    assert "favicon.svg (mfe-parent)" in said[order[2]], said
    assert (
        said[order[4]]
        == f"publish: repaired 2 file(s) of release {first['release']} (no new release)"
    )
    assert not [line for line in said if "nothing to change" in line], said
    report = json.loads((repo / ".mfe/local/publish-report.json").read_text())
    assert report["noop"] and report["repaired"] == 2
    assert httpx.get(url.replace("index.html", "favicon.svg")).status_code == 200
