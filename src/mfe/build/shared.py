"""The shared modules: which versions of the `[shared]` packages the apps resolve, and
the `shared` pseudo-app build that turns them into fingerprinted ES modules.

Apps that resolve the root's version of a package share its default copy (the import
map's `imports`); an app whose own lockfile slice pins another version gets a variant
built from its folder, mapped for it alone through `scopes`. Kept free of heavy imports:
the doit `build:shared` task checks `shared_slice` on every run.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from mfe.build import lockslice
from mfe.config import Project, SharedSettings

SHARED_APP_DOC = (
    "Build the [shared] modules into build/shared/dist (when their lockfile entries change)"
)
LAYOUT_KEY = "[shared]"
"""`shared_slice` key of the variant layout and settings (not a lockfile location)."""
DEFAULT = ""
"""Variant folder of the default copy (the root of the shared dist/)."""


def package_of(specifier: str) -> str:
    """`lit/decorators.js` -> `lit`, `@scope/pkg/x` -> `@scope/pkg`."""
    parts = specifier.split("/")
    return "/".join(parts[:2]) if specifier.startswith("@") else parts[0]


@dataclass(frozen=True)
class Variant:
    dir: str
    """Folder under the shared dist/ ("" for the default copy)."""
    resolve_from: str
    """Lockfile location the packages are resolved from ("" = the root)."""
    modules: tuple[str, ...]
    apps: tuple[str, ...]
    """Apps mapped to this variant through import-map scopes (none for the default)."""
    versions: dict[str, str]
    """package -> resolved version."""


@dataclass(frozen=True)
class SharedPlan:
    variants: list[Variant]
    uses: dict[str, dict[str, str]]
    """app -> shared package -> the version its lockfile slice resolves."""


def _version(packages: lockslice.Packages, location: str | None) -> str:
    return str(packages.get(location or "", {}).get("version", "")) if location else ""


def _used(packages: lockslice.Packages, workspace: str, names: tuple[str, ...]) -> dict[str, str]:
    """Shared package -> resolved location, for the ones `workspace` depends on (transitively)."""
    reachable = lockslice.closure(packages, workspace)
    found = {}
    for name in names:
        location = lockslice.resolve(packages, workspace, name)
        if location is not None and location in reachable:
            found[name] = location
    return found


def plan(project: Project, packages: lockslice.Packages) -> SharedPlan:
    """The default copy plus one variant per distinct set of versions that differ from it."""
    settings = project.shared
    assert settings is not None
    default = {name: _version(packages, f"node_modules/{name}") for name in settings.packages}
    uses: dict[str, dict[str, str]] = {}
    groups: dict[tuple[tuple[str, str], ...], list[tuple[str, str, set[str]]]] = {}
    for app in project.bundled_apps.values():
        workspace = lockslice.workspace_of(project.root, app.path)
        located = _used(packages, workspace, settings.packages)
        uses[app.name] = {name: _version(packages, loc) for name, loc in located.items()}
        differing = {n for n, v in uses[app.name].items() if v != default.get(n)}
        # A package that depends on a differing one (react-dom on react) comes along, so one
        # scope never mixes two instances of a library.
        for name, location in located.items():
            deps = lockslice.closure(packages, location) if name not in differing else {}
            if any(located.get(d) in deps for d in differing):
                differing.add(name)
        if differing:
            key = tuple(sorted((n, uses[app.name][n]) for n in differing))
            groups.setdefault(key, []).append((app.name, workspace, differing))
    variants = [Variant(DEFAULT, "", settings.modules, (), default)]
    for key, members in sorted(groups.items()):
        names = members[0][2]
        variants.append(
            Variant(
                dir=f"scoped/{members[0][0]}",
                resolve_from=members[0][1],
                modules=tuple(m for m in settings.modules if package_of(m) in names),
                apps=tuple(sorted(name for name, _, _ in members)),
                versions=dict(key),
            )
        )
    return SharedPlan(variants, uses)


def major_mismatches(shared_plan: SharedPlan) -> list[str]:
    """Warnings for apps resolving different major versions of one shared package."""
    seen: dict[str, dict[str, list[str]]] = {}
    for app, versions in sorted(shared_plan.uses.items()):
        for name, version in versions.items():
            seen.setdefault(name, {}).setdefault(version, []).append(app)
    lines = []
    for name, by_version in sorted(seen.items()):
        majors = {v.split(".")[0] for v in by_version}
        if len(majors) > 1:
            listed = "; ".join(
                f"{', '.join(apps)} resolve{'s' if len(apps) == 1 else ''} {name}@{version}"
                for version, apps in sorted(by_version.items())
            )
            lines.append(
                f"warning: shared package {name}: different major versions ({listed}); "
                "each gets its own copy through the import map's scopes"
            )
    return lines


def version_warnings(project: Project) -> list[str]:
    """`major_mismatches` of the project's lockfile (`doit plan` and `doit ci` print them)."""
    if project.shared is None:
        return []
    return major_mismatches(plan(project, lockslice.load_lockfile(project.lockfile)))


