"""What the emulator changes of moto, each where a week of use or a killed command would
hurt, or where moto answers the browser otherwise than AWS (applied by
`mfe.envs.moto_server.application` in granian's worker).

- The backend search: for every request moto looks up which service a host name belongs
  to by listing its own package folder (a `stat` per service, ~180) and trying every
  service's URL patterns, under one lock all requests share. The answer depends on the
  host name alone, so it is remembered (for the most recently used host names: a client
  may send any).
- Its memory: moto keeps every model object it ever made (`BaseModel.instances_tracked`,
  for its dashboard `/moto-api/data.json` and its reset), so each object ever uploaded kept
  its `FakeKey` and ACL after a `--prune` deleted it or a publish replaced it: a week of
  publishing grew the emulator without bound. It tracks them by weak reference instead,
  so the dashboard and the reset still see every object that exists, and no other.
  moto's CloudFront keeps every invalidation ever made (one or more per publish, a list per
  distribution, also after the distribution is deleted); the emulator keeps the newest
  KEPT_INVALIDATIONS of each distribution that exists. moto's Cognito keeps every token it
  issues (~3 KB a sign-in); the emulator drops expired access and id tokens and keeps the
  newest KEPT_REFRESH_TOKENS refresh tokens of a user and client (`expire_cognito_tokens`),
  and drops expired refresh tokens (`mfe.envs.moto_cognito.expire_refresh_tokens`).
- Sign-out in another region: moto's GlobalSignOut looked for the token only in the
  region of the request, which a browser's unsigned one does not name
  (`sign_out_in_any_region`).
- Conditional writes: S3 decides `If-Match` / `If-None-Match` and stores the object as one
  step; moto checks the condition, then builds and stores the object with nothing held in
  between, so two publishes swapping the pointer at once could both pass `If-Match` on the
  same ETag and the later one silently drop the other's apps. Object writes run one at a
  time (`atomic_object_writes`).
- Token lifetimes: moto issued every access and id token for an hour whatever the app
  client's AccessTokenValidity says, took an expired one as long as it kept it, and never
  expired a refresh token; the emulator issues them for the client's validity and refuses
  them once expired (`mfe.envs.moto_cognito.honour_token_validity`, `expire_cognito_tokens`),
  in Cognito's words, as it refuses revoked ones (`mfe.envs.moto_cognito.word_token_refusals`).
- App client updates: moto merged UpdateUserPoolClient's settings into the client's; Cognito
  resets those it is not given (`mfe.envs.moto_cognito.replace_client_settings`).
- Sign-out by refresh token: moto has no RevokeToken, the call the shell's sign-out makes
  (as Amplify's); the emulator answers it as Cognito does
  (`mfe.envs.moto_cognito.revoke_token_action`).
- Cut-off uploads: moto stores what it read of a request whose client died mid-body (an
  empty object); S3 stores nothing. Such a request is answered `IncompleteBody` and never
  reaches moto (`whole_bodies`), so a command killed while writing leaves no half object.
"""

from __future__ import annotations

import base64
import functools
import io
import itertools
import json
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

REMEMBERED_HOSTS = 256
"""Host names whose backend is remembered, the most recently used: the emulator's own
(`127.0.0.1:PORT`, `localhost:PORT`) and a few more, where every name a client sends (a
virtual-hosted bucket's, a preview's) would otherwise add one for good."""


def remember_backends() -> None:
    """Memoize `DomainDispatcherApplication.get_backend_for_host` (a pure function of the
    host name, given moto's fixed URL patterns) for the REMEMBERED_HOSTS last used."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    search = DomainDispatcherApplication.get_backend_for_host

    @functools.lru_cache(maxsize=REMEMBERED_HOSTS)
    def found(app: Any, host: str | None) -> Any:
        return search(app, host)

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        return found(self, host)

    get_backend_for_host.cache_info = found.cache_info  # type: ignore[attr-defined]
    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


KEPT_INVALIDATIONS = 100
"""Invalidations kept per distribution: a page of ListInvalidations (its MaxItems limit),
as much as a publish reads when it looks for its release's (`mfe.publish.invalidate`)."""


def keep_recent_invalidations() -> None:
    """Bound moto's invalidation history: the newest KEPT_INVALIDATIONS of a distribution,
    none of a deleted one."""
    from moto.cloudfront.models import CloudFrontBackend

    create = CloudFrontBackend.create_invalidation
    delete = CloudFrontBackend.delete_distribution

    def create_invalidation(self: Any, dist_id: str, *args: Any, **kwargs: Any) -> Any:
        made = create(self, dist_id, *args, **kwargs)
        del self.invalidations[dist_id][:-KEPT_INVALIDATIONS]
        return made

    def delete_distribution(self: Any, distribution_id: str, *args: Any, **kwargs: Any) -> None:
        delete(self, distribution_id, *args, **kwargs)
        self.invalidations.pop(distribution_id, None)

    CloudFrontBackend.create_invalidation = create_invalidation  # type: ignore[method-assign]
    CloudFrontBackend.delete_distribution = delete_distribution  # type: ignore[method-assign]


