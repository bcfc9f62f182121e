"""What the emulator adds to moto's Cognito, where a page would see it answer otherwise than
AWS (applied with `mfe.envs.moto_patches` by `mfe.envs.moto_server.application`): app
clients' token lifetimes (refresh tokens' too), RevokeToken (the shell's sign-out), the
words of a refusal of a revoked or expired token, and UpdateUserPoolClient's reset of the
settings it is not given."""

from __future__ import annotations

import base64
import functools
import json
import time
from collections.abc import Callable
from typing import Any

from mfe.envs.moto_patches import LiveTokens, drop_expired, token_claims, token_expiry

VALIDITY_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
"""Cognito's TokenValidityUnits, in seconds."""

VALIDITY_DEFAULTS = {
    "access": ("AccessToken", None, "hours"),
    "id": ("IdToken", None, "hours"),
    "refresh": ("RefreshToken", 30, "days"),
}
"""Per token use: the app client's setting (`<key>Validity`, `TokenValidityUnits[<key>]`),
Cognito's default validity (None: moto's own, an hour) and default unit."""

REFRESH_FLOWS = ("REFRESH_TOKEN_AUTH", "REFRESH_TOKEN")


def token_lifetime(client_config: dict[str, Any], token_use: str) -> int | None:
    """Seconds a token issued through an app client lives: its AccessTokenValidity
    (IdTokenValidity, RefreshTokenValidity) in its TokenValidityUnits, in Cognito's default
    unit when none is set (hours; days for refresh tokens); None when the client sets no
    access or id token validity. A refresh token lives 30 days unless the client says."""
    if token_use not in VALIDITY_DEFAULTS:
        return None
    key, default, default_unit = VALIDITY_DEFAULTS[token_use]
    validity = client_config.get(f"{key}Validity") or default
    if not validity:
        return None
    unit = (client_config.get("TokenValidityUnits") or {}).get(key) or default_unit
    return int(validity) * VALIDITY_UNITS.get(unit, VALIDITY_UNITS[default_unit])


def b64url(data: dict[str, Any]) -> str:
    """`data` as JSON in unpadded base64url, a JWT part."""
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def expiring_refresh_token(token_id: str, expiry: int) -> str:
    """A refresh token that says when it expires: an unsecured JWT (RFC 7519, section 6)
    with `jti`, `exp` and `token_use`. Cognito's are opaque; these carry their expiry so that
    one the emulator has dropped still answers "Refresh Token has expired" (not "has been
    revoked"). The claims only word a refusal: only a token the pool holds is accepted."""
    claims = {"jti": token_id, "exp": expiry, "token_use": "refresh"}
    return f"{b64url({'alg': 'none'})}.{b64url(claims)}."


def honour_token_validity(clock: Callable[[], float] = time.time) -> None:
    """Issue tokens for the lifetime their app client sets, as Cognito does: moto gave each
    access and id token an hour whatever the client said (the local environment's sets
    AccessTokenMinutes), so a page saw tokens outlive their configured validity; and its
    refresh tokens never expired (`expire_refresh_tokens`)."""
    from moto.cognitoidp.models import CognitoIdpUserPool

    create_jwt = CognitoIdpUserPool.create_jwt

    def create_jwt_for_client(
        self: Any,
        client_id: str,
        username: str,
        token_use: str,
        expires_in: int = 60 * 60,
        extra_data: dict[str, Any] | None = None,
    ) -> Any:
        client = self.clients.get(client_id)
        lifetime = token_lifetime(client.extended_config, token_use) if client else None
        return create_jwt(self, client_id, username, token_use, lifetime or expires_in, extra_data)

    CognitoIdpUserPool.create_jwt = create_jwt_for_client  # type: ignore[method-assign]
    expire_refresh_tokens(clock)