def shared_slice(project: Project, packages: lockslice.Packages) -> dict[str, str]:
    """The lockfile entries the shared modules are built from (location -> fingerprint),
    plus the variant layout and `[shared]` settings: what `build:shared` depends on."""
    shared_plan = plan(project, packages)
    entries: dict[str, str] = {}
    for variant in shared_plan.variants:
        for name in sorted({package_of(m) for m in variant.modules}):
            location = lockslice.resolve(packages, variant.resolve_from, name)
            if location is not None:
                entries.update(lockslice.package_slice(packages, location))
    assert project.shared is not None
    for tool in project.shared.tools:
        location = lockslice.resolve(packages, "", tool)
        if location is not None:
            entries.update(lockslice.package_slice(packages, location))
    layout = [(v.dir, v.resolve_from, v.modules, v.apps) for v in shared_plan.variants]
    entries[LAYOUT_KEY] = json.dumps([_settings(project.shared), layout], sort_keys=True)
    return dict(sorted(entries.items()))


def _settings(settings: SharedSettings | None) -> Any:
    if settings is None:
        return None
    return [settings.packages, settings.modules, settings.script, settings.tools]


def externals_json(project: Project) -> str:
    """`MFE_SHARED` for app builds: the specifiers they leave to the import map."""
    settings = project.shared
    if settings is None:
        return json.dumps({"packages": [], "modules": []})
    return json.dumps({"packages": list(settings.packages), "modules": list(settings.modules)})


def spec_json(project: Project, shared_plan: SharedPlan) -> str:
    """`MFE_SHARED_SPEC` for tools/build-shared.mjs."""
    variants = [
        {
            "dir": v.dir,
            "resolveDir": str(project.root / v.resolve_from),
            "modules": list(v.modules),
        }
        for v in shared_plan.variants
    ]
    return json.dumps({"variants": variants})


def shared_slice_hash(project: Project, packages: lockslice.Packages) -> str:
    text = json.dumps(shared_slice(project, packages), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class SharedUnchanged:
    """doit `uptodate` check of `build:shared`: the shared packages' lockfile entries (and
    `[shared]`) are what they were at the last build. App code never enters it."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.seen = lockslice.SeenBeforeBuild("_shared_slice")

    def current(self) -> str:
        """The slice's hash, from the lockfile-slices cache while the lockfile's bytes and
        what the slice reads of the project (`[shared]`, the apps' folders) are unchanged."""
        name = f"{LAYOUT_KEY} {self._project_key()}"
        how = functools.partial(shared_slice_hash, self.project)
        return lockslice.cached_lock_hashes(self.project.root, {name: how})[name]

    def _project_key(self) -> str:
        root, apps = self.project.root, self.project.bundled_apps.values()
        workspaces = [(app.name, lockslice.workspace_of(root, app.path)) for app in apps]
        text = json.dumps([_settings(self.project.shared), workspaces])
        return hashlib.sha256(text.encode()).hexdigest()

    def configure_task(self, task: Any) -> None:
        task.value_savers.append(self.seen.saved)

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        return self.seen.check(values, self.current())

    def __repr__(self) -> str:
        return "SharedUnchanged()"
