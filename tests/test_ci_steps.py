"""Small pieces of `doit ci`: when `npm ci` is needed, how tests run, and the doit variables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mfe.ci.run import parse_options
from mfe.ci.steps import node_modules_current, run_tests
from mfe.config import load_project
from mfe.errors import MfeError


def test_node_modules_are_current_only_when_they_match_the_lockfile(tmp_path: Path) -> None:
    (tmp_path / "mfe.toml").write_text('[project]\nname = "s"\n[apps.a]\nrole = "parent"\n')
    (tmp_path / "apps" / "a").mkdir(parents=True)
    (tmp_path / "apps" / "a" / "package.json").write_text('{"scripts": {"build": "x"}}')
    packages = {
        "": {},
        "node_modules/lit": {"version": "3.3.0"},
        "node_modules/@esbuild/win32-x64": {"version": "0.28.0", "optional": True},
        "node_modules/a": {"link": True, "resolved": "apps/a"},
    }
    (tmp_path / "package-lock.json").write_text(json.dumps({"packages": packages}))
    project = load_project(tmp_path)
    assert not node_modules_current(project)  # nothing installed

    hidden = tmp_path / "node_modules" / ".package-lock.json"
    hidden.parent.mkdir()
    installed = {k: v for k, v in packages.items() if "win32" not in k and k}
    hidden.write_text(json.dumps({"packages": installed}))
    assert node_modules_current(project)  # another platform's optional binary may be absent

    installed["node_modules/lit"] = {"version": "3.2.0"}
    hidden.write_text(json.dumps({"packages": installed}))
    assert not node_modules_current(project)


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


def test_doit_variables() -> None:
    assert parse_options("0" * 40, None).base is None  # a new branch's `before`
    assert parse_options(" origin/main ", "FORCE") == parse_options("origin/main", "force")
    assert parse_options("", "off").cache == "off"
    with pytest.raises(MfeError, match="cache='sometimes'"):
        parse_options(None, "sometimes")
