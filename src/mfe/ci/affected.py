"""Which apps changed since a base git ref, and why (files, packages, shared config).

`git diff <base>...HEAD` plus uncommitted and untracked files; a file under
`apps/<app>/` affects that app, and so does one under the target of a symlinked folder
among its sources (git sees only the link; a target outside the repository, which git
does not track at all, makes the app affected on every run: its cache key decides), a shared build input or the `[build]` table of
`mfe.toml` affects every app, and a lockfile change affects only the apps whose
resolved slice of it changed. Page-level inputs (the shell template folder, the tables
of `mfe.toml` the page is rendered from) rebuild no app but change the page: the run
must publish it (Turborepo's global dependencies, Nx's implicit dependencies).
"""

from __future__ import annotations

import os
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mfe.build import lockslice, shared
from mfe.build.sources import app_of, editor_temporary, walk
from mfe.config import CONFIG_FILE, Project, parse_toml
from mfe.errors import MfeError

MAX_WHY = 20


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise MfeError("git is not on PATH: `doit ci base=...` needs git") from None
    if check and result.returncode != 0:
        raise MfeError(f"`git {' '.join(args)}` failed in {root}: {result.stderr.strip()}")
    return result


def is_checkout(root: Path) -> bool:
    """Whether `root` is inside a git work tree."""
    inside = git(root, "rev-parse", "--is-inside-work-tree", check=False)
    return inside.returncode == 0 and inside.stdout.strip() == "true"


def not_a_checkout(root: Path) -> str:
    return f"{root} is not a git checkout (no .git in it or above it)"


def verify_base(root: Path, base: str) -> str:
    """The base's commit id, or a clear error for a ref this (shallow) clone lacks."""
    if not is_checkout(root):
        raise MfeError(
            f"{not_a_checkout(root)}: base={base} needs its git history; run `doit ci` without base="
        )
    found = git(root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}", check=False)
    if found.returncode != 0:
        raise MfeError(
            f"base {base!r} is not a commit in this clone (a shallow clone?): check out with "
            f"`fetch-depth: 0` (actions/checkout) or run `git fetch origin {base}`, "
            "or run `doit ci` without base= to let the build cache decide"
        )
    if git(root, "merge-base", base, "HEAD", check=False).returncode != 0:
        raise MfeError(
            f"base {base!r} shares no history with HEAD in this clone (shallow?): "
            f"fetch more history (`fetch-depth: 0` or `git fetch --unshallow`)"
        )
    return found.stdout.strip()


def changed_paths(root: Path, base: str) -> list[str]:
    """Paths (relative to `root`) changed since the merge base, committed or not."""
    committed = git(
        root, "diff", "--name-only", "--no-renames", "--relative", "-z", f"{base}...HEAD"
    )
    paths = set(filter(None, committed.stdout.split("\0")))
    paths.update(_uncommitted(root, "."))
    return sorted(paths)


def _uncommitted(root: Path, *pathspecs: str) -> list[str]:
    """Modified, staged, deleted and untracked (not ignored) files under `pathspecs`."""
    flags = ("--porcelain", "-z", "--no-renames", "--untracked-files=all")
    status = git(root, "status", *flags, "--", *pathspecs)
    prefix = git(root, "rev-parse", "--show-prefix").stdout.strip()
    paths = []
    for record in filter(None, status.stdout.split("\0")):
        path = record[3:]
        paths.append(path.removeprefix(prefix) if prefix else path)
    return paths


@dataclass(frozen=True)
class Linked:
    """Where the symlinked folders among an app's sources lead (see `linked`)."""

    inside: dict[str, str]
    """Root-relative POSIX path of a target in the repository -> the link, root-relative."""
    outside: dict[str, Path]
    """Root-relative link -> its target outside the repository (git does not track it)."""


def linked(project: Project, app_path: Path) -> Linked:
    """The targets of the app's symlinked source folders, but those inside the app folder
    (git sees their files under it already)."""
    root, folder = os.path.realpath(project.root), os.path.realpath(app_path)
    inside: dict[str, str] = {}
    outside: dict[str, Path] = {}
    for name, target in walk(app_path).links.items():
        link = (app_path / name).relative_to(project.root).as_posix()
        if target == folder or target.startswith(os.path.join(folder, "")):
            continue
        if target.startswith(os.path.join(root, "")):
            inside.setdefault(Path(target).relative_to(root).as_posix(), link)
        else:
            outside[link] = Path(target)
    return Linked(inside, outside)


