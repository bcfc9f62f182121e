"""`doit serve` end to end: real doit, npm/esbuild, HTTP servers and headless Chromium."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path, PosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page

from mfe.build.bundle import swap_into_place
from mfe.config import load_project
from mfe.serve.origins import Origins
from mfe.serve.reload import Broker
from mfe.serve.server import Gate, Site, bind, start
from mfe.serve.watch import classify

from fixtures.aws import free_ports
from fixtures.repo import REPO, link_copy, run_doit
from fixtures.serve import (
    CTRL_C_STOPPED,
    Served,
    ServeProcess,
    overlay_errors,
    served_entry,
    serving,
    use_free_ports,
    wait_until,
)


def port_is_free(port: int) -> bool:
    """Nothing listens there (SO_REUSEADDR: closed connections in TIME_WAIT do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def page_text(served: Served) -> str:
    """The shell page as served ("" when there is none)."""
    return fetch(served.url)


def fetch(url: str) -> str:
    """The body of a 200 answer, else ""."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.request("GET", parts.path)
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    return body if response.status == 200 else ""


def get(port: int, path: str) -> http.client.HTTPResponse:
    """A raw request: http.client sends the path exactly as written (no normalisation)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


@pytest.fixture(scope="module")
def served(monorepo_built: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(monorepo_built, tmp_path_factory.mktemp("served")) as served:
        yield served


@pytest.fixture
def payments_source(served: Served) -> Iterator[Path]:
    """payments' component; whatever a test writes there is undone (and rebuilt) afterwards."""
    source = served.root / "apps/payments/src/payments-app.js"
    original = source.read_text()
    assert ">Payments</h2>" in original and "render() {" in original
    yield source
    if source.read_text() != original:
        mark = len(served.server.lines)
        source.write_text(original)
        served.server.wait_for(r"serve: rebuilt payments in", since=mark)


def test_a_busy_port_is_an_error_naming_port_and_app(monorepo_built: Path, tmp_path: Path) -> None:
    root = link_copy(monorepo_built, tmp_path / "repo")
    shell_port, ports = use_free_ports(root)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports["accounts"]))
        busy.listen()
        result = run_doit(root, "serve", check=False, timeout=120)
    assert result.returncode != 0
    assert f"port {ports['accounts']} for app 'accounts' is already in use" in result.stdout
    assert "or change [apps.accounts] dev_port in mfe.toml" in result.stdout
    assert "Traceback" not in result.stdout
    assert port_is_free(shell_port)  # the ports bound before the failure were released


@pytest.mark.parametrize(
    ("busy", "option", "advice"),
    [
        ("shell", True, "pick another --port"),  # a command-line option, not a setting
        ("shared", False, "change [shared] dev_port in mfe.toml"),  # not [apps.shared]
    ],
)
def test_a_busy_port_says_how_to_move_it_where_it_was_set(
    monorepo_built: Path, tmp_path: Path, busy: str, option: bool, advice: str
) -> None:
    root = link_copy(monorepo_built, tmp_path / "repo")
    shell_port, _ = use_free_ports(root)
    port = free_ports(1)[0] if option else shell_port
    if busy == "shared":
        port = load_project(root).apps["shared"].dev_port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        args = ["--port", str(port)] if option else []
        result = run_doit(root, "serve", *args, check=False, timeout=120)
    assert result.returncode != 0
    (line,) = [line for line in result.stdout.splitlines() if "already in use" in line]
    assert f"port {port} for " in line and line.endswith(advice), line
    if option:
        assert "mfe.toml" not in line, line


def test_the_printed_url_serves_the_shell_with_every_app(served: Served, page: Page) -> None:
    assert served.url in served.server.lines
    page.goto(served.url)
    page.locator("h2", has_text="Accounts").wait_for(timeout=15_000)
    page.locator("h2", has_text="Payments").wait_for(timeout=15_000)


