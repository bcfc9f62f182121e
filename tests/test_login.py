"""Acceptance: `doit publish` on a fresh copy, then sign in as guest in headless Chromium.

Everything is real: the moto emulator that publish starts on a free port, its S3 serving
the site and its Cognito answering the page's InitiateAuth, Debian's chromium.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect


def test_guest_signs_in_and_sees_the_micro_frontends(published: str, page: Page) -> None:
    assert published.startswith("http://127.0.0.1:") and published.endswith("/index.html")
    page.goto(published)

    page.fill("input[name=username]", "guest")
    page.fill("input[name=password]", "not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible(timeout=10_000)
    expect(page.get_by_role("heading", name="Accounts", level=2)).to_have_count(0)

    page.fill("input[name=password]", "awsguest")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Accounts", level=2)).to_be_visible(timeout=10_000)
    expect(page.get_by_role("heading", name="Payments", level=2)).to_be_visible()
    assert "token" not in page.url.lower()
    stored = page.evaluate("() => Object.keys(sessionStorage).length")
    assert stored >= 1  # the tokens live in sessionStorage, not in the URL

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_role("heading", name="Payments", level=2)).to_have_count(0)
    assert page.evaluate("() => sessionStorage.getItem('mfe.tokens')") is None
