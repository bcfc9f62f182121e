"""Builds that would publish something other than what the author meant are refused (or
read as npm reads them), naming the file and what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.repo import executed_tasks, run_doit


def _manifest(root: Path, app: str) -> str:
    return (root / "apps" / app / "dist" / "asset-manifest.json").read_text()


@pytest.mark.parametrize(
    ("name", "said"),
    [
        pytest.param("index.html", "is the shell page rendered from shell/", id="index"),
        pytest.param("previews/pr-1/index.html", "holds the preview pages", id="previews"),
        pytest.param("previews/logo.svg", "holds the preview pages", id="previews-file"),
    ],
)
def test_parent_public_files_the_shell_or_previews_would_replace_fail_the_build(
    built_monorepo: Path, name: str, said: str
) -> None:
    """The parent's `public/index.html` was silently replaced by the rendered shell, and
    `public/previews/` shared the preview pages' keys: now one line naming the file, and
    the previous dist/ kept."""
    before = _manifest(built_monorepo, "mfe-parent")
    path = built_monorepo / "apps/mfe-parent/public" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("<!doctype html><title>mine</title>\n")

    result = run_doit(built_monorepo, "build", check=False)
    assert result.returncode != 0, result.stdout
    line = next((line for line in result.stdout.splitlines() if said in line), None)
    assert line is not None, result.stdout
    assert line.startswith(f"error: build:mfe-parent: apps/mfe-parent/public/{name}: "), line
    assert "Traceback" not in result.stdout
    assert _manifest(built_monorepo, "mfe-parent") == before


def test_a_fragment_may_ship_its_own_index_html_and_previews_folder(
    built_monorepo: Path,
) -> None:
    """Only the parent site holds the shell page and the previews."""
    public = built_monorepo / "apps/payments/public"
    (public / "previews").mkdir(parents=True)
    (public / "index.html").write_text("<!doctype html><title>payments</title>\n")
    (public / "previews/a.txt").write_text("a\n")
    run_doit(built_monorepo, "build")
    files = json.loads(_manifest(built_monorepo, "payments"))["files"]
    assert {"index.html", "previews/a.txt"} <= set(files)


def test_a_package_json_starting_with_a_byte_order_mark_builds(built_monorepo: Path) -> None:
    """npm reads past a UTF-8 BOM (Windows editors save one), as mfe.toml's reader does."""
    package = built_monorepo / "apps/payments/package.json"
    package.write_bytes(b"\xef\xbb\xbf" + package.read_bytes())
    result = run_doit(built_monorepo, "build")
    assert "build:payments" in executed_tasks(result.stdout), result.stdout
    assert run_doit(built_monorepo, "list").returncode == 0
