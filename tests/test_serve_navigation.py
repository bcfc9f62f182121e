"""The dev server's SPA fallback: a deep link gets the shell page, by the deployed edge
function's rule (infra/spa-fallback.js), so a tab reloaded on `/accounts/overview` works
under `doit serve` as it does deployed. Real `doit serve`, httpx and headless Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from fixtures.serve import Served, serving

BROWSER_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
)


@pytest.fixture(scope="module")
def served(monorepo_built: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(monorepo_built, tmp_path_factory.mktemp("navigation")) as served:
        yield served


def answer(served: Served, path: str, accept: str | None = BROWSER_ACCEPT) -> httpx.Response:
    headers = {"Accept": accept} if accept is not None else {}
    return httpx.get(f"http://127.0.0.1:{served.shell_port}{path}", headers=headers, timeout=10)


def without_version(html: str) -> str:
    """The page without its build version (a build in between changes only that)."""
    return re.sub(r'data-version="[^"]*"', "", html)


@pytest.mark.parametrize(
    "path", ["/accounts/overview", "/accounts/", "/payments", "/deep/link/x", "/previews/"]
)
def test_a_navigation_to_a_deep_link_gets_the_shell_page(served: Served, path: str) -> None:
    page = answer(served, "/")
    deep = answer(served, path)
    assert deep.status_code == 200, (path, deep.text)
    assert deep.headers["Content-Type"] == page.headers["Content-Type"]
    assert deep.headers["Cache-Control"] == "no-store"
    assert without_version(deep.text) == without_version(page.text)
    assert "<mfe-accounts" in deep.text


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/main-ABC.js", BROWSER_ACCEPT),  # a file name: a missing one stays a 404
        ("/missing.png", BROWSER_ACCEPT),
        ("/deep/link/data.v2", BROWSER_ACCEPT),
        ("/accounts/overview", "application/json"),  # fetch(): no page for a missing API
        ("/accounts/overview", "*/*"),
        ("/accounts/overview", None),
        ("/_shared/accounts", BROWSER_ACCEPT),  # the shared modules' prefix: never the page
        ("/_mfe/nothing", BROWSER_ACCEPT),  # serve's own paths
    ],
)
def test_what_is_no_navigation_stays_a_404(served: Served, path: str, accept: str | None) -> None:
    assert answer(served, path, accept).status_code == 404


def test_a_navigation_under_a_preview_says_serve_has_no_previews(served: Served) -> None:
    """Deployed, it gets that preview's page; serve renders none, so no live page in its place."""
    response = answer(served, "/previews/pr-7/accounts/overview")
    assert response.status_code == 404
    assert "doit publish preview=NAME" in response.text


def test_a_tab_opened_on_a_deep_link_shows_every_app(served: Served, page: Page) -> None:
    page.goto(f"{served.url}accounts/overview")
    page.locator("h2", has_text="Accounts").wait_for(timeout=15_000)
    page.locator("h2", has_text="Payments").wait_for(timeout=15_000)
    assert page.url.endswith("/accounts/overview")
