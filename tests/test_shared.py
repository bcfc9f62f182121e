"""Acceptance of the shared dependencies: Chromium loads the published page and the
`doit serve` page with one copy of Lit and one of React (no library file in two
responses), every module matches the integrity the import map or its tag gives it, no
console errors; sign-in still works on the published page."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, expect

from mfe.build.shared import version_warnings
from mfe.config import load_project
from mfe.publish.pointer import POINTER_KEY

from fixtures.aws import free_port, local_client
from fixtures.config import config_value, set_config, use_port
from fixtures.modules import Loaded, Recorder, duplicates, import_map, package_of, sri
from fixtures.repo import link_copy, run_doit
from fixtures.serve import APPS, ServeProcess, use_free_ports

LIBRARIES = {"lit-html", "lit-element", "@lit/reactive-element", "react", "react-dom", "scheduler"}


def assert_one_copy_and_integrity(page: Page, loaded: list[Loaded]) -> None:
    assert duplicates(loaded) == {}
    assert {package_of(s) for item in loaded for s in item.sources} >= LIBRARIES
    # One lit-html instance registered itself (each copy pushes its version here).
    assert page.evaluate("() => globalThis.litHtmlVersions.length") == 1
    integrity = import_map(page)["integrity"]
    modules = [item for item in loaded if "/_mfe/" not in item.url]  # not serve's reload.js
    # The apps' entries, Lit, and React: one file for react, react/jsx-runtime and
    # react-dom/client, since accounts imports only their named exports.
    assert len(modules) == 3 + 2
    for item in modules:
        assert integrity.get(item.url) == sri(item.body), item.url


def test_published_page_loads_one_copy_of_each_library(published: str, page: Page) -> None:
    recorder = Recorder(page)
    page.goto(published)
    page.fill("input[name=username]", "guest")
    page.fill("input[name=password]", "awsguest")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Accounts", level=2)).to_be_visible(timeout=10_000)
    expect(page.get_by_role("heading", name="Payments", level=2)).to_be_visible()

    loaded = recorder.scripts()
    assert any("mfe-demo-local-shared/" in item.url for item in loaded)
    assert_one_copy_and_integrity(page, loaded)
    assert recorder.errors == []

    # The shared modules are versioned in the live pointer like an app.
    endpoint, _, rest = published.partition("/mfe-demo-local-")
    bucket = "mfe-demo-local-" + rest.split("/")[0]
    body = local_client(endpoint).get_object(Bucket=bucket, Key=POINTER_KEY)["Body"].read()
    live = json.loads(body)
    assert set(live["apps"]) == {"mfe-parent", "accounts", "payments", "shared"}
    assert live["apps"]["shared"]["version"]


@contextmanager
def serving(root: Path, page: Page) -> Iterator[Recorder]:
    """`doit serve` in root and its page loaded until both fragments show; stopped after."""
    shell_port, _ = use_free_ports(root)
    server = ServeProcess(root)
    try:
        server.wait_for(rf"^http://127\.0\.0\.1:{shell_port}/$", timeout=120)
        recorder = Recorder(page)
        page.goto(f"http://127.0.0.1:{shell_port}/")
        page.locator("h2", has_text="Accounts").wait_for(timeout=15_000)
        page.locator("h2", has_text="Payments").wait_for(timeout=15_000)
        yield recorder
    finally:
        server.stop()


def test_serve_page_loads_one_copy_of_each_library(
    monorepo_template: Path, tmp_path: Path, page: Page
) -> None:
    with serving(link_copy(monorepo_template, tmp_path / "repo"), page) as recorder:
        assert_one_copy_and_integrity(page, recorder.scripts())
        assert recorder.errors == []


def test_a_default_import_of_a_combined_specifier_gets_its_own_module(
    monorepo_template: Path, tmp_path: Path, page: Page
) -> None:
    """`import ReactDOM from 'react-dom/client'` needs that module's default export, which
    the file shared by React's specifiers lacks: the import map points it at its own."""
    root = link_copy(monorepo_template, tmp_path / "repo")
    main = root / "apps/accounts/src/main.jsx"
    text = main.read_text()
    text = text.replace(
        "import { createRoot } from 'react-dom/client';", "import ReactDOM from 'react-dom/client';"
    )
    main.write_text(
        text.replace("createRoot(this._container)", "ReactDOM.createRoot(this._container)")
    )
    with serving(root, page) as recorder:
        imports = import_map(page)["imports"]
        assert imports["react-dom/client"] != imports["react"] == imports["react/jsx-runtime"]
        assert imports["react-dom/client"] in [item.url for item in recorder.scripts()]
        assert duplicates(recorder.scripts()) == {}
        assert recorder.errors == []


LEGACY_MAIN = """import { LitElement, html } from 'lit';

class MfeLegacy extends LitElement {
  render() {
    return html`<h2>Legacy</h2><p id="lit-versions">${globalThis.litHtmlVersions.join(' ')}</p>`;
  }
}
customElements.define('mfe-legacy', MfeLegacy);
"""


def add_legacy_app(root: Path, lit: str) -> None:
    """A synthetic fragment pinned to another Lit major, installed by npm (registry)."""
    app = root / "apps" / "legacy"
    (app / "src").mkdir(parents=True)
    esbuild = json.loads((root / "apps/payments/package.json").read_text())["devDependencies"]
    package = {
        "name": "legacy",
        "version": "0.1.0",
        "private": True,
        "type": "module",
        "scripts": {"build": "node ../../tools/build-app.mjs"},
        "dependencies": {"lit": lit},
        "devDependencies": esbuild,
    }
    (app / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    (app / "src" / "main.js").write_text(LEGACY_MAIN)
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=root,
        check=True,
        capture_output=True,
        timeout=300,
    )


