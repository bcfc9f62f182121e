"""`.mfe/<env>/published-builds.json`: the version of each app this checkout built when it
last published to the environment.

A publish keeps out a build of a version the live one replaced, but the pointer remembers
only the newest `merge.REMEMBERED` of those. A checkout that never pulls another team's app
(another branch, or no git to tell commits apart) still holds its old build after more
replacements than that; without this file it would count that build as a change and
revert the app. A build equal to the one this checkout last published is no change of
this checkout, however often another publish replaced it since.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Mapping
from pathlib import Path

from mfe.files import write_atomic

STATE_FILE = "published-builds.json"


def read_built(state_dir: Path, bucket: str) -> dict[str, str]:
    """app -> version this checkout published last to the environment whose parent bucket
    is `bucket` (another bucket under the same name is another environment: nothing)."""
    try:
        data = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
        if data["bucket"] != bucket:
            return {}
        return {str(name): str(version) for name, version in data["apps"].items()}
    except (OSError, ValueError, LookupError, TypeError, AttributeError):
        return {}  # never published from here, or not our file: the pointer's rule decides


def remember_built(state_dir: Path, bucket: str, versions: Mapping[str, str]) -> None:
    """Record `versions` (app -> version, the apps this publish judged) over the ones
    recorded before; one writer at a time, as two publishes of one checkout may judge
    different apps (`doit publish app=NAME`)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / f".{STATE_FILE}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        apps = {**read_built(state_dir, bucket), **versions}
        text = json.dumps({"bucket": bucket, "apps": dict(sorted(apps.items()))}, indent=2)
        write_atomic(state_dir / STATE_FILE, text + "\n")
