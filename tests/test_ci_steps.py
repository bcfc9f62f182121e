"""Small pieces of `doit ci`: when `npm ci` runs, how tests run, and the doit variables."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from mfe.build.bundle import build_app
from mfe.ci.run import parse_options
from mfe.ci.steps import ensure_node_modules, run_tests
from mfe.config import load_project
from mfe.errors import MfeError

from fixtures.repo import run_doit


def test_npm_ci_runs_only_when_node_modules_differ_from_the_lockfile(
    monorepo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = load_project(monorepo)
    kept = monorepo / "node_modules" / "mfe-test-marker.txt"
    kept.write_text("npm ci deletes node_modules, this with it\n")
    # Other platforms' optional esbuild binaries are in the lockfile, not installed.
    assert ensure_node_modules(project) is False
    assert kept.is_file() and "npm ci" not in capsys.readouterr().out

    # The hidden lockfile still lists lit: only its folder tells (npm would not trust it).
    shutil.rmtree(monorepo / "node_modules" / "lit")
    assert ensure_node_modules(project) is True
    assert "ci: installing JS dependencies (npm ci): node_modules/lit is missing" in (
        capsys.readouterr().out
    )
    assert (monorepo / "node_modules" / "lit" / "package.json").is_file()
    assert not kept.exists()
    assert ensure_node_modules(project) is False


def declare(root: Path, app: str, name: str, spec: str) -> None:
    """A dependency added to an app's package.json by hand, without `npm install`."""
    manifest = root / "apps" / app / "package.json"
    package = json.loads(manifest.read_text())
    package["dependencies"][name] = spec
    manifest.write_text(json.dumps(package, indent=2) + "\n")


def test_a_dependency_the_lockfile_lacks_fails_ci_as_it_fails_install(monorepo: Path) -> None:
    """A fresh runner's npm ci fails on it; `doit ci` on a runner whose node_modules were
    kept used to build with them and pass. Now it fails as `doit install` does."""
    (monorepo / "vendor" / "pad").mkdir(parents=True)  # a local package: no registry
    (monorepo / "vendor" / "pad" / "package.json").write_text('{"name": "pad", "version": "1.0.0"}')
    declare(monorepo, "payments", "pad", "file:../../vendor/pad")

    with pytest.raises(MfeError, match="npm ci failed in") as failed:
        ensure_node_modules(load_project(monorepo))
    assert "are in sync" in str(failed.value) and "pad@1.0.0" in str(failed.value)
    install = run_doit(monorepo, "install", check=False)
    assert install.returncode != 0 and "are in sync" in install.stdout, install.stdout


