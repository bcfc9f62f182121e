"""The dev HTTP servers: the shell page on the shell port (at deep links too, as deployed:
`navigation`), each app's `dist/` on its port.

Stdlib `ThreadingHTTPServer` (one thread per request, so an open event stream never
blocks a file). App files are sent byte for byte (the shell's SRI hashes must match)
with `Cache-Control: no-store` (`immutable` for fingerprinted names), and CORS for the
shell's origin only (it loads them as `crossorigin="anonymous"` modules), on every answer
of an app's port, 404s included; every port checks `Host` first (see `origins`).
Requests wait while a build swaps `dist/`.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from mfe.build.manifest import content_type, immutable_on_disk
from mfe.errors import MfeError
from mfe.serve.navigation import PAGE, page_for
from mfe.serve.origins import Origins
from mfe.serve.reload import EVENTS_PATH, RELOAD_JS, SCRIPT_PATH, Broker, inject

HOST = "127.0.0.1"
NO_STORE = "no-store"
IMMUTABLE = "public, max-age=31536000, immutable"
NO_PAGE = (
    '<!doctype html>\n<html><head><meta charset="utf-8"><title>doit serve</title></head>\n'
    "<body><p>No page yet: it is rendered once every app has built.</p></body></html>\n"
)
"""What the shell port answers before the page was ever rendered (an app never built)."""
NO_PREVIEWS = (
    "not found: doit serve has no preview pages (`doit publish preview=NAME` publishes one)"
)
PING_PATH = "/_mfe/ping"
"""Answered on every port at once, even during a build: how `start` checks a server."""
WHO_PATH = "/_mfe/serve"
"""Answered likewise: which serve this is (pid, checkout, shell URL), so a second serve
finding the port busy can say so (`running`)."""
HOLD_SECONDS = 30.0
"""The longest a page request waits for a build in flight before it gets the old files."""


class Gate:
    """Closed while a build runs, so no request sees a half-swapped `dist/` or shell page."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = False

    def close(self) -> None:
        with self._cond:
            self._busy = True

    def open(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()

    def wait(self, timeout: float = HOLD_SECONDS) -> None:
        with self._cond:
            self._cond.wait_for(lambda: not self._busy, timeout)


@dataclass(frozen=True)
class Site:
    """What one port serves: an app's `dist/`, or the shell page plus the reload endpoints."""

    label: str
    """The app name, or 'shell'."""
    port: int
    config_key: str
    """Where mfe.toml configures the port (`[apps.NAME] dev_port`), for the busy-port message."""
    root: Path | None = None
    """The folder served (app `dist/`); None for the shell site."""
    page: Path | None = None
    """The shell's `build/dev/index.html` (shell site only)."""
    option: str = ""
    """The command-line option the port came from (`--port`), which overrides mfe.toml."""


class DevServer(ThreadingHTTPServer):
    daemon_threads = True  # an open event stream must not keep the process alive

    def __init__(self, site: Site, gate: Gate, broker: Broker, origins: Origins) -> None:
        self.site, self.gate, self.broker, self.origins = site, gate, broker, origins
        self.visited: Callable[[], None] = lambda: None
        """Told each page load (shell site): serve then binds again a port found busy."""
        self.identity = b""
        """What `WHO_PATH` answers (JSON; none: 404)."""
        self.closed = threading.Event()
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__((HOST, site.port), Handler)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client gone mid-request (a reloading or closed tab cancels its module loads)
        is routine for a dev server: no traceback in the terminal. Anything else is one."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]

    def close(self) -> None:
        """Stop serving, close the port, and end the kept-alive connections: a request in
        flight still gets its answer, then its thread reads EOF (or a request it will not
        answer) and ends. A server that an edit of mfe.toml removed keeps no thread."""
        self.closed.set()
        self.shutdown()
        self.server_close()
        with self._open_lock:
            for request in self._open:
                with contextlib.suppress(OSError):
                    request.shutdown(socket.SHUT_RD)


class Handler(BaseHTTPRequestHandler):
    server: DevServer
    protocol_version = "HTTP/1.1"
    server_version = "mfe-serve"

    def parse_request(self) -> bool:
        """A closed server answers nothing more on a kept-alive connection: the client
        sees it closed, as any idle HTTP/1.1 connection may be, and opens a new one."""
        if self.server.closed.is_set():
            self.close_connection = True
            return False
        return bool(super().parse_request())

    def do_GET(self) -> None:
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the terminal shows builds, not every request."""

    def _respond(self, head: bool) -> None:
        site, origins = self.server.site, self.server.origins
        if not origins.host_allowed(self.headers.get("Host"), site.port):
            host = self.headers.get("Host", "")
            self._forbidden(
                f"Host {host!r} is not allowed; add it to [env.dev] allowed_hosts in mfe.toml"
            )
            return
        if urlsplit(self.path).path == PING_PATH:  # not held by a build: `start` asks it
            self._plain(HTTPStatus.OK, "ok")
            return
        if urlsplit(self.path).path == WHO_PATH and self.server.identity:
            self._send(self.server.identity, "application/json", head)
            return
        if site.page is not None:
            self._shell(site.page, head)
            return
        assert site.root is not None
        self.server.gate.wait()
        path = safe_path(site.root, self.path)
        if path is None:
            self._not_found()
            return
        if path.suffix == ".map" and not origins.may_read_source_map(
            self.headers.get("Origin"), self.headers.get("Sec-Fetch-Site")
        ):
            self._forbidden("source maps are served to the shell's origin only")
            return
        try:
            body = path.read_bytes()
        except OSError:
            self._not_found()
            return
        self._send(
            body, content_type(path.name), head, cache=IMMUTABLE if _immutable(path) else NO_STORE
        )

    def _shell(self, page: Path, head: bool) -> None:
        parts = urlsplit(self.path)
        if parts.path == EVENTS_PATH:
            self._events(parse_qs(parts.query).get("since", [""])[0], head)
        elif parts.path == SCRIPT_PATH:
            self._send(RELOAD_JS.encode("utf-8"), content_type("reload.js"), head)
        elif parts.path in ("/", PAGE) or self._navigation(parts.path) == PAGE:
            self.server.visited()
            self.server.gate.wait()
            # The version first: a build ending in between then makes the tab reload once
            # more, where a version read after the page could hide that the page is old.
            version = self.server.broker.version
            try:
                html = page.read_text(encoding="utf-8")
            except FileNotFoundError:  # never rendered: the overlay says why, then it reloads
                html = NO_PAGE
            except OSError:
                self._not_found()
                return
            body = inject(html, version).encode("utf-8")
            self._send(body, content_type("index.html"), head)
        elif self._navigation(parts.path):  # deployed, that preview's page: none here
            self._plain(HTTPStatus.NOT_FOUND, NO_PREVIEWS)
        else:
            self._not_found()

    def _navigation(self, path: str) -> str | None:
        """The page a navigation to `path` gets, as deployed (`navigation`); serve's own
        `/_mfe/` paths are never one."""
        if path.startswith("/_mfe/"):
            return None
        return page_for(path, self.headers.get("Accept"))

    def _events(self, since: str, head: bool) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if not head:  # HEAD: the headers, and the connection closes
            self.server.broker.stream(self.wfile, since, self.connection)

    def send_response(self, code: int, message: str | None = None) -> None:
        """Every answer of an app's port, 404s and errors too, carries its CORS headers:
        without them the browser reports a 404 (a tab asking for the module a rebuild
        replaced) as "blocked by CORS policy" instead of the 404 it is."""
        super().send_response(code, message)
        if self.server.site.root is None:
            return
        self.send_header("Vary", "Origin")
        headers = getattr(self, "headers", None)  # none: the request line did not parse
        cors = self.server.origins.cors_origin(headers.get("Origin") if headers else None)
        if cors:
            self.send_header("Access-Control-Allow-Origin", cors)

    def _send(self, body: bytes, ctype: str, head: bool, cache: str = NO_STORE) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _not_found(self) -> None:
        self._plain(HTTPStatus.NOT_FOUND, "not found")

    def _forbidden(self, why: str) -> None:
        self._plain(HTTPStatus.FORBIDDEN, f"forbidden: {why}")

    def _plain(self, status: HTTPStatus, line: str) -> None:
        """A one-line text answer (errors: nothing a page could use)."""
        body = (line + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _immutable(path: Path) -> bool:
    """A fingerprinted file (content hash in its name) never changes, so a reload after
    one app's rebuild takes every other app's modules from the browser cache. Source
    maps are left out: their name follows the script's, not their own content."""
    return path.suffix != ".map" and immutable_on_disk(path)


def safe_path(root: Path, raw: str) -> Path | None:
    """The file under `root` that a request path names, or None (traversal, dirs, dotfiles).

    Encoded separators and backslashes are refused before decoding; the decoded path must
    have only plain segments; the resolved file (after symlinks) must stay inside `root`.
    """
    path = urlsplit(raw).path
    lowered = path.lower()
    if "\\" in path or "%2f" in lowered or "%5c" in lowered or "%00" in lowered:
        return None
    try:
        segments = unquote(path, errors="strict").split("/")
    except UnicodeDecodeError:
        return None
    if segments[0] != "" or any(s in ("", ".", "..") or s.startswith(".") for s in segments[1:]):
        return None
    if any("\\" in s or "\0" in s for s in segments):
        return None
    try:
        base = root.resolve(strict=True)
        target = base.joinpath(*segments[1:]).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target


class PortBusy(MfeError):
    """A site's port is in use: the message says how to move it; `site` lets the caller
    find out who holds it (`running`)."""

    def __init__(self, site: Site) -> None:
        super().__init__(
            f"port {site.port} for {_what(site)} is already in use on {HOST}; "
            f"stop whatever listens there or {_move(site)}"
        )
        self.site = site


def bind(sites: list[Site], gate: Gate, broker: Broker, origins: Origins) -> list[DevServer]:
    """Bind every port first, so a busy one fails fast and leaves nothing listening."""
    servers: list[DevServer] = []
    try:
        for site in sites:
            try:
                servers.append(DevServer(site, gate, broker, origins))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                raise PortBusy(site) from None
    except BaseException:
        for server in servers:
            server.server_close()
        raise
    return servers


def _move(site: Site) -> str:
    """What moves the site to another port: the option it came from, else its mfe.toml key."""
    if site.option:
        return f"pick another {site.option}"
    return f"change {site.config_key} in mfe.toml"


def _what(site: Site) -> str:
    return "the shell page" if site.label == "shell" else f"app '{site.label}'"


def start(servers: list[DevServer]) -> Callable[[], None]:
    """Serve each in a thread, check each answers, and return the function that stops them."""
    threads = [
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        for s in servers
    ]
    for thread in threads:
        thread.start()

    def stop() -> None:
        for server in servers:
            server.close()
        for thread in threads:
            thread.join(timeout=2)

    try:
        for server in servers:
            _check_answers(server.site.port)
    except BaseException:
        stop()
        raise
    return stop


def _check_answers(port: int) -> None:
    connection = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        connection.request("HEAD", PING_PATH)
        connection.getresponse().read()
    except OSError as exc:
        raise MfeError(f"the dev server on {HOST}:{port} does not answer ({exc})") from None
    finally:
        connection.close()
