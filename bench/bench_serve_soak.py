"""A day of editing with `doit serve`, compressed: does serve keep its size?

A developer leaves `doit serve` running all day with a tab open on the page. This soak
starts it the project's way (`python -m doit serve` on a copy of this monorepo, on free
ports), opens the shell page in one headless Chromium tab (its live-reload stream goes
and comes back on every reload, as a developer's does) and runs cycles of: a save of an
app's heading (payments (Lit) and accounts (React) in turn) until the tab paints the new
text; every SYNTAX_EVERY cycles a save with a syntax error (the tab shows the overlay),
then the fix; every SHELL_EVERY cycles a save of the shell template (the tab reloads with
it); every TAB_EVERY cycles a second tab opened on the page and closed. Every round of
cycles it samples serve's process and its descendants (the long-lived bundler, `node
tools/build-app.mjs --serve`, and esbuild's service process under it): resident memory
(`/proc/<pid>/status` VmRSS), open file descriptors, threads, and how many there are.

Target: after the warm-up rounds, serve's RSS grows by at most SLOPE_KB per cycle (a
linear fit over the later rounds), and its descriptors, threads and child processes
(and theirs) stay flat. Measured on 2 shared cores, ~0.4 s a cycle: serve 34.3 MB at the
start and 35.4 MB after 40 cycles (the first builds and renders fill jinja's and the
import map's caches), then 8-9 KB a cycle over cycles 40-200 (36.8 MB) and ~3 KB a cycle
over 200-400 (37.4 MB); fds 22, threads 29 and 2 children (the bundler and esbuild),
their fds and threads flat all along; the children's RSS (~70 -> 80 MB over 400 cycles,
Node's and Go's heaps) is reported, not judged. What still grows in serve's Python heap
(tracemalloc, cycles 100-400: ~1 KB a cycle) is the import map's `_whole_imports` cache,
one entry per rebuilt chunk, bounded (lru, 4096 entries). Until serve's task stopped
doit capturing its output, every line serve printed stayed in memory as well (each
failed build's whole bundler error text): ~1 KB a cycle here, far more with long errors
(tests/test_serve_soak.py, test_what_serve_printed_is_not_kept).
Run alone: `python bench/bench_serve_soak.py [CYCLES]` prints the samples.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import CHROMIUM, CHROMIUM_ARGS, children, copy_monorepo, held

from fixtures.serve import ServeProcess, use_free_ports

ROUND = 10
"""Cycles between two samples (one bench run)."""
ROUNDS = 20
"""Runs of the bench case: 200 cycles."""
WARM_ROUNDS = 4
"""Rounds left out of the fit: serve's first builds and renders fill its caches."""
SLOPE_KB = 25.0
"""Serve's RSS growth per cycle allowed after warm-up: ~3x the 8-9 KB measured over
cycles 40-200 (the allocator settling, a bounded cache filling). A leak of what a cycle
handles (a doit run's loaded tasks, a rendered page, a stream's buffers, a thread's
stack) is tens of KB or more a cycle and crosses it."""
SYNTAX_EVERY, SHELL_EVERY, TAB_EVERY = 5, 7, 4
WAIT_SECONDS = 30.0
APPS = {  # app -> (source file, heading markup, title)
    "payments": ("apps/payments/src/payments-app.js", ">Payments</h2>", "Payments"),
    "accounts": ("apps/accounts/src/accounts-app.jsx", ">Accounts</h2>", "Accounts"),
}
TEMPLATE = "shell/index.html.j2"
# Runs in every page load: reports each heading's text, and the page's `data-soak` mark
# (the shell template's edit), the first time it is shown.
WATCH_PAGE = """
(() => {
  const seen = new Set();
  function report(text) { if (!seen.has(text)) { seen.add(text); window.mfeShown(text); } }
  function scan(root) {
    for (const el of root.querySelectorAll("h2[id$='-heading']")) report(el.textContent.trim());
    for (const el of root.querySelectorAll("*")) if (el.shadowRoot) scan(el.shadowRoot);
  }
  function tick() {
    if (document.body) {
      scan(document);
      if (document.body.dataset.soak) report("shell " + document.body.dataset.soak);
    }
    requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);
})();
"""


