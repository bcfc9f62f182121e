"""Acceptance: `doit publish` on a fresh copy, then sign in as guest in headless Chromium.

Everything is real: the moto emulator that publish starts on a free port, its S3 serving
the site and its Cognito answering the page's InitiateAuth and GlobalSignOut, Debian's
chromium.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from fixtures.aws import local_client


def cognito(repo: Path) -> tuple[Any, str]:
    """A cognito-idp client for the emulator the page signs in at, and the page's app client id."""
    auth = json.loads((repo / ".mfe/local/outputs.json").read_text())["auth"]
    return local_client(auth["endpoint"], "cognito-idp", auth["region"]), auth["client_id"]


def accepted(idp: Any, client_id: str, tokens: dict[str, str]) -> dict[str, bool]:
    """Whether Cognito still takes the access token (GetUser) and the refresh token."""
    answers = {}
    for name, call in (
        ("access", lambda: idp.get_user(AccessToken=tokens["AccessToken"])),
        (
            "refresh",
            lambda: idp.initiate_auth(
                ClientId=client_id,
                AuthFlow="REFRESH_TOKEN_AUTH",
                AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]},
            ),
        ),
    ):
        try:
            call()
            answers[name] = True
        except idp.exceptions.NotAuthorizedException:
            answers[name] = False
    return answers


def test_guest_signs_in_sees_the_micro_frontends_and_signs_out_at_cognito(
    published: str, built_monorepo: Path, page: Page
) -> None:
    """Signing out also ends the session at Cognito (GlobalSignOut), as Amplify's signOut
    does: a copy of the tokens stops working, where clearing the tab's storage alone left
    them valid for their lifetime."""
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
    tokens = json.loads(page.evaluate("() => sessionStorage.getItem('mfe.tokens')"))
    assert tokens["AccessToken"] and tokens["RefreshToken"]  # in sessionStorage, not the URL
    idp, client_id = cognito(built_monorepo)
    assert accepted(idp, client_id, tokens) == {"access": True, "refresh": True}

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_role("heading", name="Payments", level=2)).to_have_count(0)
    assert page.evaluate("() => sessionStorage.getItem('mfe.tokens')") is None
    deadline = time.monotonic() + 10  # the page sends the sign-out once the tab is signed out
    while (answers := accepted(idp, client_id, tokens)) != {"access": False, "refresh": False}:
        assert time.monotonic() < deadline, f"Cognito still accepts the tokens: {answers}"
        time.sleep(0.2)
    expect(page.get_by_role("alert")).to_have_count(0)
