"""mfe.toml validation: every mistake is one error naming the file and the key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mfe.config import load_project
from mfe.errors import ConfigError

from conftest import REPO


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """mfe.toml and the apps' package.json files only: enough for config loading."""
    shutil.copy(REPO / "mfe.toml", tmp_path / "mfe.toml")
    for package_json in REPO.glob("apps/*/package.json"):
        target = tmp_path / package_json.relative_to(REPO)
        target.parent.mkdir(parents=True)
        shutil.copy(package_json, target)
    return tmp_path


def edit(repo: Path, old: str, new: str) -> None:
    path = repo / "mfe.toml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def error_of(repo: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_project(repo)
    return str(info.value)


def test_the_repo_config_loads(repo: Path) -> None:
    project = load_project(repo)
    assert list(project.apps) == ["mfe-parent", "accounts", "payments"]
    assert project.parent.name == "mfe-parent"
    assert project.apps["accounts"].element == "mfe-accounts"
    assert project.env("local").endpoint_url == "http://127.0.0.1:4566"
    assert project.env("prod").region == "eu-west-1"


def test_unknown_key_names_file_and_key(repo: Path) -> None:
    edit(repo, "dev_port = 5172", "dev_prot = 5172")
    message = error_of(repo)
    assert str(repo / "mfe.toml") in message
    assert "apps.accounts.dev_prot" in message


def test_wrong_type_names_key_and_value(repo: Path) -> None:
    edit(repo, "dev_port = 5172", 'dev_port = "5172"')
    message = error_of(repo)
    assert "apps.accounts.dev_port" in message and "must be int" in message


def test_duplicate_port(repo: Path) -> None:
    edit(repo, "dev_port = 5173", "dev_port = 5172")
    message = error_of(repo)
    assert "apps.payments.dev_port" in message and "5172" in message
    assert "apps.accounts.dev_port" in message


def test_missing_app_folder(repo: Path) -> None:
    shutil.rmtree(repo / "apps" / "payments")
    message = error_of(repo)
    assert "apps.payments" in message and "package.json" in message


def test_unknown_environment(repo: Path) -> None:
    with pytest.raises(ConfigError, match="unknown environment 'staging'"):
        load_project(repo).env("staging")


def test_invalid_toml(repo: Path) -> None:
    (repo / "mfe.toml").write_text("[project\nname = 1\n")
    assert "invalid TOML" in error_of(repo)


def test_doit_reports_config_errors_without_traceback(repo: Path) -> None:
    import subprocess
    import sys

    shutil.copy(REPO / "dodo.py", repo / "dodo.py")
    edit(repo, 'role = "parent"', 'role = "host"')
    result = subprocess.run(
        [sys.executable, "-m", "doit", "list"], cwd=repo, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "apps.mfe-parent.role" in result.stderr
    assert "Traceback" not in result.stderr