def expire_refresh_tokens(clock: Callable[[], float]) -> None:
    """End a refresh token after its app client's RefreshTokenValidity (30 days by default),
    as Cognito does: REFRESH_TOKEN_AUTH then answers NotAuthorized "Refresh Token has
    expired". The pool drops an expired refresh token when it is refused and, as for access
    tokens (`drop_expired`), when it issues a new one, so none is kept for good."""
    from moto.cognitoidp.exceptions import NotAuthorizedError
    from moto.cognitoidp.models import CognitoIdpBackend, CognitoIdpUserPool

    create_refresh = CognitoIdpUserPool.create_refresh_token
    initiate = CognitoIdpBackend.initiate_auth
    admin_initiate = CognitoIdpBackend.admin_initiate_auth

    def create_refresh_token(self: Any, client_id: str, username: str) -> Any:
        token, origin_jti = create_refresh(self, client_id, username)
        client = self.clients.get(client_id)
        lifetime = token_lifetime(client.extended_config if client else {}, "refresh")
        now = clock()
        expiring = expiring_refresh_token(token, int(now) + (lifetime or 0))
        self.refresh_tokens[expiring] = self.refresh_tokens.pop(token)
        drop_expired(self.refresh_tokens, now)
        return expiring, origin_jti

    def refuse_expired(backend: Any, auth_flow: str, parameters: dict[str, str] | None) -> None:
        token = (parameters or {}).get("REFRESH_TOKEN") or ""
        if auth_flow not in REFRESH_FLOWS or token_claims(token).get("token_use") != "refresh":
            return
        expiry = token_expiry(token)
        if expiry is None or expiry > clock():
            return
        for pool in backend.user_pools.values():
            pool.refresh_tokens.pop(token, None)
        raise NotAuthorizedError("Refresh Token has expired")

    def initiate_auth(
        self: Any, client_id: str, auth_flow: str, auth_parameters: dict[str, str]
    ) -> Any:
        refuse_expired(self, auth_flow, auth_parameters)
        return initiate(self, client_id, auth_flow, auth_parameters)

    def admin_initiate_auth(
        self: Any,
        user_pool_id: str,
        client_id: str,
        auth_flow: str,
        auth_parameters: dict[str, str],
    ) -> Any:
        refuse_expired(self, auth_flow, auth_parameters)
        return admin_initiate(self, user_pool_id, client_id, auth_flow, auth_parameters)

    CognitoIdpUserPool.create_refresh_token = create_refresh_token  # type: ignore[method-assign]
    CognitoIdpBackend.initiate_auth = initiate_auth  # type: ignore[method-assign]
    CognitoIdpBackend.admin_initiate_auth = admin_initiate_auth  # type: ignore[method-assign]


REVOKED_ACCESS_TOKENS = "revoked_access_tokens"
"""The pool attribute holding the access tokens RevokeToken or a global sign-out revoked
that have not expired (`LiveTokens`), so GetUser can say they were revoked."""


def remember_revoked(pool: Any, tokens: dict[str, Any], clock: Callable[[], float]) -> None:
    """Keep the revoked access `tokens` of `pool` until they expire (the expired go here)."""
    revoked = vars(pool).setdefault(REVOKED_ACCESS_TOKENS, LiveTokens(clock))
    revoked.update(tokens)
    now = clock()
    for token in [t for t in revoked if (token_expiry(t) or now) <= now]:
        del revoked[token]


def revoke_session(
    pool: Any, refresh_token: str, origin_jti: str, clock: Callable[[], float]
) -> None:
    """Revoke `refresh_token` and the access and id tokens issued with it or from it (their
    `origin_jti` claim is the refresh token's), as Cognito's RevokeToken does; the user's
    other sessions keep theirs. A missing refresh token answers as a revoked one in moto.
    The revoked access tokens are kept until they expire."""
    del pool.refresh_tokens[refresh_token]
    ended = [t for t in pool.access_tokens if token_claims(t).get("origin_jti") == origin_jti]
    remember_revoked(pool, {t: pool.access_tokens.pop(t) for t in ended}, clock)
    for token in [t for t in pool.id_tokens if token_claims(t).get("origin_jti") == origin_jti]:
        del pool.id_tokens[token]


def revoke_token_action(clock: Callable[[], float] = time.time) -> None:
    """Answer Cognito's RevokeToken (moto has none), the shell's sign-out as Amplify's: it
    needs no access token, so it ends a session whose access token has expired too. As
    AWS documents it: the refresh token and the tokens issued from it are revoked; an
    unknown or already revoked token answers 200, as an invalid one does at the revocation
    endpoint; a client id of no client, a wrong client secret, or a refresh token issued
    through another client of the pool are UnauthorizedException (the endpoint's
    invalid_client; "Refresh tokens must be revoked using the same client ID that was used
    to obtain the token"; AWS documents no message, so these name the client); an access
    or id token is
    UnsupportedTokenTypeException; a client with EnableTokenRevocation off,
    UnsupportedOperationException. The pool is looked for in every region, as for
    InitiateAuth: the browser's unsigned call names none. GetUser with a revoked access token
    then answers "Access Token has been revoked", as Cognito's (`word_token_refusals`)."""
    from moto.cognitoidp.models import cognitoidp_backends, find_account_region_by_value
    from moto.cognitoidp.responses import CognitoIdpResponse
    from moto.core.exceptions import JsonRESTError
    from moto.core.responses import EmptyResult

    def revoke_token(self: Any) -> Any:
        client_id = self._get_param("ClientId") or ""
        token = self._get_param("Token") or ""
        account, region = find_account_region_by_value(
            "client_id", client_id, fallback=(self.current_account, self.region)
        )
        pools = cognitoidp_backends[account][region].user_pools.values()
        pool = next((p for p in pools if client_id in p.clients), None)
        if pool is None:
            raise JsonRESTError("UnauthorizedException", f"Invalid client id: {client_id}")
        client = pool.clients[client_id]
        if client.generate_secret and self._get_param("ClientSecret") != client.secret:
            raise JsonRESTError("UnauthorizedException", f"Invalid client secret for {client_id}")
        if not client.extended_config.get("EnableTokenRevocation", True):
            raise JsonRESTError(
                "UnsupportedOperationException",
                f"Token revocation is not enabled for app client {client_id}",
            )
        if token in pool.access_tokens or token in pool.id_tokens:
            raise JsonRESTError(
                "UnsupportedTokenTypeException", "Only refresh tokens can be revoked"
            )
        owner = pool.refresh_tokens.get(token)
        if owner is None:
            return EmptyResult()
        issued_to, _, origin_jti = owner
        if issued_to != client_id:
            raise JsonRESTError(
                "UnauthorizedException", f"The refresh token was not issued to {client_id}"
            )
        revoke_session(pool, token, origin_jti, clock)
        return EmptyResult()

    CognitoIdpResponse.revoke_token = revoke_token  # type: ignore[attr-defined]


