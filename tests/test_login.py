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
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Route, expect

from fixtures.aws import local_client
from fixtures.modules import Recorder
from fixtures.repo import run_doit
from fixtures.serve import wait_until


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
    wait_until(
        lambda: accepted(idp, client_id, tokens) == {"access": False, "refresh": False},
        lambda: f"after the {after}, Cognito accepts {accepted(idp, client_id, tokens)}",
        10,
    )


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


def short_validity(repo: Path, seconds: int) -> None:
    """Give the page's app client access and id tokens of `seconds`, which the emulator
    honours as Cognito does (AccessTokenValidity in TokenValidityUnits). UpdateUserPoolClient
    resets each setting it is not given, as Cognito's: the client's others are passed on."""
    idp, client_id = cognito(repo)
    described = idp.describe_user_pool_client(UserPoolId=user_pool_id(repo), ClientId=client_id)
    update = idp.meta.service_model.operation_model("UpdateUserPoolClient").input_shape
    settings = {k: v for k, v in described["UserPoolClient"].items() if k in update.members}
    units = {
        **settings.get("TokenValidityUnits", {}),
        "AccessToken": "seconds",
        "IdToken": "seconds",
    }
    changes = {
        "AccessTokenValidity": seconds,
        "IdTokenValidity": seconds,
        "TokenValidityUnits": units,
    }
    idp.update_user_pool_client(**{**settings, **changes})


def stored(page: Page) -> dict[str, Any] | None:
    """The tokens the page keeps in its tab's sessionStorage, or None."""
    tokens: dict[str, Any] | None = json.loads(
        page.evaluate("() => sessionStorage.getItem('mfe.tokens') || 'null'")
    )
    return tokens


def until_expired(idp: Any, client_id: str, tokens: dict[str, Any]) -> None:
    """Wait until Cognito refuses the access token: its validity has passed."""
    wait_until(
        lambda: not accepted(idp, client_id, tokens)["access"],
        "the access token outlived its validity",
        15,
    )


def leave_the_shell(page: Page, published: str) -> None:
    """Show another page of the site's origin in the tab: its sessionStorage stays, and no
    shell runs to renew the tokens in it."""
    page.goto(published.rsplit("/", 1)[0] + "/no-shell-here.txt")
    assert stored(page) is not None


def cut_off_cognito(route: Route) -> None:
    """Fail the page's Cognito calls as a network error does; let the site's files through."""
    target = route.request.headers.get("x-amz-target", "")
    if target.startswith("AWSCognitoIdentityProviderService."):
        route.abort("internetdisconnected")
    else:
        route.continue_()


def test_sign_out_ends_a_session_whose_first_access_token_expired(
    published: str, built_monorepo: Path, page: Page
) -> None:
    """A tab open longer than its access token's validity still ends its session at Cognito
    on sign-out: GlobalSignOut refuses an expired access token, so the refresh token stayed
    valid (30 days); RevokeToken takes the refresh token, and the tokens the tab renewed
    with it stop working too. The app client's validity is set to a second."""
    idp, client_id = cognito(built_monorepo)
    short_validity(built_monorepo, 1)
    page.goto(published)

    first = sign_in(page)
    until_expired(idp, client_id, first)
    assert accepted(idp, client_id, first) == {"access": False, "refresh": True}
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert stored(page) is None
    until_refused(idp, client_id, first, "sign out")


def test_a_signed_in_tab_renews_its_tokens_past_several_access_token_lifetimes(
    published: str, built_monorepo: Path, page: Page
) -> None:
    """The shell renews the access and id tokens with the refresh token (REFRESH_TOKEN_AUTH)
    before the access token expires, as Amplify does: a tab stays signed in, with the apps
    mounted, and the stored access token is one Cognito takes, long after the first one
    expired (an hour with the default validity; four seconds here)."""
    validity = 4
    idp, client_id = cognito(built_monorepo)
    short_validity(built_monorepo, validity)
    recorder = Recorder(page)
    page.goto(published)
    first = sign_in(page)
    signed_in = time.monotonic()

    seen = {first["AccessToken"]}
    while time.monotonic() - signed_in < 3 * validity:
        state, tokens = page.evaluate(
            """() => [document.querySelector('mfe-parent').dataset.mfeState,
                      JSON.parse(sessionStorage.getItem('mfe.tokens'))]"""
        )
        assert state == "mounted"
        assert tokens["RefreshToken"] == first["RefreshToken"]  # Cognito answers no new one
        seen.add(tokens["AccessToken"])
        time.sleep(0.2)
    assert len(seen) >= 4, "the tab renewed its tokens less than once per lifetime"
    assert accepted(idp, client_id, first) == {"access": False, "refresh": True}

    latest = stored(page)
    assert latest is not None
    wait_until(lambda: stored(page) != latest, "the tab stopped renewing its tokens", validity * 2)
    renewed = stored(page)  # a fresh one: Cognito takes it for seconds
    assert renewed is not None
    assert idp.get_user(AccessToken=renewed["AccessToken"])["Username"] == "guest"
    expect(page.get_by_role("heading", name="Accounts", level=2)).to_be_visible()
    expect(page.get_by_role("heading", name="Payments", level=2)).to_be_visible()
    expect(page.get_by_role("button", name="Sign in")).to_have_count(0)
    assert recorder.errors == []


