"""`doit new_app` scaffolds a micro-frontend that `doit serve` shows; un-installed app folders
get one line saying what to do (real doit, npm, esbuild and Chromium)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import Page

from fixtures.repo import run_doit
from fixtures.serve import APPS, CTRL_C_STOPPED, ServeProcess, use_free_ports


def test_new_app_then_serve_shows_its_element(monorepo: Path, page: Page) -> None:
    config_before = (monorepo / "mfe.toml").read_text()
    for args, problem in [
        (["name=payments", "stack=lit"], "already exists"),
        (["name=cart", "stack=vue"], "must be one of lit, react"),
        (["name=Cart", "stack=lit"], "lowercase letters"),
    ]:
        refused = run_doit(monorepo, "new_app", *args, check=False)
        assert refused.returncode != 0 and problem in refused.stdout, refused.stdout
        assert "Traceback" not in refused.stdout
    assert (monorepo / "mfe.toml").read_text() == config_before
    assert not (monorepo / "apps/cart").exists()

    made = run_doit(monorepo, "new_app", "name=greeting", "stack=lit").stdout
    assert (  # the README's next steps, where a new user looks
        "new_app: next: commit apps/greeting/, mfe.toml and package-lock.json; "
        "`doit serve` serves it now, `doit publish` puts it on the page"
    ) in made, made
    run_doit(monorepo, "new_app", "name=ledger", "stack=react")
    for name, entry in (("greeting", "main.js"), ("ledger", "main.jsx")):
        package = json.loads((monorepo / "apps" / name / "package.json").read_text())
        assert package["scripts"]["build"] == "node ../../tools/build-app.mjs"
        assert f"'mfe-{name}'" in (monorepo / "apps" / name / "src" / entry).read_text()
    lock = json.loads((monorepo / "package-lock.json").read_text())
    assert {"apps/greeting", "apps/ledger"} <= lock["packages"].keys()

    shell_port, _ = use_free_ports(monorepo, [*APPS, "greeting", "ledger"])
    server = ServeProcess(monorepo)
    try:
        server.wait_for(rf"^http://127\.0\.0\.1:{shell_port}/$", timeout=120)
        page.goto(f"http://127.0.0.1:{shell_port}/")
        page.locator("mfe-greeting h2", has_text="Greeting").wait_for(timeout=30_000)
        page.locator("mfe-ledger h2", has_text="Ledger").wait_for(timeout=30_000)
    finally:
        assert server.stop() == CTRL_C_STOPPED


def test_an_app_folder_npm_never_installed_is_one_line(monorepo: Path) -> None:
    app = monorepo / "apps/late"
    (app / "src").mkdir(parents=True)
    (app / "package.json").write_text(
        json.dumps({"name": "late", "scripts": {"build": "node ../../tools/build-app.mjs"}})
    )
    (app / "src/main.js").write_text(
        "customElements.define('mfe-late', class extends HTMLElement {});\n"
    )
    result = run_doit(monorepo, check=False)
    assert result.returncode != 0
    errors = [line for line in result.stdout.splitlines() if "late" in line]
    assert errors == ["error: new app late: run `npm install`, then run `doit` again"], (
        result.stdout
    )
    assert "npm" not in result.stdout.replace("`npm install`", "")  # no npm usage text


def test_new_app_refusals_name_their_cause(monorepo: Path) -> None:
    config_before = (monorepo / "mfe.toml").read_text()
    long_name = "a" * 50  # a bucket name <project>-<env>-<app> longer than S3's 63
    for name, problem in [
        (long_name, f"key 'apps.{long_name}': the app name"),
        ("shared", "name='shared' is reserved for the shared modules"),
        (  # the environment's build cache bucket: its folder is undone, not to be renamed
            "build-cache",
            "name='build-cache' cannot be used: the bucket name 'mfe-demo-local-build-cache' "
            "would be the hosting bucket of app 'build-cache' in environment 'local' and also "
            "the build cache bucket of environment 'local', which would mix their files; "
            "nothing was written: pick another name=",
        ),
    ]:
        refused = run_doit(monorepo, "new_app", f"name={name}", "stack=lit", check=False)
        assert refused.returncode != 0 and problem in refused.stdout, refused.stdout
        assert "rename the app" not in refused.stdout, refused.stdout
        assert "project.name" not in refused.stdout and "already exists" not in refused.stdout
        assert "Traceback" not in refused.stdout
        assert not (monorepo / "apps" / name).exists()
    assert (monorepo / "mfe.toml").read_text() == config_before


def test_without_npm_on_path_install_and_new_app_say_what_to_install(
    monorepo: Path, tmp_path: Path
) -> None:
    """A machine without Node.js: one line naming what to install, not the shell's
    `npm: not found` (install) or a FileNotFoundError traceback (new_app), nothing written."""
    shutil.rmtree(monorepo / "node_modules")  # a fresh clone: `install` is due
    no_npm = {"PATH": str(tmp_path / "empty-bin")}
    config_before = (monorepo / "mfe.toml").read_text()
    for args in (["build"], ["new_app", "name=cart", "stack=lit"]):
        result = run_doit(monorepo, *args, check=False, env=no_npm)
        assert result.returncode == 1, result.stdout
        assert (
            "error: npm is not on PATH: install Node.js 20+ with npm (README, 'Quickstart'), "
            "then run the command again" in result.stdout
        ), result.stdout
        assert "Traceback" not in result.stdout and "not found" not in result.stdout
    assert (monorepo / "mfe.toml").read_text() == config_before
    assert not (monorepo / "apps/cart").exists()


def test_ctrl_c_once_npm_wrote_the_lockfile_leaves_all_or_nothing(monorepo: Path) -> None:
    """Ctrl-C right after `npm install` rewrote package-lock.json (npm still finishing, or
    new_app not done yet): either the app was added whole, or the folder, mfe.toml and the
    lockfile are as before, never a lockfile naming a workspace that is not there."""
    config, lockfile = monorepo / "mfe.toml", monorepo / "package-lock.json"
    config_before, lock_before = config.read_text(), lockfile.read_bytes()
    outcomes = []
    for attempt in range(4):
        name = f"cart{attempt}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "doit", "new_app", f"name={name}", "stack=lit"],
            cwd=monorepo,
            env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # SIGINT to its group, as a terminal's Ctrl-C
        )
        deadline = time.monotonic() + 120
        while proc.poll() is None and lockfile.read_bytes() == lock_before:
            assert time.monotonic() < deadline, "npm install never wrote the lockfile"
            time.sleep(0.001)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
        assert "Traceback" not in output, output
        if (monorepo / "apps" / name).exists():  # done before the Ctrl-C: the app is whole
            assert proc.returncode in (0, -signal.SIGINT), output
            assert f"[apps.{name}]" in config.read_text()
            assert f'"apps/{name}"' in lockfile.read_text()
            shutil.rmtree(monorepo / "apps" / name)  # back to the start for the next attempt
            config.write_text(config_before)
            lockfile.write_bytes(lock_before)
            outcomes.append("added")
        else:
            assert proc.returncode == -signal.SIGINT, output
            assert config.read_text() == config_before
            assert lockfile.read_bytes() == lock_before, f"attempt {attempt}: lockfile kept {name}"
            outcomes.append("undone")
    assert "undone" in outcomes, outcomes  # the Ctrl-C landed while npm or new_app ran
    run_doit(monorepo, "build")  # node_modules follows the restored lockfile (npm ci)
