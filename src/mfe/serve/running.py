"""Which `doit serve` holds serve's ports: this checkout's, another checkout's, or none.

A serve records itself (pid, shell URL, ports) in `.mfe/serve.json` while it runs, and
every port it serves says who it is at `WHO_PATH`. A second serve of the same checkout
would only race the first over `dist/` and doit's state: it is refused, pointing at the
first one's URL. A serve of another checkout (another clone) holding the ports is named,
with the settings that give a second checkout ports of its own. A record is believed only
while its pid runs and its shell port answers as that pid: one left by a killed serve, or
copied with the folder, is stale (its pid is no longer the one answering).
"""

from __future__ import annotations

import http.client
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from mfe.config import STATE_DIR
from mfe.errors import MfeError
from mfe.files import write_atomic
from mfe.serve.server import HOST, WHO_PATH, PortBusy, Site

RECORD = Path(STATE_DIR) / "serve.json"
ASK_SECONDS = 3.0
"""How long a busy port may take to say who holds it (it answers from its own thread)."""


@dataclass(frozen=True)
class Serve:
    """A running `doit serve`, as its record and its ports tell it."""

    pid: int
    root: str
    """The checkout it serves, resolved."""
    url: str
    """Its shell page."""

    def identity(self) -> bytes:
        """What its ports answer at `WHO_PATH`."""
        return json.dumps(asdict(self)).encode("utf-8")


def this_serve(root: Path, shell_port: int) -> Serve:
    return Serve(os.getpid(), str(root.resolve()), f"http://{HOST}:{shell_port}/")


def record(root: Path, serve: Serve, ports: dict[str, int]) -> None:
    """Write (or rewrite, after apps moved) the record of `serve` and the ports it serves."""
    write_atomic(root / RECORD, json.dumps({**asdict(serve), "ports": ports}) + "\n")


def forget(root: Path, serve: Serve) -> None:
    """Remove the record on the way out, if it is still `serve`'s."""
    if _read(root / RECORD) == serve:
        (root / RECORD).unlink(missing_ok=True)


def refuse_second(root: Path) -> None:
    """MfeError when a serve of this checkout runs: its record names a shell port that
    answers as the same pid, for the same checkout."""
    recorded = _read(root / RECORD)
    if recorded is None or recorded.root != str(root.resolve()):
        return  # none, or copied with the folder from another checkout
    port = _port(recorded.url)
    if port is not None and ask(port) == recorded:
        raise _already(recorded)


def explain(busy: PortBusy, root: Path, sites: list[Site]) -> MfeError:
    """What to tell for a busy port of `sites`: who holds it, when a serve does."""
    holder = ask(busy.site.port)
    if holder is None or holder.pid == os.getpid():  # this serve: mfe.toml's own clash
        return busy
    if holder.root == str(root.resolve()):
        return _already(holder)
    held = [site for site in sites if site is busy.site or ask(site.port) == holder]
    ports = ", ".join(str(site.port) for site in held)
    return MfeError(
        f"port{'s' if len(held) > 1 else ''} {ports} of this checkout "
        f"{'are' if len(held) > 1 else 'is'} served by the doit serve of {holder.root} at "
        f"{holder.url} (pid {holder.pid}); a second checkout needs ports of its own: "
        f"{_moves(held)}"
    )


def ask(port: int) -> Serve | None:
    """The serve answering on `port`, or None (nothing, something else, an older serve)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=ASK_SECONDS)
    try:
        connection.request("GET", WHO_PATH)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            return None
        data = json.loads(body)
        return Serve(int(data["pid"]), str(data["root"]), str(data["url"]))
    except (OSError, http.client.HTTPException, ValueError, TypeError, KeyError):
        return None
    finally:
        connection.close()


def _already(serve: Serve) -> MfeError:
    return MfeError(
        f"doit serve already serves this checkout at {serve.url} (pid {serve.pid}): "
        "open that, or stop it (Ctrl-C in its terminal) first"
    )


def _moves(held: list[Site]) -> str:
    """The settings that move `held` off the other serve's ports; `--port` is named only
    when the shell's port is one of them, as it moves the shell alone."""
    keys = [site.config_key for site in held if site.page is None]
    shell = [site for site in held if site.page is not None]
    if shell and shell[0].option:
        return "pick another --port" + (f" and change {_and(keys)} in mfe.toml" if keys else "")
    if shell:
        keys.insert(0, f"{shell[0].config_key} (or pass --port)")
    return f"change {_and(keys)} in mfe.toml"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _read(path: Path) -> Serve | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Serve(int(data["pid"]), str(data["root"]), str(data["url"]))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _port(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:
        return None