def test_a_reload_after_the_access_token_expired_renews_it_and_mounts_the_apps(
    published: str, built_monorepo: Path, page: Page
) -> None:
    """A tab reloaded (or come back to) after its access token expired renews the tokens
    with the refresh token and mounts the apps, never showing the login form, as Amplify
    does; the login form only for a refused refresh token (the next test)."""
    idp, client_id = cognito(built_monorepo)
    short_validity(built_monorepo, 2)
    page.goto(published)
    sign_in(page)
    leave_the_shell(page, published)
    expired = stored(page)
    assert expired is not None
    until_expired(idp, client_id, expired)
    page.add_init_script(
        """window.mfeStates = [];
        new MutationObserver((records) => {
          for (const r of records) window.mfeStates.push(r.target.getAttribute('data-mfe-state'));
        }).observe(document, { attributes: true, subtree: true, attributeFilter: ['data-mfe-state'] });"""
    )

    page.goto(published)
    expect(page.get_by_role("heading", name="Accounts", level=2)).to_be_visible(timeout=10_000)
    expect(page.get_by_role("heading", name="Payments", level=2)).to_be_visible()
    assert "login" not in page.evaluate("() => window.mfeStates")
    renewed = stored(page)
    assert renewed is not None and renewed["AccessToken"] != expired["AccessToken"]
    assert renewed["RefreshToken"] == expired["RefreshToken"]
    assert idp.get_user(AccessToken=renewed["AccessToken"])["Username"] == "guest"


def test_a_refresh_token_revoked_elsewhere_signs_the_tab_out_at_its_next_renewal(
    published: str, built_monorepo: Path, page: Page
) -> None:
    """When Cognito refuses the refresh token (revoked elsewhere, or expired), the renewal
    signs the tab out: the login form, saying the session ended, and no stored tokens;
    whether the tab was open or comes back after its access token expired."""
    idp, client_id = cognito(built_monorepo)
    short_validity(built_monorepo, 2)
    page.goto(published)

    for when in ("open", "come back"):
        tokens = sign_in(page)
        if when == "come back":
            leave_the_shell(page, published)
            tokens = stored(page) or {}
            until_expired(idp, client_id, tokens)
        idp.revoke_token(Token=tokens["RefreshToken"], ClientId=client_id)
        if when == "come back":
            page.goto(published)
        expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=10_000)
        expect(page.get_by_role("alert")).to_contain_text("session has ended")
        expect(page.get_by_role("heading", name="Accounts", level=2)).to_have_count(0)
        assert stored(page) is None


def test_an_offline_tab_keeps_its_session_says_so_once_expired_and_renews_when_back_online(
    published: str, built_monorepo: Path, page: Page
) -> None:
    """A renewal that cannot reach Cognito (offline) does not sign the tab out: the apps stay
    mounted with the stored session, and once the access token has expired a notice says
    the session could not be renewed; back online, the tab renews at once and the notice
    goes. A load that cannot renew expired tokens does not mount the apps with them: the
    login form says why, and the tokens stay for the next try."""
    idp, client_id = cognito(built_monorepo)
    short_validity(built_monorepo, 2)
    page.goto(published)
    sign_in(page)

    page.context.set_offline(True)
    offline = stored(page)
    assert offline is not None
    until_expired(idp, client_id, offline)
    expect(page.get_by_role("alert")).to_contain_text("could not be renewed", timeout=10_000)
    expect(page.get_by_role("heading", name="Accounts", level=2)).to_be_visible()
    kept = stored(page)
    assert kept is not None and kept["RefreshToken"] == offline["RefreshToken"]

    page.context.set_offline(False)
    expect(page.get_by_role("alert")).to_have_count(0)
    renewed = stored(page)
    assert renewed is not None and renewed["AccessToken"] != kept["AccessToken"]
    assert accepted(idp, client_id, renewed)["refresh"]
    expect(page.get_by_role("heading", name="Payments", level=2)).to_be_visible()

    # A load that cannot renew expired tokens shows the login form saying why, keeps them.
    leave_the_shell(page, published)
    left = stored(page)
    assert left is not None
    until_expired(idp, client_id, left)
    page.route("**/*", cut_off_cognito)
    page.goto(published)
    expect(page.get_by_role("alert")).to_contain_text("could not be renewed", timeout=10_000)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert stored(page) == left
    page.unroute("**/*", cut_off_cognito)
    page.reload()
    expect(page.get_by_role("heading", name="Accounts", level=2)).to_be_visible(timeout=10_000)


