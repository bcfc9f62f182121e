"""Affected apps from real git history: files, shared config and lockfile slices."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mfe.ci.affected import affected_apps, changes_since, has_uncommitted_changes
from mfe.config import load_project
from mfe.errors import MfeError

TOML = """[project]
name = "aff"
[apps.shell]
role = "parent"
[build]
inputs = ["tsconfig.base.json"]
env = ["NODE_ENV"]
[env.prod]
region = "eu-west-1"
"""


def lockfile(tslib: str = "2.6.0") -> str:
    def entry(version: str, **deps: dict[str, str]) -> dict[str, object]:
        return {"version": version, "integrity": f"sha512-{version}", **deps}

    return json.dumps(
        {
            "lockfileVersion": 3,
            "packages": {
                "": {"workspaces": ["apps/*"]},
                "apps/shell": {"dependencies": {"lit": "^3"}},
                "apps/payments": {"dependencies": {"lit": "^3", "money": "^1"}},
                "apps/accounts": {"dependencies": {"react": "^19"}},
                "node_modules/lit": entry("3.3.0"),
                "node_modules/react": entry("19.0.0"),
                "node_modules/money": entry("1.0.0", dependencies={"tslib": "^2"}),
                "node_modules/tslib": entry(tslib),
            },
        },
        indent=2,
    )


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()


def commit(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for app in ("shell", "payments", "accounts"):
        (root / "apps" / app / "src").mkdir(parents=True)
        (root / "apps" / app / "package.json").write_text('{"scripts": {"build": "x"}}')
        (root / "apps" / app / "src" / "main.js").write_text(f"// {app}\n")
    (root / "mfe.toml").write_text(TOML)
    (root / "tsconfig.base.json").write_text("{}")
    (root / "package-lock.json").write_text(lockfile())
    (root / ".gitignore").write_text("dist/\nnode_modules/\n.mfe/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "ci@example.com")
    git(root, "config", "user.name", "CI")
    commit(root, "base")
    return root


def affected(root: Path, base: str = "main~1") -> dict[str, list[str]]:
    return affected_apps(load_project(root), base)


def test_a_source_change_affects_only_its_app(repo: Path) -> None:
    (repo / "apps/payments/src/main.js").write_text("// changed\n")
    (repo / "apps/payments/dist").mkdir()
    (repo / "apps/payments/dist/main.js").write_text("ignored output")
    commit(repo, "payments")
    assert affected(repo) == {"payments": ["apps/payments/src/main.js"]}


def test_uncommitted_and_untracked_files_count(repo: Path) -> None:
    (repo / "apps/accounts/src/new.js").write_text("// new\n")
    project = load_project(repo)
    assert affected_apps(project, "HEAD") == {"accounts": ["apps/accounts/src/new.js"]}
    assert has_uncommitted_changes(project, project.apps["accounts"].path)
    assert not has_uncommitted_changes(project, project.apps["payments"].path)


def test_files_behind_a_symlinked_source_folder_affect_the_app(repo: Path, tmp_path: Path) -> None:
    """git sees only `src/common -> ../../../libs/common`: a change under libs/common
    affects the apps linking to it; a link out of the repository, which git cannot see
    behind, affects its app on every run (the cache key then decides)."""
    (repo / "libs/common").mkdir(parents=True)
    (repo / "libs/common/word.js").write_text("// v1\n")
    (repo / "apps/payments/src/common").symlink_to("../../../libs/common")
    (repo / "apps/payments/src/self").symlink_to(".")  # a cycle: its files are counted
    commit(repo, "link")
    assert affected(repo, "HEAD") == {}

    (repo / "libs/common/word.js").write_text("// v2\n")
    project = load_project(repo)
    assert affected_apps(project, "HEAD") == {
        "payments": ["libs/common/word.js (through apps/payments/src/common)"]
    }
    assert has_uncommitted_changes(project, project.apps["payments"].path)
    assert not has_uncommitted_changes(project, project.apps["accounts"].path)
    commit(repo, "v2")

    outside = tmp_path / "extlib"
    outside.mkdir()
    (repo / "apps/accounts/src/lib").symlink_to(outside)
    commit(repo, "outside")
    assert affected(repo, "HEAD") == {
        "accounts": [
            f"apps/accounts/src/lib: links outside the repository ({outside}), which git "
            "does not track"
        ]
    }


def test_shared_inputs_and_the_build_table_affect_every_app(repo: Path) -> None:
    (repo / "tsconfig.base.json").write_text('{"strict": true}')
    commit(repo, "shared input")
    assert set(affected(repo)) == {"shell", "payments", "accounts"}
    assert affected(repo)["accounts"] == ["tsconfig.base.json"]

    (repo / "mfe.toml").write_text(TOML.replace('region = "eu-west-1"', 'region = "us-west-2"'))
    commit(repo, "unrelated config")
    assert affected(repo) == {}

    shared = '\n[shared]\npackages = ["tslib"]\nmodules = ["tslib"]\ndev_port = {}\n'
    (repo / "mfe.toml").write_text(TOML + shared.format(5998))
    commit(repo, "share tslib")
    (repo / "mfe.toml").write_text(TOML + shared.format(5999))
    commit(repo, "serve's port of the shared modules")  # only `doit serve` reads it
    assert affected(repo) == {}
    (repo / "mfe.toml").write_text(TOML)
    commit(repo, "back")

    (repo / "mfe.toml").write_text(TOML.replace('env = ["NODE_ENV"]', 'env = ["NODE_ENV", "X"]'))
    commit(repo, "build config")
    assert affected(repo) == {
        app: ["mfe.toml: [build] or [shared] changed"] for app in ("shell", "payments", "accounts")
    }


def test_the_page_template_and_its_config_change_the_page_not_the_apps(repo: Path) -> None:
    """Page-level inputs rebuild no app, but the run must publish the page again."""
    (repo / "shell").mkdir()
    (repo / "shell" / "index.html.j2").write_text("<html></html>\n")
    commit(repo, "shell")
    project = load_project(repo)
    changes = changes_since(project, "prod", "main~1")
    assert (changes.apps, changes.page, changes.publish) == ({}, ["shell/index.html.j2"], True)

    (repo / "shell" / ".index.html.j2.swp").write_text("an editor's")  # not a page input
    changes = changes_since(project, "prod", "HEAD")
    assert (changes.apps, changes.page, changes.publish) == ({}, [], False)
    (repo / "shell" / ".index.html.j2.swp").unlink()

    # mfe.toml: the environment's own table and the apps' elements are page inputs;
    # another environment's table is not.
    (repo / "mfe.toml").write_text(TOML.replace('region = "eu-west-1"', 'region = "us-west-2"'))
    commit(repo, "prod region")
    assert changes_since(project, "local", "main~1").page == []
    assert changes_since(project, "prod", "main~1").page == ["mfe.toml: [env.prod] changed"]
    (repo / "mfe.toml").write_text(
        TOML.replace('role = "parent"', 'role = "parent"\nelement = "x-shell"')
    )
    commit(repo, "element")
    changes = changes_since(project, "local", "main~1")
    assert (changes.apps, changes.page) == ({}, ["mfe.toml: [apps.shell] role or element changed"])


def test_a_removed_app_folder_changes_the_page(repo: Path) -> None:
    """An app folder deleted with no [apps.NAME] table: no app rebuilds, but its element
    must leave the live page (a `base=` run said "no app changed" and published nothing)."""
    git(repo, "rm", "-q", "-r", "apps/accounts")
    commit(repo, "remove accounts")
    changes = changes_since(load_project(repo), "local", "main~1")
    assert (changes.apps, changes.page) == ({}, ["apps/accounts/package.json: app removed"])
    assert changes.publish


def test_a_lockfile_bump_affects_only_the_apps_resolving_the_package(repo: Path) -> None:
    (repo / "package-lock.json").write_text(lockfile(tslib="2.7.0"))
    commit(repo, "bump tslib")
    assert affected(repo) == {"payments": ["package-lock.json: tslib 2.6.0 -> 2.7.0"]}


def test_a_lockfile_with_a_byte_order_mark_is_read_as_npm_reads_it(repo: Path) -> None:
    """A UTF-8 BOM (Windows editors save one) in the base's lockfile and in the new one."""
    bom = "\ufeff"
    (repo / "package-lock.json").write_text(bom + lockfile(), encoding="utf-8")
    commit(repo, "bom")
    (repo / "package-lock.json").write_text(bom + lockfile(tslib="2.7.0"), encoding="utf-8")
    commit(repo, "bump tslib")
    assert affected(repo) == {"payments": ["package-lock.json: tslib 2.6.0 -> 2.7.0"]}


def test_a_base_missing_from_a_shallow_clone_is_a_clear_error(repo: Path, tmp_path: Path) -> None:
    (repo / "apps/payments/src/main.js").write_text("// changed\n")
    commit(repo, "second")
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", repo.as_uri(), str(shallow)],
        check=True,
        capture_output=True,
    )
    base = git(repo, "rev-parse", "HEAD~1")
    with pytest.raises(MfeError, match="fetch-depth: 0"):
        affected(shallow, base)
    with pytest.raises(MfeError, match="git fetch origin no-such-ref"):
        affected(repo, "no-such-ref")
