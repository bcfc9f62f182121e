"""Preview state: the preview pointers (`_mfe/previews/NAME.json`) and page keys, read
by previews themselves, `--prune` (which keeps what a live preview references) and
`doit releases`."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mfe.errors import MfeError, missing_key
from mfe.publish.local import RESERVED_PREFIX
from mfe.publish.pointer import Live
from mfe.threads import parallel

PREVIEW_PAGES = "previews/"
PREVIEW_POINTERS = RESERVED_PREFIX + "previews/"
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")


def check_name(name: str) -> str:
    if not NAME.fullmatch(name or "") or ".." in name:
        raise MfeError(
            f"preview name {name!r} is not usable in a URL path: use lowercase letters, "
            "digits, '.', '_' and '-' (at most 63), e.g. `doit publish preview=pr-42`"
        )
    return name


def page_key(name: str) -> str:
    return f"{PREVIEW_PAGES}{name}/index.html"


def pointer_key(name: str) -> str:
    return f"{PREVIEW_POINTERS}{name}.json"


@dataclass(frozen=True)
class Preview:
    name: str
    created: str
    base: int
    """The live seq it overlays."""
    pointer: Live
    added: dict[str, list[str]]
    """app -> keys this preview uploaded (its report's `uploaded`)."""
    files: dict[str, list[str]] = field(default_factory=dict)
    """app -> every key its page needs of each changed app, also those the live version
    already had online (kept by `--prune` while the preview exists: that version may leave
    the kept releases first). Records written before this field have only `added`: for
    those `--prune` keeps every file of the overlaid version (`prune.preview_files`)."""
    commit: str | None = None
    """The checkout's HEAD it was published from (CI's are per pull request, a local one is
    any checkout's). None: not a git checkout, or written before this field."""
    dirty: bool | None = None
    """Its sources differed from `commit` (`releases.uncommitted`, as a release's
    `Live.dirty`). None: not known (no git checkout, or written before this field)."""
    pending: bool = False
    """Written before its page (`preview.write_preview`): until the record written after
    the page clears it, `previews/NAME/` may still serve an earlier page or none (its
    command was killed, or is still running). `doit releases` says so."""
    replaces: tuple[Preview, ...] = ()
    """While `pending`: the earlier records of this name whose page may still be the one
    served, so `--prune` keeps what they name too (`serving`)."""
    removing: bool = False
    """Pending, written by `doit preview_rm` before it deletes the page and then the record
    (`removal`): a removal stopped in between says so, and keeps what the page may use."""

    def serving(self) -> list[Preview]:
        """Every record whose page `previews/NAME/` may serve now."""
        return [self, *self.replaces]

    def ahead(self, replaced: Preview | None) -> Preview:
        """This record as written before its page: pending, replacing what `replaced`'s
        page may serve (all of it, if that one was pending too)."""
        earlier = replaced.serving() if replaced is not None else []
        flat: dict[bytes, Preview] = {}
        for p in earlier:  # a run retrying replaces its own record: name each once
            done = dataclasses.replace(p, pending=False, replaces=(), removing=False)
            if done.to_json() != self.to_json():
                flat.setdefault(done.to_json(), done)
        return dataclasses.replace(self, pending=True, replaces=tuple(flat.values()))

    def removal(self) -> Preview:
        """This record as `doit preview_rm` writes it before deleting the page: pending
        (what it names is kept until the record is gone), and saying it is being removed."""
        done = dataclasses.replace(self, pending=False, replaces=(), removing=False)
        return dataclasses.replace(done.ahead(self), removing=True)

    def kept(self) -> dict[str, set[str]]:
        """The changed apps' keys `--prune` keeps (their versions have no file list)."""
        apps = {*self.added, *self.files}
        return {a: {*self.added.get(a, []), *self.files.get(a, [])} for a in apps}

    def to_json(self) -> bytes:
        return (json.dumps(self.to_data(), indent=1, sort_keys=True) + "\n").encode()

    def to_data(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "created": self.created,
            "base": self.base,
            "pointer": json.loads(self.pointer.to_json()),
            "added": self.added,
            "files": self.files,
            "commit": self.commit,
            "dirty": self.dirty,
        }
        if self.pending:  # a finished record reads as one written before these fields
            data["pending"] = True
            data["replaces"] = [p.to_data() for p in self.replaces]
        if self.removing:
            data["removing"] = True
        return data

    @staticmethod
    def from_json(body: bytes) -> Preview:
        return Preview.from_data(json.loads(body))

    @staticmethod
    def from_data(data: dict[str, Any]) -> Preview:
        pointer = Live.from_json(json.dumps(data["pointer"]).encode())
        return Preview(
            data["name"], data["created"], data["base"], pointer, data["added"],
            data.get("files", {}), data.get("commit"), data.get("dirty"),
            bool(data.get("pending", False)),
            tuple(Preview.from_data(p) for p in data.get("replaces", [])),
            bool(data.get("removing", False)),
        )  # fmt: skip


def previews(s3: Any, bucket: str, listing: Iterable[str]) -> list[Preview]:
    """Every live preview found in a listing of the parent bucket, by name, read 8 at a
    time (a team's pull requests can hold dozens)."""
    keys = [key for key in listing if key.startswith(PREVIEW_POINTERS) and key.endswith(".json")]
    found = parallel(8, [functools.partial(_read, s3, bucket, key) for key in keys])
    return sorted((p for p in found if p is not None), key=lambda p: p.name)


def list_previews(s3: Any, bucket: str) -> list[Preview]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREVIEW_POINTERS)
    return previews(
        s3, bucket, [item["Key"] for page in pages for item in page.get("Contents", [])]
    )


def read_preview(s3: Any, bucket: str, name: str) -> Preview | None:
    """The record of preview `name`; None if it has none."""
    return _read(s3, bucket, pointer_key(name))


def read_state(s3: Any, bucket: str, name: str) -> tuple[str | None, Preview | None, str | None]:
    """(the page's ETag, the record, its ETag), None where there is none. The page is read
    first: a run that claims the record after reading it writes the page only if no other
    page went up since, so a run whose claim was taken over cannot overwrite the page of
    the run that took it (`preview.write_page`)."""
    from botocore.exceptions import ClientError

    try:
        page: str | None = str(s3.head_object(Bucket=bucket, Key=page_key(name))["ETag"])
    except ClientError as exc:
        if not missing_key(exc):
            raise
        page = None
    try:
        answer = s3.get_object(Bucket=bucket, Key=pointer_key(name))
    except ClientError as exc:
        if missing_key(exc):
            return page, None, None
        raise
    return page, Preview.from_json(answer["Body"].read()), str(answer["ETag"])


def _read(s3: Any, bucket: str, key: str) -> Preview | None:
    """A preview's pointer; None once `doit preview_rm` removed it (after the listing)."""
    from botocore.exceptions import ClientError

    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if missing_key(exc):
            return None
        raise
    return Preview.from_json(body)
