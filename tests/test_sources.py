"""One definition of an app's sources: the build's file_dep, the watcher and CI agree."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from mfe.build.inputs import input_key
from mfe.build.sources import app_of, linked_folders, source_files
from mfe.config import load_project
from mfe.serve.watch import OUTPUTS, meaning

from fixtures.repo import executed_tasks, run_doit

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
    "public/.well-known/security.txt",
    "public/.well-known/.config/x.json",
    "public/.DS_Store",
    "public/vendor/.git/config",
    "public/vendor/.hg/store/data",
    "public/vendor/.svn/entries",
    "public/vendor/Thumbs.db",
    "src/.DS_Store",
    "desktop.ini",
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
    # public/ is copied into dist/ whole: its dot folders are published, so they are sources.
    expected += ["public/favicon.svg", "public/.well-known/security.txt"]
    expected += ["public/.well-known/.config/x.json"]
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


def test_symlinked_folders_are_walked_once_per_path_and_cycles_are_not(tmp_path: Path) -> None:
    """Linked folders (out of the repo, nested, one inside another's target) are sources
    under the link's path; a link to a folder the walk is in (`..`, `/`) is a cycle and
    not entered; a dangling folder link is nothing a build can read."""
    (tmp_path / "mfe.toml").write_text('[project]\nname = "s"\n[apps.web]\nrole = "parent"\n')
    app = tmp_path / "apps" / "web"
    (app / "src").mkdir(parents=True)
    (app / "package.json").write_text(json.dumps({"scripts": {"build": "true"}}))
    outside = tmp_path / "ext"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "a.js").write_text("a")
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "b.js").write_text("b")
    (outside / "more").symlink_to("../more")  # nested: a link inside a link's target
    (outside / "back").symlink_to(app / "src")  # a cycle through the outside folder
    (app / "src" / "lib").symlink_to(outside)
    (app / "src" / "up").symlink_to("..")
    (app / "src" / "root").symlink_to("/")
    (app / "src" / "gone").symlink_to("nowhere")
    project = load_project(tmp_path)

    assert source_files(project, project.apps["web"]) == [
        "apps/web/package.json",
        "apps/web/src/lib/deep/a.js",
        "apps/web/src/lib/more/b.js",
    ]
    assert linked_folders(project.apps["web"]) == {
        app / "src/lib": outside.resolve(),
        app / "src/lib/more": (tmp_path / "more").resolve(),
    }


def test_a_dot_folder_in_public_is_an_input_of_the_build_and_of_the_ci_key(
    built_monorepo: Path,
) -> None:
    """`public/.well-known/` is copied into dist/ (so published): editing it rebuilds the
    app and changes its CI input key; a dot folder elsewhere still does neither."""
    project = load_project(built_monorepo)
    app = project.apps["payments"]
    before = input_key(project, app).key
    well_known = app.path / "public/.well-known"
    well_known.mkdir(parents=True)
    (well_known / "security.txt").write_text("Contact: mailto:a@example.com\n")
    assert built(run_doit(built_monorepo, "build")) == {"build:payments"}
    files = json.loads((app.dist / "asset-manifest.json").read_text())["files"]
    assert ".well-known/security.txt" in files
    assert built(run_doit(built_monorepo, "build")) == set()

    (well_known / "security.txt").write_text("Contact: mailto:b@example.com\n")
    assert input_key(project, app).key != before
    assert built(run_doit(built_monorepo, "build")) == {"build:payments"}
    assert (app.dist / ".well-known/security.txt").read_text().endswith("b@example.com\n")

    edited = input_key(project, app).key
    (app.path / "src/.hidden").mkdir()
    (app.path / "src/.hidden/notes.txt").write_text("a tool's cache\n")
    assert built(run_doit(built_monorepo, "build")) == set()
    assert input_key(project, app).key == edited


def test_nested_repositories_and_os_junk_are_neither_inputs_nor_published(
    built_monorepo: Path,
) -> None:
    """A git repository under `public/` (its `.git/` with config and hook samples) and
    `.DS_Store`/`Thumbs.db` were inputs (a commit in the nested repository rebuilt the app
    and changed its CI key) and were published: now the build leaves them out of dist/
    and its manifest, and changing them rebuilds nothing."""
    project = load_project(built_monorepo)
    app = project.apps["mfe-parent"]
    vendor = app.path / "public/vendor"
    vendor.mkdir(parents=True)
    (vendor / "logo.svg").write_text("<svg/>\n")
    _git(vendor, "init", "-q")
    _git(vendor, "add", "-A")
    _git(vendor, "commit", "-q", "-m", "vendor")
    (app.path / "public/.DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (vendor / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")

    assert built(run_doit(built_monorepo, "build")) == {"build:mfe-parent"}
    files = set(json.loads((app.dist / "asset-manifest.json").read_text())["files"])
    assert "vendor/logo.svg" in files
    junk = {".git", ".DS_Store", "Thumbs.db"}
    assert not [name for name in files if junk & set(name.split("/"))], sorted(files)
    on_disk = {p.relative_to(app.dist).as_posix() for p in app.dist.rglob("*") if p.is_file()}
    assert on_disk == files | {"asset-manifest.json"}
    key = input_key(project, app).key

    (vendor / "logo.svg").write_text("<svg>2</svg>\n")
    _git(vendor, "commit", "-q", "-am", "logo 2")
    (vendor / "logo.svg").write_text("<svg/>\n")  # the nested repository's commit only
    (app.path / "public/.DS_Store").write_bytes(b"\0\0\0\1Bud2")
    (vendor / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe1")
    assert built(run_doit(built_monorepo, "build")) == set()
    assert input_key(project, app).key == key


def _git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=folder,
        check=True,
        capture_output=True,
    )


def built(result: subprocess.CompletedProcess[str]) -> set[str]:
    return {task for task in executed_tasks(result.stdout) if task.startswith("build:")}
