"""The upload diff: which of the local apps' files each bucket still lacks.

Fingerprinted files go up under their own name; every other file goes up under its
content-addressed `_ca/<sha>/<key>` copy (the page links to that copy; the fixed URL is
written in the commit step). A file is skipped when the bucket listing shows its key
with the expected ETag (md5, or the predicted multipart ETag); an app at its live version
is not listed at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from mfe.config import Environment
from mfe.envs.outputs import Outputs
from mfe.errors import MfeError
from mfe.publish.local import IMMUTABLE_CACHE, LocalFile
from mfe.publish.remote import RemoteObject
from mfe.publish.versions import ca_key


@dataclass
class AppPlan:
    app: str
    bucket: str
    distribution_id: str | None
    files: list[LocalFile]
    remote: dict[str, RemoteObject]
    uploads: list[LocalFile] = field(default_factory=list)
    skipped: list[LocalFile] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    """Fixed-URL keys the commit step wrote (the page, favicon.svg...)."""


@dataclass
class Plan:
    env: str
    parent: str
    apps: dict[str, AppPlan]

    @property
    def uploads(self) -> int:
        return sum(len(ap.uploads) for ap in self.apps.values())


def online_copy(file: LocalFile) -> LocalFile:
    """The object a local file is uploaded as before the swap."""
    if file.immutable:
        return file
    return replace(
        file, key=ca_key(file.key, file.sha256), cache_control=IMMUTABLE_CACHE, shell=False
    )


def present(file: LocalFile, remote: RemoteObject | None) -> bool:
    return remote is not None and remote.etag in (file.md5, file.etag)


def app_plan(
    env: Environment,  # for messages only
    outputs: Outputs,
    app: str,
    files: list[LocalFile],
    remote: dict[str, RemoteObject] | None,
) -> AppPlan:
    """`remote`: the bucket's listing; None for an app at its live version, whose files
    are all online (they went up before that version's swap)."""
    if app not in outputs.apps:
        raise MfeError(
            f"app '{app}' has no bucket in environment '{env.name}' outputs; "
            f"run `doit infra env={env.name}` (or `doit publish` on local) to provision it"
        )
    out = outputs.apps[app]
    plan = AppPlan(app, out.bucket, out.distribution_id, files, remote or {})
    for f in files:
        copy = online_copy(f)
        online = remote is None or present(copy, remote.get(copy.key))
        (plan.skipped if online else plan.uploads).append(copy)
    return plan


def young(remote: RemoteObject, now: datetime, grace_seconds: int) -> bool:
    if remote.modified is None:
        return False
    return (now - remote.modified).total_seconds() < grace_seconds
