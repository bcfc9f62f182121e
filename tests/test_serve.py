"""`doit serve` end to end: real doit, npm/esbuild, HTTP servers and headless Chromium."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from playwright.sync_api import Page

from mfe.config import load_project
from mfe.serve.watch import classify

from conftest import REPO, run_doit

APPS = ("mfe-parent", "accounts", "payments")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_is_free(port: int) -> bool:
    """Nothing listens there (SO_REUSEADDR: closed connections in TIME_WAIT do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def set_ports(root: Path, shell: int, apps: dict[str, int]) -> None:
    """Point the copy's mfe.toml at free ports (the only place ports are configured)."""
    config = root / "mfe.toml"
    text = config.read_text()
    for app, port in apps.items():
        text, count = re.subn(
            rf"(\[apps\.{re.escape(app)}\][^\[]*?dev_port = )\d+", rf"\g<1>{port}", text
        )
        assert count == 1, app
    text, count = re.subn(r"(\[env\.dev\][^\[]*?port = )\d+", rf"\g<1>{shell}", text)
    assert count == 1
    config.write_text(text)


class Server:
    """`python -m doit serve` as a subprocess, with its output collected line by line."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "doit", "serve"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, since: int = 0, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[since:]:
                if re.search(pattern, line):
                    return line
            if self.proc.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r}:\n" + "\n".join(self.lines))


def get(port: int, path: str) -> http.client.HTTPResponse:
    """A raw request: http.client sends the path exactly as written (no normalisation)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_serve_rebuilds_one_app_and_reloads(monorepo: Path, page: Page) -> None:
    shell_port, *app_ports = free_ports(4)
    ports = dict(zip(APPS, app_ports, strict=True))
    set_ports(monorepo, shell_port, ports)

    # A busy port: a clear error naming port and app, non-zero exit, nothing left listening.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports["accounts"]))
        busy.listen()
        result = run_doit(monorepo, "serve", check=False, timeout=120)
    assert result.returncode != 0
    assert f"port {ports['accounts']} for app 'accounts' is already in use" in result.stdout
    assert "Traceback" not in result.stdout
    assert port_is_free(shell_port)  # the ports bound before the failure were released

    server = Server(monorepo)
    try:
        url = server.wait_for(r"^http://127\.0\.0\.1:\d+/$")
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
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGINT)
        code = server.proc.wait(timeout=20)
        server.reader.join(timeout=5)
    output = "\n".join(server.lines)
    assert code == 0, output
    assert "serve: stopped, bye" in output
    assert "Traceback" not in output
    assert all(port_is_free(port) for port in [shell_port, *app_ports])


def check_http(root: Path, shell_port: int, app_port: int) -> None:
    dist = root / "apps/payments/dist"
    entry = next(dist.glob("main-*.js"))
    response = get(app_port, f"/{entry.name}")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
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
