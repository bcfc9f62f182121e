"""`python -m mfe.envs.moto_server -H 127.0.0.1 -p PORT`: moto's server without a request log.

moto's server (werkzeug) logs one line per request; a long-lived emulator serving a few
publishes a day would grow its log forever. Warnings, errors and tracebacks still go to
the log; `MFE_EMULATOR_REQUEST_LOG=1` keeps the request lines (for debugging).
"""

from __future__ import annotations

import logging
import os
import sys


def main() -> None:
    from moto.server import main as moto_main

    if os.environ.get("MFE_EMULATOR_REQUEST_LOG") != "1":
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    args = sys.argv[1:]
    port = args[args.index("-p") + 1] if "-p" in args else "5000"
    print(f"moto server on 127.0.0.1:{port}; request log off", flush=True)
    moto_main(args)


if __name__ == "__main__":
    main()