def test_an_edit_rebuilds_only_that_app_and_reloads_the_page(
    served: Served, page: Page, payments_source: Path
) -> None:
    page.goto(served.url)
    page.locator("h2", has_text="Payments").wait_for(timeout=15_000)
    mark = len(served.server.lines)
    payments_source.write_text(
        payments_source.read_text().replace(">Payments</h2>", ">Payments (edited)</h2>")
    )
    page.locator("h2", has_text="Payments (edited)").wait_for(timeout=15_000)
    served.server.wait_for(r"serve: rebuilt payments in", since=mark)
    # One line a save, as Vite's `page reload src/x.js`: no doit task lines, no "wrote".
    (line,) = served.server.lines[mark:]
    saved = "apps/payments/src/payments-app.js"
    build = r"rebuilt payments in [\d.]+s \(build:payments [\d.]+s\)"
    assert re.fullmatch(rf"serve: {build} for {saved}; reloading pages", line), line


def test_a_syntax_error_shows_the_overlay_and_keeps_the_last_good_build(
    served: Served, page: Page, payments_source: Path
) -> None:
    page.goto(served.url)
    page.locator("h2", has_text="Payments").wait_for(timeout=15_000)
    good = payments_source.read_text()
    mark = len(served.server.lines)
    payments_source.write_text(good.replace("render() {", "render() {{", 1))
    overlay = page.locator("#mfe-error-overlay")
    overlay.wait_for(timeout=15_000)
    assert "payments" in overlay.inner_text()
    assert "ERROR" in overlay.inner_text()
    served.server.wait_for(r"serve: payments failed", since=mark)
    page.reload()
    overlay.wait_for(timeout=15_000)  # a fresh tab learns the failure on connect
    assert page.locator("h2", has_text=re.compile(r"^Payments$")).count() == 1

    payments_source.write_text(good)
    overlay.wait_for(state="detached", timeout=15_000)
    page.locator("h2", has_text=re.compile(r"^Payments$")).wait_for(timeout=15_000)


def test_app_files_are_served_unmodified_with_dev_headers(served: Served) -> None:
    dist = served.root / "apps/accounts/dist"
    entry = next(dist.glob("main-*.js"))
    response = get(served.ports["accounts"], f"/{entry.name}")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    # Fingerprinted: the browser keeps it across reloads (a rebuild gives a new name).
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert get(served.shell_port, "/").headers["Cache-Control"] == "no-store"
    assert "Access-Control-Allow-Origin" not in response.headers  # no Origin: no CORS grant
    assert int(response.headers["Content-Length"]) == entry.stat().st_size
    assert get(served.shell_port, "/_mfe/reload.js").status == 200


def test_a_404_or_error_of_an_app_port_has_the_cors_headers_of_its_files(
    served: Served,
) -> None:
    """A tab loaded before a rebuild asks for the replaced `main-XXXX.js`: the browser
    must see the 404, not report a CORS error for a 404 that lacks the header."""
    shell = f"http://127.0.0.1:{served.shell_port}"
    for port in [served.ports["accounts"], *shared_port(served)]:
        for method, path in [("GET", "/main-NOPE.js"), ("HEAD", "/main-NOPE.js"), ("POST", "/")]:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request(method, path, headers={"Origin": shell})
            response = connection.getresponse()
            response.read()
            connection.close()
            assert response.status in (404, 501), (method, path, response.status)
            assert response.headers["Access-Control-Allow-Origin"] == shell, (method, path)
            assert response.headers["Vary"] == "Origin", (method, path)


def shared_port(served: Served) -> list[int]:
    """The shared modules' port, as serve printed it."""
    lines = [
        re.match(r"^serve: shared: http://127\.0\.0\.1:(\d+)/", x) for x in served.server.lines
    ]
    return [int(m.group(1)) for m in lines if m]


def test_traversal_symlinks_out_and_directories_get_404(served: Served) -> None:
    root, app_port = served.root, served.ports["accounts"]
    dist = root / "apps/accounts/dist"
    entry = next(dist.glob("main-*.js"))
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
    try:
        for path in attempts:
            assert get(app_port, path).status == 404, path
        for path in ["/../mfe.toml", "/%2e%2e/mfe.toml", "/build/dev/index.html", "/mfe.toml"]:
            assert get(served.shell_port, path).status == 404, path
    finally:
        (dist / "leak.js").unlink()
        shutil.rmtree(dist / "sub")


