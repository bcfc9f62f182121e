"""`python -m mfe.envs.moto_server -H 127.0.0.1 -p PORT`: moto's application served by
granian, without a request log and without moto's per-request backend search.

- The server: `moto.server` runs moto's WSGI application on werkzeug's development server
  (a Python thread per connection, HTTP parsed in Python, one line logged per request).
  granian (a Rust HTTP server for Python applications) parses HTTP outside the
  interpreter and runs moto on a small thread pool, so the emulator's time per request
  goes to moto itself: an upload of thousands of files was bound by werkzeug's serving
  (profiled: ~2.2 ms per PutObject, of which moto ~0.8 ms). One worker process holds the
  emulator's state; it stops with this process (`doit local_stop`). No request log unless
  `MFE_EMULATOR_REQUEST_LOG=1` (a long-lived emulator's log must not grow per request).
- The backend search: for every request moto looks up which service a host name belongs
  to by listing its own package folder (a `stat` per service, ~180) and trying every
  service's URL patterns, under one lock all requests share. The answer depends on the
  host name alone, so it is remembered.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

THREADS = 8
"""Requests moto serves at once: a publish's upload workers, its smoke check, a second one."""


def remember_backends() -> None:
    """Memoize `DomainDispatcherApplication.get_backend_for_host` (a pure function of the
    host name, given moto's fixed URL patterns)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    search = DomainDispatcherApplication.get_backend_for_host
    found: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host not in found:
            found[host] = search(self, host)
        return found[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


def application() -> Any:
    """moto's WSGI application (granian calls this in its worker process)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    remember_backends()
    return DomainDispatcherApplication(create_backend_app)


def main(argv: list[str] | None = None) -> None:
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # moto builds some URLs from it
    logged = os.environ.get("MFE_EMULATOR_REQUEST_LOG") == "1"
    state = "on" if logged else "off (MFE_EMULATOR_REQUEST_LOG=1 turns it on)"
    print(f"moto server on {args.host}:{args.port} (granian); request log {state}", flush=True)
    Granian(
        "mfe.envs.moto_server:application",
        factory=True,
        address=args.host,
        port=args.port,
        interface=Interfaces.WSGI,
        workers=1,  # the emulator's state lives in one process
        blocking_threads=THREADS,
        websockets=False,
        log_level=LogLevels.warning,
        log_access=logged,
    ).serve()


if __name__ == "__main__":
    main()
