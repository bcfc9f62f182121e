"""Render the shell page of a release from its app versions (the live pointer merged
with this publish's changes), so a page never mixes a local build with a stale one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mfe.build.manifest import AssetManifest
from mfe.config import Environment, Project
from mfe.envs.outputs import Outputs
from mfe.errors import MfeError
from mfe.publish.pointer import AppVersion

ManifestFor = Callable[[str, str], tuple[AssetManifest, Path]]
"""(app, version) -> that version's asset-manifest and a folder with its JavaScript (the
local build, or its version manifest and the files fetched from the bucket)."""


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
        if version is None:
            raise MfeError(
                f"app '{app.name}' is not live in environment '{env.name}' and was not built "
                f"here; build it (`doit build:{app.name}`) and publish it first"
            )
        manifests[app.name], dists[app.name] = manifest_for(app.name, version.version)
    context = shell_context(project, env, outputs, manifests, dists)
    return render_template(project, context).encode("utf-8")
