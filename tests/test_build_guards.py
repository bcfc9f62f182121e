"""Builds that would publish something other than what the author meant are refused (or
read as npm reads them), naming the file and what to do."""

from __future__ import annotations

from pathlib import Path

from fixtures.repo import executed_tasks, run_doit


def _manifest(root: Path, app: str) -> str:
    return (root / "apps" / app / "dist" / "asset-manifest.json").read_text()


def test_a_package_json_starting_with_a_byte_order_mark_builds(built_monorepo: Path) -> None:
    """npm reads past a UTF-8 BOM (Windows editors save one), as mfe.toml's reader does."""
    package = built_monorepo / "apps/payments/package.json"
    package.write_bytes(b"\xef\xbb\xbf" + package.read_bytes())
    result = run_doit(built_monorepo, "build")
    assert "build:payments" in executed_tasks(result.stdout), result.stdout
    assert run_doit(built_monorepo, "list").returncode == 0