def test_an_app_pinned_to_another_lit_gets_its_own_copy_through_scopes(
    monorepo_template: Path, tmp_path: Path, page: Page
) -> None:
    root = tmp_path / "repo"
    shutil.copytree(monorepo_template, root, symlinks=True)  # npm rewrites node_modules
    add_legacy_app(root, "2.8.0")
    lock = json.loads((root / "package-lock.json").read_text())["packages"]
    assert lock["apps/legacy/node_modules/lit"]["version"] == "2.8.0"
    shell_port, ports = use_free_ports(root, [*APPS, "legacy"])

    warnings = version_warnings(load_project(root))
    assert len(warnings) == 1
    assert "lit@2.8.0" in warnings[0] and "legacy" in warnings[0]
    assert "mfe-parent, payments resolve lit@3." in warnings[0]

    server = ServeProcess(root)
    try:
        server.wait_for(rf"^http://127\.0\.0\.1:{shell_port}/$", timeout=180)
        recorder = Recorder(page)
        page.goto(f"http://127.0.0.1:{shell_port}/")
        for heading in ("Accounts", "Payments", "Legacy"):
            page.locator("h2", has_text=heading).wait_for(timeout=15_000)
        versions = page.locator("#lit-versions").inner_text().split()
        loaded = recorder.scripts()
        errors = list(recorder.errors)  # before the stop: then the reload stream fails
    finally:
        server.stop()
    assert sorted(v.split(".")[0] for v in versions) == ["2", "3"]  # two lit-html instances

    mapping = import_map(page)
    shared_base = f"http://127.0.0.1:{config_value(root, 'shared.dev_port')}/"
    legacy_base = f"http://127.0.0.1:{ports['legacy']}/"
    assert set(mapping["scopes"]) == {legacy_base}  # only the pinned app is scoped
    scoped_lit = mapping["scopes"][legacy_base]["lit"]
    assert str(scoped_lit).startswith(shared_base + "scoped/legacy/")
    assert str(mapping["imports"]["lit"]).startswith(shared_base)
    assert scoped_lit != mapping["imports"]["lit"]
    # The others share the root's copy; the legacy copy comes from its own folder, once.
    assert duplicates(loaded) == {}
    lit_html = {s for item in loaded for s in item.sources if package_of(s) == "lit-html"}
    assert {s.partition("node_modules/")[0] for s in lit_html} == {"", "apps/legacy/"}
    integrity = mapping["integrity"]
    for item in loaded:
        if "/_mfe/" not in item.url:
            assert integrity.get(item.url) == sri(item.body), item.url
    assert errors == []

    # `doit plan` (and `doit ci`) print the major-version mismatch naming apps and versions.
    use_port(root, free_port())
    try:
        plan = run_doit(root, "plan", timeout=300).stdout
        ci = run_doit(root, "ci", timeout=300).stdout
    finally:
        run_doit(root, "local_stop", check=False)
    assert warnings[0] in plan
    assert f"ci: {warnings[0]}" in ci
    report = json.loads((root / ".mfe/local/ci-report.json").read_text())
    assert report["extra"]["warnings"] == warnings


def test_a_tampered_shared_module_is_refused_by_its_integrity(
    monorepo_template: Path, tmp_path: Path, page: Page
) -> None:
    """Chromium enforces the import map's integrity: one changed byte blocks the module."""
    root = link_copy(monorepo_template, tmp_path / "repo")
    shell_port, _ = use_free_ports(root)
    server = ServeProcess(root)
    try:
        server.wait_for(rf"^http://127\.0\.0\.1:{shell_port}/$", timeout=120)
        (lit,) = (root / "build/shared/dist").glob("lit-*.js")
        lit.write_bytes(lit.read_bytes() + b"\n")  # served as is: its sha384 no longer matches
        recorder = Recorder(page)
        page.goto(f"http://127.0.0.1:{shell_port}/")
        blocked = [e for e in recorder.errors if "integrity" in e and lit.name in e]
        for _ in range(150):  # Chromium reports the blocked module on the console
            if blocked:
                break
            page.wait_for_timeout(100)
            blocked = [e for e in recorder.errors if "integrity" in e and lit.name in e]
        assert blocked, recorder.errors
        # Lit never ran, so the parent (Lit) never mounted any micro-frontend.
        assert page.locator("h2").count() == 0
    finally:
        server.stop()


def test_a_shared_module_no_app_imports_is_named_with_its_key_once(
    built_monorepo: Path,
) -> None:
    """`react-dom/server` in [shared] modules doubled React's shared file for nothing: the
    page render (`doit shell`, `doit plan`) warns, naming the module and its mfe.toml key.
    `react-dom` itself, which `react-dom/client` loads, is no such module."""
    modules = [*config_value(built_monorepo, "shared.modules"), "react-dom/server"]
    set_config(built_monorepo, "shared.modules", modules)
    warning = (
        f"mfe: warning: mfe.toml: key 'shared.modules[{len(modules) - 1}]': no app imports "
        "'react-dom/server'; remove it from [shared] modules"
    )
    use_port(built_monorepo, free_port())  # `doit shell` starts the local emulator too
    try:
        shell = run_doit(built_monorepo, "shell").stdout
        plan = run_doit(built_monorepo, "plan", timeout=300).stdout
        set_config(built_monorepo, "shared.modules", modules[:-1])
        again = run_doit(built_monorepo, "shell").stdout
    finally:
        run_doit(built_monorepo, "local_stop", check=False)
    assert shell.count(warning) == 1, shell
    assert shell.count("no app imports") == 1, shell  # not `react-dom`
    assert plan.count(warning) == 1, plan
    assert "no app imports" not in again, again
