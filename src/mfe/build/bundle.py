"""Run one app's bundler and record its output, never leaving a broken `dist/`.

The bundler writes into a scratch folder of this build alone (`MFE_OUT_DIR`, see
`mfe.build.scratch`); only a successful build replaces `dist/`, so a syntax error keeps
the previous build served (and a failure of any kind puts back the `dist/` a script that
wrote there itself emptied, see `mfe.build.keep`), and of two builds of one app at once
the last one to finish leaves its complete output.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mfe.build import live, snapshot
from mfe.build.scratch import build_folder, locked
from mfe.build.sources import file_deps
from mfe.config import App, Project
from mfe.errors import Interrupted, MfeError
from mfe.files import read_json
from mfe.output import say

if TYPE_CHECKING:  # hashing is only needed when a build runs, not when doit loads tasks
    from mfe.build.keep import Kept
    from mfe.build.manifest import AssetManifest

ATTEMPTS = 3
"""Builds tried while inputs keep changing under the bundler before giving up."""
SHELL_PAGE = "index.html"
"""The parent site's page: the shell, rendered and published by the orchestrator."""
PREVIEWS = "previews/"
"""Where the parent site holds the preview pages (mfe.publish.previews.PREVIEW_PAGES)."""


def npm_scripts(app: App) -> dict[str, str]:
    """The `scripts` of the app's package.json (config loading checked it has `build`)."""
    scripts: dict[str, str] = read_json(app.path / "package.json")["scripts"]
    return scripts


def build_command(app: App) -> str:
    """The shell command that builds the app: its `build` script as `npm run` would run it.

    Run directly (a shell, `node_modules/.bin` of the app and the root on PATH) it skips
    npm's ~0.15 s start-up, which matters in `doit serve`; an app with `prebuild` or
    `postbuild` hooks goes through `npm run build` so the hooks still run.
    """
    scripts = npm_scripts(app)
    if "prebuild" in scripts or "postbuild" in scripts:
        return "npm run --silent build"
    return scripts["build"]


@dataclass(frozen=True)
class Built:
    manifest: AssetManifest
    read: dict[str, snapshot.State]
    """Fingerprints of the inputs as the bundler read them (what doit must store)."""


def build_app(project: Project, app: App) -> Built:
    """Bundle into a scratch folder, write the manifest, swap into `dist/`.

    Inputs are fingerprinted before the bundler starts and checked after it ends; one
    that moved meanwhile means the bundle may hold its old bytes, so the build runs
    again (up to `ATTEMPTS` times) instead of being recorded as current.

    The `shared` pseudo-app runs `[shared] script` in the root with the variant plan
    (mfe.build.shared); every other app leaves the shared module specifiers external.
    """
    from mfe.build import keep

    with (
        build_folder(project.root, app.name) as folder,
        keep.kept(app.dist, folder / "previous") as keeper,
    ):
        try:
            return _build_into(project, app, folder / "out", keeper)
        except FileNotFoundError:
            if app.path.is_dir():
                raise
            raise MfeError(  # `doit serve` rebuilt it while the folder was being removed
                f"build:{app.name}: {app.path.relative_to(project.root)}/ was deleted during "
                f"the build; restore it, or remove [apps.{app.name}] from mfe.toml"
            ) from None


def _build_into(project: Project, app: App, out: Path, keeper: Kept) -> Built:
    """`build_app` with `out` as the bundler's output folder (in this build's scratch).
    Whatever it raises, `keeper` (see `build_app`) puts the previous dist/ back."""
    started = time.monotonic()
    check_public(project, app)
    inputs = file_deps(project, app)
    for _ in range(ATTEMPTS):
        read = snapshot.take(project.root, inputs)
        output = _bundle(project, app, out, keeper)
        inputs = file_deps(project, app)
        changed = snapshot.moved(project.root, read, inputs)
        if not changed:
            break
        say(f"build:{app.name}: {changed[0]} changed while bundling; building again")
    else:
        raise MfeError(
            f"build:{app.name}: {changed[0]} kept changing while the bundler read it "
            f"({ATTEMPTS} builds); the previous {app.dist.relative_to(project.root)}/ is "
            "kept; run the build again once the edits are saved"
        )
    from mfe.build.elements import check_element
    from mfe.build.manifest import write_manifest
    from mfe.build.outputs import drop_excluded

    modules_file = _modules_file(out)
    layout = json.loads(modules_file.read_text("utf-8")) if modules_file.is_file() else {}
    modules_file.unlink(missing_ok=True)
    drop_excluded(out)
    scopes = _shared_plan(project)[1] if app.role == "shared" else None
    manifest = write_manifest(
        app.name, out, layout.get("modules"), scopes, layout.get("fallbacks"), inputs
    )
    if (clash := parent_clash(app, manifest.files)) is not None:  # the bundler wrote it
        raise MfeError(
            f"build:{app.name}: its build wrote {clash}: {clash_why(project, clash)}, or "
            "make the build not write it"
        )
    if app.role != "shared":  # the shared modules define no element of their own
        check_element(project, app, out, manifest)  # raising keeps the previous dist/
    swap_into_place(out, app.dist)
    if output.strip():
        say(output.rstrip())
    seconds = time.monotonic() - started
    say(f"build:{app.name}: {len(manifest.files)} files in {seconds:.2f}s")
    return Built(manifest, read)