def test_head_of_the_event_stream_is_headers_only(served: Served) -> None:
    with socket.create_connection(("127.0.0.1", served.shell_port), timeout=5) as sock:
        sock.sendall(b"HEAD /_mfe/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):  # until the server closes (no stream held open)
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), answer
    assert b"Content-Type: text/event-stream" in head
    assert body == b""


def test_the_start_up_lines_name_each_served_folder(served: Served) -> None:
    for app, port in served.ports.items():
        assert f"serve: {app}: http://127.0.0.1:{port}/ (apps/{app}/dist)" in served.server.lines
    shared = r"^serve: shared: http://127\.0\.0\.1:\d+/ \(build/shared/dist\)$"
    assert [line for line in served.server.lines if re.match(shared, line)], served.server.lines


def test_a_page_read_as_a_build_ends_still_reloads(tmp_path: Path) -> None:
    """A rebuild that ends between reading the page and stamping it with the build
    version: the tab must be stamped with the version it was read at, so it reloads."""
    broker = Broker()

    class RacingPage(PosixPath):
        def read_text(self, *args: Any, **kwargs: Any) -> str:
            text = super().read_text(*args, **kwargs)
            broker.publish([], reload=True)  # the rebuild ends right after the read
            return text

    page = RacingPage(tmp_path / "index.html")
    page.write_text("<!doctype html><html><head></head><body></body></html>")
    (port,) = free_ports(1)
    stop = start(
        bind([Site("shell", port, "[env.dev] port", page=page)], Gate(), broker, Origins(port))
    )
    try:
        match = re.search(r'data-version="([^"]+)"', fetch(f"http://127.0.0.1:{port}/"))
        assert match
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", f"/_mfe/events?since={match.group(1)}")
        first = connection.getresponse().readline()
        connection.close()
        assert first == b"event: reload\n"
    finally:
        broker.close()
        stop()


