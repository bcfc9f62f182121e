"""Shared fixtures: a throwaway copy of this monorepo and a way to run real doit in it.

`npm ci` runs once per test session in a template copy (fixtures/repo.py: git's files,
never a virtualenv); each test gets its own copy of that with node_modules hard-linked,
so tests never touch the working tree or each other.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.repo import REPO, copy_sources, link_copy
from playwright.sync_api import Browser, Page, sync_playwright

__all__ = ["REPO"]  # re-exported for the test modules that import it from here

CHROMIUM = "/usr/bin/chromium"  # Debian's package: no browser download is possible here
CHROMIUM_ARGS = [  # headless as root on a machine without outside network
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def run_doit(
    root: Path,
    *args: str,
    check: bool = True,
    timeout: float = 300,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `doit ARGS` in `root` the way a user would, returning its combined output."""
    result = subprocess.run(
        [sys.executable, "-m", "doit", *args],
        cwd=root,
        env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"doit {' '.join(args)} exited {result.returncode}:\n{result.stdout}")
    return result


def executed_tasks(output: str) -> set[str]:
    """Task names doit reports as run ('.  name'), not up to date ('-- name')."""
    return {line[3:].strip() for line in output.splitlines() if line.startswith(".  ")}


def up_to_date_tasks(output: str) -> set[str]:
    return {line[3:].strip() for line in output.splitlines() if line.startswith("-- ")}


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the session, driven by Playwright."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies or storage from other tests) and its page."""
    context = browser.new_context()
    yield context.new_page()
    context.close()


@pytest.fixture(scope="session")
def monorepo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the monorepo with JS dependencies installed once, never modified by tests."""
    root = copy_sources(tmp_path_factory.mktemp("template") / "repo")
    run_doit(root, "install")
    return root


@pytest.fixture
def monorepo(monorepo_template: Path, tmp_path: Path) -> Iterator[Path]:
    """A private copy of the monorepo (node_modules hard-linked from the template) for one test."""
    yield link_copy(monorepo_template, tmp_path / "repo")
