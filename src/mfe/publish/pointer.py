"""The live pointer: one small object per environment (`_mfe/live.json` in the parent
app's bucket) naming each app's live version and the shell page. It is the single source
of truth for what is served and changes only by compare-and-swap (S3 conditional writes:
`If-None-Match: *` for the first, `If-Match: <etag read>` after), so two publishes never
overwrite each other's apps without knowing.

The pointer stays small (O(apps)): each app version's full file list is a separate,
content-addressed object (`_mfe/versions/<app>/<version>.json`, see `versions`).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from mfe.errors import MfeError, aws_status, missing_key
from mfe.publish.conditional import Conflict as Conflict  # re-exported: callers catch it here
from mfe.publish.conditional import put_if
from mfe.publish.local import RESERVED_PREFIX

POINTER_KEY = RESERVED_PREFIX + "live.json"
FORMAT = 1


@dataclass(frozen=True)
class Blob:
    """A file the commit step writes at a fixed URL (the page, favicon.svg, robots.txt...)."""

    sha256: str
    md5: str
    size: int
    content_type: str
    cache_control: str


@dataclass(frozen=True)
class AppVersion:
    version: str
    """sha256 over the app's files (keys, bytes, headers): equal versions = equal bytes."""
    commit: str | None
    published: str
    entries: list[tuple[str, str]]
    """(file, sha384 integrity) of the app's entry modules, for rendering the shell."""
    mutable: dict[str, Blob]
    """Files without a content hash in their name: served from a content-addressed copy
    (`_ca/<sha>/<key>`) and written at their fixed URL in the commit step."""
    forced: bool = False
    replaced: list[str] = field(default_factory=list)
    """Versions this one replaced, newest first (a few): a build of one of them is an
    older build, which a publish keeps out instead of reverting the app."""
    restored: bool = False
    """Put live again by a rollback: the versions it took off stay out even of a checkout
    at a later commit (a rollback is a decision the git history does not record)."""
    took_off: list[str] = field(default_factory=list)
    """The versions rollbacks took off to restore this one, newest first (a few): unlike
    the rest of `replaced`, which publishes replaced, a build of one is one a rollback
    undid (its notes say so). Written only when not empty."""
    dirty: bool | None = None
    """Published from a checkout whose sources of it (or the shared inputs) differed from
    `commit` (`releases.dirty_apps`): its bytes are no commit's. Written only when known."""
    by: str = ""
    """Who published this version (`Live.by` of that release), which a later release of
    another app no longer says. Written only when known."""

    def undid(self, version: str) -> bool:
        """Whether `version` is one a rollback took off to put this one live again."""
        return self.restored and version in self.took_off


