"""`.mfe/ci-keys.json`: the tested builds this checkout's CI runs left in the apps'
`dist/`, so a later run takes such a build as is (`dist: local`) instead of restoring or
building it again, once it proved the folder still holds exactly that build."""

from __future__ import annotations

import json
from pathlib import Path

from mfe.build.keep import intact
from mfe.build.manifest import MANIFEST_NAME, sha256_file
from mfe.ci.report import CiReport
from mfe.config import STATE_DIR, App, Project
from mfe.files import write_atomic


def _keys_file(project: Project) -> Path:
    return project.root / STATE_DIR / "ci-keys.json"


def recorded_builds(project: Project) -> dict[str, dict[str, str]]:
    """`.mfe/ci-keys.json`: per app, the input key and manifest hash of the tested build
    this checkout's last CI run left in its `dist/`."""
    try:
        data = json.loads(_keys_file(project).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(name): {"key": str(entry["key"]), "manifest": str(entry["manifest"])}
        for name, entry in data.items()
        if isinstance(entry, dict) and "key" in entry and "manifest" in entry
    }


def holds_build(app: App, key: str, known: dict[str, dict[str, str]]) -> bool:
    """Does `dist/` still hold the recorded tested build of `key`? The manifest's hash
    catches a `doit build` or `doit serve` of other sources since that run; `intact` (the
    files exactly those the manifest lists, with its bytes) catches a step that edited or
    added a file since (a runner whose `.mfe/` and `dist/` survive between runs): such a
    `dist/` is built or restored again, never taken, published or shared as the build."""
    entry = known.get(app.name)
    if not (
        entry is not None
        and entry["key"] == key
        and app.manifest_path.is_file()
        and sha256_file(app.manifest_path) == entry["manifest"]
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


def record_builds(project: Project, report: CiReport) -> None:
    """Record the apps whose `dist/` a later run may take as is: restored entries (tested
    before they were cached) and builds whose tests passed, never a failed or untested one."""
    trusted = {
        name: {"key": result.key, "manifest": sha256_file(project.apps[name].manifest_path)}
        for name, result in report.apps.items()
        if result.dist in ("cache", "local")
        or (result.dist == "build" and result.tests in ("passed", "cached", "none"))
    }
    merged = {**recorded_builds(project), **trusted}
    write_atomic(_keys_file(project), json.dumps(merged, indent=2, sort_keys=True) + "\n")