@dataclass
class Sample:
    cycle: int
    seconds: float
    serve_kb: int
    serve_fds: int
    serve_threads: int
    children: int
    """serve's descendants: the bundler and esbuild's service process."""
    children_kb: int
    children_fds: int
    children_threads: int


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, recursively."""
    return [p for child in children(pid) for p in (child, *_descendants(child))]


@dataclass
class Soak:
    """The copy, its `doit serve`, the tab on its page and what the cycles did so far."""

    root: Path
    shell_port: int
    server: ServeProcess
    browser: Any
    page: Any = None
    shown: dict[str, float] = field(default_factory=dict)
    """Text the tab showed (a heading, `shell N`) -> when, first."""
    originals: dict[str, str] = field(default_factory=dict)
    cycle: int = 0
    samples: list[Sample] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def start(cls, root: Path, playwright: Any) -> Soak:
        """Serve a fresh copy and open the tab; the first sample is taken once it shows."""
        copy_monorepo(root)
        shell_port, _ = use_free_ports(root)
        server = ServeProcess(root)
        soak = cls(root, shell_port, server, None)
        try:
            server.wait_for(rf"^http://127\.0\.0\.1:{shell_port}/$", timeout=120)
            soak.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            soak.originals = {
                path: (root / path).read_text()
                for path in [TEMPLATE, *(a[0] for a in APPS.values())]
            }
            soak.page = soak.browser.new_context().new_page()
            soak.page.expose_function(
                "mfeShown", lambda text: soak.shown.setdefault(text, time.time())
            )
            soak.page.add_init_script(WATCH_PAGE)
            soak.page.goto(soak.url)
            soak.wait_shown("Payments")
            soak.wait_shown("Accounts")
            soak.sample()
        except BaseException:
            soak.stop()
            raise
        return soak

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.shell_port}/"

    def wait_shown(self, text: str) -> None:
        """Until the tab showed `text`; Playwright delivers the page's calls meanwhile."""
        deadline = time.monotonic() + WAIT_SECONDS
        while text not in self.shown:
            self.page.wait_for_timeout(5)
            if time.monotonic() > deadline:
                tail = "\n".join(self.server.lines[-20:])
                raise RuntimeError(
                    f"the tab at {self.url} never showed {text!r}; serve said:\n{tail}"
                )

    def save(self, app: str, text: str, broken: bool = False) -> None:
        relative, heading, _ = APPS[app]
        source = self.originals[relative].replace(heading, f">{text}</h2>")
        (self.root / relative).write_text(
            source + ("\nexport const broken = (;\n" if broken else "")
        )

    def one_cycle(self) -> None:
        """What a developer does between two looks at serve's size, once."""
        self.cycle += 1
        n = self.cycle
        app = "payments" if n % 2 else "accounts"
        title = APPS[app][2]
        self.save(app, f"{title} {n}")
        self.wait_shown(f"{title} {n}")
        if n % SYNTAX_EVERY == 0:  # a typo: the overlay, then the fix reloads the tab
            self.save(app, f"{title} {n} typo", broken=True)
            self.page.locator("#mfe-error-overlay").wait_for(timeout=WAIT_SECONDS * 1000)
            self.save(app, f"{title} {n} fixed")
            self.wait_shown(f"{title} {n} fixed")
        if n % SHELL_EVERY == 0:  # the page's template
            template = self.originals[TEMPLATE].replace("<body>", f'<body data-soak="{n}">', 1)
            (self.root / TEMPLATE).write_text(template)
            self.wait_shown(f"shell {n}")
        if n % TAB_EVERY == 0:  # a second tab on the page, looked at and closed
            other = self.page.context.new_page()
            other.goto(self.url)
            other.locator("h2", has_text=f"{title} ").first.wait_for(timeout=WAIT_SECONDS * 1000)
            other.close()

    def sample(self) -> Sample:
        pid = self.server.proc.pid
        rss, fds, threads = held(pid)
        children = [0, 0, 0]
        descendants = _descendants(pid)
        for child in descendants:
            for index, value in enumerate(held(child)):
                children[index] += value
        sample = Sample(
            self.cycle,
            round(time.monotonic() - self.started, 1),
            rss,
            fds,
            threads,
            len(descendants),
            *children,
        )
        self.samples.append(sample)
        return sample

    def run_round(self) -> dict[str, Any]:
        for _ in range(ROUND):
            self.one_cycle()
        time.sleep(0.5)  # the last reload's requests and the closed tab's stream end
        last = self.sample()
        return {
            "cycles": last.cycle,
            "serve_MB": round(last.serve_kb / 1024, 1),
            "fds": last.serve_fds,
            "threads": last.serve_threads,
            "children": last.children,
            "children_MB": round(last.children_kb / 1024, 1),
            "KB/cycle": round(self.slope(), 1),
            "children KB/cycle": round(self.slope("children_kb"), 1),
        }

    def slope(self, what: str = "serve_kb") -> float:
        """Growth per cycle of `what`, fitted over the samples after the warm-up rounds."""
        later = self.samples[WARM_ROUNDS:]
        if len(later) < 2:
            return 0.0
        cycles = [s.cycle for s in later]
        return statistics.linear_regression(cycles, [getattr(s, what) for s in later]).slope

    def flat(self) -> bool:
        """Descriptors, threads and processes after warm-up: no more than the first round
        after it, give or take a request in flight."""
        later = self.samples[WARM_ROUNDS:]
        if not later:
            return True  # still warming up: nothing to judge yet
        first = later[0]
        return (
            max(s.serve_fds for s in later) <= first.serve_fds + 2
            and max(s.serve_threads for s in later) <= first.serve_threads + 2
            and max(s.children for s in later) == first.children
            and max(s.children_fds for s in later) <= first.children_fds + 2
            and max(s.children_threads for s in later) <= first.children_threads + 2
        )

    def stop(self) -> None:
        if self.browser is not None:
            self.browser.close()
        self.server.stop()


def cases(ctx: Any) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright
    from run import Case

    playwright = sync_playwright().start()
    ctx.stack.callback(playwright.stop)
    soak = Soak.start(ctx.tmp / "repo", playwright)
    ctx.stack.callback(soak.stop)

    def check(row: dict[str, Any]) -> bool:
        return soak.slope() <= SLOPE_KB and soak.flat()

    yield Case(
        name=f"serve soak, {ROUND} cycles a run",
        run=soak.run_round,
        repeat=ROUNDS,
        target=f"serve RSS <= {SLOPE_KB:.0f} KB/cycle after warm-up; fds, threads, children flat",
        check=check,
    )


def main() -> None:
    import tempfile

    from playwright.sync_api import sync_playwright
    from run import as_a_user

    as_a_user()
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else ROUND * ROUNDS
    with tempfile.TemporaryDirectory(prefix="mfe-serve-soak-") as tmp, sync_playwright() as pw:
        soak = Soak.start(Path(tmp) / "repo", pw)
        try:
            print(soak.samples[-1], flush=True)
            while soak.cycle < cycles:
                print(soak.run_round(), soak.samples[-1], flush=True)
            if len(soak.samples) > WARM_ROUNDS + 1:
                print(f"flat: {soak.flat()}, serve KB/cycle: {soak.slope():.1f}", flush=True)
        finally:
            soak.stop()


if __name__ == "__main__":
    main()