@dataclass
class Live:
    seq: int
    release: str
    created: str
    apps: dict[str, AppVersion]
    page: Blob
    changed: list[str] = field(default_factory=list)
    action: str = "publish"
    """'publish' or 'rollback' ('preview' in a preview's overlay)."""
    by: str = ""
    commit: str | None = None
    forced: list[str] = field(default_factory=list)
    forced_over: dict[str, str] = field(default_factory=dict)
    """app -> what `--force` published it over (a newer commit, a commit not merged here,
    a version a rollback took off, a version live replaced); empty in older records."""
    rollback_of: str | None = None
    rollback_app: str | None = None
    """The app a `rollback app=NAME` rolled back (None: the whole page, or no rollback)."""
    took_off: str | None = None
    """The release a whole rollback took off (None: no whole rollback, or an older record)."""
    dirty: bool | None = None
    """The checkout's sources of what it published differed from `commit` (uncommitted
    edits, `releases.uncommitted`), so the bytes are not that commit's; a rollback carries
    its target's. None: not known (no git checkout, or an older record)."""
    invalidations: dict[str, list[str]] = field(default_factory=dict)
    """app -> paths whose bytes this swap changed at a fixed URL."""
    raw: bytes = field(default=b"", repr=False, compare=False)
    """The bytes this pointer was read as (empty when made here): its history record is
    those bytes, whichever command writes it, whatever version of mfe wrote the pointer."""
    unrecorded: str | None = field(default=None, repr=False, compare=False)
    """The pointer this one replaced, as its bytes were read, when it had no history record
    yet (`pending.carry`): a command killed between its swap and recording that one leaves it
    recordable by whoever finishes this one. Never nested: one that carries its own is
    finished (recorded) before anything swaps past it."""

    def to_json(self) -> bytes:
        data = asdict(self)
        del data["raw"]
        if data["unrecorded"] is None:  # pointers stay as they were unless one is carried
            del data["unrecorded"]
        for app in data["apps"].values():  # the fields older pointers lack, only when set
            if not app["took_off"]:
                del app["took_off"]
            if app["dirty"] is None:
                del app["dirty"]
            if not app["by"]:
                del app["by"]
        data["format"] = FORMAT
        return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()

    @staticmethod
    def from_json(body: bytes) -> Live:
        data = json.loads(body)
        apps = {
            name: AppVersion(
                version=app["version"],
                commit=app.get("commit"),
                published=app["published"],
                entries=[(file, sri) for file, sri in app["entries"]],
                mutable={key: Blob(**blob) for key, blob in app["mutable"].items()},
                forced=app.get("forced", False),
                replaced=list(app.get("replaced", [])),
                restored=app.get("restored", False),
                took_off=list(app.get("took_off", _took_off_before(app))),
                dirty=app.get("dirty"),
                by=app.get("by", ""),
            )
            for name, app in data["apps"].items()
        }
        return Live(
            seq=data["seq"],
            release=data["release"],
            created=data["created"],
            apps=apps,
            page=Blob(**data["page"]),
            changed=list(data.get("changed", [])),
            action=data.get("action", "publish"),
            by=data.get("by", ""),
            commit=data.get("commit"),
            forced=list(data.get("forced", [])),
            forced_over=dict(data.get("forced_over", {})),
            rollback_of=data.get("rollback_of"),
            rollback_app=data.get("rollback_app"),
            took_off=data.get("took_off"),
            dirty=data.get("dirty"),
            invalidations=data.get("invalidations", {}),
            unrecorded=data.get("unrecorded"),
        )


def _took_off_before(app: dict[str, Any]) -> list[str]:
    """What a rollback took off to restore `app`, in a pointer older than `took_off`: the
    version it replaced first, which is the one the last rollback took off."""
    return list(app.get("replaced", []))[:1] if app.get("restored") else []


DAMAGED = (ValueError, KeyError, TypeError, AttributeError)
"""What decoding a state object that is not what mfe wrote raises (bad JSON or UTF-8
are ValueErrors, a missing field a KeyError, a wrong type the others)."""


def damage(exc: BaseException) -> str:
    """What is wrong with a state object, from its decoding error, in a few words."""
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, KeyError):
        return f"no field {exc.args[0]!r}" if exc.args else "a field is missing"
    return f"not in mfe's format ({type(exc).__name__}: {exc})"


class Damaged(MfeError):
    """A state object that is not what mfe wrote: `why` says what is wrong with it."""

    def __init__(self, message: str, why: str) -> None:
        super().__init__(message)
        self.why = why


def parse_live(body: bytes, bucket: str, key: str, advice: str) -> Live:
    """`Live.from_json`, failing with an MfeError naming the bucket, the key, what is wrong
    and `advice` (what to do) when the object is not a pointer mfe wrote."""
    try:
        live = Live.from_json(body)
        if not isinstance(live.seq, int) or isinstance(live.seq, bool):
            raise TypeError(f"seq {live.seq!r} is not a number")
        return live
    except DAMAGED as exc:
        why = f"{damage(exc)}; {len(body)} bytes"
        raise Damaged(
            f"{key} in bucket '{bucket}' is damaged ({why}); nothing was changed: {advice}", why
        ) from None


Same = Callable[[bytes, bytes], bool]


def same_bytes(ours: bytes, theirs: bytes) -> bool:
    return ours == theirs


PUT_ONCE_ATTEMPTS = 3