def has_uncommitted_changes(project: Project, app_path: Path) -> bool:
    """True when the app folder, or a folder in the repository its sources link to,
    differs from HEAD (or is not in a git checkout at all)."""
    specs = [app_path.relative_to(project.root).as_posix()]
    specs += linked(project, app_path).inside
    try:
        return bool(_uncommitted(project.root, *specs))
    except MfeError:
        return True  # not a git checkout: nothing proves the sources are committed


def uncommitted_inputs(project: Project, names: list[str]) -> list[str]:
    """The files the `names` apps' input keys read that differ from HEAD: their folders'
    sources, the shared [build] inputs and the lockfile (what a CI job keyed in the plan
    job's clean checkout never saw)."""
    root = project.root
    specs = [project.lockfile.relative_to(root).as_posix(), *project.build.inputs]
    for name in names:
        specs.append(project.apps[name].path.relative_to(root).as_posix())
        specs += linked(project, project.apps[name].path).inside
    found = []
    for path in _uncommitted(root, *specs):
        if path.startswith("apps/") and app_of(project, path) is None:
            continue  # dist/, node_modules/, an editor's temporary file: not a source
        found.append(path)
    return sorted(found)


def require_committed(project: Project, names: list[str], commit: str, job: str) -> None:
    """Refuse when the `names` apps' inputs differ from `commit`: the plan keys them from
    the commit's files, which every later job checks out, so a plan made over uncommitted
    edits would only be refused by each of them (or show as a key mismatch, late)."""
    found = uncommitted_inputs(project, names)
    if found:
        shown = ", ".join(found[:10]) + (f" and {len(found) - 10} more" if len(found) > 10 else "")
        raise MfeError(
            f"uncommitted changes to the planned apps' inputs ({shown}): {job} "
            f"commit {commit[:12]} as the plan keys it; commit the change and run "
            "`doit ci_plan` again, or discard it (`git status`)"
        )


def _show(root: Path, base: str, name: str) -> str | None:
    result = git(root, "show", f"{base}:./{name}", check=False)
    return result.stdout if result.returncode == 0 else None