def test_an_npm_ci_that_leaves_the_lockfile_behind_fails_once_per_run(
    monorepo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """payments now declares accounts, a workspace already installed: npm ci adds nothing
    and passes, but leaves the lockfile's entry for payments without it, so npm ci still
    looks due. The run fails saying what to do; the other apps' builds get the same error
    without another npm ci (which would delete node_modules under their builds)."""
    declare(monorepo, "payments", "accounts", "*")
    project = load_project(monorepo)
    stale = re.escape("npm ci finished, but package-lock.json is out of date")
    with pytest.raises(MfeError, match=stale):
        ensure_node_modules(project)
    assert "apps/payments/package.json declares dependencies" in capsys.readouterr().out
    kept = monorepo / "node_modules" / "mfe-test-marker.txt"
    kept.write_text("npm ci deletes node_modules, this with it\n")
    with pytest.raises(MfeError, match=re.escape(f"run `npm install` in {monorepo}")):
        ensure_node_modules(project)
    assert kept.is_file() and "npm ci" not in capsys.readouterr().out


def _app_with_scripts(root: Path, name: str, scripts: dict[str, str]) -> None:
    (root / "apps" / name).mkdir(parents=True)
    (root / "apps" / name / "package.json").write_text(
        json.dumps({"name": name, "scripts": {"build": "x", **scripts}})
    )


def _bin(folder: Path, name: str, line: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(f"#!/bin/sh\n{line}\n")
    (folder / name).chmod(0o755)


def test_tests_run_the_test_script_as_npm_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mfe.toml").write_text('[project]\nname = "s"\n[apps.a]\nrole = "parent"\n')
    # Bins of the app's and the root's node_modules are on PATH, the app folder is the cwd.
    _app_with_scripts(tmp_path, "a", {"test": "root-tool && app-tool > ran.txt"})
    _bin(tmp_path / "node_modules" / ".bin", "root-tool", "true")
    _bin(tmp_path / "apps" / "a" / "node_modules" / ".bin", "app-tool", "pwd")
    # Lifecycle hooks run too (through npm itself).
    _app_with_scripts(tmp_path, "b", {"pretest": "echo pre > pre.txt", "test": "true"})
    _app_with_scripts(tmp_path, "c", {"test": "echo 'expected 1, got 2'; exit 3"})
    project = load_project(tmp_path)

    run_tests(project, project.apps["a"])
    assert (tmp_path / "apps" / "a" / "ran.txt").read_text().strip() == str(tmp_path / "apps" / "a")
    run_tests(project, project.apps["b"])
    assert (tmp_path / "apps" / "b" / "pre.txt").read_text().strip() == "pre"
    assert "ci: a: tests passed" in capsys.readouterr().out
    with pytest.raises(MfeError, match="tests of c failed") as failed:
        run_tests(project, project.apps["c"])
    assert "exited 3" in str(failed.value) and "expected 1, got 2" in str(failed.value)
    # The tests' output first, the verdict last: a CI log is read from its end.
    assert str(failed.value).splitlines() == [
        "tests of c: `echo 'expected 1, got 2'; exit 3` printed:",
        "expected 1, got 2",
        "tests of c failed (`echo 'expected 1, got 2'; exit 3` exited 3); nothing was published.",
    ]


def test_doit_variables() -> None:
    assert parse_options("0" * 40, None).base is None  # a new branch's `before`
    assert parse_options(" origin/main ", "FORCE") == parse_options("origin/main", "force")
    assert parse_options("", "off").cache == "off"
    with pytest.raises(MfeError, match="cache='sometimes'"):
        parse_options(None, "sometimes")


def test_an_app_folder_npm_never_installed_says_to_run_doit_ci_again(monorepo: Path) -> None:
    """Under `doit ci` the advice after `npm install` is `doit ci` again, not `doit`
    (test_new_app: plain `doit` says `doit`)."""
    app = monorepo / "apps/late"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({"name": "late", "scripts": {"build": "x"}}))
    with pytest.raises(MfeError) as failed:
        ensure_node_modules(load_project(monorepo))
    assert str(failed.value) == "new app late: run `npm install`, then run `doit ci` again"


class Writes:
    """A stdout that records each write call, as a pipe receives them."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_a_build_prints_each_line_in_one_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parallel CI builds print from worker threads: a line written apart from its newline
    could be joined by another thread's line in piped output."""
    (tmp_path / "mfe.toml").write_text(
        '[project]\nname = "s"\n[apps.a]\nrole = "parent"\nelement = "mfe-a"\n'
    )
    script = (
        'mkdir -p "$MFE_OUT_DIR" && echo "customElements.define(\'mfe-a\', class {});" '
        '> "$MFE_OUT_DIR/main-0a1b2c3d.js" && echo bundled'
    )
    _app_with_scripts(tmp_path, "a", {})
    (tmp_path / "apps" / "a" / "package.json").write_text(
        json.dumps({"name": "a", "scripts": {"build": script}})
    )
    project = load_project(tmp_path)
    out = Writes()
    monkeypatch.setattr("sys.stdout", out)
    build_app(project, project.apps["a"])
    monkeypatch.undo()
    assert "".join(out.calls).splitlines()[-1].startswith("build:a: 1 files in ")
    assert all(call.endswith("\n") for call in out.calls), out.calls