def put_once(
    s3: Any, bucket: str, key: str, body: bytes, same: Same = same_bytes
) -> datetime | None:
    """Write an immutable state object unless it exists. When it exists (412, or a 409 from
    a concurrent write) it must hold what this command would write (`same`): a history
    record of that seq with other bytes is another release (the live pointer was older than
    the history), and keeping it silently would lose this one. Returns when the object
    found there was written (None: this call wrote it)."""
    from botocore.exceptions import ClientError

    for _ in range(PUT_ONCE_ATTEMPTS):
        try:
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                CacheControl="no-store",
                IfNoneMatch="*",
            )
            return None
        except ClientError as exc:
            if aws_status(exc) not in (409, 412):
                raise
        try:
            found = s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if missing_key(exc):  # a 409 whose concurrent write failed: write it again
                continue
            raise
        there = bytes(found["Body"].read())
        if same(body, there):
            written: datetime | None = found.get("LastModified")
            return written
        raise MfeError(
            f"{key} in bucket '{bucket}' already holds other content than this command "
            f"writes ({len(there)} bytes, not the {len(body)} expected): it was written by "
            "another release or edited by hand; nothing was overwritten. Check it (`doit "
            "releases` lists the history) and restore it from a backup or delete it if damaged"
        )
    raise MfeError(f"{key} in bucket '{bucket}' could not be written ({PUT_ONCE_ATTEMPTS} tries)")


POINTER_ADVICE = (
    "copy the newest history record (`doit releases` lists them) onto it, e.g. `aws s3 cp "
    "s3://{bucket}/_mfe/history/<newest seq, 10 digits>.json s3://{bucket}/{key} "
    "--content-type application/json --cache-control no-store` (a record is the pointer as "
    "that release wrote it), then run the command again"
)


def read_pointer(s3: Any, bucket: str, key: str = POINTER_KEY) -> tuple[Live | None, str | None]:
    """(pointer, its ETag) or (None, None) when none was written yet; MfeError when it is
    damaged (not what mfe wrote)."""
    from botocore.exceptions import ClientError

    try:
        answer = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if missing_key(exc):
            return None, None
        raise
    body = answer["Body"].read()
    advice = POINTER_ADVICE if key == POINTER_KEY else "delete it and write it again"
    live = parse_live(body, bucket, key, advice.format(bucket=bucket, key=key))
    return replace(live, raw=body), str(answer["ETag"])


def swap(
    s3: Any,
    bucket: str,
    new: Live,
    etag: str | None,
    *,
    conditional: bool = True,
    key: str = POINTER_KEY,
) -> str:
    """Write `new` only if the pointer is still the one read (`etag`; None: not there).

    Raises `Conflict` on 412 (or 409, which S3 answers to concurrent conditional writes).
    Returns the new ETag.
    """
    return put_if(
        s3, bucket, key, new.to_json(), etag, conditional=conditional,
        ContentType="application/json", CacheControl="no-store",
    )  # fmt: skip


ATTEMPTS = 8


class History(Protocol):
    """The release history a pointer swap must not fall behind (`history.Recorded`)."""

    def taken(self, seq: int) -> bool:
        """Whether seq's history record exists already."""
        ...

    def refusal(self, current: Live | None) -> MfeError:
        """The error refusing a swap over `current`, which the history is ahead of."""
        ...


def compare_and_swap(
    s3: Any,
    bucket: str,
    make: Callable[[Live | None], Live | None],
    *,
    first: tuple[Live | None, str | None],
    conditional: Callable[[], bool],
    attempts: int = ATTEMPTS,
    key: str = POINTER_KEY,
    history: History | None = None,
) -> tuple[Live | None, Live | None]:
    """Swap the pointer to `make(current)`; on a lost race re-read and call `make` again.

    `first` is the (pointer, etag) read at plan time. `make` returns None when there is
    nothing to change; `conditional` is asked before the first write only. Returns
    (written pointer or None, the pointer it replaced).
    Retries are bounded, with jittered backoff so two losers do not collide again.
    With `history`, a swap to a seq whose record exists is refused while the pointer stays
    the one read (it is older than the history: restored or deleted by hand), as it would
    reuse a taken seq and its release would never be recorded; a pointer that moved since
    is a lost race, re-read as any other.
    """
    current, etag = first
    for attempt in range(attempts):
        new = make(current)
        if new is None:
            return None, current
        if history is not None and history.taken(new.seq):
            now, now_etag = read_pointer(s3, bucket, key)
            if now_etag == etag:
                raise history.refusal(current)
            current, etag = now, now_etag
            continue
        try:
            swap(s3, bucket, new, etag, conditional=conditional(), key=key)
            return new, current
        except Conflict:
            time.sleep(random.uniform(0.02, 0.1) * (2 ** min(attempt, 4)))
            current, etag = read_pointer(s3, bucket, key)
    raise MfeError(
        f"the live pointer {key} in bucket '{bucket}' kept changing under this publish "
        f"({attempts} attempts); other publishes are running: run it again"
    )