KEPT_REFRESH_TOKENS = 10
"""Refresh tokens kept per user and app client: the browsers and devices a developer signs
in from, each holding its newest."""


def token_claims(token: str) -> dict[str, Any]:
    """A JWT's payload (read, not verified: moto signed it), {} if unreadable."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, TypeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def token_expiry(token: str) -> float | None:
    """A JWT's `exp`, None if unreadable."""
    try:
        return float(token_claims(token)["exp"])
    except (KeyError, ValueError, TypeError):
        return None


class LiveTokens(dict[str, Any]):
    """A pool's access tokens as moto keeps them (token -> (client id, user name)), where a
    token past its `exp` is not found. moto looks an access token up by membership (`in`)
    in every call that takes one and never reads its expiry, so an expired one kept working
    (GetUser, GlobalSignOut) until a later sign-in dropped it; Cognito refuses it."""

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__()
        self.clock = clock

    def __contains__(self, token: object) -> bool:
        if not isinstance(token, str) or not super().__contains__(token):
            return False
        expiry = token_expiry(token)
        if expiry is not None and expiry <= self.clock():
            del self[token]
            return False
        return True


def drop_expired(tokens: dict[str, Any], now: float) -> None:
    """Drop the expired tokens at the front of `tokens`, moto's dict of a pool's access (id,
    refresh) tokens in the order issued. A client's tokens all have the same lifetime, so the
    expired ones come first (in a pool whose clients differ, behind at most the longest
    lifetime): the first still valid ends the scan, and a token is never dropped before its
    `exp` (which a clock set back only delays)."""
    expired = []
    for token in tokens:
        expiry = token_expiry(token)
        if expiry is None:
            continue
        if expiry > now:
            break
        expired.append(token)
    for token in expired:
        del tokens[token]


def keep_newest_refresh_tokens(tokens: dict[str, Any], client_id: str, username: str) -> None:
    """Keep the newest KEPT_REFRESH_TOKENS of `tokens` (moto's dict of a pool's refresh
    tokens, in the order issued) issued to `username` through `client_id`."""
    theirs = [
        token
        for token, owner in tokens.items()
        if owner is not None and owner[0] == client_id and owner[1] == username
    ]
    for token in theirs[:-KEPT_REFRESH_TOKENS]:
        del tokens[token]


def expire_cognito_tokens(clock: Callable[[], float] = time.time) -> None:
    """Bound the tokens moto's Cognito keeps. It stores every access, id and refresh token
    it issues in dicts on the user pool and never drops one, nor checks an expiry: each
    sign-in grew the emulator for good. When a pool issues an access or id token, those
    whose JWT `exp` has passed (the client's validity, an hour by default) go, so the pool
    holds at most that long's worth; an expired access token answers NotAuthorized, as
    Cognito's, from its `exp` on (`LiveTokens`).
    Refresh tokens live 30 days by default (up to ten years), so their expiry (which the
    emulator adds: `mfe.envs.moto_cognito.expire_refresh_tokens`) would keep a week's
    sign-ins; so each user keeps the newest KEPT_REFRESH_TOKENS per app client as well (one
    per browser a developer signs in from; an eleventh sign-in retires the oldest). A
    sign-out's revoked ones go too: moto answers a missing refresh token as it does a
    revoked one ("has been revoked")."""
    from moto.cognitoidp.models import CognitoIdpUserPool

    init = CognitoIdpUserPool.__init__
    create_access = CognitoIdpUserPool.create_access_token
    create_id = CognitoIdpUserPool.create_id_token
    create_refresh = CognitoIdpUserPool.create_refresh_token
    sign_out = CognitoIdpUserPool.sign_out

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.access_tokens = LiveTokens(clock)

    def create_access_token(self: Any, *args: Any, **kwargs: Any) -> Any:
        drop_expired(self.access_tokens, clock())
        return create_access(self, *args, **kwargs)

    def create_id_token(self: Any, *args: Any, **kwargs: Any) -> Any:
        drop_expired(self.id_tokens, clock())
        return create_id(self, *args, **kwargs)

    def create_refresh_token(self: Any, client_id: str, username: str) -> Any:
        made = create_refresh(self, client_id, username)
        keep_newest_refresh_tokens(self.refresh_tokens, client_id, username)
        return made

    def sign_out_user(self: Any, username: str) -> None:
        sign_out(self, username)
        for token in [t for t, owner in self.refresh_tokens.items() if owner is None]:
            del self.refresh_tokens[token]

    CognitoIdpUserPool.__init__ = __init__  # type: ignore[method-assign]
    CognitoIdpUserPool.create_access_token = create_access_token  # type: ignore[method-assign]
    CognitoIdpUserPool.create_id_token = create_id_token  # type: ignore[method-assign]
    CognitoIdpUserPool.create_refresh_token = create_refresh_token  # type: ignore[method-assign]
    CognitoIdpUserPool.sign_out = sign_out_user  # type: ignore[method-assign]


