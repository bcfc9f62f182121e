"""Acceptance: `doit publish` on a fresh copy, then sign in as guest in headless Chromium.

Everything is real: the moto emulator that publish starts on a free port, its S3 serving
the site and its Cognito answering the page's InitiateAuth and RevokeToken, Debian's
chromium.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from fixtures.aws import local_client


def cognito(repo: Path) -> tuple[Any, str]:
    """A cognito-idp client for the emulator the page signs in at, and the page's app client id."""
    auth = json.loads((repo / ".mfe/local/outputs.json").read_text())["auth"]
    return local_client(auth["endpoint"], "cognito-idp", auth["region"]), auth["client_id"]


def user_pool_id(repo: Path) -> str:
    """The id of the user pool the page signs in to."""
    return str(json.loads((repo / ".mfe/local/outputs.json").read_text())["auth"]["user_pool_id"])


def sign_in(page: Page) -> dict[str, Any]:
    """Sign in as guest on the page's login form; the tokens the page stored."""
    page.fill("input[name=username]", "guest")
    page.fill("input[name=password]", "awsguest")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Accounts", level=2)).to_be_visible(timeout=10_000)
    tokens: dict[str, Any] = json.loads(page.evaluate("() => sessionStorage.getItem('mfe.tokens')"))
    return tokens


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


def until_refused(idp: Any, client_id: str, tokens: dict[str, Any], after: str) -> None:
    """Wait until Cognito refuses both tokens (the page sends the sign-out once the tab is
    signed out, without waiting for it)."""
    deadline = time.monotonic() + 10
    while (answers := accepted(idp, client_id, tokens)) != {"access": False, "refresh": False}:
        assert time.monotonic() < deadline, f"after the {after}, Cognito accepts {answers}"
        time.sleep(0.2)


def test_guest_signs_in_sees_the_micro_frontends_and_signs_out_at_cognito(
    published: str, built_monorepo: Path, page: Page
) -> None:
    """Signing out also ends the session at Cognito (RevokeToken), as Amplify's signOut
    does: a copy of the tokens stops working, where clearing the tab's storage alone left
    them valid for their lifetime; the user's session in another browser stays (a
    GlobalSignOut ended it too)."""
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
    elsewhere = idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "guest", "PASSWORD": "awsguest"},
    )["AuthenticationResult"]

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_role("heading", name="Payments", level=2)).to_have_count(0)
    assert page.evaluate("() => sessionStorage.getItem('mfe.tokens')") is None
    until_refused(idp, client_id, tokens, "sign-out")
    assert accepted(idp, client_id, elsewhere) == {"access": True, "refresh": True}
    with pytest.raises(idp.exceptions.NotAuthorizedException, match="has been revoked"):
        idp.get_user(AccessToken=tokens["AccessToken"])
    expect(page.get_by_role("alert")).to_have_count(0)


def test_sign_out_and_a_reload_end_a_session_whose_access_token_expired(
    published: str, built_monorepo: Path, page: Page
) -> None:
    """A tab open longer than its access token's validity, or reloaded after it, still ends
    its session at Cognito: GlobalSignOut refuses an expired access token, so the refresh
    token stayed valid (30 days); RevokeToken takes the refresh token. The app client's
    validity is set to a second, which the emulator honours as Cognito does."""
    idp, client_id = cognito(built_monorepo)
    idp.update_user_pool_client(
        UserPoolId=user_pool_id(built_monorepo),
        ClientId=client_id,
        AccessTokenValidity=1,
        IdTokenValidity=1,
        TokenValidityUnits={"AccessToken": "seconds", "IdToken": "seconds"},
    )
    page.goto(published)

    for end in ("sign out", "reload"):
        tokens = sign_in(page)
        deadline = time.monotonic() + 10
        while accepted(idp, client_id, tokens)["access"]:
            assert time.monotonic() < deadline, "the access token outlived its validity"
            time.sleep(0.2)
        assert accepted(idp, client_id, tokens) == {"access": False, "refresh": True}
        if end == "sign out":
            page.get_by_role("button", name="Sign out").click()
        else:
            page.reload()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        assert page.evaluate("() => sessionStorage.getItem('mfe.tokens')") is None
        until_refused(idp, client_id, tokens, end)