def check_public(project: Project, app: App) -> None:
    """Refuse, before the bundler copies it, a `public/` file the site cannot take (named:
    Node's copy would fail on a name that is not UTF-8 with a stack trace), a link that
    leads nowhere, and a file the publish would silently replace or clash with:
    `public/asset-manifest.json` (the build's own), and in the parent app `index.html`
    (the rendered shell page) and anything under `previews/` (the preview pages)."""
    from mfe.build.manifest import MANIFEST_NAME
    from mfe.build.outputs import files_under

    public = app.path / "public"
    if not public.is_dir():
        return
    names = files_under(public, f"build:{app.name}", project.root)
    where = f"build:{app.name}: {public.relative_to(project.root)}"
    if MANIFEST_NAME in names:
        raise MfeError(
            f"{where}/{MANIFEST_NAME}: the build writes its own "
            f"{MANIFEST_NAME} there (the record of its output, never published); rename the file"
        )
    if (clash := parent_clash(app, names)) is not None:
        raise MfeError(f"{where}/{clash}: {clash_why(project, clash)}, or rename the file")


def parent_clash(app: App, names: Iterable[str]) -> str | None:
    """A file of the parent site the publish would replace (`index.html`: the rendered
    shell page) or mix with the preview pages (under `previews/`); fragments may ship both."""
    if app.role != "parent":
        return None
    return next((n for n in names if n == SHELL_PAGE or n.startswith(PREVIEWS)), None)


def clash_why(project: Project, clash: str) -> str:
    if clash == SHELL_PAGE:
        return (
            f"the parent site's {SHELL_PAGE} is the shell page rendered from "
            f"{project.shell_dir.relative_to(project.root)}/, which would replace this file; "
            "put its content in the shell template"
        )
    return (
        f"{PREVIEWS} of the parent site holds the preview pages (`doit publish "
        "preview=NAME`), which would clash with this file; keep it out of previews/"
    )


def _modules_file(scratch: Path) -> Path:
    """Where tools/build-shared.mjs records which file is which module specifier."""
    return scratch.with_name(scratch.name + ".modules.json")


def _shared_plan(project: Project) -> tuple[str, dict[str, list[str]]]:
    """MFE_SHARED_SPEC for the shared build, and the apps scoped to each variant."""
    from mfe.build import lockslice, shared

    plan = shared.plan(project, lockslice.load_lockfile(project.lockfile))
    scopes = {v.dir: list(v.apps) for v in plan.variants if v.apps}
    return shared.spec_json(project, plan), scopes


def build_env(project: Project, app: App | None = None) -> dict[str, str]:
    """The environment `npm run build` would give: `node_modules/.bin` folders on PATH."""
    folders = ([app.path] if app else []) + [project.root]
    bins = [str(folder / "node_modules" / ".bin") for folder in folders]
    return {**os.environ, "PATH": os.pathsep.join([*bins, os.environ.get("PATH", "")])}


INTERRUPTED = (130, -signal.SIGINT)
"""A build script's (or npm's) exit by Ctrl-C: a shell's 128 + SIGINT, or killed by it."""