def sign_out_in_any_region() -> None:
    """Make GlobalSignOut look for the access token's pool in every region, as moto's
    InitiateAuth and GetUser do. A page's global sign-out (Amplify's `signOut({ global:
    true })`; the shell's own sign-out is a RevokeToken, `mfe.envs.moto_cognito`) is sent
    unsigned by the browser, so moto takes the request's region from the host name
    (`127.0.0.1`: us-east-1) and looked for the token there alone: with the local
    environment's `region` set to another, the sign-out answered NotAuthorized and the
    tokens stayed valid."""
    from moto.cognitoidp.models import cognitoidp_backends, find_account_region_by_value
    from moto.cognitoidp.responses import CognitoIdpResponse
    from moto.core.responses import EmptyResult

    def global_sign_out(self: Any) -> Any:
        access_token = self._get_param("AccessToken")
        account, region = find_account_region_by_value(
            "access_token", access_token, fallback=(self.current_account, self.region)
        )
        cognitoidp_backends[account][region].global_sign_out(access_token)
        return EmptyResult()

    CognitoIdpResponse.global_sign_out = global_sign_out  # type: ignore[method-assign]


OBJECT_WRITES = (
    "put_object",
    "copy_object",
    "delete_object",
    "_key_response_post",
    "_bucket_response_delete_keys",
)
"""moto's S3 handlers that write an object: PutObject, CopyObject, DeleteObject, the POSTs
on a key (CompleteMultipartUpload, with its `If-None-Match`) and DeleteObjects."""


def atomic_object_writes() -> None:
    """Each object write, its condition check included, runs alone: a condition holds until
    the write it guards is stored, as in S3. The handlers are Python that holds the GIL
    anyway (the body was read before them), so one lock costs the uploads next to nothing."""
    from moto.s3.responses import S3Response

    lock = threading.RLock()  # re-entrant: a handler that calls another must not deadlock

    def alone(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def write(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return handler(*args, **kwargs)

        return write

    for name in OBJECT_WRITES:
        setattr(S3Response, name, alone(getattr(S3Response, name)))


class LiveInstances:
    """What moto does with a model class's `instances_tracked` list (`append`, iterate),
    holding each instance only as long as something else does."""

    def __init__(self) -> None:
        self.refs: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        self.kept: list[Any] = []
        """Instances that take no weak reference (none of moto's models, so far)."""
        self.count = itertools.count()

    def append(self, instance: Any) -> None:
        try:
            self.refs[next(self.count)] = instance
        except TypeError:
            self.kept.append(instance)

    def __iter__(self) -> Iterator[Any]:
        return iter([*self.kept, *self.refs.values()])


def track_live_models_only() -> None:
    """Make every moto model class, also those imported later and those whose list moto's
    reset replaces, track its instances in a `LiveInstances`."""
    from moto.core.common_models import BaseModel

    def new(cls: type, *args: Any, **kwargs: Any) -> Any:
        instance = super(BaseModel, cls).__new__(cls)  # type: ignore[misc]
        tracked = cls.__dict__.get("instances_tracked")
        if not isinstance(tracked, LiveInstances):
            tracked = LiveInstances()
            cls.instances_tracked = tracked  # type: ignore[attr-defined]
        tracked.append(instance)
        return instance

    BaseModel.__new__ = staticmethod(new)  # type: ignore[method-assign]


INCOMPLETE_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>IncompleteBody</Code><Message>You '
    b"did not provide the number of bytes specified by the Content-Length HTTP header"
    b"</Message></Error>"
)


def whole_bodies(app: Any) -> Any:
    """`app` fed only requests whose body arrived in full. moto stores what it reads of a
    PutObject whose client died mid-body (a command killed while uploading) -- an empty
    object: a killed history-record write left an empty record, which its re-run's
    `If-None-Match: *` then kept for good and every later `releases` or rollback failed to
    read. S3 never stores a body shorter than its Content-Length; neither does this."""

    def serve(environ: dict[str, Any], start_response: Any) -> Any:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > 0:
            stream = environ["wsgi.input"]
            chunks: list[bytes] = []
            got = 0
            while got < length:
                chunk = stream.read(length - got)
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
            if got < length:
                start_response(
                    "400 Bad Request",
                    [
                        ("Content-Type", "application/xml"),
                        ("Content-Length", str(len(INCOMPLETE_BODY))),
                    ],
                )
                return [INCOMPLETE_BODY]
            environ["wsgi.input"] = io.BytesIO(b"".join(chunks))
        return app(environ, start_response)

    return serve


def raw_uris(app: Any) -> Any:
    """`app` given the request's path as sent (`RAW_URI`), which werkzeug's server sets
    and granian does not. Without it moto decodes the already decoded `PATH_INFO` again:
    `p%25.txt` was stored as `p%.txt`, and two keys differing only there were one object.
    PATH_INFO is the decoded path as latin-1 (PEP 3333); quoting its bytes back gives an
    encoding of the same key, which is all moto reads from it."""
    from urllib.parse import quote

    def serve(environ: dict[str, Any], start_response: Any) -> Any:
        if "RAW_URI" not in environ:
            path = quote(environ.get("PATH_INFO", "/").encode("latin-1"), safe="/")
            query = environ.get("QUERY_STRING")
            environ["RAW_URI"] = f"{path}?{query}" if query else path
        return app(environ, start_response)

    return serve
