"""`doit serve` end to end: real doit, npm/esbuild, HTTP servers and headless Chromium."""

from __future__ import annotations

import http.client
import re
import socket
from pathlib import Path

from playwright.sync_api import Page

from mfe.config import load_project
from mfe.serve.watch import classify

from fixtures.repo import REPO, run_doit
from fixtures.serve import ServeProcess, use_free_ports


def port_is_free(port: int) -> bool:
    """Nothing listens there (SO_REUSEADDR: closed connections in TIME_WAIT do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def get(port: int, path: str) -> http.client.HTTPResponse:
    """A raw request: http.client sends the path exactly as written (no normalisation)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_serve_rebuilds_one_app_and_reloads(monorepo: Path, page: Page) -> None:
    shell_port, ports = use_free_ports(monorepo)

    # A busy port: a clear error naming port and app, non-zero exit, nothing left listening.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports["accounts"]))
        busy.listen()
        result = run_doit(monorepo, "serve", check=False, timeout=120)
    assert result.returncode != 0
    assert f"port {ports['accounts']} for app 'accounts' is already in use" in result.stdout
    assert "Traceback" not in result.stdout
    assert port_is_free(shell_port)  # the ports bound before the failure were released

    server = ServeProcess(monorepo)
    try:
        url = server.lines[server.wait_for(r"^http://127\.0\.0\.1:\d+/$")]
        assert url == f"http://127.0.0.1:{shell_port}/"
        page.goto(url)
        page.locator("h2", has_text="Accounts").wait_for(timeout=15_000)
        page.locator("h2", has_text="Payments").wait_for(timeout=15_000)

        # Edit payments: the page reloads with the new text; accounts is not rebuilt.
        source = monorepo / "apps/payments/src/payments-app.js"
        original = source.read_text()
        assert ">Payments</h2>" in original
        mark = len(server.lines)
        source.write_text(original.replace(">Payments</h2>", ">Payments (edited)</h2>"))
        page.locator("h2", has_text="Payments (edited)").wait_for(timeout=15_000)
        server.wait_for(r"serve: rebuilt payments in", since=mark)
        ran = server.lines[mark:]
        assert ".  build:payments" in ran
        assert not [line for line in ran if "build:accounts" in line or "build:mfe-parent" in line]

        # A syntax error: overlay with the bundler's text; the last good build stays served.
        mark = len(server.lines)
        source.write_text(original.replace("render() {", "render() {{", 1))
        overlay = page.locator("#mfe-error-overlay")
        overlay.wait_for(timeout=15_000)
        assert "payments" in overlay.inner_text()
        assert "ERROR" in overlay.inner_text()
        server.wait_for(r"serve: payments failed", since=mark)
        page.reload()
        overlay.wait_for(timeout=15_000)  # a fresh tab learns the failure on connect
        assert page.locator("h2", has_text="Payments (edited)").count() == 1

        source.write_text(original)
        page.locator("h2", has_text=re.compile(r"^Payments$")).wait_for(timeout=15_000)
        overlay.wait_for(state="detached", timeout=15_000)

        check_http(monorepo, shell_port, ports["payments"])
    finally:
        code = server.stop()
    output = "\n".join(server.lines)
    assert code == 0, output
    assert "serve: stopped, bye" in output
    assert "Traceback" not in output
    assert all(port_is_free(port) for port in [shell_port, *ports.values()])


def check_http(root: Path, shell_port: int, app_port: int) -> None:
    dist = root / "apps/payments/dist"
    entry = next(dist.glob("main-*.js"))
    response = get(app_port, f"/{entry.name}")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Access-Control-Allow-Origin" not in response.headers  # no Origin: no CORS grant
    assert int(response.headers["Content-Length"]) == entry.stat().st_size

    (dist / "sub").mkdir()
    (dist / "leak.js").symlink_to(root / "mfe.toml")
    (dist / "sub" / "up.js").symlink_to("../../package.json")
    attempts = [
        "/../mfe.toml",
        "/../../../mfe.toml",
        "/%2e%2e/%2e%2e/%2e%2e/mfe.toml",
        "/..%2f..%2f..%2fmfe.toml",
        "/..%5c..%5c..%5cmfe.toml",
        "/..\\..\\..\\mfe.toml",
        f"/{entry.name}/../../package.json",
        "/leak.js",
        "/sub/up.js",
        "/sub",
        "/sub/",
        "/",
        "/%00",
        "/%ff",
    ]
    for path in attempts:
        assert get(app_port, path).status == 404, path
    for path in ["/../mfe.toml", "/%2e%2e/mfe.toml", "/build/dev/index.html", "/mfe.toml"]:
        assert get(shell_port, path).status == 404, path
    assert get(shell_port, "/_mfe/reload.js").status == 200


def test_watch_maps_paths_to_work_and_ignores_outputs() -> None:
    project = load_project(REPO)
    root = project.root
    changes = classify(
        project,
        {
            root / "apps/payments/src/payments-app.js",
            root / "apps/accounts/dist/main-ABCDEFGH.js",
            root / "apps/accounts/node_modules/x/index.js",
            root / "apps/accounts/src/.accounts-app.jsx.swp",
            root / "build/dev/index.html",
            root / ".mfe/doit-db.json",
        },
    )
    assert changes.apps == {"payments"}
    assert not (changes.shell or changes.config or changes.install)
    assert classify(project, {root / "shell/index.html.j2"}).shell
    assert classify(project, {root / "mfe.toml"}).config
    assert classify(project, {root / "package-lock.json"}).install
    assert not classify(project, {root / "apps/accounts", root / "README.md"})
