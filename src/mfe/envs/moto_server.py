"""`python -m mfe.envs.moto_server -H 127.0.0.1 -p PORT`: moto's application served by
granian, without a request log and without moto's per-request backend search.

- The server: `moto.server` runs moto's WSGI application on werkzeug's development server
  (a Python thread per connection, HTTP parsed in Python, one line logged per request).
  granian (a Rust HTTP server for Python applications) parses HTTP outside the
  interpreter and runs moto on a small thread pool, so the emulator's time per request
  goes to moto itself: an upload of thousands of files was bound by werkzeug's serving
  (profiled: ~2.2 ms per PutObject, of which moto ~0.8 ms). One worker process holds the
  emulator's state; `doit local_stop` stops both (one process group). No request log unless
  `MFE_EMULATOR_REQUEST_LOG=1` (one line per request; the log's size cap bounds it).
- moto itself, changed where a week of use or a killed command would hurt or where it
  answers otherwise than AWS: its backend search, its memory, conditional writes racing
  each other, cut-off uploads, a browser's sign-out in another region
  (`mfe.envs.moto_patches`); token lifetimes, RevokeToken, the words of a token's refusal
  and app client updates (`mfe.envs.moto_cognito`); an anonymous HEAD judged by the
  bucket policy as a GET is (`mfe.envs.moto_s3`).
- One emulator per port: granian binds with SO_REUSEPORT, so a second server on a port
  already served would start too, and the kernel would split the connections between two
  emulators with different state (two checkouts starting theirs at once, say). A lock
  file per port makes the second one exit instead (exit code 3).
- The log (`--log PATH`): only the server that claimed the port writes it. It starts with
  its output appended to the file (so a second server that gives way adds its one line
  and takes nothing from the running server's log); once it holds the port it moves the
  previous run's log to `PATH.1` and sends all its output, and its worker's, through the
  log's size cap (`--log-max-bytes`, `mfe.envs.emulator_log`): a full log becomes
  `PATH.1`, so there are never more than two files, each under the cap, however long the
  emulator runs and whatever writes its output.
- Its identity: a start id, new for each server, sent as the `X-Mfe-Emulator` header of
  its `/moto-api/` answers. moto's `/moto-api/reset` keeps it; a restart changes it, so a
  record written against one emulator (a killed provisioning's marker) is told from one
  written against an earlier one on the same port.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from mfe.envs.emulator_log import DEFAULT_MAX_BYTES, BoundedLog, capture_output
from mfe.envs.moto_cognito import (
    honour_token_validity,
    replace_client_settings,
    revoke_token_action,
    word_token_refusals,
)
from mfe.envs.moto_patches import (
    atomic_object_writes,
    expire_cognito_tokens,
    keep_recent_invalidations,
    raw_uris,
    remember_backends,
    sign_out_in_any_region,
    track_live_models_only,
    whole_bodies,
)
from mfe.envs.moto_s3 import head_follows_get_object

THREADS = 8
"""Requests moto serves at once: a publish's upload workers, its smoke check, a second one."""


PORT_TAKEN = 3
"""Exit code when another emulator already serves the port."""


def lock_file(host: str, port: int, purpose: str) -> Path:
    """A lock file for an emulator port, the same for every checkout of this user (whose
    processes alone SO_REUSEPORT lets share a port)."""
    folder = Path(tempfile.gettempdir()) / f"mfe-emulators-{os.getuid()}"
    folder.mkdir(exist_ok=True)
    return folder / f"{host}-{port}.{purpose}.lock"


def claim_port(host: str, port: int) -> IO[str] | None:
    """The port's lock, held until this process ends (the kernel releases it then, however
    it ends), or None when another emulator holds it."""
    handle = lock_file(host, port, "serve").open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def own_log(path: Path) -> None:
    """Keep the previous run's log as `<path>.1`; this run's starts empty. Only the port's
    owner calls this: a server that gives way must not move the log of the one that serves."""
    if path.exists() and path.stat().st_size:
        path.replace(path.with_name(path.name + ".1"))
    path.write_bytes(b"")


START_VAR = "MFE_EMULATOR_START_ID"
"""The server's start id, for its worker (which answers the requests)."""
IDENTITY_HEADER = "X-Mfe-Emulator"


def identified(app: Any, start_id: str) -> Any:
    """`app` with `start_id` in the `IDENTITY_HEADER` of its `/moto-api/` answers."""

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("PATH_INFO", "")).startswith("/moto-api/"):
            return app(environ, start_response)  # type: ignore[no-any-return]

        def respond(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            return start_response(status, [*headers, (IDENTITY_HEADER, start_id)], *exc)

        return app(environ, respond)  # type: ignore[no-any-return]

    return serve


LOG_VAR = "MFE_EMULATOR_LOG"
"""The log's path, lock and cap, for the worker: it imports this module anew (the server
runs it as `__main__`), so it learns them from the environment it inherits."""


def bounded_log() -> BoundedLog | None:
    """The log named in `MFE_EMULATOR_LOG` (None: the server has no `--log`)."""
    value = os.environ.get(LOG_VAR)
    if not value:
        return None
    path, lock, limit = json.loads(value)
    return BoundedLog(Path(path), Path(lock), int(limit))


def application() -> Any:
    """moto's WSGI application (granian calls this in its worker process)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    log = bounded_log()
    if log is not None:
        capture_output(log)  # a pipe of the worker's own: it logs on if the server dies
    remember_backends()
    track_live_models_only()
    keep_recent_invalidations()
    expire_cognito_tokens()
    honour_token_validity()
    sign_out_in_any_region()
    revoke_token_action()
    word_token_refusals()
    replace_client_settings()
    atomic_object_writes()
    head_follows_get_object()
    served = raw_uris(whole_bodies(DomainDispatcherApplication(create_backend_app)))
    start_id = os.environ.get(START_VAR)
    return identified(served, start_id) if start_id else served


def main(argv: list[str] | None = None) -> None:
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("--log", type=Path, help="the log file, once this server serves")
    parser.add_argument(
        "--log-max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="the cap of each log file"
    )
    args = parser.parse_args(argv)
    claim = claim_port(args.host, args.port)
    if claim is None:
        print(
            f"another emulator already serves {args.host}:{args.port}; not starting a second "
            f"(pid {os.getpid()}, {time.strftime('%Y-%m-%d %H:%M:%S')})",
            flush=True,
        )
        sys.exit(PORT_TAKEN)
    os.environ.pop(LOG_VAR, None)
    os.environ[START_VAR] = uuid.uuid4().hex  # this server's, not one its starter inherited
    if args.log:
        own_log(args.log)
        lock = lock_file(args.host, args.port, "log")
        os.environ[LOG_VAR] = json.dumps([str(args.log), str(lock), args.log_max_bytes])
    log = bounded_log()
    if log is not None:
        capture_output(log)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # moto builds some URLs from it
    logged = os.environ.get("MFE_EMULATOR_REQUEST_LOG") == "1"
    state = "on" if logged else "off (MFE_EMULATOR_REQUEST_LOG=1 turns it on)"
    started = (
        f"moto server on {args.host}:{args.port} (granian, pid {os.getpid()}, started "
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}); request log {state}\n"
    )
    if log is not None:
        log.write([started.encode()])  # in the file before the server answers
    else:
        print(started, end="", flush=True)
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
    claim.close()


if __name__ == "__main__":
    main()
