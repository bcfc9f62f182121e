"""`doit serve` builds through one long-lived esbuild process, and doit's state stays true."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mfe.config import App

from fixtures.repo import executed_tasks, run_doit, up_to_date_tasks
from fixtures.serve import CTRL_C_STOPPED, ServeProcess, use_free_ports


def test_serve_builds_what_doit_build_would_and_doit_agrees(monorepo: Path) -> None:
    use_free_ports(monorepo)
    source = monorepo / "apps/payments/src/payments-app.js"
    original = source.read_text()
    manifest = monorepo / "apps/payments/dist/asset-manifest.json"
    server = ServeProcess(monorepo)
    try:
        server.wait_for(r"^http://127\.0\.0\.1:\d+/$")
        for text in ("Payments one", "Payments two"):
            mark = len(server.lines)
            source.write_text(original.replace(">Payments</h2>", f">{text}</h2>"))
            server.wait_for(r"^serve: rebuilt payments in", since=mark)
        # Another terminal: doit knows serve built payments from these very bytes.
        other = run_doit(monorepo, "build").stdout
        assert not executed_tasks(other), other
        assert {"build:payments", "build:accounts", "build:mfe-parent"} <= up_to_date_tasks(other)
    finally:
        assert server.stop() == CTRL_C_STOPPED
    after = run_doit(monorepo, "build").stdout  # serve's own exit kept those records too
    assert not executed_tasks(after), after
    served = manifest.read_bytes()
    assert b"Payments two" in next(manifest.parent.glob("main-*.js")).read_bytes()
    # The one-shot build (a fresh `node build-app.mjs`) writes byte-identical files.
    run_doit(monorepo, "forget", "build:payments")
    assert "build:payments" in executed_tasks(run_doit(monorepo, "build").stdout)
    assert manifest.read_bytes() == served


def test_the_long_lived_bundler_restarts_when_its_options_change(monorepo: Path) -> None:
    """A new esbuild option must not wait for a serve restart; other scripts fall back."""
    import json
    import os

    from mfe.build.bundle import build_command, build_env
    from mfe.build.live import LiveBundler, shared_script
    from mfe.build.shared import externals_json
    from mfe.config import load_project

    project = load_project(monorepo)
    app = project.apps["payments"]
    script = shared_script(project, app, build_command(app))
    assert script == (monorepo / "tools/build-app.mjs").resolve()
    assert shared_script(project, app, "node ../../tools/other.mjs") is None
    shared = json.loads(externals_json(project))
    bundler = LiveBundler(project, build_env(project))
    try:
        assert bundler.bundle(script, app, monorepo / "out1", shared) == (True, "")
        first = bundler.pid(script)
        assert bundler.bundle(script, app, monorepo / "out2", shared) == (True, "")
        assert bundler.pid(script) == first  # warm: the same process
        options = monorepo / "tools/esbuild-options.mjs"
        os.utime(options, ns=(options.stat().st_atime_ns, options.stat().st_mtime_ns + 10**9))
        assert bundler.bundle(script, app, monorepo / "out3", shared) == (True, "")
        assert bundler.pid(script) != first  # restarted with the new options
        assert sorted(p.name for p in (monorepo / "out1").iterdir()) == sorted(
            p.name for p in (monorepo / "out3").iterdir()
        )
    finally:
        bundler.close()


def test_a_closed_bundler_starts_no_process(monorepo: Path) -> None:
    """serve's warm-up thread may still ask for a build after Ctrl-C closed the bundler
    (an `npm ci` it interrupted left node_modules half deleted): no node starts then, as
    one did, printing node's "Cannot find package 'esbuild'" after serve's last line."""
    import json

    from mfe.build.bundle import build_command, build_env
    from mfe.build.live import LiveBundler, shared_script
    from mfe.build.shared import externals_json
    from mfe.config import load_project

    project = load_project(monorepo)
    apps = [project.apps[name] for name in ("payments", "accounts")]
    scripts = [(shared_script(project, app, build_command(app)), app) for app in apps]
    warm = [(script, app) for script, app in scripts if script is not None]
    assert len(warm) == 2
    bundler = LiveBundler(project, build_env(project))
    bundler.bundle(*warm[0], monorepo / "out1", json.loads(externals_json(project)))
    assert bundler.pid(warm[0][0]) is not None
    bundler.close()
    bundler.warm(warm, monorepo / "scratch", json.loads(externals_json(project)))
    assert bundler.pid(warm[0][0]) is None
    assert not (monorepo / "scratch").exists()  # nothing was built


def test_the_warm_up_starts_no_node_while_a_cycle_runs_nor_after_its_ctrl_c(
    monorepo: Path,
) -> None:
    """A serve cycle's doit run may `npm ci` (every build depends on `install`): the warm-up
    thread must not start node then (it imports esbuild from a node_modules npm deletes:
    "Cannot find package 'esbuild'"), and after a Ctrl-C in that cycle not at all. The
    warm-up is stopped right before its first build; meanwhile the packages change."""
    import json
    import os
    import threading

    from mfe.build.bundle import build_command, build_env
    from mfe.build.live import LiveBundler, shared_script
    from mfe.build.shared import externals_json
    from mfe.config import load_project

    project = load_project(monorepo)
    app = project.apps["payments"]
    script = shared_script(project, app, build_command(app))
    assert script is not None
    shared = json.loads(externals_json(project))
    bundler = LiveBundler(project, build_env(project))
    stop, reached = threading.Event(), threading.Event()

    def apps() -> Iterator[tuple[Path, App]]:
        reached.set()  # the warm-up asks the bundler for its first build next
        yield script, app
        yield script, project.apps["accounts"]

    warming = threading.Thread(target=bundler.warm, args=(apps(), monorepo / "scratch", shared))
    try:
        with bundler.holding(stop):
            assert bundler.bundle(script, app, monorepo / "out1", shared) == (True, "")
            first = bundler.pid(script)  # the cycle's own build, in the same thread
            warming.start()
            assert reached.wait(30)
            installed = monorepo / "node_modules/.package-lock.json"  # as npm ci rewrites it
            os.utime(installed, ns=(installed.stat().st_atime_ns, installed.stat().st_mtime_ns + 1))
            stop.set()  # Ctrl-C during the cycle
        warming.join(30)
        assert not warming.is_alive()
        assert bundler.pid(script) == first  # not restarted on the new packages
    finally:
        bundler.close()