def _build_table_changed(project: Project, base: str) -> bool:
    """[build] or [shared] changed: every app's bundle may differ (inputs, externals)."""
    old_text = _show(project.root, base, CONFIG_FILE)
    try:
        old = parse_toml(old_text or "")
        new = parse_toml((project.root / CONFIG_FILE).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError:
        return True
    return any(_built_from(old, table) != _built_from(new, table) for table in ("build", "shared"))


SERVE_ONLY = frozenset({"dev_port"})
"""Keys of `[shared]` only `doit serve` reads: changing them rebuilds nothing."""


def _built_from(config: dict[str, Any], table: str) -> dict[str, Any]:
    found = config.get(table, {})
    if not isinstance(found, dict):
        return {"": found}  # not a table: compared as it is
    return {key: value for key, value in found.items() if key not in SERVE_ONLY}


def _lockfile_reasons(project: Project, base: str) -> dict[str, list[str]]:
    old_text = _show(project.root, base, "package-lock.json")
    old = lockslice.parse_lockfile(old_text, f"{base}:package-lock.json") if old_text else {}
    new = lockslice.load_lockfile(project.lockfile)
    reasons = {}
    for name, app in project.apps.items():
        if app.role == "shared":
            before, after = shared.shared_slice(project, old), shared.shared_slice(project, new)
        else:
            workspace = lockslice.workspace_of(project.root, app.path)
            before = lockslice.slice_entries(old, workspace)
            after = lockslice.slice_entries(new, workspace)
        layout = before.pop(shared.LAYOUT_KEY, None), after.pop(shared.LAYOUT_KEY, None)
        lines = lockslice.diff_slices(before, after)
        if layout[0] != layout[1]:
            lines.append("package-lock.json: which apps share which version changed")
        if lines:
            reasons[name] = lines
    return reasons


def affected_apps(project: Project, base: str) -> dict[str, list[str]]:
    """App name -> why it is affected since `base` (apps with no reason are left out)."""
    verify_base(project.root, base)
    return _affected(project, base, changed_paths(project.root, base))


def _affected(project: Project, base: str, paths: list[str]) -> dict[str, list[str]]:
    """`affected_apps` from the `paths` changed since `base`."""
    why: dict[str, list[str]] = {name: [] for name in project.apps}
    shared = set(project.build.inputs)
    for path in paths:
        owner = app_of(project, path)
        if owner:
            why[owner].append(path)
        elif path in shared:
            for reasons in why.values():
                reasons.append(path)
    for name, app in project.apps.items():
        why[name] += _through_links(linked(project, app.path), paths)
    if CONFIG_FILE in paths and _build_table_changed(project, base):
        for reasons in why.values():
            reasons.append(f"{CONFIG_FILE}: [build] or [shared] changed")
    if "package-lock.json" in paths:
        for name, lines in _lockfile_reasons(project, base).items():
            why[name].extend(lines)
    return {name: _capped(reasons) for name, reasons in why.items() if reasons}


def _through_links(links: Linked, paths: list[str]) -> list[str]:
    """Why an app is affected through its symlinked source folders: a changed file under
    a target in the repository, or a target outside it (git cannot say it is the same)."""
    why = [
        f"{path} (through {link})"
        for path in paths
        for target, link in links.inside.items()
        if path.startswith(target + "/") and not editor_temporary(path.rsplit("/", 1)[-1])
    ]
    why += [
        f"{link}: links outside the repository ({target}), which git does not track"
        for link, target in links.outside.items()
    ]
    return why


@dataclass(frozen=True)
class Changes:
    """What changed since a base: per affected app why, and why the page changed."""

    apps: dict[str, list[str]]
    page: list[str]
    """Page-level inputs that changed (`page_changes`): no app rebuilds for them, but the
    page must be published again."""

    @property
    def publish(self) -> bool:
        return bool(self.apps or self.page)


PAGE_APP_KEYS = ("role", "element")
"""The keys of an `[apps.NAME]` table the page is rendered from (mfe.tasks.shell.url_config)."""


def changes_since(project: Project, env: str, base: str) -> Changes:
    """The affected apps and the page-level changes since `base`, for environment `env`."""
    verify_base(project.root, base)
    paths = changed_paths(project.root, base)  # one git diff and status for both
    return Changes(_affected(project, base, paths), page_changes(project, env, base, paths))


def page_changes(project: Project, env: str, base: str, paths: list[str]) -> list[str]:
    """Why the page of `env` differs though no app's build input changed: a file of the
    shell template folder (what `doit shell` renders from; not an editor's temporary
    file), or mfe.toml's `[project]`, the apps' roles and elements, or `[env.<env>]` (the
    page's names and URLs), or an app folder removed (its element leaves the page). The
    [build] and [shared] tables rebuild apps instead."""
    folder = project.shell_dir.relative_to(project.root).as_posix() + "/"
    why = [
        path
        for path in paths
        if path.startswith(folder) and not editor_temporary(path.rsplit("/", 1)[-1])
    ]
    why += [f"{path}: app removed" for path in _removed_apps(project, paths)]
    if CONFIG_FILE in paths:
        why += [f"{CONFIG_FILE}: {table} changed" for table in _page_tables(project, env, base)]
    return _capped(why)


def _removed_apps(project: Project, paths: list[str]) -> list[str]:
    """The changed `apps/<name>/package.json` files of apps this checkout no longer has
    (apps are found by their package.json: one that is gone took its app off the page)."""
    return [
        path
        for path in paths
        if path.startswith("apps/")
        and path.endswith("/package.json")
        and path.count("/") == 2
        and path.split("/")[1] not in project.apps
    ]


def _page_tables(project: Project, env: str, base: str) -> list[str]:
    """The page's tables of mfe.toml that differ from the base's."""
    try:
        old = parse_toml(_show(project.root, base, CONFIG_FILE) or "")
        new = parse_toml((project.root / CONFIG_FILE).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError:  # the base's copy: nothing proves the page the same
        return [f"the file (unreadable at {base})"]
    changed = [
        f"[{name}]"
        for name, old_table, new_table in (
            ("project", old.get("project"), new.get("project")),
            (f"env.{env}", old.get("env", {}).get(env), new.get("env", {}).get(env)),
        )
        if old_table != new_table
    ]
    before, after = _page_app_keys(old), _page_app_keys(new)
    changed += [
        f"[apps.{name}] role or element"
        for name in sorted(before.keys() | after.keys())
        if before.get(name) != after.get(name)
    ]
    return changed


def _page_app_keys(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    apps = config.get("apps", {})
    return {
        name: {key: table.get(key) for key in PAGE_APP_KEYS}
        for name, table in apps.items()
        if isinstance(table, dict)
    }


def _capped(reasons: list[str]) -> list[str]:
    if len(reasons) <= MAX_WHY:
        return reasons
    return [*reasons[:MAX_WHY], f"... and {len(reasons) - MAX_WHY} more"]
