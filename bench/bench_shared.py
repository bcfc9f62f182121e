"""Shared dependencies (issue 16): the signed-in page with and without `[shared]`.

Two copies of this monorepo are published to two local emulators in the same run: the
repo as it is (Lit and React as shared modules through the import map) and the same
copy with the `[shared]` table removed (every app bundles its own libraries). Headless
Chromium loads each signed-in page cold (a new browser context, the tokens put in
sessionStorage before the page's scripts run) until Accounts and Payments are rendered.

Wall time is goto -> both micro-frontends visible (with a new browser context). Metrics
(medians; the JavaScript ones from one untimed load of each page): `fcp_ms` (first
contentful paint), `defined_ms` (when each app's custom element was defined: when its
module graph ran; the parent's comes before the first paint), `visible_ms` (the frame in
which each fragment's heading first shows), `js_gzip` (JavaScript bytes as gzip -9 would
send them; CloudFront sends Chromium Brotli, which changes the sizes, not the comparison),
`js_raw`, `js_files`, `dup_files` (library source files found in more than one response's
source map: two copies of one library), `lit_copy_gzip` (one copy of Lit, the duplicate
the shared build removes).
Targets: zero duplicate library files; JS bytes lower by at least one Lit copy; first
paint not slower (FCP median within 5% of the unshared build's, the noise of this machine).
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import statistics
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import tomlkit
from common import CHROMIUM, CHROMIUM_ARGS, copy_monorepo, copy_sources, doit, use_port
from run import Case, Context

from fixtures.aws import free_port
from fixtures.modules import Recorder, duplicates

# When each custom element is defined (its app's module evaluated) and each fragment's
# heading first shows (checked every frame), page time in ms.
DEFINE_TIMES = """
window.__defined = {};
const define = customElements.define.bind(customElements);
customElements.define = (name, cls, options) => {
  window.__defined[name] = performance.now();
  return define(name, cls, options);
};
window.__visible = {};
(function poll() {
  for (const name of ['mfe-accounts', 'mfe-payments']) {
    const root = document.querySelector(name)?.shadowRoot;
    if (!window.__visible[name] && root?.querySelector('h2')) window.__visible[name] = performance.now();
  }
  if (Object.keys(window.__visible).length < 2) requestAnimationFrame(poll);
  else console.log('mfe-visible');
})();
"""
VISIBLE = "mfe-visible"

# `import{a}from"./chunks/x.js"`, `import"./x.js"`: the chunks a shared module loads.
RELATIVE_IMPORT = re.compile(r"""(?:\bfrom|\bimport)\s*["'](\.[^"']+)["']""")


def publish(repo: Path, ctx: Context) -> str:
    use_port(repo, free_port())
    ctx.stack.callback(lambda: doit(repo, "local_stop"))
    return doit(repo, "publish").strip().splitlines()[-1].strip()


def unshare(repo: Path) -> None:
    config = repo / "mfe.toml"
    document = tomlkit.parse(config.read_text())
    del document["shared"]
    config.write_text(tomlkit.dumps(document))


def cases(ctx: Context) -> Iterator[Case]:
    from playwright.sync_api import sync_playwright

    # The copies outlive ctx.tmp's cleanup until their emulators are stopped (LIFO stack).
    work = Path(tempfile.mkdtemp(prefix="mfe-bench-shared-"))
    ctx.stack.callback(shutil.rmtree, work, True)
    shared_repo = copy_monorepo(work / "shared")
    unshared_repo = copy_sources(work / "unshared")
    unshare(unshared_repo)
    doit(unshared_repo, "build")
    sites = {"shared": publish(shared_repo, ctx), "unshared": publish(unshared_repo, ctx)}

    playwright = sync_playwright().start()
    ctx.stack.callback(playwright.stop)
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    ctx.stack.callback(browser.close)

    tokens = {name: sign_in(browser, url) for name, url in sites.items()}
    stats: dict[str, dict[str, list[float]]] = {name: {"fcp_ms": []} for name in sites}
    defined: dict[str, dict[str, list[float]]] = {name: {} for name in sites}
    visible: dict[str, dict[str, list[float]]] = {name: {} for name in sites}
    scripts: dict[str, dict[str, Any]] = {}
    lit_copy = one_lit_copy_gzip(shared_repo)

    def open_page(name: str) -> tuple[Any, Any]:
        context = browser.new_context()
        context.add_init_script(
            f"sessionStorage.setItem('mfe.tokens', {json.dumps(tokens[name])});"
        )
        context.add_init_script(DEFINE_TIMES)
        return context, context.new_page()

    def show(page: Any, name: str) -> None:
        """Load until both fragments show, running nothing in the page meanwhile: a locator
        would inject Playwright's script (~25 ms of its main thread) after the load event,
        which can come before the fragments paint (then visible_ms, even fcp_ms, pay it)."""
        with page.expect_console_message(lambda message: message.text == VISIBLE, timeout=30_000):
            page.goto(sites[name], wait_until="commit")
        page.wait_for_function("performance.getEntriesByName('first-contentful-paint').length")

    def record_scripts() -> None:
        """Untimed, once: the JavaScript each page loads (reading source maps takes time)."""
        for name in sites:
            context, page = open_page(name)
            recorder = Recorder(page)
            show(page, name)
            loaded = recorder.scripts()
            context.close()
            assert not recorder.errors, recorder.errors
            scripts[name] = {
                "js_gzip": sum(len(gzip.compress(item.body, 9)) for item in loaded),
                "js_raw": sum(len(item.body) for item in loaded),
                "js_files": len(loaded),
                "dup_files": len(duplicates(loaded)),
                "lit_copy_gzip": lit_copy,
            }

    def load(name: str) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            context, page = open_page(name)
            show(page, name)
            fcp = page.evaluate(
                "() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime"
            )
            for element, at in page.evaluate("() => window.__defined").items():
                defined[name].setdefault(element, []).append(at)
            for element, at in page.evaluate("() => window.__visible").items():
                visible[name].setdefault(element, []).append(at)
            context.close()
            stats[name]["fcp_ms"].append(float(fcp or 0))
            return {
                "fcp_ms": round(statistics.median(stats[name]["fcp_ms"]), 1),
                "defined_ms": {e: round(statistics.median(t)) for e, t in defined[name].items()},
                "visible_ms": {e: round(statistics.median(t)) for e, t in visible[name].items()},
                **scripts[name],
            }

        return run

    def met(row: dict[str, Any]) -> bool:
        mine, other = row["metrics"], row["anchors"]["unshared build"]["metrics"]
        return (
            mine["dup_files"] == 0
            and other["js_gzip"] - mine["js_gzip"] >= lit_copy
            and mine["fcp_ms"] <= other["fcp_ms"] * 1.05
        )

    yield Case(
        name="shared: signed-in page, cold load",
        run=load("shared"),
        anchors={"unshared build": load("unshared")},
        prepare=record_scripts,
        repeat=10,
        target="0 dup files; js_gzip -lit_copy_gzip or more; fcp_ms <= unshared x1.05",
        check=met,
    )


def sign_in(browser: Any, url: str) -> str:
    """Sign in as guest once; the stored tokens (JSON) let later loads skip the form."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(url)
    page.fill("input[name=username]", "guest")
    page.fill("input[name=password]", "awsguest")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Accounts", level=2).wait_for(timeout=30_000)
    stored = page.evaluate("() => sessionStorage.getItem('mfe.tokens')")
    context.close()
    assert isinstance(stored, str)
    return stored


def one_lit_copy_gzip(repo: Path) -> int:
    """gzip -9 bytes of the shared Lit module and its chunks: one copy of the library."""
    dist = repo / "build/shared/dist"
    manifest = json.loads((dist / "asset-manifest.json").read_text())
    todo, files = [dist / manifest["modules"][""]["lit"]], set()
    while todo:
        path = todo.pop()
        if path not in files:
            files.add(path)
            found = RELATIVE_IMPORT.findall(path.read_text())
            todo += [(path.parent / spec).resolve() for spec in found]
    return sum(len(gzip.compress(path.read_bytes(), 9)) for path in files)
