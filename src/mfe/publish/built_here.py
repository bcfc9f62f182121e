"""`.mfe/<env>/published-builds.json`: what each app was built as here, and what was live,
when this checkout last published to the environment.

A publish keeps out a build of a version the live one replaced, but the pointer remembers
only the newest `merge.REMEMBERED` of those. A checkout that never pulls another team's app
(another branch, or no git to tell commits apart) still holds its old build after more
replacements than that; without this file it would count that build as a change and
revert the app. A build equal to the one this checkout last published is no change of
this checkout, however often another publish replaced it since, unless a whole rollback
undid the release that put it live (`Judged.undone_by`).
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mfe.files import write_atomic
from mfe.publish.pointer import AppVersion, Live

STATE_FILE = "published-builds.json"


@dataclass(frozen=True)
class Judged:
    """One app at this checkout's last publish: its build, and the versions under which
    that build counts as a change again (`undone_by`)."""

    built: str
    undone_by: frozenset[str]
    """When the build was live: the versions it had replaced. A whole rollback back to one
    of them undoes its release, and publishing the checkout again re-ships it."""

    def keeps_out(self, version: str, live: AppVersion) -> bool:
        """Is a build of `version` no change of this checkout while `live` is live?"""
        return version == self.built and live.version not in self.undone_by


def read_built(state_dir: Path, bucket: str) -> dict[str, Judged]:
    """app -> `Judged` at this checkout's last publish to the environment whose parent
    bucket is `bucket` (another bucket under the same name is another environment)."""
    try:
        data = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
        if data["bucket"] != bucket:
            return {}
        return {
            name: Judged(str(app["built"]), frozenset(map(str, app["undone_by"])))
            for name, app in data["apps"].items()
        }
    except (OSError, ValueError, LookupError, TypeError, AttributeError):
        return {}  # never published from here, or not our file: the pointer's rule decides


def remember_built(state_dir: Path, bucket: str, built: Mapping[str, str], live: Live) -> None:
    """Record the apps this publish judged (`built`: app -> version) against `live`, the
    pointer it left live; one writer at a time, as two publishes of one checkout may
    judge different apps."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / f".{STATE_FILE}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        apps = {
            name: {"built": j.built, "undone_by": sorted(j.undone_by)}
            for name, j in read_built(state_dir, bucket).items()
        }
        for name, version in built.items():
            now = live.apps.get(name)
            undone_by = now.replaced if now is not None and now.version == version else []
            apps[name] = {"built": version, "undone_by": sorted(undone_by)}
        text = json.dumps({"bucket": bucket, "apps": dict(sorted(apps.items()))}, indent=2)
        write_atomic(state_dir / STATE_FILE, text + "\n")