def _bundle(project: Project, app: App, scratch: Path, keeper: Kept) -> str:
    """Run the app's build script into `scratch`; its output, or MfeError naming the app.
    `keeper` copies dist/ first: the script may write there itself.

    In `doit serve` the shared build script runs in the session's long-lived bundler.
    """
    from mfe.build.manifest import MANIFEST_NAME
    from mfe.build.shared import externals_json

    shutil.rmtree(scratch, ignore_errors=True)
    _modules_file(scratch).unlink(missing_ok=True)
    scratch.parent.mkdir(parents=True, exist_ok=True)
    if app.role != "shared" and (text := _bundle_live(project, app, scratch)) is not None:
        return text
    env = {
        **build_env(project, app),
        "MFE_OUT_DIR": str(scratch),
        "MFE_APP": app.name,
        "MFE_SHARED": externals_json(project),
    }
    if app.role == "shared" and project.shared is not None:
        env["MFE_SHARED_SPEC"] = _shared_plan(project)[0]
        env["MFE_SHARED_MODULES_OUT"] = str(_modules_file(scratch))
        script, cwd = project.shared.script, project.root
    else:
        script, cwd = build_command(app), app.path
    keeper.take()
    result = subprocess.run(
        script,
        shell=True,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    wrote = scratch.is_dir()
    if result.returncode in INTERRUPTED:  # Ctrl-C reached the build first: ours, not a failure
        raise Interrupted(
            f"build:{app.name} interrupted (Ctrl-C); the previous "
            f"{app.dist.relative_to(project.root)}/ is kept"
        )
    if result.returncode != 0:
        hint = node_hint(result.returncode, env)
        raise MfeError(
            f"build:{app.name} failed: `{script}` exited {result.returncode}{hint}; "
            f"the previous {app.dist.relative_to(project.root)}/ is kept.\n"
            f"{result.stdout.rstrip()}"
        )
    if not wrote:
        dist = app.dist.relative_to(project.root)
        touched = keeper.touched()  # raising puts the previous build back (`build_app`)
        instead = f" but to {dist}/ itself (its previous build is put back)" if touched else ""
        raise MfeError(
            f"build:{app.name}: `{script}` wrote nothing to $MFE_OUT_DIR{instead}; a build "
            f"must write its output there (swapped into {dist}/ with its {MANIFEST_NAME}): "
            "make it honour MFE_OUT_DIR"
        )
    return result.stdout


NODE_MAJOR = 20
"""The oldest Node.js the README promises works (esbuild, the apps' `node --test`)."""


def node_hint(returncode: int, env: dict[str, str]) -> str:
    """Why a build or test script may have failed, if Node.js is the cause: missing (the
    shell's 127), or older than `NODE_MAJOR` (asked only after a failure: no cost on the
    way that works)."""
    if returncode == 127:
        return " (is Node.js installed?)"
    try:
        found = subprocess.run(
            ["node", "--version"], env=env, capture_output=True, text=True, check=False
        ).stdout.strip()
        major = int(found.removeprefix("v").split(".")[0])
    except (OSError, ValueError):
        return ""
    if major >= NODE_MAJOR:
        return ""
    return f" (Node.js {found} is on PATH: this monorepo needs Node.js {NODE_MAJOR} or newer)"


def _bundle_live(project: Project, app: App, scratch: Path) -> str | None:
    """The build in `doit serve`'s long-lived bundler, when it runs this app's script."""
    from mfe.build.shared import externals_json

    script = build_command(app)
    bundler = live.active()
    shared_script = live.shared_script(project, app, script) if bundler else None
    if bundler is None or shared_script is None:
        return None
    answer = bundler.bundle(shared_script, app, scratch, json.loads(externals_json(project)))
    if answer is None:
        return None
    ok, text = answer
    if not ok:
        raise MfeError(
            f"build:{app.name} failed ({script}, in the serve bundler); the previous "
            f"{app.dist.relative_to(project.root)}/ is kept.\n{text}"
        )
    return text


def swap_into_place(new: Path, dist: Path) -> None:
    """Replace `dist` by `new` with two renames, so readers never see a half-written folder.

    Another process may swap the same `dist` (two builds of one app): the renames hold a
    lock on the folder above it, so each swap is whole and the last one wins.
    """
    old = new.with_name(new.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    dist.parent.mkdir(parents=True, exist_ok=True)
    with locked(dist.parent):
        if dist.exists():
            dist.rename(old)
        new.rename(dist)
    shutil.rmtree(old, ignore_errors=True)
