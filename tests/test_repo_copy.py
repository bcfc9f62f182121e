"""The suite's repo copies: git's files and uncommitted work, never a virtualenv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fixtures.repo import REPO, copy_sources, link_copy, source_files


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def test_copy_holds_tracked_and_untracked_files_but_no_environments(tmp_path: Path) -> None:
    repo = tmp_path / "clone"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / ".gitignore").write_text("dist/\n")
    (repo / "apps/a/src").mkdir(parents=True)
    (repo / "apps/a/src/main.js").write_text("tracked\n")
    (repo / "gone.txt").write_text("tracked, then deleted in the work tree\n")
    (repo / "link.js").symlink_to("apps/a/src/main.js")
    git(repo, "add", "-A")
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "x")
    (repo / "gone.txt").unlink()
    (repo / "apps/a/src/new.js").write_text("uncommitted work\n")
    (repo / "apps/a/dist").mkdir()
    (repo / "apps/a/dist/main.js").write_text("ignored build output\n")
    (repo / "tests").mkdir()
    (repo / "tests/test_x.py").write_text("the suite itself\n")
    # Environments .gitignore does not mention: a real virtualenv and a node_modules.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(repo / "env")], check=True)
    (repo / "apps/a/node_modules/lib").mkdir(parents=True)
    (repo / "apps/a/node_modules/lib/index.js").write_text("installed\n")

    assert source_files(repo) == [
        ".gitignore",
        "apps/a/src/main.js",
        "apps/a/src/new.js",
        "link.js",
    ]
    copy = copy_sources(tmp_path / "copy", repo)
    assert (copy / "apps/a/src/new.js").read_text() == "uncommitted work\n"
    assert os.readlink(copy / "link.js") == "apps/a/src/main.js"
    assert not (copy / "env").exists() and not (copy / "apps/a/dist").exists()


def test_this_clone_ignores_a_dot_venv_and_copies_hold_the_monorepo_only(monorepo: Path) -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", ".venv/bin/python"], cwd=REPO)
    assert ignored.returncode == 0  # `python3 -m venv .venv` in a clone stays out of git and copies
    assert not (monorepo / "tests").exists() and not (monorepo / "bench").exists()
    assert (monorepo / "mfe.toml").is_file() and (monorepo / "node_modules/.bin").is_dir()


def test_link_copy_links_node_modules_and_copies_the_rest(monorepo: Path, tmp_path: Path) -> None:
    copy = link_copy(monorepo, tmp_path / "again")
    for rel in ("node_modules/esbuild/package.json", "mfe.toml"):
        assert (copy / rel).read_bytes() == (monorepo / rel).read_bytes()
    linked = Path("node_modules/esbuild/package.json")
    assert (copy / linked).stat().st_ino == (monorepo / linked).stat().st_ino
    assert (copy / "mfe.toml").stat().st_ino != (monorepo / "mfe.toml").stat().st_ino
    workspace = copy / "node_modules/payments"  # npm's workspace link stays a relative symlink
    assert workspace.is_symlink() and workspace.resolve() == (copy / "apps/payments").resolve()
