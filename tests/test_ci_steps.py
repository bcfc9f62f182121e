"""Small pieces of `doit ci`: when `npm ci` is needed, and the doit variables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mfe.ci.run import parse_options
from mfe.ci.steps import node_modules_current
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


def test_doit_variables() -> None:
    assert parse_options("0" * 40, None).base is None  # a new branch's `before`
    assert parse_options(" origin/main ", "FORCE") == parse_options("origin/main", "force")
    assert parse_options("", "off").cache == "off"
    with pytest.raises(MfeError, match="cache='sometimes'"):
        parse_options(None, "sometimes")
