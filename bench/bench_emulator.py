"""The emulator probe as the emulator fills up (issue 15).

Every command asks "is the port held by moto?" once. The probe used to be
`GET /moto-api/data.json`, which dumps the whole emulator state (7.6 s and 48 MB after
30,000 objects) and timed out after a few publishes; now it is `GET /moto-api/config`,
whose answer does not depend on what the emulator holds. Cases: the probe at 1,000 and at
30,000 objects on one emulator, each next to the old probe as the anchor.
Target: the probe at 30,000 objects within 2x of (or 5 ms above) its time at 1,000.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from run import Case, Context

from mfe.envs.emulator import SERVER_MODULE, probe

from fixtures.aws import DUMMY_AWS_ENV, fill_bucket, free_port

SIZES = (1_000, 30_000)


def _old_probe(port: int) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", "/moto-api/data.json")
        body = connection.getresponse().read()
    finally:
        connection.close()
    return {"bytes": len(body)}


def _probe(port: int) -> dict[str, Any]:
    if probe(port) != "moto":
        raise RuntimeError(f"port {port} does not answer as moto")
    return {}


def cases(ctx: Context) -> Iterator[Case]:
    port = free_port()
    log = (ctx.tmp / "moto.log").open("wb")
    ctx.stack.callback(log.close)
    server = subprocess.Popen(
        [sys.executable, "-m", SERVER_MODULE, "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **DUMMY_AWS_ENV},
    )
    ctx.stack.callback(server.wait)
    ctx.stack.callback(server.terminate)
    while probe(port) != "moto":
        if server.poll() is not None:
            raise RuntimeError("the moto server exited")
        time.sleep(0.1)
    endpoint = f"http://127.0.0.1:{port}"
    filled = 0
    times: dict[int, float] = {}
    for size in SIZES:
        fill_bucket(endpoint, "filler", size - filled, start=filled)
        filled = size

        def check(row: dict[str, Any], size: int = size) -> bool:
            times[size] = row["median"]
            first = times[SIZES[0]]
            return row["median"] <= max(2 * first, first + 0.005)

        yield Case(
            name=f"emulator probe, {size:,} objects",
            run=lambda: _probe(port),
            anchors={"old probe (/moto-api/data.json)": lambda: _old_probe(port)},
            repeat=5,
            target="flat: at 30k within 2x (or +5 ms) of 1k",
            check=check,
        )