def access_token_refusal(access_token: str, clock: Callable[[], float]) -> Exception | None:
    """Cognito's NotAuthorized for an access token revoked (by RevokeToken or a global
    sign-out) or expired, None for any other token (moto's own answer stands)."""
    from moto.cognitoidp.exceptions import NotAuthorizedError
    from moto.cognitoidp.models import cognitoidp_backends

    backends = (b for regions in cognitoidp_backends.values() for b in regions.values())
    pools = (p for b in backends for p in b.user_pools.values())
    if any(access_token in vars(p).get(REVOKED_ACCESS_TOKENS, ()) for p in pools):
        return NotAuthorizedError("Access Token has been revoked")
    expiry = token_expiry(access_token)
    access = token_claims(access_token).get("token_use") == "access"
    if access and expiry is not None and expiry <= clock():
        return NotAuthorizedError("Access Token has expired")
    return None


def word_token_refusals(clock: Callable[[], float] = time.time) -> None:
    """Refuse a revoked or expired access token in Cognito's words, where moto said
    "Invalid token" (GetUser) or echoed the token (GlobalSignOut): "Access Token has been
    revoked" after RevokeToken or a global sign-out (GlobalSignOut,
    AdminUserGlobalSignOut: moto forgot the user's access tokens, which are kept as
    revoked until they expire), "Access Token has expired" past its validity."""
    from moto.cognitoidp.exceptions import NotAuthorizedError
    from moto.cognitoidp.models import CognitoIdpBackend, CognitoIdpUserPool

    sign_out = CognitoIdpUserPool.sign_out

    def sign_out_revoking(self: Any, username: str) -> None:
        theirs = {t: o for t, o in self.access_tokens.items() if o and o[1] == username}
        sign_out(self, username)
        remember_revoked(self, theirs, clock)

    def worded(call: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(call)
        def answer(self: Any, access_token: str, *args: Any, **kwargs: Any) -> Any:
            try:
                return call(self, access_token, *args, **kwargs)
            except NotAuthorizedError:
                refusal = access_token_refusal(access_token, clock)
                if refusal is None:
                    raise
                raise refusal from None

        return answer

    CognitoIdpUserPool.sign_out = sign_out_revoking  # type: ignore[method-assign]
    CognitoIdpBackend.get_user = worded(CognitoIdpBackend.get_user)  # type: ignore[method-assign]
    CognitoIdpBackend.global_sign_out = worded(CognitoIdpBackend.global_sign_out)  # type: ignore[method-assign]


CLIENT_DEFAULTS: dict[str, Any] = {
    "AllowedOAuthFlowsUserPoolClient": False,
    "AuthSessionValidity": 3,
    "EnablePropagateAdditionalUserContextData": False,
    "EnableTokenRevocation": True,
    "RefreshTokenValidity": 30,
}
"""The settings moto gives a new app client (`CognitoIdpUserPoolClient`), Cognito's
defaults; the others it leaves out, as when they are not set."""


def replace_client_settings() -> None:
    """Make UpdateUserPoolClient replace the app client's settings, as Cognito does ("If you
    don't provide a value for an attribute, Amazon Cognito sets it to its default value"):
    moto merged the update into them, so a setting left out kept its old value here and
    would be reset on AWS. The client's name stays when none is given."""
    from moto.cognitoidp.models import CognitoIdpBackend

    update = CognitoIdpBackend.update_user_pool_client

    def update_user_pool_client(
        self: Any, user_pool_id: str, client_id: str, extended_config: dict[str, Any]
    ) -> Any:
        client = update(self, user_pool_id, client_id, extended_config)
        name = client.extended_config.get("ClientName")
        client.extended_config = {**CLIENT_DEFAULTS, "ClientName": name, **extended_config}
        return client

    CognitoIdpBackend.update_user_pool_client = update_user_pool_client  # type: ignore[method-assign]
