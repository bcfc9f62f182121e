"""Browser live reload: one Server-Sent Events stream per tab, an injected script, an overlay.

The page learns the build *version* it was served with; on connect the server compares
it with the current one, so a build that finished between page load and connect still
reloads the tab (MkDocs' epoch trick), and a restarted server reloads old tabs too.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import re
import secrets
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

EVENTS_PATH = "/_mfe/events"
SCRIPT_PATH = "/_mfe/reload.js"
OVERLAY_ID = "mfe-error-overlay"
PING_SECONDS = 15.0

# Served as an external file so a strict CSP needs only `'self'` scripts, no inline code.
RELOAD_JS = """\
(() => {
  "use strict";
  const script = document.currentScript;
  const version = (script && script.dataset.version) || "";
  const OVERLAY = "__OVERLAY__";

  function hide() {
    const old = document.getElementById(OVERLAY);
    if (old) old.remove();
  }

  function show(errors) {
    hide();
    const box = document.createElement("div");
    box.id = OVERLAY;
    box.setAttribute("role", "alert");
    Object.assign(box.style, {
      position: "fixed", inset: "0", zIndex: "2147483647", overflow: "auto",
      padding: "24px", background: "rgba(24, 0, 0, 0.93)", color: "#fde8e8",
      font: "14px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace",
    });
    for (const error of errors) {
      const title = document.createElement("div");
      title.className = "mfe-error-title";
      title.textContent = error.title || "Build failed: " + error.app;
      Object.assign(title.style, { fontSize: "18px", fontWeight: "bold", margin: "12px 0" });
      const pre = document.createElement("pre");
      pre.className = "mfe-error-text";
      pre.textContent = error.text;  // textContent: the bundler's text is never parsed as HTML
      pre.style.whiteSpace = "pre-wrap";
      box.append(title, pre);
    }
    document.body.append(box);
  }

  const events = new EventSource("__EVENTS__?since=" + encodeURIComponent(version));
  events.addEventListener("reload", () => { events.close(); location.reload(); });
  events.addEventListener("build-error", (event) => {
    show(JSON.parse(event.data).errors);
  });
  events.addEventListener("ok", hide);
})();
""".replace("__OVERLAY__", OVERLAY_ID).replace("__EVENTS__", EVENTS_PATH)


@dataclass(frozen=True)
class BuildError:
    app: str
    """The app (or `mfe.toml`, `shell`, a new app) whose build failed."""
    text: str
    """The bundler's (or config/template) error text, shown verbatim."""
    shown: bool = field(default=False, compare=False)
    """Already printed in the terminal (by doit's reporter)."""
    title: str = ""
    """The overlay's heading when this is no failed build (default: "Build failed: app")."""


class Broker:
    """Fans build outcomes out to every open event stream; new tabs get the current state.

    The state is the good-build count (the page *version*) and every current error: the
    overlay lists each app, the shell or the config whose last build failed.
    Each stream waits on its client's socket as well as for news, so a tab that goes away
    (reloaded, closed, killed) ends its thread at once, not at the next write.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token = secrets.token_hex(4)
        self._builds = 0
        self._seq = 0
        self._errors: tuple[BuildError, ...] = ()
        self._closed = False
        self._wakers: set[socket.socket] = set()
        """One per open stream: a byte sent there wakes its thread (news, or the close)."""

    @property
    def version(self) -> str:
        """What a page served now was built from: server token + good-build count."""
        with self._lock:
            return f"{self._token}.{self._builds}"

    @property
    def errors(self) -> tuple[BuildError, ...]:
        with self._lock:
            return self._errors

    def publish(self, errors: list[BuildError], reload: bool) -> None:
        """A rebuild's outcome: tabs reload if the served output changed, and show `errors`
        (the last good files stay served) or hide the overlay when there are none."""
        with self._lock:
            if not reload and tuple(errors) == self._errors:
                return
            self._builds += reload
            self._errors = tuple(errors)
            self._seq += 1
            self._wake()

    def close(self) -> None:
        """Ends every stream so server threads exit promptly on shutdown."""
        with self._lock:
            self._closed = True
            self._wake()

    def stream(self, out: io.BufferedIOBase, since: str, client: socket.socket) -> None:
        """Write SSE events to one client until it disconnects or the broker closes."""
        wake, waker = socket.socketpair()
        wake.setblocking(False)
        waker.setblocking(False)
        with self._lock:
            self._wakers.add(waker)
        try:
            self._serve(out, since, client, wake)
        finally:
            with self._lock:
                self._wakers.discard(waker)
            wake.close()
            waker.close()

    def _serve(
        self, out: io.BufferedIOBase, since: str, client: socket.socket, wake: socket.socket
    ) -> None:
        seen, ping = -1, time.monotonic() + PING_SECONDS
        while True:
            with self._lock:
                if self._closed:
                    return
                seq, current = self._seq, f"{self._token}.{self._builds}"
                errors = [{"app": e.app, "text": e.text, "title": e.title} for e in self._errors]
            if seq == seen and time.monotonic() < ping:
                if _gone(client, wake, ping - time.monotonic()):
                    return
                continue
            if seq == seen:
                message = ": ping\n\n"
            elif current != since:
                message = _event("reload", {"version": current})
            elif errors:
                message = _event("build-error", {"errors": errors})
            else:
                message = _event("ok", {"version": current})
            seen, ping = seq, time.monotonic() + PING_SECONDS
            try:
                out.write(message.encode("utf-8"))
                out.flush()
            except OSError:  # the tab went away
                return

    def _wake(self) -> None:
        """(Lock held.) Wake every stream; a full buffer already holds a wake-up."""
        for waker in self._wakers:
            with contextlib.suppress(OSError):
                waker.send(b"\0")


def _gone(client: socket.socket, wake: socket.socket, timeout: float) -> bool:
    """Wait up to `timeout` for news (`wake`) or the client; True: the client went away.

    An event stream's client sends nothing after its request, so anything readable on
    its socket is the end (EOF or a reset); stray bytes are read and dropped."""
    readable, _, _ = select.select([client, wake], [], [], max(timeout, 0))
    with contextlib.suppress(BlockingIOError):
        while wake in readable and wake.recv(4096):
            pass
    if client not in readable:
        return False
    try:
        return not client.recv(4096, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


_CSP_META = re.compile(
    r"""(<meta\s+http-equiv=["']Content-Security-Policy["']\s+content=")([^"]*)(")""",
    re.IGNORECASE,
)
_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)


def inject(page: str, version: str) -> str:
    """Add the reload script to the shell HTML (never to app files: SRI must still match)."""
    tag = f'<script src="{SCRIPT_PATH}" data-version="{html.escape(version)}" defer></script>\n'
    page = _CSP_META.sub(lambda m: m.group(1) + _allow_self(m.group(2)) + m.group(3), page, 1)
    match = _HEAD_END.search(page)
    if match is None:
        return page + tag
    return page[: match.start()] + tag + page[match.start() :]


def _allow_self(escaped: str) -> str:
    """Dev only: make sure `script-src`/`connect-src` admit the shell's own origin."""
    directives = []
    for part in html.unescape(escaped).split(";"):
        words = part.split()
        if words and words[0] in ("script-src", "connect-src") and "'self'" not in words:
            words.insert(1, "'self'")
        directives.append(" ".join(words))
    return html.escape("; ".join(d for d in directives if d), quote=True)
