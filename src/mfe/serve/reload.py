"""Browser live reload: one Server-Sent Events stream per tab, an injected script, an overlay.

The page learns the build *version* it was served with; on connect the server compares
it with the current one, so a build that finished between page load and connect still
reloads the tab (MkDocs' epoch trick), and a restarted server reloads old tabs too.
"""

from __future__ import annotations

import html
import io
import json
import re
import secrets
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
      title.textContent = "Build failed: " + error.app;
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


class Broker:
    """Fans build outcomes out to every open event stream; new tabs get the current state.

    The state is the good-build count (the page *version*) and every current error: the
    overlay lists each app, the shell or the config whose last build failed.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._token = secrets.token_hex(4)
        self._builds = 0
        self._seq = 0
        self._errors: tuple[BuildError, ...] = ()
        self._closed = False

    @property
    def version(self) -> str:
        """What a page served now was built from: server token + good-build count."""
        with self._cond:
            return f"{self._token}.{self._builds}"

    @property
    def errors(self) -> tuple[BuildError, ...]:
        with self._cond:
            return self._errors

    def publish(self, errors: list[BuildError], reload: bool) -> None:
        """A rebuild's outcome: tabs reload if the served output changed, and show `errors`
        (the last good files stay served) or hide the overlay when there are none."""
        with self._cond:
            if not reload and tuple(errors) == self._errors:
                return
            self._builds += reload
            self._errors = tuple(errors)
            self._seq += 1
            self._cond.notify_all()

    def close(self) -> None:
        """Ends every stream so server threads exit promptly on shutdown."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def stream(self, out: io.BufferedIOBase, since: str) -> None:
        """Write SSE events to one client until it disconnects or the broker closes."""
        seen = -1
        while True:
            with self._cond:
                self._wait_change(seen)
                if self._closed:
                    return
                changed = self._seq != seen
                seen = self._seq
                current = f"{self._token}.{self._builds}"
                errors = [{"app": e.app, "text": e.text} for e in self._errors]
            if not changed:
                message = ": ping\n\n"
            elif current != since:
                message = _event("reload", {"version": current})
            elif errors:
                message = _event("build-error", {"errors": errors})
            else:
                message = _event("ok", {"version": current})
            try:
                out.write(message.encode("utf-8"))
                out.flush()
            except OSError:  # the tab went away
                return

    def _wait_change(self, seen: int) -> None:
        """Wait (lock held) for a new outcome, the close, or the keep-alive interval."""
        deadline = time.monotonic() + PING_SECONDS
        while not self._closed and self._seq == seen:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)


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
