"""Render the shell page of a release from its app versions (the live pointer merged
with this publish's changes), so a page never mixes a local build with a stale one."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from mfe.build.manifest import JS_SUFFIXES, AssetManifest, hash_file, sha256_file
from mfe.config import Environment, Project
from mfe.envs.outputs import Outputs
from mfe.errors import MfeError
from mfe.files import write_atomic
from mfe.publish.pointer import AppVersion, Live
from mfe.publish.remote import s3_errors
from mfe.publish.versions import (
    ca_key,
    forget_version,
    read_asset_manifest,
    read_version_file,
    version_key,
)

if TYPE_CHECKING:
    from mfe.envs.session import Session

ManifestFor = Callable[[str, str], tuple[AssetManifest, Path]]
"""(app, version) -> that version's asset-manifest and a folder with its JavaScript (the
local build, or its version manifest and the files fetched from the bucket)."""


def check_needed(
    project: Project, env: Environment, live: Live | None, mine: Iterable[str]
) -> None:
    """Refuse, before anything is uploaded, a publish of some apps (`app=NAME`: `mine`)
    whose page needs an app neither live nor among them, with advice that ends: publishing
    the missing app alone works only when something is live already (on an empty
    environment each app-only publish lacks the others), and only when it is the one."""
    live_apps = set(live.apps) if live else set()
    missing = [
        app.name
        for app in project.apps.values()
        if app.role != "fragment" and app.name not in live_apps and app.name not in mine
    ]
    if not missing:
        return
    whole = f"`doit publish env={env.name}`"
    if not live_apps:
        raise MfeError(
            f"nothing is live in environment '{env.name}' yet, so the page would lack "
            f"{', '.join(missing)}: publish every app first with {whole}, then "
            "`app=NAME` publishes one"
        )
    if len(missing) > 1:
        raise MfeError(
            f"apps {', '.join(missing)} (in mfe.toml) are not live in environment "
            f"'{env.name}', and the page needs them: publish every app first with {whole}"
        )
    raise MfeError(
        f"app '{missing[0]}' (in mfe.toml) is not live in environment '{env.name}', and the "
        f"page needs it: publish it first (`doit publish env={env.name} app={missing[0]}`) "
        f"or every app ({whole})"
    )


def render_page(
    project: Project,
    env: Environment,
    outputs: Outputs,
    apps: dict[str, AppVersion],
    manifest_for: ManifestFor,
) -> bytes:
    from mfe.shell import render_template, shell_context

    manifests, dists = {}, {}
    for app in project.apps.values():
        version = apps.get(app.name)
        if version is None and app.role == "fragment":
            continue  # in mfe.toml, never published: left off the page, as live leaves it
        if version is None:  # the page needs it (the shell, or the modules apps import)
            raise MfeError(
                f"app '{app.name}' (in mfe.toml) is not live in environment '{env.name}', and "
                f"the page needs it: publish it first (`doit publish env={env.name} "
                f"app={app.name}` builds it)"
            )
        manifests[app.name], dists[app.name] = manifest_for(app.name, version.version)
    context = shell_context(project, env, outputs, manifests, dists)
    return render_template(project, context).encode("utf-8")


def fetch_version(
    session: Session, bucket: str, app: str, version: str, state: Path
) -> tuple[AssetManifest, Path]:
    """A version not built here, from its bucket: its asset-manifest and its JavaScript
    (the import map depends on how the code imports shared modules), cached under
    `.mfe/<env>/dist-cache/<app>/<version>/` (immutable). The page's SRI comes from the
    manifest, so each module's integrity is checked against its bytes: a cached version
    manifest that does not match them is dropped and read again from the bucket."""
    with s3_errors(session, bucket, f"reading version {version[:12]} of {app}"):
        manifest, folder = _fetch(session, bucket, app, version, state)
        if _wrong_integrity(manifest, folder):
            forget_version(state, app, version)
            manifest, folder = _fetch(session, bucket, app, version, state)
        wrong = _wrong_integrity(manifest, folder)
        if wrong:
            raise MfeError(
                f"{version_key(app, version)} in bucket '{bucket}' gives {wrong[0]} an integrity "
                "its bytes do not have (corrupted?); publish that app again"
            )
    return manifest, folder


def built_version(
    project: Project, app: str, version: str, state: Path
) -> tuple[AssetManifest, Path] | None:
    """This checkout's build of `app` (one a publish does not otherwise read, as under
    `app=NAME`) when it is `version`: its JavaScript copied into the version's folder of
    `.mfe/<env>/dist-cache/` (as `fetch_version` fills it, without a request), so a build
    of that app swapping its `dist/` meanwhile (another `doit publish app=...`) cannot
    take the files from under the page's render. None when it is not built here, is
    another version, or its files changed while copied: the bucket's are read instead."""
    from mfe.publish.local import collect
    from mfe.publish.versions import version_of

    try:
        built = collect(project, "", [app])[app]
    except MfeError:  # not built here, or its dist/ lacks a file its manifest lists
        return None
    if version_of(built.files) != version:
        return None
    dist, folder = project.apps[app].dist, state / "dist-cache" / app / version
    for key, entry in built.manifest.files.items():
        target = folder / key
        if key.endswith(JS_SUFFIXES) and not (
            target.is_file() and sha256_file(target) == entry.sha256
        ):
            try:
                write_atomic(target, (dist / key).read_bytes())
            except FileNotFoundError:  # its dist/ swapped meanwhile
                return None
    folder.mkdir(parents=True, exist_ok=True)
    os.utime(folder)  # in use: `--prune` keeps it (mfe.publish.prune)
    if _wrong_integrity(built.manifest, folder):
        return None
    return built.manifest, folder


def _fetch(
    session: Session, bucket: str, app: str, version: str, state: Path
) -> tuple[AssetManifest, Path]:
    manifest = read_asset_manifest(session.s3, bucket, app, version, state)
    folder = state / "dist-cache" / app / version
    for key, entry in manifest.files.items():
        target = folder / key
        # A cached copy counts only if whole (a killed publish may have cut one short).
        if not key.endswith(JS_SUFFIXES) or (
            target.is_file() and sha256_file(target) == entry.sha256
        ):
            continue
        source = key if entry.immutable else ca_key(key, entry.sha256)
        write_atomic(target, read_version_file(session.s3, bucket, source, app, version))
    folder.mkdir(parents=True, exist_ok=True)
    os.utime(folder)  # in use: `--prune` keeps it (mfe.publish.prune)
    return manifest, folder


def _wrong_integrity(manifest: AssetManifest, folder: Path) -> list[str]:
    """The JavaScript files whose manifest integrity (the page's SRI) their bytes lack."""
    return [
        key
        for key, entry in sorted(manifest.files.items())
        if key.endswith(JS_SUFFIXES) and hash_file(folder / key).integrity != entry.integrity
    ]
