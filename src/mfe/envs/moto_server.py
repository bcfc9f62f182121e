"""`python -m mfe.envs.moto_server -H 127.0.0.1 -p PORT`: moto's server without a request
log and without its per-request backend search.

- moto's server (werkzeug) logs one line per request; a long-lived emulator serving a few
  publishes a day would grow its log forever. Warnings, errors and tracebacks still go to
  the log; `MFE_EMULATOR_REQUEST_LOG=1` keeps the request lines (for debugging).
- For every request moto looks up which service a host name belongs to: it lists its own
  package folder (a `stat` per service, ~180) and tries every service's URL patterns, under
  one lock that all request threads share. The answer depends on the host name alone, so
  it is remembered per host; uploads of thousands of files were bound by that search
  (profiled: about a third of the server's time per PutObject).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any


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


def main() -> None:
    from moto.server import main as moto_main

    if os.environ.get("MFE_EMULATOR_REQUEST_LOG") != "1":
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    remember_backends()
    args = sys.argv[1:]
    port = args[args.index("-p") + 1] if "-p" in args else "5000"
    print(f"moto server on 127.0.0.1:{port}; request log off", flush=True)
    moto_main(args)


if __name__ == "__main__":
    main()
