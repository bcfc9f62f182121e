"""One definition of an app's sources: the build's file_dep, the watcher and CI agree."""

from __future__ import annotations

import json
from pathlib import Path

from mfe.build.sources import app_of, source_files
from mfe.config import load_project
from mfe.serve.watch import OUTPUTS, meaning

FILES = [
    "package.json",
    ".babelrc",
    "src/main.js",
    "src/deep/part.css",
    "public/favicon.svg",
    "dist/main-AAAA1111.js",
    "dist/asset-manifest.json",
    "node_modules/lit/index.js",
    "src/node_modules/x.js",
    ".cache/state",
    ".vite/deps.json",
    "src/.hidden/notes.js",
    "src/#main.js#",
    "src/main.js~",
    "src/.main.js.swp",
    "src/.main.js.swo",
    "src/.main.js.swx",
    "public/.favicon.svg.swp",
]
EDITOR_LOCK = "src/.#main.js"
"""Emacs' lock file: a symlink to `user@host.pid`, which does not exist."""


def test_build_watcher_and_ci_agree_on_what_a_source_is(tmp_path: Path) -> None:
    (tmp_path / "mfe.toml").write_text('[project]\nname = "s"\n[apps.web]\nrole = "parent"\n')
    app = tmp_path / "apps" / "web"
    for name in FILES:
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text(json.dumps({"scripts": {"build": "true"}}))
    (app / EDITOR_LOCK).symlink_to("someone@host.4242:1700000000")
    (app / "src/broken.js").symlink_to("gone.js")  # a dangling link: nothing a build can read
    project = load_project(tmp_path)

    built_from = source_files(project, project.apps["web"])

    expected = ["package.json", ".babelrc", "src/main.js", "src/deep/part.css"]
    expected += ["public/favicon.svg"]
    assert built_from == sorted(f"apps/web/{name}" for name in expected)
    every = [f"apps/web/{name}" for name in FILES]
    assert [p for p in every if app_of(project, p) == "web"] == [
        p for p in every if p in built_from
    ]
    assert app_of(project, f"apps/web/{EDITOR_LOCK}") is None
    watched = [p for p in every if meaning(project, tmp_path / p) == "web"]
    assert watched == [p for p in every if p in built_from]
    assert meaning(project, app / EDITOR_LOCK) is None
    # A freshly swapped output folder is not a source change (serve re-renders the page).
    assert app_of(project, "apps/web/dist") is None
    assert meaning(project, app / "dist") == OUTPUTS
    assert app_of(project, "apps/other/src/x.js") is None
