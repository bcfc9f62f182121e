"""A long-lived emulator keeps working as it fills up (issue 15): thousands of objects later,
`doit publish` and `doit plan` still recognise and use it, and its log has not grown; and
publish/prune cycles leave it holding what its buckets hold, not all they ever held. Its
Cognito bounds the tokens it keeps, issues them for their app client's validity, and revokes
them on the shell's sign-out (RevokeToken, GlobalSignOut) in any region.

The scale target (30,000 objects, where the probe's time is measured) is
bench/bench_emulator.py's; this test needs only enough objects that a listing takes several
pages (1,000 keys each) and that a log line per request would be hundreds of kB."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mfe.envs.moto_cognito import honour_token_validity
from mfe.envs.moto_patches import (
    KEPT_INVALIDATIONS,
    KEPT_REFRESH_TOKENS,
    REMEMBERED_HOSTS,
    expire_cognito_tokens,
    remember_backends,
)

from fixtures.aws import fill_bucket, free_port, local_client
from fixtures.config import use_port
from fixtures.repo import run_doit
from fixtures.s3 import S3Server, Site, _distribution, objects, render_shell, write_app

OBJECTS = 5_000


@pytest.fixture
def repo(built_monorepo: Path) -> Iterator[Path]:
    use_port(built_monorepo, free_port())
    yield built_monorepo
    run_doit(built_monorepo, "local_stop", check=False)


def test_publish_and_plan_work_after_5000_objects(repo: Path) -> None:
    first = run_doit(repo, "publish")
    log = repo / ".mfe" / "local" / "emulator.log"
    assert "started the local AWS emulator" in first.stdout and str(log) in first.stdout
    endpoint = first.stdout.strip().splitlines()[-1].split("/mfe-demo-local")[0]
    assert endpoint.startswith("http://127.0.0.1:")

    fill_bucket(endpoint, "filler", OBJECTS)
    assert local_client(endpoint).list_objects_v2(Bucket="filler")["KeyCount"] == 1000

    again = run_doit(repo, "publish")
    assert "started the local AWS emulator" not in again.stdout  # the same server, reused
    assert again.stdout.strip().splitlines()[-1].startswith(endpoint)
    plan = run_doit(repo, "plan")
    assert plan.stdout.strip().splitlines()[-1].startswith(endpoint)
    assert log.stat().st_size < 10_000, log.read_text()[-2000:]  # no line per request

    stopped = run_doit(repo, "local_stop")
    assert "stopped the local AWS emulator" in stopped.stdout
    assert "in memory" in stopped.stdout and "doit publish" in stopped.stdout


CYCLES = 12


def models(server: S3Server) -> dict[str, int]:
    """How many objects of each of moto's model classes the emulator tracks (its dashboard)."""
    data = httpx.get(f"{server.endpoint}/moto-api/data.json", timeout=60).json()
    return {f"{s}.{name}": len(found) for s, named in data.items() for name, found in named.items()}