def test_a_lasting_client_error_at_renewal_ends_the_session_naming_it(
    published: str, built_monorepo: Path, page: Page
) -> None:
    """A renewal that Cognito answers with a 4xx other than a refusal, one that asking again
    does not change (here the app client was deleted: ResourceNotFoundException), ends the
    session as a refused refresh token does, naming the error, where it was retried every
    15 s for good; offline, 5xx and throttling are still retried (the offline test)."""
    idp, client_id = cognito(built_monorepo)
    short_validity(built_monorepo, 2)
    page.goto(published)
    sign_in(page)

    idp.delete_user_pool_client(UserPoolId=user_pool_id(built_monorepo), ClientId=client_id)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=10_000)
    expect(page.get_by_role("alert")).to_contain_text("session has ended")
    expect(page.get_by_role("alert")).to_contain_text("ResourceNotFoundException")
    expect(page.get_by_role("heading", name="Accounts", level=2)).to_have_count(0)
    assert stored(page) is None


def test_signing_in_over_a_session_kept_for_its_renewal_revokes_the_kept_one(
    published: str, built_monorepo: Path, page: Page
) -> None:
    """A load that could not renew expired tokens (offline) shows the login form and keeps
    them for a retry; signing in there starts another session, and the kept one ends at
    Cognito (RevokeToken, best effort, as a sign-out): its refresh token no longer renews,
    where the sign-in had overwritten it in the tab, still valid, for 30 days."""
    idp, client_id = cognito(built_monorepo)
    short_validity(built_monorepo, 2)
    page.goto(published)
    sign_in(page)
    leave_the_shell(page, published)
    kept = stored(page)
    assert kept is not None
    until_expired(idp, client_id, kept)
    page.route("**/*", cut_off_cognito)
    page.goto(published)
    expect(page.get_by_role("alert")).to_contain_text("could not be renewed", timeout=10_000)
    page.unroute("**/*", cut_off_cognito)

    fresh = sign_in(page)
    assert fresh["RefreshToken"] != kept["RefreshToken"]
    wait_until(
        lambda: not accepted(idp, client_id, kept)["refresh"],
        "after the new sign-in, Cognito still renews the kept session",
        10,
    )
    assert accepted(idp, client_id, fresh)["refresh"]
    expect(page.get_by_role("heading", name="Accounts", level=2)).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)


def hold_timers(page: Page) -> None:
    """Stop the page's timers from firing, as Chrome's throttling of a background tab's
    timers can for up to a minute: its clock (installed by page.clock before the page
    loaded) stands still until `catch_up_date` moves Date on without firing a timer."""
    page.clock.pause_at(page.evaluate("Date.now()") / 1000 + 0.2)


def catch_up_date(page: Page) -> None:
    """Set the held page's Date to the real time; its timers stay unfired."""
    page.clock.set_system_time(time.time())


def until_renewed(page: Page, tokens: dict[str, Any], when: str) -> dict[str, Any]:
    """Wait until the page stores tokens other than `tokens`; those."""
    wait_until(lambda: stored(page) not in (tokens, None), f"the tab did not renew {when}", 10)
    return stored(page) or {}


def test_a_tab_whose_renewal_timer_did_not_fire_renews_when_shown_or_focused(
    published: str, built_monorepo: Path, page: Page
) -> None:
    """A tab in the background may get its renewal timer late (Chrome throttles a hidden
    tab's timers): when it becomes visible again or gets focus with a renewal due, it
    renews at once rather than use expired tokens until the timer fires. The page's clock
    is held, so no timer fires, while its Date follows the real time."""
    idp, client_id = cognito(built_monorepo)
    short_validity(built_monorepo, 4)
    page.clock.install()
    page.goto(published)
    tokens = sign_in(page)
    hold_timers(page)

    for target, event in (("document", "visibilitychange"), ("window", "focus")):
        until_expired(idp, client_id, tokens)
        catch_up_date(page)
        assert stored(page) == tokens  # no timer fired: the renewal is overdue
        page.evaluate(f"() => {target}.dispatchEvent(new Event('{event}'))")
        tokens = until_renewed(page, tokens, f"on {event}")
        assert idp.get_user(AccessToken=tokens["AccessToken"])["Username"] == "guest"
    expect(page.get_by_role("heading", name="Accounts", level=2)).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)