def test_clients_gone_mid_request_leave_no_traceback(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Tabs reloading or closing reset connections with requests in flight, many times a
    day: the server goes on answering and prints nothing about it."""
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "big.js").write_bytes(b"x" * 3_000_000)
    (port,) = free_ports(1)
    site = Site("payments", port, "[apps.payments] dev_port", root=dist)
    others = set(threading.enumerate())  # another test's servers in this process, say
    stop = start(bind([site], Gate(), Broker(), Origins(port + 1)))
    try:
        for _ in range(10):
            client = socket.create_connection(("127.0.0.1", port), timeout=10)
            client.sendall(f"GET /big.js HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            assert client.recv(100).startswith(b"HTTP/1.1 200")
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()  # a reset, as a cancelled request is
        assert fetch(f"http://127.0.0.1:{port}/big.js") == "x" * 3_000_000
        handlers = "process_request_thread"
        wait_until(
            lambda: not any(handlers in t.name for t in set(threading.enumerate()) - others),
            "busy",
        )
    finally:
        stop()
    assert capfd.readouterr().err == ""


def test_a_source_folder_deleted_and_restored_is_watched_again(
    served: Served, payments_source: Path, tmp_path: Path
) -> None:
    """`rm -rf src && git checkout src`, five times: each new folder's edits are built."""
    src = payments_source.parent
    saved = shutil.copytree(src, tmp_path / "src")
    original = payments_source.read_text()
    port = served.ports["payments"]
    for trial in range(5):
        restored = f"Payments r{trial}"
        (saved / payments_source.name).write_text(
            original.replace(">Payments</h2>", f">{restored}</h2>")
        )
        shutil.rmtree(src)
        shutil.copytree(saved, src)
        wait_until(
            lambda: restored in served_entry(served.shell_port, port),  # noqa: B023
            f"trial {trial}: the restored folder was never built\n"
            + "\n".join(served.server.lines),
        )
        edited = f"Payments e{trial}"
        payments_source.write_text(original.replace(">Payments</h2>", f">{edited}</h2>"))
        wait_until(
            lambda: edited in served_entry(served.shell_port, port),  # noqa: B023
            f"trial {trial}: an edit in the restored folder was never built\n"
            + "\n".join(served.server.lines),
        )


def test_the_shell_folder_deleted_and_restored_is_watched_again(
    served: Served, tmp_path: Path
) -> None:
    shell = served.root / "shell"
    template = shell / "index.html.j2"
    original = template.read_text()
    saved = shutil.copytree(shell, tmp_path / "shell")
    try:
        for trial in range(3):
            restored, edited = f"<!-- restored {trial} -->", f"<!-- edited {trial} -->"
            (saved / template.name).write_text(original.replace("</head>", restored + "</head>"))
            shutil.rmtree(shell)
            shutil.copytree(saved, shell)
            wait_until(lambda: restored in page_text(served), f"trial {trial}: not re-rendered")  # noqa: B023
            template.write_text(original.replace("</head>", edited + "</head>"))
            wait_until(
                lambda: edited in page_text(served),  # noqa: B023
                f"trial {trial}: an edit in the restored shell/ was never rendered\n"
                + "\n".join(served.server.lines),
            )
    finally:
        template.write_text(original)
        wait_until(
            lambda: not re.search(r"<!-- (restored|edited) ", page_text(served)),
            "the page was never restored",
        )


def test_a_shell_save_is_named_and_a_missing_template_is_a_shell_failure(
    served: Served, tmp_path: Path
) -> None:
    """Saves of the template are named as app saves are; one gone is told as a failed
    shell (the last good page stays), naming it from the root."""
    server, template = served.server, served.root / "shell/index.html.j2"
    original = template.read_text()
    mark = len(server.lines)
    try:
        template.write_text(original.replace("</head>", "<!-- saved --></head>"))
        saved = r"^serve: rebuilt nothing in [\d.]+s for shell/index\.html\.j2; reloading pages$"
        changed = server.wait_for(saved, since=mark)
        wait_until(lambda: "<!-- saved -->" in page_text(served), "not re-rendered")

        template.rename(tmp_path / "index.html.j2")
        header = r"^serve: shell failed; the last good build stays served:$"
        told = server.wait_for(header, since=changed)
        missing = "shell/index.html.j2: missing; create the shell template"
        assert server.wait_for("^" + re.escape(missing), told) == told + 1  # may come later
        assert "<!-- saved -->" in page_text(served)
    finally:
        template.write_text(original)
    wait_until(lambda: "<!-- saved -->" not in page_text(served), "the page was never restored")
    wait_until(lambda: overlay_errors(served.shell_port) == [], "the shell failure stays")


def test_a_folder_made_removed_and_made_again_is_watched_again(served: Served) -> None:
    lib = served.root / "apps/accounts/lib"
    try:
        for step in (lib.mkdir, lambda: shutil.rmtree(lib), lib.mkdir):
            mark = len(served.server.lines)
            step()
            served.server.wait_for(r"^serve: rebuilt ", since=mark)
        mark = len(served.server.lines)
        (lib / "format.js").write_text("export const format = (n) => n.toFixed(2);\n")
        served.server.wait_for(r"^serve: rebuilt accounts in ", since=mark, timeout=30)
    finally:
        mark = len(served.server.lines)
        shutil.rmtree(lib)
        served.server.wait_for(r"^serve: rebuilt ", since=mark)


def test_editing_a_build_input_rebuilds_every_app_and_the_shared_modules(served: Served) -> None:
    """`[build] inputs` live in tools/, which serve must watch too (mfe.toml: a change
    rebuilds all)."""
    options = served.root / "tools/esbuild-options.mjs"
    shared_script = served.root / "tools/build-shared.mjs"
    originals = {path: path.read_text() for path in (options, shared_script)}
    banner = "/* edited esbuild-options */"
    assert "  logLevel: 'warning',\n" in originals[options]

    def bannered() -> int:
        """How many of the served modules (each app's entry, lit's shared module) carry it."""
        page = page_text(served)
        urls = re.findall(r'src="(http://127\.0\.0\.1:\d+/main-\w+\.js)"', page)
        urls += re.findall(r'"lit": "(http://127\.0\.0\.1:\d+/[^"]+)"', page)
        assert len(urls) == 4, page
        return sum(banner in fetch(url) for url in urls)

    try:
        options.write_text(
            originals[options].replace("  logLevel", f"  banner: {{ js: '{banner}' }},\n  logLevel")
        )
        wait_until(lambda: bannered() == 4, lambda: "\n".join(served.server.lines), timeout=60)
        mark = len(served.server.lines)
        shared_script.write_text(originals[shared_script] + "// edited\n")
        served.server.wait_for(r"^serve: rebuilt [^(]*\bshared\b", since=mark)
    finally:
        for path, text in originals.items():
            path.write_text(text)
        wait_until(lambda: bannered() == 0, lambda: "\n".join(served.server.lines), timeout=60)


def test_a_build_input_added_to_mfe_toml_is_watched_without_a_restart(served: Served) -> None:
    """An input in a folder serve did not watch (`config/`): once mfe.toml names it, an
    edit of it rebuilds every app, as for the inputs serve started with."""
    config = served.root / "mfe.toml"
    original = config.read_text()
    extra = served.root / "config/extra.mjs"
    extra.parent.mkdir()
    extra.write_text("export default {};\n")
    try:
        mark = len(served.server.lines)
        config.write_text(original.replace("inputs = [", 'inputs = ["config/extra.mjs", ', 1))
        served.server.wait_for(r"^serve: rebuilt ", since=mark)
        mark = len(served.server.lines)
        extra.write_text("export default { edited: true };\n")
        both = r"\baccounts\b.*\bpayments\b"
        served.server.wait_for(rf"^serve: rebuilt .*{both}.* for config/extra\.mjs; ", since=mark)
    finally:
        mark = len(served.server.lines)
        config.write_text(original)
        served.server.wait_for(r"^serve: rebuilt ", since=mark)
        shutil.rmtree(extra.parent)


def test_the_changed_line_counts_the_paths_it_does_not_name(served: Served) -> None:
    """A branch switch touches dozens of files: the line names five and counts the rest."""
    src = served.root / "apps/payments/src"
    added = [src / f"more{index:02}.js" for index in range(12)]
    try:
        mark = len(served.server.lines)
        for path in added:
            path.write_text("export const more = 1;\n")
        first = r"apps/payments/src/more\d\d\.js"
        named = rf"^serve: rebuilt .* for ({first}, ){{4}}{first} and \d+ more; "
        line = served.server.wait_for(named, since=mark)
        more = re.search(r" and (\d+) more; ", served.server.lines[line])
        assert more and 5 + int(more.group(1)) <= len(added), served.server.lines[line]
    finally:
        mark = len(served.server.lines)
        for path in added:
            path.unlink()
        served.server.wait_for(r"^serve: rebuilt ", since=mark)


def test_a_dist_replaced_outside_serve_is_served_and_reloads_the_page(
    served: Served, page: Page, monorepo_built: Path, tmp_path: Path
) -> None:
    """`doit build` in another terminal swaps an app's dist/ (here: the build of another
    copy, swapped in the way a build does): the page must name the new files, and reload."""
    other = link_copy(monorepo_built, tmp_path / "other")
    source = other / "apps/payments/src/payments-app.js"
    source.write_text(source.read_text().replace(">Payments</h2>", ">Payments (outside)</h2>"))
    run_doit(other, "build:payments")
    dist = served.root / "apps/payments/dist"
    kept = shutil.copytree(dist, tmp_path / "kept")
    page.goto(served.url)
    page.locator("h2", has_text="Payments").wait_for(timeout=15_000)
    try:
        swap_into_place(shutil.copytree(other / "apps/payments/dist", tmp_path / "new"), dist)
        page.locator("h2", has_text="Payments (outside)").wait_for(timeout=15_000)
    finally:
        swap_into_place(kept, dist)
    page.locator("h2", has_text=re.compile(r"^Payments$")).wait_for(timeout=15_000)


def test_editor_temporary_files_rebuild_nothing(served: Served) -> None:
    """vim's swap file, emacs' auto-save and lock, backups, `sed -i`'s copy: made and
    removed as editors do."""
    src = served.root / "apps/payments/src"
    accounts = served.root / "apps/accounts/src/accounts-app.jsx"
    original = accounts.read_text()
    mark = len(served.server.lines)
    for name in (".payments-app.js.swp", "#payments-app.js#", "payments-app.js~", "sedAb12Cd"):
        (src / name).write_text("unsaved\n")
        (src / name).unlink()
    (src / ".#payments-app.js").symlink_to("dev@host.4242:1700000000")  # emacs' lock
    (src / ".#payments-app.js").unlink()
    # Then a real edit elsewhere: by the time it is built, the files above were seen.
    accounts.write_text(original.replace(">Accounts</h2>", ">Accounts (edited)</h2>"))
    try:
        end = served.server.wait_for(r"^serve: rebuilt accounts in ", since=mark)
        assert not [line for line in served.server.lines[mark:end] if "payments" in line]
    finally:
        mark = len(served.server.lines)
        accounts.write_text(original)
        served.server.wait_for(r"^serve: rebuilt accounts in ", since=mark)


def test_ctrl_c_stops_cleanly_and_frees_every_port(monorepo_built: Path, tmp_path: Path) -> None:
    """Ctrl-C is serve's normal end, yet it ends by SIGINT after stopping cleanly, as vite
    does: a script running `doit serve; echo next` stops there too."""
    root = link_copy(monorepo_built, tmp_path / "repo")
    shell_port, ports = use_free_ports(root)
    server = ServeProcess(root, then="echo next")
    try:
        server.wait_for(rf"^http://127\.0\.0\.1:{shell_port}/$")
    finally:
        code = server.stop()
    output = "\n".join(server.lines)
    assert code == CTRL_C_STOPPED and "next" not in server.lines, output
    assert "serve: stopped, bye" in output
    assert "Traceback" not in output
    assert all(port_is_free(port) for port in [shell_port, *ports.values()])


@pytest.mark.parametrize("when", ["starting", "after a lockfile save"])
def test_ctrl_c_during_npm_ci_says_only_that_the_install_was_interrupted(
    monorepo_built: Path, tmp_path: Path, when: str
) -> None:
    """Ctrl-C (SIGINT to the terminal's process group) while serve's `npm ci` runs: npm
    exits 1 saying "signal SIGINT"; serve told an install failure, UnmetDependency for
    every build and "rebuilt nothing" (~30 lines). One line says what it left instead."""
    root = link_copy(monorepo_built, tmp_path / "repo")
    shell_port, _ = use_free_ports(root)
    marker = root / "node_modules/esbuild/mfe-test-marker.txt"  # npm ci deletes it first
    installed = root / "node_modules/.package-lock.json"  # gone: npm ci is due
    if when == "starting":
        installed.unlink()
        marker.write_text("npm ci deletes node_modules first, this with it\n")
        server = ServeProcess(root, then="echo next")
    else:
        server = ServeProcess(root, then="echo next")
        server.wait_for(rf"^http://127\.0\.0\.1:{shell_port}/$")
        mark = len(server.lines)
        installed.unlink()
        marker.write_text("npm ci deletes node_modules first, this with it\n")
        lockfile = root / "package-lock.json"
        lockfile.write_bytes(lockfile.read_bytes())  # saved as it was: serve checks it
    try:
        # npm is under way (it deletes node_modules once it has started, its own SIGINT
        # handling set up): it exits 1 saying "signal SIGINT" (signalled as it starts, it
        # dies by SIGINT). It takes seconds to install here. Ctrl-C at once, while serve's
        # warm-up may still be building: no bundler may start in what npm left.
        wait_until(lambda: not marker.exists(), lambda: "\n".join(server.lines), 60)
    finally:
        code = server.stop()
    if when == "starting":  # as `doit build` starts: doit's line for each task
        mark = server.lines.index(".  install") + 1
    said = server.lines[mark:]
    assert code == CTRL_C_STOPPED and "next" not in said, "\n".join(server.lines)
    assert said == [
        "serve: install interrupted (Ctrl-C): node_modules is incomplete, so the next run "
        "installs again",
        "serve: stopped, bye",
    ], "\n".join(server.lines)


def test_an_install_failure_prints_npms_error_once(monorepo_built: Path, tmp_path: Path) -> None:
    """doit's report shows why `npm ci` failed; serve's line after it pointed there, yet
    printed it all again."""
    root = link_copy(monorepo_built, tmp_path / "repo")
    shell_port, _ = use_free_ports(root)
    server = ServeProcess(root)
    try:
        server.wait_for(rf"^http://127\.0\.0\.1:{shell_port}/$")
        mark = len(server.lines)
        package = root / "package.json"
        data = json.loads(package.read_text())
        data["dependencies"] = {**data.get("dependencies", {}), "left-pad": "^1.3.0"}
        package.write_text(json.dumps(data, indent=2) + "\n")  # not in the lockfile
        told = server.wait_for(r"^serve: install failed; ", since=mark)
        assert server.lines[told].endswith("(doit's report above)"), server.lines[told]
    finally:
        code = server.stop()
    said = server.lines[mark:]  # all of it: serve has stopped
    assert code == CTRL_C_STOPPED, "\n".join(server.lines)
    missing = [line for line in said if "Missing: left-pad@" in line]
    assert len(missing) == 1, "\n".join(said)
    assert not [line for line in said if "rebuilt" in line], "\n".join(said)


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
            root / "apps/accounts/src/#accounts-app.jsx#",
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


def test_a_symlinked_source_folder_is_watched_through_the_link(
    served: Served, payments_source: Path, tmp_path: Path
) -> None:
    """`ln -s /tmp/extlib src/lib` (inotify does not follow links): saving a file behind
    the link rebuilds the app, and so does pointing the link at another folder, whose
    later edits rebuild it too."""
    first, second = tmp_path / "extlib", tmp_path / "other"
    for folder in (first, second):
        folder.mkdir()
        (folder / "word.js").write_text(f"export const word = '{folder.name} v1';\n")
    link = payments_source.parent / "lib"
    original = payments_source.read_text()
    port = served.ports["payments"]

    def shows(text: str) -> None:
        wait_until(
            lambda: text in served_entry(served.shell_port, port),
            lambda: f"never served {text!r}\n" + "\n".join(served.server.lines),
        )

    link.symlink_to(first)
    try:
        payments_source.write_text(
            "import { word } from './lib/word.js';\nconsole.log(word);\n" + original
        )
        shows("extlib v1")
        (first / "word.js").write_text("export const word = 'extlib v2';\n")
        shows("extlib v2")
        temporary = link.with_name("lib.new")
        temporary.symlink_to(second)
        temporary.rename(link)  # `ln -sfn`: the link replaced at once
        shows("other v1")
        (second / "word.js").write_text("export const word = 'other v2';\n")
        shows("other v2")
    finally:
        mark = len(served.server.lines)
        payments_source.write_text(original)
        served.server.wait_for(r"serve: rebuilt payments in", since=mark)
        mark = len(served.server.lines)
        link.unlink()
        served.server.wait_for(r"serve: rebuilt payments in", since=mark)


def test_a_dot_folder_in_public_is_watched_and_rebuilds_its_app(served: Served) -> None:
    """`public/.well-known/` is copied into dist/ like the rest of public/: a save there
    rebuilds the app (it was skipped as a dot folder, so the old file stayed served)."""
    folder = served.root / "apps/mfe-parent/public/.well-known"
    served_file = served.root / "apps/mfe-parent/dist/.well-known/security.txt"
    try:
        mark = len(served.server.lines)
        folder.mkdir()
        served.server.wait_for(r"^serve: rebuilt ", since=mark)
        for text in ("Contact: mailto:a@example.com\n", "Contact: mailto:b@example.com\n"):
            mark = len(served.server.lines)
            (folder / "security.txt").write_text(text)
            served.server.wait_for(r"^serve: rebuilt mfe-parent in ", since=mark, timeout=30)
            assert served_file.read_text() == text
    finally:
        mark = len(served.server.lines)
        shutil.rmtree(folder)
        served.server.wait_for(r"^serve: rebuilt ", since=mark)
