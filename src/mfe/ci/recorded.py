"""`.mfe/ci-keys.json`: the tested builds this checkout's CI runs left in the apps'
`dist/`, so a later run takes such a build as is (`dist: local`) instead of restoring or
building it again, once it proved the folder still holds exactly that build.

Each record also says whether a run on a trusted ref wrote it (`trusted`, and the run's
cache scope): only such a build may go from this checkout into the build cache
(mfe.ci.run), since a reused runner's workspace may hold what an untrusted run left."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from mfe.build.keep import intact
from mfe.build.manifest import MANIFEST_NAME, sha256_file
from mfe.ci.report import CiReport
from mfe.ci.trust import Trust
from mfe.config import STATE_DIR, App, Project
from mfe.files import write_atomic


@dataclass(frozen=True)
class Held:
    """One app's record: the input key and manifest hash of the tested build in `dist/`."""

    key: str
    manifest: str
    trusted: bool = False
    """Written by a run on a trusted ref, and by no untrusted run since (older records
    without it count as untrusted)."""
    scope: str = ""
    """The cache scope of the run that wrote it (`trusted`, `pr/<n>`, `ref/<name>`)."""


def _keys_file(project: Project) -> Path:
    return project.root / STATE_DIR / "ci-keys.json"


def recorded_builds(project: Project) -> dict[str, Held]:
    """`.mfe/ci-keys.json`: per app, the record of the tested build this checkout's last
    CI run left in its `dist/`."""
    try:
        data = json.loads(_keys_file(project).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(name): Held(
            str(entry["key"]),
            str(entry["manifest"]),
            entry.get("trusted") is True,
            str(entry.get("scope", "")),
        )
        for name, entry in data.items()
        if isinstance(entry, dict) and "key" in entry and "manifest" in entry
    }


def holds_build(app: App, key: str, known: dict[str, Held]) -> bool:
    """Does `dist/` still hold the recorded tested build of `key`? The manifest's hash
    catches a `doit build` or `doit serve` of other sources since that run; `intact` (the
    files exactly those the manifest lists, with its bytes) catches a step that edited or
    added a file since (a runner whose `.mfe/` and `dist/` survive between runs): such a
    `dist/` is built or restored again, never taken, published or shared as the build."""
    entry = known.get(app.name)
    if not (
        entry is not None
        and entry.key == key
        and app.manifest_path.is_file()
        and sha256_file(app.manifest_path) == entry.manifest
    ):
        return False
    if intact(app.dist):
        return True
    print(
        f"ci: {app.name}: dist/ no longer matches its {MANIFEST_NAME} (a file changed, or one "
        "it does not list was added); not taken",
        flush=True,
    )
    return False


def record_builds(project: Project, report: CiReport, who: Trust) -> None:
    """Record the apps whose `dist/` a later run may take as is: restored entries (tested
    before they were cached) and builds whose tests passed, never a failed or untested one.
    A record is trusted only if this run's ref is: a build taken as is (`dist: local`), and
    every record kept from before, stays trusted only if it was, so an untrusted run in the
    workspace never leaves a record a trusted run would share."""
    before = recorded_builds(project)
    kept = {
        name: Held(held.key, held.manifest, held.trusted and who.trusted, held.scope)
        for name, held in before.items()
    }
    made: dict[str, Held] = {}
    for name, result in report.apps.items():
        manifest = project.apps[name].manifest_path
        if result.dist == "local" and name in kept:  # as it was recorded, this run's key
            made[name] = Held(
                result.key, sha256_file(manifest), kept[name].trusted, kept[name].scope
            )
        elif result.dist == "cache" or (
            result.dist == "build" and result.tests in ("passed", "cached", "none")
        ):
            made[name] = Held(result.key, sha256_file(manifest), who.trusted, who.write_scope)
    merged = {name: asdict(held) for name, held in {**kept, **made}.items()}
    write_atomic(_keys_file(project), json.dumps(merged, indent=2, sort_keys=True) + "\n")