def test_apps_get_renewed_tokens_from_mfe_auth_and_hear_of_each_change(
    published: str, built_monorepo: Path, page: Page
) -> None:
    """`window.mfeAuth.session()` gives a page's apps tokens that are valid now, as
    Amplify's fetchAuthSession: past the access token's validity (the renewal timer held,
    as in a throttled tab) it renews first, once for concurrent callers, and the
    `mfe:session` event tells of every change; signed out, it rejects."""
    idp, client_id = cognito(built_monorepo)
    short_validity(built_monorepo, 4)
    renewals: list[str] = []
    page.on(
        "request",
        lambda request: (
            renewals.append(request.url)
            if "REFRESH_TOKEN_AUTH" in (request.post_data or "")
            else None
        ),
    )
    page.clock.install()
    page.add_init_script(
        """window.mfeSessions = [];
        addEventListener('mfe:session', (event) => window.mfeSessions.push(event.detail));"""
    )
    page.goto(published)
    first = sign_in(page)
    hold_timers(page)
    until_expired(idp, client_id, first)
    catch_up_date(page)

    sessions = page.evaluate("() => Promise.all([mfeAuth.session(), mfeAuth.session()])")
    assert sessions[0] == sessions[1]
    session = sessions[0]
    assert set(session) == {"accessToken", "idToken", "expiresAt"}
    assert session["accessToken"] != first["AccessToken"]
    assert session["expiresAt"] > time.time() * 1000
    assert idp.get_user(AccessToken=session["accessToken"])["Username"] == "guest"
    assert len(renewals) == 1
    heard = page.evaluate("() => window.mfeSessions")
    assert [s["accessToken"] for s in heard] == [first["AccessToken"], session["accessToken"]]

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert page.evaluate("() => window.mfeSessions.at(-1)") is None
    with pytest.raises(PlaywrightError, match="signed out"):
        page.evaluate("() => mfeAuth.session()")


def replace_auth(repo: Path, replaced: str) -> None:
    """Delete the page's user pool ("pool") or only its app client ("client") on the
    emulator, and publish again: provisioning makes a new one and the shell names it."""
    idp, client_id = cognito(repo)
    pool_id = user_pool_id(repo)
    if replaced == "pool":
        idp.delete_user_pool(UserPoolId=pool_id)
    else:  # the pool stays, so provisioning trusts the outputs file: look everything up
        idp.delete_user_pool_client(UserPoolId=pool_id, ClientId=client_id)
        (repo / ".mfe/local/outputs.json").unlink()
    run_doit(repo, "publish", timeout=300)


@pytest.mark.parametrize("replaced", ["pool", "client"])
def test_a_reload_after_the_pool_or_client_was_replaced_drops_its_tokens_and_shows_the_login(
    published: str, built_monorepo: Path, page: Page, replaced: str
) -> None:
    """Tokens a tab stored for a user pool or app client the page no longer names (the
    environment destroyed and made again: a new pool and client; or its client replaced)
    are no session, as Amplify, keying its stored tokens by client id, finds none: a
    reload drops them without revoking them at the new one, shows the login form without
    an error, and `mfeAuth.session()` rejects; signing in again gets the new client's
    tokens. Before, the tab showed the apps with the old pool's tokens."""
    idp, old_client = cognito(built_monorepo)
    old_pool = user_pool_id(built_monorepo)
    page.goto(published)
    old = sign_in(page)
    revokes: list[str] = []
    page.on(
        "request",
        lambda r: (
            revokes.append(r.url) if "RevokeToken" in r.headers.get("x-amz-target", "") else None
        ),
    )

    replace_auth(built_monorepo, replaced)
    idp, new_client = cognito(built_monorepo)
    assert new_client != old_client
    assert (user_pool_id(built_monorepo) == old_pool) == (replaced == "client")
    recorder = Recorder(page)
    page.reload()

    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=10_000)
    expect(page.get_by_role("heading", name="Accounts", level=2)).to_have_count(0)
    expect(page.get_by_role("alert")).to_have_count(0)
    assert stored(page) is None
    with pytest.raises(PlaywrightError, match="signed out"):
        page.evaluate("() => mfeAuth.session()")
    assert recorder.errors == []

    new = sign_in(page)
    assert new["RefreshToken"] != old["RefreshToken"]
    assert accepted(idp, new_client, new) == {"access": True, "refresh": True}
    assert revokes == []