def test_publish_and_prune_cycles_leave_the_emulator_holding_only_what_exists(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """A week of publishing: each cycle ships a new chunk (and a new page, pointer, version
    list) and `--prune` deletes the previous release's. The emulator keeps one `FakeKey`
    per object its buckets hold, not one per object ever uploaded, so its memory follows
    what it stores (measured: RSS flat after warm-up over 60 cycles, where it grew ~170 kB
    a cycle while moto kept them all)."""
    site = Site(tmp_path / "a", moto_s3, keep_releases=1, grace_seconds=0)
    for cycle in range(CYCLES):
        chunk = {f"chunk-{os.urandom(5).hex()}.js": os.urandom(20_000)}
        write_app(site.root, "accounts", f"v{cycle}", extra=chunk)
        render_shell(site.root, site.outputs)
        site.publish(prune=True)
    s3 = moto_s3.client()
    stored = sum(len(objects(moto_s3, b["Name"])) for b in s3.list_buckets()["Buckets"])
    tracked = models(moto_s3)
    assert tracked["s3.FakeKey"] == stored
    assert tracked["s3.FakeAcl"] <= stored + len(s3.list_buckets()["Buckets"])


def test_the_emulator_keeps_the_newest_invalidations_of_distributions_that_exist(
    moto_s3: S3Server,
) -> None:
    """moto kept every invalidation ever made, one or more per publish, and those of deleted
    distributions: a week of publishing grew the emulator by each. It keeps the newest
    KEPT_INVALIDATIONS of a distribution (a ListInvalidations page, as much as a publish
    reads looking for its release's) and none of a deleted one."""
    cf = moto_s3.client("cloudfront")
    made = cf.create_distribution(DistributionConfig=_distribution("soak"))["Distribution"]
    dist = made["Id"]
    ids = [
        cf.create_invalidation(
            DistributionId=dist,
            InvalidationBatch={"CallerReference": f"r{n}", "Paths": {"Quantity": 1, "Items": ["/index.html"]}},
        )["Invalidation"]["Id"]
        for n in range(KEPT_INVALIDATIONS + 20)
    ]  # fmt: skip
    listed = cf.list_invalidations(DistributionId=dist)["InvalidationList"]
    assert listed["Quantity"] == KEPT_INVALIDATIONS
    assert {item["Id"] for item in listed["Items"]} == set(ids[-KEPT_INVALIDATIONS:])
    newest = cf.get_invalidation(DistributionId=dist, Id=ids[-1])["Invalidation"]
    assert newest["InvalidationBatch"]["CallerReference"] == f"r{len(ids) - 1}"
    with pytest.raises(cf.exceptions.NoSuchInvalidation):
        cf.get_invalidation(DistributionId=dist, Id=ids[0])

    before = models(moto_s3).get("cloudfront.Invalidation", 0)
    etag = cf.get_distribution(Id=dist)["ETag"]
    cf.delete_distribution(Id=dist, IfMatch=etag)
    assert models(moto_s3).get("cloudfront.Invalidation", 0) == before - KEPT_INVALIDATIONS


def test_the_backend_memo_keeps_the_most_recently_used_host_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The emulator remembers which service a host name belongs to, for every request; a
    client may send any host name (a virtual-hosted bucket's, say), so it remembers the
    REMEMBERED_HOSTS most recently used, not every name it ever saw, and answers the same
    for a name it has forgotten."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    original = DomainDispatcherApplication.get_backend_for_host
    monkeypatch.setattr(DomainDispatcherApplication, "get_backend_for_host", original)
    remember_backends()
    app = DomainDispatcherApplication(create_backend_app)
    for n in range(REMEMBERED_HOSTS * 3):
        assert app.get_backend_for_host(f"bucket-{n}.s3.amazonaws.com") == "s3"
    assert app.get_backend_for_host("bucket-0.s3.amazonaws.com") == "s3"  # forgotten, found
    memo = getattr(app.get_backend_for_host, "cache_info", None)
    assert memo is not None, "the memo has no bound"
    assert memo().currsize == REMEMBERED_HOSTS


FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
"""The sign-in flows of the tests' app client, passed again on each UpdateUserPoolClient
(which resets what it is not given, as Cognito's)."""


def guest_pool(idp: Any, *users: str) -> tuple[str, str]:
    """A pool (id, app client id) whose `users` sign in with USER_PASSWORD_AUTH."""
    pool = idp.create_user_pool(PoolName="tokens")["UserPool"]["Id"]
    client = idp.create_user_pool_client(
        UserPoolId=pool,
        ClientName="shell",
        ExplicitAuthFlows=FLOWS,
    )["UserPoolClient"]["ClientId"]
    for user in users:
        idp.admin_create_user(UserPoolId=pool, Username=user)
        idp.admin_set_user_password(
            UserPoolId=pool, Username=user, Password="Awsguest-1", Permanent=True
        )
    return pool, client


def sign_in(idp: Any, client: str, user: str) -> dict[str, Any]:
    """The login page's call: the tokens of one sign-in."""
    return idp.initiate_auth(
        ClientId=client,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": user, "PASSWORD": "Awsguest-1"},
    )["AuthenticationResult"]


def refreshes(idp: Any, client: str, token: str) -> bool:
    try:
        idp.initiate_auth(
            ClientId=client, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": token}
        )
    except idp.exceptions.NotAuthorizedException:
        return False
    return True


def test_the_emulator_keeps_the_newest_refresh_tokens_of_each_user(moto_s3: S3Server) -> None:
    """moto kept every token of every sign-in (~3 KB each), for good. Refresh tokens live
    for weeks, so the emulator keeps the newest KEPT_REFRESH_TOKENS of each user and client:
    those keep refreshing, older ones answer NotAuthorized, another user's are untouched,
    and the newest sign-in's access token works."""
    idp = moto_s3.client("cognito-idp")
    _, client = guest_pool(idp, "guest", "other")
    others = sign_in(idp, client, "other")["RefreshToken"]
    signed = [sign_in(idp, client, "guest") for _ in range(KEPT_REFRESH_TOKENS + 5)]
    answers = [refreshes(idp, client, tokens["RefreshToken"]) for tokens in signed]
    assert answers == [False] * 5 + [True] * KEPT_REFRESH_TOKENS
    assert refreshes(idp, client, others)
    user = idp.get_user(AccessToken=signed[-1]["AccessToken"])
    assert user["Username"] == "guest"


def test_expired_access_and_id_tokens_are_dropped_when_new_ones_are_issued(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The emulator's patch on moto in this process, its clock moved past moto's token
    lifetime (an hour): tokens younger than it all keep working; once past it, the next
    sign-in drops them, so the pool holds an hour's worth of sign-ins, not all it ever had."""
    from moto import mock_aws
    from moto.cognitoidp.models import CognitoIdpUserPool, cognitoidp_backends

    for name in (
        "__init__",
        "create_access_token",
        "create_id_token",
        "create_refresh_token",
        "sign_out",
    ):
        monkeypatch.setattr(CognitoIdpUserPool, name, getattr(CognitoIdpUserPool, name))
    now = [time.time()]
    expire_cognito_tokens(clock=lambda: now[0])
    with mock_aws():
        idp = local_client("https://cognito-idp.us-east-1.amazonaws.com", "cognito-idp")
        pool_id, client = guest_pool(idp, "guest")
        pool = cognitoidp_backends["123456789012"]["us-east-1"].user_pools[pool_id]
        early = [sign_in(idp, client, "guest") for _ in range(5)]
        now[0] += 3500  # still within the hour
        later = [sign_in(idp, client, "guest") for _ in range(5)]
        assert len(pool.access_tokens) == len(pool.id_tokens) == 10
        for tokens in early + later:
            assert idp.get_user(AccessToken=tokens["AccessToken"])["Username"] == "guest"

        now[0] = time.time() + 3601  # every token issued so far has expired
        fresh = sign_in(idp, client, "guest")
        now[0] = time.time()  # moto stamps `exp` by the real clock: the fresh ones are valid
        assert list(pool.access_tokens) == [fresh["AccessToken"]]
        assert list(pool.id_tokens) == [fresh["IdToken"]]
        assert idp.get_user(AccessToken=fresh["AccessToken"])["Username"] == "guest"
        with pytest.raises(idp.exceptions.NotAuthorizedException):
            idp.get_user(AccessToken=later[-1]["AccessToken"])
        assert refreshes(idp, client, later[-1]["RefreshToken"])  # a refresh token lives on

        last = sign_in(idp, client, "guest")
        idp.global_sign_out(AccessToken=last["AccessToken"])
        assert not pool.refresh_tokens  # revoked ones go, and answer as revoked ones did
        assert not refreshes(idp, client, last["RefreshToken"])


def test_a_browsers_sign_out_revokes_the_tokens_of_a_pool_in_any_region(
    moto_s3: S3Server,
) -> None:
    """A page's global sign-out is a GlobalSignOut the browser sends unsigned, so moto takes
    its region from the host name (127.0.0.1: us-east-1). moto finds the pool of a sign-in's or
    a GetUser's token in any region, but looked for a sign-out's in that one alone: with the
    local environment's region set to another, the sign-out answered NotAuthorized and the
    tokens stayed valid. Now it revokes them, and answers the page's origin (CORS)."""
    idp = local_client(moto_s3.endpoint, "cognito-idp", region="eu-west-1")
    _, client = guest_pool(idp, "guest")
    tokens = sign_in(idp, client, "guest")
    assert idp.get_user(AccessToken=tokens["AccessToken"])["Username"] == "guest"
    page = "http://127.0.0.1:4567"
    answer = httpx.post(
        f"{moto_s3.endpoint}/",
        headers={
            "Origin": page,
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AWSCognitoIdentityProviderService.GlobalSignOut",
        },
        content=json.dumps({"AccessToken": tokens["AccessToken"]}),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers.get("Access-Control-Allow-Origin") == page
    with pytest.raises(idp.exceptions.NotAuthorizedException):
        idp.get_user(AccessToken=tokens["AccessToken"])
    assert not refreshes(idp, client, tokens["RefreshToken"])


PAGE = "http://127.0.0.1:4567"
"""The origin of a page calling the emulator's Cognito (CORS)."""


def browser_call(endpoint: str, action: str, body: dict[str, Any]) -> httpx.Response:
    """A Cognito call as the shell's page makes it: unsigned, so naming no region."""
    return httpx.post(
        f"{endpoint}/",
        headers={
            "Origin": PAGE,
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"AWSCognitoIdentityProviderService.{action}",
        },
        content=json.dumps(body),
        timeout=30,
    )


def test_revoke_token_ends_one_session_of_a_pool_in_any_region(moto_s3: S3Server) -> None:
    """The shell's sign-out is a RevokeToken with the refresh token, as Amplify's (moto has
    none: NotImplementedError). Sent unsigned by the browser, it finds the pool in any
    region; it revokes the refresh token and the access tokens issued with it and from it
    (GetUser: "Access Token has been revoked"), and leaves the user's other sessions alone."""
    idp = local_client(moto_s3.endpoint, "cognito-idp", region="eu-west-1")
    _, client = guest_pool(idp, "guest")
    ended, kept = sign_in(idp, client, "guest"), sign_in(idp, client, "guest")
    renewed = idp.initiate_auth(
        ClientId=client,
        AuthFlow="REFRESH_TOKEN_AUTH",
        AuthParameters={"REFRESH_TOKEN": ended["RefreshToken"]},
    )["AuthenticationResult"]

    answer = browser_call(
        moto_s3.endpoint, "RevokeToken", {"Token": ended["RefreshToken"], "ClientId": client}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers.get("Access-Control-Allow-Origin") == PAGE
    assert not refreshes(idp, client, ended["RefreshToken"])
    for access in (ended["AccessToken"], renewed["AccessToken"]):
        with pytest.raises(idp.exceptions.NotAuthorizedException, match="has been revoked"):
            idp.get_user(AccessToken=access)
    assert idp.get_user(AccessToken=kept["AccessToken"])["Username"] == "guest"
    assert refreshes(idp, client, kept["RefreshToken"])


def test_revoke_token_answers_what_cognito_answers(moto_s3: S3Server) -> None:
    """As AWS documents RevokeToken and the revocation endpoint: a token revoked already or
    never issued answers 200 and changes nothing; a client id of no client, or of another
    client than the token's, is refused (UnauthorizedException); an access token is not a
    refresh token (UnsupportedTokenTypeException); a client without token revocation
    refuses it (UnsupportedOperationException)."""
    idp = local_client(moto_s3.endpoint, "cognito-idp", region="eu-west-1")
    pool, client = guest_pool(idp, "guest")
    ended, kept = sign_in(idp, client, "guest"), sign_in(idp, client, "guest")
    idp.revoke_token(Token=ended["RefreshToken"], ClientId=client)

    idp.revoke_token(Token=ended["RefreshToken"], ClientId=client)
    idp.revoke_token(Token="not-a-token", ClientId=client)
    with pytest.raises(idp.exceptions.UnauthorizedException):
        idp.revoke_token(Token=kept["RefreshToken"], ClientId="nosuchclient")
    other = idp.create_user_pool_client(
        UserPoolId=pool, ClientName="other", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    with pytest.raises(idp.exceptions.UnauthorizedException):
        idp.revoke_token(Token=kept["RefreshToken"], ClientId=other)
    with pytest.raises(idp.exceptions.UnsupportedTokenTypeException):
        idp.revoke_token(Token=kept["AccessToken"], ClientId=client)
    assert refreshes(idp, client, kept["RefreshToken"])
    assert idp.get_user(AccessToken=kept["AccessToken"])["Username"] == "guest"

    idp.update_user_pool_client(
        UserPoolId=pool, ClientId=client, ExplicitAuthFlows=FLOWS, EnableTokenRevocation=False
    )
    with pytest.raises(idp.exceptions.UnsupportedOperationException):
        idp.revoke_token(Token=kept["RefreshToken"], ClientId=client)
    assert refreshes(idp, client, kept["RefreshToken"])


def test_tokens_live_for_their_clients_validity(moto_s3: S3Server) -> None:
    """moto issued every access token for an hour, whatever the app client's
    AccessTokenValidity (the local pool's client sets AccessTokenMinutes), and took an
    expired one as long as it kept it. Now a token lives for its client's validity (hours
    unless TokenValidityUnits say otherwise); once expired, GetUser and GlobalSignOut refuse
    it, as Cognito's, and only RevokeToken, which needs no access token, ends its session."""
    idp = local_client(moto_s3.endpoint, "cognito-idp", region="eu-west-1")
    pool, client = guest_pool(idp, "guest")
    assert sign_in(idp, client, "guest")["ExpiresIn"] == 3600
    idp.update_user_pool_client(
        UserPoolId=pool, ClientId=client, ExplicitAuthFlows=FLOWS, AccessTokenValidity=2
    )
    assert sign_in(idp, client, "guest")["ExpiresIn"] == 2 * 3600
    idp.update_user_pool_client(
        UserPoolId=pool,
        ClientId=client,
        ExplicitAuthFlows=FLOWS,
        AccessTokenValidity=1,
        IdTokenValidity=1,
        TokenValidityUnits={"AccessToken": "seconds", "IdToken": "seconds"},
    )
    tokens = sign_in(idp, client, "guest")
    assert tokens["ExpiresIn"] == 1
    deadline = time.monotonic() + 10
    while True:
        try:
            idp.get_user(AccessToken=tokens["AccessToken"])
        except idp.exceptions.NotAuthorizedException:
            break
        assert time.monotonic() < deadline, "the access token outlived its validity"
        time.sleep(0.2)
    with pytest.raises(idp.exceptions.NotAuthorizedException):
        idp.global_sign_out(AccessToken=tokens["AccessToken"])
    assert refreshes(idp, client, tokens["RefreshToken"])  # the session lives on

    answer = browser_call(
        moto_s3.endpoint, "RevokeToken", {"Token": tokens["RefreshToken"], "ClientId": client}
    )
    assert answer.status_code == 200, answer.text
    assert not refreshes(idp, client, tokens["RefreshToken"])


def refusal(idp: Any, call: Any, **params: Any) -> str:
    """The message of the NotAuthorizedException `call(**params)` answers (fails if none)."""
    with pytest.raises(idp.exceptions.NotAuthorizedException) as refused:
        call(**params)
    return str(refused.value.response["Error"]["Message"])


def refresh_refusal(idp: Any, client: str, token: str) -> str:
    return refusal(
        idp,
        idp.initiate_auth,
        ClientId=client,
        AuthFlow="REFRESH_TOKEN_AUTH",
        AuthParameters={"REFRESH_TOKEN": token},
    )


def test_revoked_and_expired_tokens_are_refused_in_cognitos_words(moto_s3: S3Server) -> None:
    """moto answered "Invalid token" to GetUser (and echoed the token to GlobalSignOut) for
    an access token a global sign-out revoked or past its validity; Cognito says "Access
    Token has been revoked" / "Access Token has expired", and "Refresh Token has been
    revoked" to REFRESH_TOKEN_AUTH with a refresh token the sign-out revoked. A page and
    Amplify tell a session ended by a sign-out elsewhere from one that expired by these."""
    idp = local_client(moto_s3.endpoint, "cognito-idp", region="eu-west-1")
    pool, client = guest_pool(idp, "guest")
    ended, elsewhere = sign_in(idp, client, "guest"), sign_in(idp, client, "guest")
    answer = browser_call(moto_s3.endpoint, "GlobalSignOut", {"AccessToken": ended["AccessToken"]})
    assert answer.status_code == 200, answer.text
    for tokens in (ended, elsewhere):  # a global sign-out ends every session of the user
        access = tokens["AccessToken"]
        revoked = "Access Token has been revoked"
        assert refusal(idp, idp.get_user, AccessToken=access) == revoked
        assert refusal(idp, idp.global_sign_out, AccessToken=access) == revoked
        assert (
            refresh_refusal(idp, client, tokens["RefreshToken"]) == "Refresh Token has been revoked"
        )

    idp.update_user_pool_client(
        UserPoolId=pool,
        ClientId=client,
        ExplicitAuthFlows=FLOWS,
        AccessTokenValidity=1,
        TokenValidityUnits={"AccessToken": "seconds"},
    )
    tokens = sign_in(idp, client, "guest")
    time.sleep(1.5)
    expired = "Access Token has expired"
    assert refusal(idp, idp.get_user, AccessToken=tokens["AccessToken"]) == expired
    assert refusal(idp, idp.global_sign_out, AccessToken=tokens["AccessToken"]) == expired
    assert refusal(idp, idp.get_user, AccessToken="not-a-token") != expired


def test_a_refresh_token_ends_after_its_clients_refresh_token_validity(
    moto_s3: S3Server,
) -> None:
    """moto's refresh tokens never expired, whatever the app client's RefreshTokenValidity
    (the local pool's client sets RefreshTokenDays); Cognito refuses one past it: "Refresh
    Token has expired", also when asked again (the emulator has dropped it by then)."""
    idp = local_client(moto_s3.endpoint, "cognito-idp", region="eu-west-1")
    pool, client = guest_pool(idp, "guest")
    idp.update_user_pool_client(
        UserPoolId=pool,
        ClientId=client,
        ExplicitAuthFlows=FLOWS,
        RefreshTokenValidity=2,
        TokenValidityUnits={"RefreshToken": "seconds"},
    )
    tokens = sign_in(idp, client, "guest")
    assert refreshes(idp, client, tokens["RefreshToken"])
    time.sleep(2.5)
    for _ in range(2):
        assert refresh_refusal(idp, client, tokens["RefreshToken"]) == "Refresh Token has expired"
    with pytest.raises(idp.exceptions.NotAuthorizedException, match="Refresh Token has expired"):
        idp.admin_initiate_auth(
            UserPoolId=pool,
            ClientId=client,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]},
        )
    assert refreshes(idp, client, sign_in(idp, client, "guest")["RefreshToken"])


def test_expired_refresh_tokens_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator's patches on moto in this process, its clock moved on: a refresh token
    of a client that sets no validity lives Cognito's 30 days, then is refused, and the pool
    no longer holds it once refused or once a sign-in issues a new one: a week of short
    sign-ins does not keep every refresh token for good."""
    from moto import mock_aws
    from moto.cognitoidp.models import CognitoIdpBackend, CognitoIdpUserPool, cognitoidp_backends

    for cls, names in (
        (
            CognitoIdpUserPool,
            (
                "__init__",
                "create_access_token",
                "create_id_token",
                "create_refresh_token",
                "create_jwt",
                "sign_out",
            ),
        ),
        (CognitoIdpBackend, ("initiate_auth", "admin_initiate_auth")),
    ):
        for name in names:
            monkeypatch.setattr(cls, name, getattr(cls, name))
    now = [time.time()]
    expire_cognito_tokens(clock=lambda: now[0])
    honour_token_validity(clock=lambda: now[0])
    with mock_aws():
        idp = local_client("https://cognito-idp.us-east-1.amazonaws.com", "cognito-idp")
        pool_id, client = guest_pool(idp, "guest")
        pool = cognitoidp_backends["123456789012"]["us-east-1"].user_pools[pool_id]
        first = sign_in(idp, client, "guest")["RefreshToken"]
        now[0] += 30 * 86400 - 60
        assert refreshes(idp, client, first)
        now[0] += 61
        second = sign_in(idp, client, "guest")["RefreshToken"]
        assert list(pool.refresh_tokens) == [second]
        assert refresh_refusal(idp, client, first) == "Refresh Token has expired"

        now[0] += 30 * 86400 + 1
        assert refresh_refusal(idp, client, second) == "Refresh Token has expired"
        assert not pool.refresh_tokens


def test_update_user_pool_client_resets_what_it_is_not_given(moto_s3: S3Server) -> None:
    """Cognito's UpdateUserPoolClient sets each setting it is not given to its default;
    moto merged the update into the old settings, so a call that works here (a setting left
    out, token revocation turned off) behaved otherwise on AWS. The client's name stays."""
    idp = local_client(moto_s3.endpoint, "cognito-idp", region="eu-west-1")
    pool, client = guest_pool(idp, "guest")
    idp.update_user_pool_client(
        UserPoolId=pool,
        ClientId=client,
        ExplicitAuthFlows=FLOWS,
        EnableTokenRevocation=False,
        RefreshTokenValidity=5,
        AccessTokenValidity=2,
    )
    tokens = sign_in(idp, client, "guest")
    with pytest.raises(idp.exceptions.UnsupportedOperationException):
        idp.revoke_token(Token=tokens["RefreshToken"], ClientId=client)

    updated = idp.update_user_pool_client(
        UserPoolId=pool, ClientId=client, ExplicitAuthFlows=FLOWS, IdTokenValidity=3
    )["UserPoolClient"]
    described = idp.describe_user_pool_client(UserPoolId=pool, ClientId=client)["UserPoolClient"]
    for settings in (updated, described):
        assert settings["ClientName"] == "shell"
        assert settings["IdTokenValidity"] == 3
        assert settings["EnableTokenRevocation"] is True
        assert settings["RefreshTokenValidity"] == 30
        assert settings.get("AccessTokenValidity") != 2
    assert sign_in(idp, client, "guest")["ExpiresIn"] == 3600  # the access token's default
    idp.revoke_token(Token=tokens["RefreshToken"], ClientId=client)
    assert not refreshes(idp, client, tokens["RefreshToken"])
