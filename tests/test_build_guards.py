"""Builds that would publish something other than what the author meant are refused (or
read as npm reads them), naming the file and what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.repo import executed_tasks, run_doit


def _manifest(root: Path, app: str) -> str:
    return (root / "apps" / app / "dist" / "asset-manifest.json").read_text()


@pytest.mark.parametrize(
    ("name", "said"),
    [
        pytest.param("index.html", "is the shell page rendered from shell/", id="index"),
        pytest.param("previews/pr-1/index.html", "holds the preview pages", id="previews"),
        pytest.param("previews/logo.svg", "holds the preview pages", id="previews-file"),
    ],
)
def test_parent_public_files_the_shell_or_previews_would_replace_fail_the_build(
    built_monorepo: Path, name: str, said: str
) -> None:
    """The parent's `public/index.html` was silently replaced by the rendered shell, and
    `public/previews/` shared the preview pages' keys: now one line naming the file, and
    the previous dist/ kept."""
    before = _manifest(built_monorepo, "mfe-parent")
    path = built_monorepo / "apps/mfe-parent/public" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("<!doctype html><title>mine</title>\n")

    result = run_doit(built_monorepo, "build", check=False)
    assert result.returncode != 0, result.stdout
    line = next((line for line in result.stdout.splitlines() if said in line), None)
    assert line is not None, result.stdout
    assert line.startswith(f"error: build:mfe-parent: apps/mfe-parent/public/{name}: "), line
    assert "Traceback" not in result.stdout
    assert _manifest(built_monorepo, "mfe-parent") == before


def test_a_fragment_may_ship_its_own_index_html_and_previews_folder(
    built_monorepo: Path,
) -> None:
    """Only the parent site holds the shell page and the previews."""
    public = built_monorepo / "apps/payments/public"
    (public / "previews").mkdir(parents=True)
    (public / "index.html").write_text("<!doctype html><title>payments</title>\n")
    (public / "previews/a.txt").write_text("a\n")
    run_doit(built_monorepo, "build")
    files = json.loads(_manifest(built_monorepo, "payments"))["files"]
    assert {"index.html", "previews/a.txt"} <= set(files)


def test_a_package_json_starting_with_a_byte_order_mark_builds(built_monorepo: Path) -> None:
    """npm reads past a UTF-8 BOM (Windows editors save one), as mfe.toml's reader does."""
    package = built_monorepo / "apps/payments/package.json"
    package.write_bytes(b"\xef\xbb\xbf" + package.read_bytes())
    result = run_doit(built_monorepo, "build")
    assert "build:payments" in executed_tasks(result.stdout), result.stdout
    assert run_doit(built_monorepo, "list").returncode == 0


def test_a_package_lock_starting_with_a_byte_order_mark_installs_and_builds(
    built_monorepo: Path,
) -> None:
    """npm reads a package-lock.json past a UTF-8 BOM; the orchestrator refused it
    ('invalid JSON (Unexpected UTF-8 BOM ...)'). Its content is unchanged: no npm ci, no
    rebuild."""
    lock = built_monorepo / "package-lock.json"
    lock.write_bytes(b"\xef\xbb\xbf" + lock.read_bytes())
    result = run_doit(built_monorepo, "build")
    assert "BOM" not in result.stdout, result.stdout
    assert executed_tasks(result.stdout) == set(), result.stdout


def _set_build_script(root: Path, app: str, script: str) -> None:
    path = root / "apps" / app / "package.json"
    package = json.loads(path.read_text())
    package["scripts"]["build"] = script
    path.write_text(json.dumps(package, indent=2) + "\n")


def _dist_files(root: Path, app: str) -> dict[str, bytes]:
    dist = root / "apps" / app / "dist"
    return {p.relative_to(dist).as_posix(): p.read_bytes() for p in dist.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("script", "said"),
    [
        pytest.param(
            "MFE_OUT_DIR=dist node ../../tools/build-app.mjs",
            "wrote nothing to $MFE_OUT_DIR but to apps/payments/dist/ itself",
            id="writes-dist",
        ),
        pytest.param("rm -rf dist && exit 3", "exited 3", id="empties-dist-and-fails"),
    ],
)
def test_a_build_script_that_writes_dist_itself_keeps_the_previous_dist(
    built_monorepo: Path, script: str, said: str
) -> None:
    """A script ignoring MFE_OUT_DIR emptied dist/ (asset-manifest.json gone) until the
    next good build: now a clear error naming the app, and the previous dist/ whole."""
    before = _dist_files(built_monorepo, "payments")
    _set_build_script(built_monorepo, "payments", script)

    result = run_doit(built_monorepo, "build", check=False)
    assert result.returncode != 0, result.stdout
    line = next((line for line in result.stdout.splitlines() if said in line), None)
    assert line is not None, result.stdout
    assert line.startswith("error: build:payments"), line
    assert "MFE_OUT_DIR" in line or "is kept" in line, line
    assert "Traceback" not in result.stdout
    assert _dist_files(built_monorepo, "payments") == before

    _set_build_script(built_monorepo, "payments", "node ../../tools/build-app.mjs")
    run_doit(built_monorepo, "build")
    assert (built_monorepo / "apps/payments/dist/asset-manifest.json").is_file()


EMPTIES_DIST = 'rm -rf dist && mkdir -p "$MFE_OUT_DIR" && '


@pytest.mark.parametrize(
    ("script", "said"),
    [
        pytest.param(
            EMPTIES_DIST + 'echo "console.log(1)" > "$MFE_OUT_DIR/main.js"',
            "key 'apps.payments.element' is 'mfe-payments'",
            id="element-check",
        ),
        pytest.param(
            EMPTIES_DIST + 'echo hi > "$MFE_OUT_DIR/notes.txt"',
            "build:payments: the bundler wrote no top-level .js entry",
            id="manifest",
        ),
    ],
)
def test_a_script_that_empties_dist_then_fails_a_later_check_keeps_the_previous_dist(
    built_monorepo: Path, script: str, said: str
) -> None:
    """The script succeeded and wrote $MFE_OUT_DIR, but the build failed after it (the
    element check, the manifest): dist/ stayed deleted. Every failure puts it back."""
    before = _dist_files(built_monorepo, "payments")
    _set_build_script(built_monorepo, "payments", script)

    result = run_doit(built_monorepo, "build", check=False)
    assert result.returncode != 0, result.stdout
    assert any(said in line for line in result.stdout.splitlines()), result.stdout
    assert "Traceback" not in result.stdout
    assert _dist_files(built_monorepo, "payments") == before


@pytest.mark.parametrize("name", ["index.html", "previews/pr-1/index.html"])
def test_a_parent_build_writing_the_shell_page_or_a_preview_page_itself_fails(
    built_monorepo: Path, name: str
) -> None:
    """A bundler that writes the parent's `index.html` (Vite does) was silently replaced by
    the rendered shell page, as `public/index.html` was: refused, the previous dist/ kept."""
    before = _dist_files(built_monorepo, "mfe-parent")
    _set_build_script(
        built_monorepo,
        "mfe-parent",
        'node ../../tools/build-app.mjs && mkdir -p "$(dirname "$MFE_OUT_DIR/'
        f'{name}")" && echo "<!doctype html>" > "$MFE_OUT_DIR/{name}"',
    )
    result = run_doit(built_monorepo, "build", check=False)
    assert result.returncode != 0, result.stdout
    assert f"error: build:mfe-parent: its build wrote {name}: " in result.stdout, result.stdout
    assert "Traceback" not in result.stdout
    assert _dist_files(built_monorepo, "mfe-parent") == before
