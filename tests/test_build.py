"""Incremental builds through real doit on a private copy of the monorepo."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mfe.build.manifest import immutable_on_disk, write_manifest
from mfe.errors import MfeError

from fixtures.config import config_value, set_config
from fixtures.repo import (
    executed_tasks,
    relicense_keeping_mtime,
    run_doit,
    tree_digest,
    up_to_date_tasks,
)

ALL_BUILDS = {"build:mfe-parent", "build:accounts", "build:payments", "build:shared"}


def builds_run(output: str) -> set[str]:
    return {task for task in executed_tasks(output) if task.startswith("build:")}


def accounts_source(root: Path) -> Path:
    sources = sorted((root / "apps" / "accounts" / "src").rglob("*.js*"))
    assert sources, "accounts has no source files"
    return sources[0]


def test_first_run_builds_all_then_nothing(monorepo: Path) -> None:
    first = run_doit(monorepo)
    assert builds_run(first.stdout) == ALL_BUILDS
    for app in ("mfe-parent", "accounts", "payments"):
        manifest = json.loads(
            (monorepo / "apps" / app / "dist" / "asset-manifest.json").read_text()
        )
        assert manifest["entries"], app
        for name in manifest["entries"]:
            assert (monorepo / "apps" / app / "dist" / name).is_file()
            assert manifest["files"][name]["immutable"] is True

    shared = json.loads((monorepo / "build/shared/dist/asset-manifest.json").read_text())
    assert set(shared["modules"][""]) == {
        "lit",
        "react",
        "react/jsx-runtime",
        "react-dom",
        "react-dom/client",
    }
    for name in shared["modules"][""].values():
        assert shared["files"][name]["immutable"] is True
    # The apps leave the shared libraries to the import map: no copy of Lit or React inside.
    for app in ("mfe-parent", "accounts", "payments"):
        (bundle,) = (monorepo / "apps" / app / "dist").glob("main-*.js")
        code = bundle.read_text()
        assert "lit-html" not in code and "react.transitional.element" not in code, app

    second = run_doit(monorepo)
    assert builds_run(second.stdout) == set()
    assert up_to_date_tasks(second.stdout) >= ALL_BUILDS


@pytest.mark.parametrize("content", ["[]", '{"build:accounts": 3}', "{not json"])
def test_a_dep_file_that_is_not_one_is_started_anew_with_one_warning(
    built_monorepo: Path, content: str
) -> None:
    """Valid JSON of another shape gave a traceback from mfe.doitdb, invalid JSON one from
    doit: now a warning naming the file, and the run goes on as with the file deleted."""
    dep_file = built_monorepo / ".mfe" / "doit-db.json"
    dep_file.write_text(content)
    first = run_doit(built_monorepo, "build")
    warning = f"mfe: warning: {dep_file} is not doit's dependency file"
    assert first.stdout.count(warning) == 1, first.stdout
    assert "Traceback" not in first.stdout, first.stdout
    assert builds_run(first.stdout) == ALL_BUILDS  # every task runs once
    second = run_doit(built_monorepo, "build")
    assert "warning" not in second.stdout and builds_run(second.stdout) == set(), second.stdout


def test_edit_touch_add_delete(monorepo: Path) -> None:
    run_doit(monorepo, "-n", "2")
    source = accounts_source(monorepo)

    source.write_text(source.read_text() + "\n// edited\n")
    assert builds_run(run_doit(monorepo).stdout) == {"build:accounts"}  # not build:shared

    stat = source.stat()
    os.utime(source, (stat.st_atime + 10, stat.st_mtime + 10))
    assert builds_run(run_doit(monorepo).stdout) == set()

    added = monorepo / "apps" / "payments" / "src" / "notes.txt"
    added.write_text("not imported, but an input all the same\n")
    assert builds_run(run_doit(monorepo).stdout) == {"build:payments"}

    added.unlink()
    assert builds_run(run_doit(monorepo).stdout) == {"build:payments"}


def test_failed_build_names_app_and_keeps_previous_dist(monorepo: Path) -> None:
    run_doit(monorepo)
    dist = monorepo / "apps" / "accounts" / "dist"
    before = sorted(p.name for p in dist.iterdir())
    source = accounts_source(monorepo)
    source.write_text(source.read_text() + "\nconst = ;\n")

    result = run_doit(monorepo, check=False)
    assert result.returncode != 0
    assert "build:accounts failed" in result.stdout
    # the bundler's error names the file from the repo root, as every other message does
    last_line = len(source.read_text().splitlines())
    assert f"apps/accounts/src/{source.name}:{last_line}:" in result.stdout
    assert "Traceback" not in result.stdout
    assert "<stdout>" not in result.stdout  # no empty captured-output blocks after the message
    assert sorted(p.name for p in dist.iterdir()) == before


def test_lockfile_change_reinstalls_and_rebuilds_its_users(
    monorepo: Path, monorepo_template: Path
) -> None:
    marker = Path("node_modules/esbuild/package.json")
    assert (monorepo / marker).stat().st_ino == (monorepo_template / marker).stat().st_ino
    template_modules = tree_digest(monorepo_template / "node_modules")
    run_doit(monorepo)
    lockfile = monorepo / "package-lock.json"
    lock = json.loads(lockfile.read_text())
    lock["packages"]["node_modules/esbuild"]["license"] = "MIT OR Apache-2.0"  # every app's bundler
    lockfile.write_text(json.dumps(lock, indent=2) + "\n")

    output = run_doit(monorepo).stdout
    assert "install" in executed_tasks(output)
    assert builds_run(output) == ALL_BUILDS
    # npm ci replaced the copy's hard-linked node_modules; the template's files are untouched.
    assert (monorepo / marker).stat().st_ino != (monorepo_template / marker).stat().st_ino
    assert tree_digest(monorepo_template / "node_modules") == template_modules


ESBUILD_FILE = Path("node_modules/esbuild/package.json")
NPM_INSTALL = ["npm", "install", "--offline", "--no-audit", "--no-fund", "--loglevel=error"]


def test_a_lockfile_replaced_with_its_old_mtime_reinstalls(monorepo: Path) -> None:
    """`install` compares node_modules with the lockfile by content, not by mtime (a
    restore, `cp -p` or a tool that keeps times)."""
    assert "install" in up_to_date_tasks(run_doit(monorepo, "install").stdout)
    linked = (monorepo / ESBUILD_FILE).stat().st_ino
    relicense_keeping_mtime(
        monorepo / "package-lock.json", "node_modules/esbuild", "MIT OR Apache-2.0"
    )

    assert "install" in executed_tasks(run_doit(monorepo, "install").stdout)
    assert (monorepo / ESBUILD_FILE).stat().st_ino != linked  # npm ci reinstalled
    assert "install" in up_to_date_tasks(run_doit(monorepo, "install").stdout)


def test_an_npm_install_already_applied_runs_no_npm_ci(
    monorepo: Path, monorepo_template: Path
) -> None:
    """A new app installed with `npm install` changes the lockfile, but node_modules
    already matches it: npm ci (which deletes node_modules) does not run."""
    template_modules = tree_digest(monorepo_template / "node_modules")
    folder = monorepo / "apps" / "extra"
    folder.mkdir()
    package = {"name": "extra", "private": True, "scripts": {"build": "node build.mjs"}}
    (folder / "package.json").write_text(json.dumps(package))
    subprocess.run(NPM_INSTALL, cwd=monorepo, check=True, capture_output=True, timeout=300)
    assert "apps/extra" in json.loads((monorepo / "package-lock.json").read_text())["packages"]
    kept = monorepo / "node_modules" / "mfe-test-marker.txt"
    kept.write_text("npm ci deletes node_modules, this with it\n")

    output = run_doit(monorepo, "install").stdout
    assert "install" in up_to_date_tasks(output), output
    assert kept.is_file()
    assert tree_digest(monorepo_template / "node_modules") == template_modules


def test_a_package_or_node_modules_deleted_reinstalls(monorepo: Path) -> None:
    lit = monorepo / "node_modules" / "lit"
    shutil.rmtree(lit)  # the hidden lockfile still lists it: npm would not trust it
    assert "install" in executed_tasks(run_doit(monorepo, "install").stdout)
    assert (lit / "package.json").is_file()

    shutil.rmtree(monorepo / "node_modules")
    assert "install" in executed_tasks(run_doit(monorepo, "install").stdout)
    assert (monorepo / ESBUILD_FILE).is_file()
    assert "install" in up_to_date_tasks(run_doit(monorepo, "install").stdout)


def test_an_npm_ci_that_leaves_the_lockfile_behind_says_to_run_npm_install(
    monorepo: Path,
) -> None:
    """payments now declares accounts, a workspace npm finds installed: npm ci passes but
    never writes package-lock.json, so node_modules stays due and every `doit` ran npm ci
    again, forever. Now each run says what to do, and doing it ends it."""
    manifest = monorepo / "apps" / "payments" / "package.json"
    package = json.loads(manifest.read_text())
    package["dependencies"]["accounts"] = "*"
    manifest.write_text(json.dumps(package, indent=2) + "\n")

    for _ in range(2):
        result = run_doit(monorepo, "install", check=False)
        assert result.returncode != 0, result.stdout
        assert (
            "npm ci finished, but package-lock.json is out of date: apps/payments/package.json "
            f"declares dependencies package-lock.json lacks; run `npm install` in {monorepo}"
        ) in result.stdout, result.stdout
        assert "Traceback" not in result.stdout
    subprocess.run(NPM_INSTALL, cwd=monorepo, check=True, capture_output=True, timeout=300)
    assert "install" in up_to_date_tasks(run_doit(monorepo, "install").stdout)


INSTALL_CHECK = """
import sys
from pathlib import Path
from mfe.build.installed import mismatch
from mfe.config import load_project
print(mismatch(load_project(Path(sys.argv[1]))))
"""


def test_concurrent_install_checks_agree_and_leave_a_true_cache(monorepo: Path) -> None:
    """Checks at once (`doit serve` and a `doit` in another terminal) share
    `.mfe/installed.json`: each answers for the files it read, and what stays cached is
    true of the files as they are."""
    lockfile = monorepo / "package-lock.json"
    matching = lockfile.read_text()
    lock = json.loads(matching)
    lock["packages"]["node_modules/esbuild"]["license"] = "MIT OR Apache-2.0"
    changed = json.dumps(lock, indent=2) + "\n"
    for text, expected in [(changed, "node_modules/esbuild differs"), (matching, "None")] * 2:
        lockfile.write_text(text)
        running = [
            subprocess.Popen(
                [sys.executable, "-c", INSTALL_CHECK, str(monorepo)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        answers = [process.communicate(timeout=120)[0] for process in running]
        assert all(answer.startswith(expected) for answer in answers), answers
        again = subprocess.run(
            [sys.executable, "-c", INSTALL_CHECK, str(monorepo)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert again.stdout.startswith(expected)


def test_lit_bump_rebuilds_the_shared_modules_and_lit_apps_only(monorepo: Path) -> None:
    run_doit(monorepo)
    lockfile = monorepo / "package-lock.json"
    lock = json.loads(lockfile.read_text())
    lock["packages"]["node_modules/lit"]["license"] = "MIT"  # a new entry for lit only
    lockfile.write_text(json.dumps(lock, indent=2) + "\n")

    output = run_doit(monorepo).stdout
    assert builds_run(output) == {"build:shared", "build:mfe-parent", "build:payments"}


def test_a_lockfile_change_with_its_old_size_and_mtime_still_rebuilds_its_users(
    monorepo: Path,
) -> None:
    """A lockfile replaced by one of the same size and mtime (a CI cache or `tar`
    restores mtimes; coarse-mtime filesystems) is still a change: the slices are keyed by
    the lockfile's content."""
    run_doit(monorepo)
    lockfile = monorepo / "package-lock.json"
    before = lockfile.stat()
    text = lockfile.read_text()
    head, lit, rest = text.partition('"node_modules/lit": {')
    edited = head + lit + rest.replace('"BSD-3-Clause"', '"BSD-3-CLAUSE"', 1)
    lock = json.loads(edited)
    assert lock["packages"]["node_modules/lit"]["license"] == "BSD-3-CLAUSE"  # lit's entry
    lockfile.write_text(edited)
    os.utime(lockfile, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (lockfile.stat().st_size, lockfile.stat().st_mtime_ns) == (
        before.st_size,
        before.st_mtime_ns,
    )

    output = run_doit(monorepo).stdout
    assert builds_run(output) == {"build:shared", "build:mfe-parent", "build:payments"}


def test_shared_package_subpath_not_listed_fails_the_app_build(monorepo: Path) -> None:
    run_doit(monorepo)
    source = monorepo / "apps" / "payments" / "src" / "main.js"
    source.write_text("import 'lit/directives/class-map.js';\n" + source.read_text())
    result = run_doit(monorepo, check=False)
    assert result.returncode != 0
    assert "build:payments failed" in result.stdout
    assert "'lit/directives/class-map.js' from the shared package 'lit'" in result.stdout
    assert "[shared] modules in mfe.toml" in result.stdout


def test_a_build_script_stopped_by_ctrl_c_stops_the_run_by_sigint(monorepo: Path) -> None:
    """A Ctrl-C that only the build received (doit ignored it: started in the background
    of a script) is still a Ctrl-C: doit ends by SIGINT, as it does when it gets one."""
    package_json = monorepo / "apps" / "payments" / "package.json"
    package = json.loads(package_json.read_text())
    package["scripts"]["build"] = "exit 130"  # what a shell says for a child killed by SIGINT
    package_json.write_text(json.dumps(package, indent=2))

    result = run_doit(monorepo, "build:payments", check=False)
    assert result.returncode == -signal.SIGINT, result.stdout
    assert (
        "build:payments interrupted (Ctrl-C); the previous apps/payments/dist/ is kept"
        in result.stdout
    )


def test_a_build_failing_on_an_old_node_says_which_node_it_found(
    monorepo: Path, tmp_path: Path
) -> None:
    """The README asks for Node.js 20+; an older one failed with only the script's exit
    code. After a failure, `node --version` says whether the runtime is the cause."""
    run_doit(monorepo)  # installed and built with the real node
    bin_dir = tmp_path / "old-node"
    bin_dir.mkdir()
    old_node = bin_dir / "node"
    old_node.write_text(
        '#!/bin/sh\nif [ "$1" = --version ]; then echo v14.21.3; exit 0; fi\n'
        "echo \"SyntaxError: Unexpected token '?'\" >&2; exit 1\n"
    )
    old_node.chmod(0o755)
    accounts_source(monorepo).write_text(accounts_source(monorepo).read_text() + "\n// due\n")
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    result = run_doit(monorepo, "build:accounts", check=False, env={"PATH": path})
    assert result.returncode != 0, result.stdout
    assert (
        "(Node.js v14.21.3 is on PATH: this monorepo needs Node.js 20 or newer)" in result.stdout
    ), result.stdout


def test_npm_lifecycle_hooks_of_the_build_script_run(monorepo: Path) -> None:
    package_json = monorepo / "apps" / "payments" / "package.json"
    package = json.loads(package_json.read_text())
    package["scripts"]["postbuild"] = (
        "node -e \"require('fs').writeFileSync(process.env.MFE_OUT_DIR + '/build-info.txt', 'ok')\""
    )
    package_json.write_text(json.dumps(package, indent=2))

    run_doit(monorepo, "build:payments")
    dist = monorepo / "apps" / "payments" / "dist"
    assert (dist / "build-info.txt").read_text() == "ok"
    manifest = json.loads((dist / "asset-manifest.json").read_text())
    assert manifest["files"]["build-info.txt"]["immutable"] is False


def test_public_files_named_like_hashes_stay_mutable(monorepo: Path) -> None:
    """Copied from public/ under their own names, their bytes change under the same URL;
    esbuild's `[name]-[hash]` outputs stay immutable."""
    public = monorepo / "apps/payments/public"
    named = ["hero-1920x1080.svg", "og-image-1200x630.png", "img/photo-20240101.jpg"]
    for name in named:
        (public / name).parent.mkdir(parents=True, exist_ok=True)
        (public / name).write_text(f"<!-- {name} -->\n")
    run_doit(monorepo, "build:payments")
    dist = monorepo / "apps/payments/dist"
    files = json.loads((dist / "asset-manifest.json").read_text())["files"]

    assert {name: files[name]["immutable"] for name in named} == dict.fromkeys(named, False)
    hashed = [name for name in files if name.startswith("main-")]
    assert sorted(Path(name).suffix for name in hashed) == [".js", ".map"]
    assert all(files[name]["immutable"] for name in hashed)
    # The dev server asks the manifest: no immutable caching for a public file either.
    assert not any(immutable_on_disk(dist / name) for name in named)
    assert all(immutable_on_disk(dist / name) for name in hashed)


def test_editor_temporaries_are_no_inputs(monorepo: Path) -> None:
    """Emacs' lock link (dangling) and autosave, backups and vim's swap files next to a
    source: the build works and they rebuild nothing."""
    run_doit(monorepo)
    src = monorepo / "apps" / "accounts" / "src"
    (src / ".#data.js").symlink_to("someone@host.4242:1700000000")
    temporaries = [src / "#data.js#", src / "data.js~", src / ".data.js.swp", src / ".data.js.swx"]
    for path in temporaries:
        path.write_text("half an edit\n")
    assert builds_run(run_doit(monorepo).stdout) == set()

    for path in temporaries:
        path.write_text("the rest of the edit\n")
    assert builds_run(run_doit(monorepo).stdout) == set()
    # A real dot file next to them is an input as before.
    (monorepo / "apps" / "accounts" / ".browserslistrc").write_text("defaults\n")
    assert builds_run(run_doit(monorepo).stdout) == {"build:accounts"}


def test_an_app_folder_deleted_during_its_build_fails_with_a_message(monorepo: Path) -> None:
    """`doit serve` rebuilds an app while its folder is being deleted (and its table not
    yet removed from mfe.toml): the build fails naming the folder, with no traceback."""
    folder = monorepo / "apps" / "payments"
    package_json = folder / "package.json"
    package = json.loads(package_json.read_text())
    package["scripts"]["build"] += ' && rm -rf "$PWD"'  # as if deleted while it bundles
    package_json.write_text(json.dumps(package, indent=2))

    result = run_doit(monorepo, "build:payments", check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stdout, result.stdout
    assert "build:payments: apps/payments/ was deleted during the build" in result.stdout
    assert not folder.exists()  # nothing written back into the deleted folder


def _bundle_of(root: Path, app: str) -> str:
    dist = root / "apps" / app / "dist"
    entries = json.loads((dist / "asset-manifest.json").read_text())["entries"]
    return "".join((dist / name).read_text() for name in entries)


def test_symlinked_source_folders_are_inputs_and_their_edits_rebuild(
    monorepo: Path, tmp_path: Path
) -> None:
    """`ln -s /tmp/extlib src/lib` (outside the repo) and `src/common -> libs/common`
    (inside): editing a file behind either link, or pointing a link elsewhere, rebuilds
    the app; a link back up the tree (a cycle) is not walked again."""
    src = monorepo / "apps" / "payments" / "src"
    outside, other = tmp_path / "extlib", tmp_path / "extlib2"
    inside = monorepo / "libs" / "common"
    for folder, word in ((outside, "outside-v1"), (other, "other-v1"), (inside, "inside-v1")):
        folder.mkdir(parents=True)
        (folder / "word.js").write_text(f"export const word = '{word}';\n")
    (src / "lib").symlink_to(outside)
    (src / "common").symlink_to("../../../libs/common")
    (src / "loop").symlink_to("..")  # apps/payments: a cycle, skipped
    main = src / "main.js"
    main.write_text(
        main.read_text()
        + "import { word as a } from './lib/word.js';\n"
        + "import { word as b } from './common/word.js';\n"
        + "console.log(a, b);\n"
    )
    run_doit(monorepo)
    assert "outside-v1" in _bundle_of(monorepo, "payments")
    assert builds_run(run_doit(monorepo).stdout) == set()

    (outside / "word.js").write_text("export const word = 'outside-v2';\n")
    assert builds_run(run_doit(monorepo).stdout) == {"build:payments"}
    assert "outside-v2" in _bundle_of(monorepo, "payments")

    (inside / "word.js").write_text("export const word = 'inside-v2';\n")
    assert builds_run(run_doit(monorepo).stdout) == {"build:payments"}
    assert "inside-v2" in _bundle_of(monorepo, "payments")

    (src / "lib").unlink()
    (src / "lib").symlink_to(other)  # re-pointed: the same paths, other bytes
    assert builds_run(run_doit(monorepo).stdout) == {"build:payments"}
    assert "other-v1" in _bundle_of(monorepo, "payments")
    assert builds_run(run_doit(monorepo).stdout) == set()


def test_public_symlinks_are_copied_as_files_and_scanned_through(
    monorepo: Path, tmp_path: Path
) -> None:
    """public/ with a linked folder (in the repo), a linked file out of it and a linked
    folder out of it: dist/ holds their files (no links), listed in the manifest."""
    public = monorepo / "apps/payments/public"
    (monorepo / "styles").mkdir()
    (monorepo / "styles/site.css").write_text("body { color: red }\n")
    outside = tmp_path / "imgs"
    outside.mkdir()
    (outside / "a.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>\n")
    (tmp_path / "robots.txt").write_text("User-agent: *\n")
    public.mkdir()
    (public / "assets").symlink_to("../../../styles")
    (public / "imgs").symlink_to(outside)
    (public / "robots.txt").symlink_to(tmp_path / "robots.txt")
    run_doit(monorepo, "build:payments")

    dist = monorepo / "apps/payments/dist"
    files = json.loads((dist / "asset-manifest.json").read_text())["files"]
    linked = ["assets/site.css", "imgs/a.svg", "robots.txt"]
    assert [name for name in linked if name in files] == linked
    assert not [p for p in dist.rglob("*") if p.is_symlink()]
    assert (dist / "imgs/a.svg").read_text() == (outside / "a.svg").read_text()


LONG_NAME = "/".join(letter * 250 for letter in "xyzw")
"""1003 bytes: a key S3 takes, but not its `_ca/<hash>/` copy (moto takes both)."""


@pytest.mark.parametrize(
    ("name", "said"),
    [
        pytest.param(
            "dangling.txt", "a symlink to nowhere.txt, which does not exist", id="dangling"
        ),
        pytest.param("loop", "a symlink to a folder that holds it (..)", id="cycle"),
        pytest.param("two\nlines.txt", "its name holds a control character", id="newline"),
        pytest.param(b"caf\xe9.txt", "its name is not UTF-8", id="latin-1"),
        pytest.param(LONG_NAME, "bytes as an S3 key", id="long"),
        pytest.param("_ca/0123/logo.svg", "the '_ca/' prefix is reserved", id="ca"),
        pytest.param("_mfe/live.json", "the '_mfe/' prefix is reserved", id="mfe"),
        pytest.param("asset-manifest.json", "the build writes its own", id="manifest"),
    ],
)
def test_public_files_the_site_cannot_take_fail_the_build_naming_them(
    monorepo: Path, name: str | bytes, said: str
) -> None:
    """Refused when built, with one line naming the file, not halfway through a publish
    (S3's 404, a key split over two lines, Node's stack trace, real S3's length limit,
    the orchestrator's own keys, a file the build's manifest silently replaced)."""
    public = monorepo / "apps/payments/public"
    public.mkdir()
    path = os.path.join(os.fsencode(public), name) if isinstance(name, bytes) else public / name
    if name == "dangling.txt":
        (public / name).symlink_to("nowhere.txt")
    elif name == "loop":
        (public / name).symlink_to("..")
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as stream:
            stream.write("x\n")

    result = run_doit(monorepo, "build:payments", check=False)
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stdout and "    at " not in result.stdout, result.stdout
    line = next((line for line in result.stdout.splitlines() if said in line), None)
    assert line is not None, result.stdout
    assert line.startswith("error: build:payments: apps/payments/public/"), line
    assert not (monorepo / "apps/payments/dist").exists()


def test_the_manifest_scan_follows_linked_folders_and_refuses_dangling_links(
    tmp_path: Path,
) -> None:
    """Whatever bundler wrote dist/: a linked folder's files are outputs, as a copy that
    follows links would publish them; a link to nothing is named, not skipped."""
    dist, shared = tmp_path / "dist", tmp_path / "shared"
    (dist).mkdir()
    shared.mkdir()
    (dist / "main-ABCD1234.js").write_text("export {}\n")
    (shared / "a.css").write_text("a {}\n")
    (dist / "styles").symlink_to(shared)
    assert sorted(write_manifest("web", dist).files) == ["main-ABCD1234.js", "styles/a.css"]

    (dist / "gone.txt").symlink_to("nowhere.txt")
    with pytest.raises(MfeError, match=r"^build:web: .*/dist/gone\.txt: a symlink to nowhere\.txt"):
        write_manifest("web", dist)


def test_the_key_length_limit_leaves_room_for_the_ca_copy() -> None:
    """A mutable file's `_ca/<hash>/` copy is the longest key a build output gets."""
    from mfe.build.outputs import CA_OVERHEAD, MAX_KEY_BYTES, name_problem
    from mfe.publish.versions import ca_key

    assert len(ca_key("", "0" * 64)) == CA_OVERHEAD
    assert name_problem("a" * (MAX_KEY_BYTES - CA_OVERHEAD)) is None
    assert name_problem("é" * 500) is not None  # bytes counted, not characters


@pytest.mark.parametrize(
    ("package", "module", "said"),
    [
        # In no package.json: npm install cannot help, so it was the wrong advice.
        ("lodash", "lodash", "no package.json depends on 'lodash' (npm install cannot help)"),
        ("lit", "lit/nonexistent.js", "which package 'lit' ("),
        # A Node.js package: esbuild's raw `Could not resolve "tty"` named no key.
        ("esbuild", "esbuild", "a package for Node.js, not the browser"),
    ],
)
def test_a_shared_module_that_cannot_be_built_names_its_key_and_the_fix(
    monorepo: Path, package: str, module: str, said: str
) -> None:
    packages = config_value(monorepo, "shared.packages")
    modules = config_value(monorepo, "shared.modules")
    if package not in packages:
        set_config(monorepo, "shared.packages", [*packages, package])
    set_config(monorepo, "shared.modules", [*modules, module])
    result = run_doit(monorepo, "build:shared", check=False)
    assert result.returncode != 0
    line = f"mfe.toml: key 'shared.modules[{len(modules)}]' names '{module}'"
    assert line in result.stdout and said in result.stdout, result.stdout
    assert "run npm install" not in result.stdout
