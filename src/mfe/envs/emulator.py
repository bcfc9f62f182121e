"""The embedded AWS emulator: a moto server on 127.0.0.1, started on demand and reused.

It runs detached (its own session) so it outlives the doit command that started it and
later commands — from this checkout or another one using the same port — reuse it.
Each environment of kind `local` has its own: the port of its `[env.NAME]` table, pid (with
that port, and those started for earlier ports while they run) and log in `.mfe/NAME/` (the
previous run's log as `emulator.log.1`); `stop_emulator` ends only the process recorded
there for the configured port.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Literal

from mfe.config import CONFIG_FILE, Environment, Project
from mfe.envs.emulator_log import max_bytes
from mfe.envs.emulator_owner import adopted, not_ours
from mfe.envs.emulator_process import (
    SERVER_MODULE,
    Record,
    alive,
    group,
    read_records,
    serving,
    terminate,
    write_record,
)
from mfe.envs.moto_server import IDENTITY_HEADER, lock_file
from mfe.errors import MfeError

PID_FILE = "emulator.pid"
LOG_FILE = "emulator.log"
START_TIMEOUT = 30.0
PROBE_PATH = "/moto-api/config"
"""moto's user-config endpoint: a few hundred bytes whatever the emulator holds (not
`/moto-api/data.json`, which dumps every model: 48 MB and 7.6 s after 30,000 objects)."""
STATE_LOST = (
    "the emulator keeps its state in memory: its buckets, files, distributions, user pool "
    "and users are gone; the next `doit publish` provisions and uploads everything again"
)

PortState = Literal["moto", "free", "other"]


def _paths(project: Project, env: Environment) -> tuple[Path, Path]:
    state = project.state_dir(env.name)
    return state / PID_FILE, state / LOG_FILE


def _port(env: Environment) -> int:
    assert env.port is not None, "config gives a local environment a default port"
    return env.port


PROBE_TIMEOUT = 10.0
"""A busy emulator answers late: its threads may all be serving (a CI job's cache lookups
took over a second each on a loaded 2-core runner). Nothing listening is refused at once."""


def probe(port: int, timeout: float = PROBE_TIMEOUT) -> PortState:
    """What answers on 127.0.0.1:`port`: moto, nothing, or something else.

    Plain `http.client`: httpx would build an SSL context (~0.1 s) for a loopback GET
    that every publish makes.
    """
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", PROBE_PATH)
        response = connection.getresponse()
        body = response.read(4096)
    except ConnectionRefusedError:
        return "free"
    except (OSError, http.client.HTTPException):
        return "other"
    finally:
        connection.close()
    try:
        config = json.loads(body) if response.status in (200, 201) else None
    except ValueError:
        config = None
    looks_like_moto = isinstance(config, dict) and {"batch", "lambda"} <= config.keys()
    return "moto" if looks_like_moto else "other"


def identity(port: int) -> str | None:
    """The start id of the emulator answering on `port`: a new one for each server (None:
    none answers, or one an older mfe started, which sends none)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT)
    try:
        connection.request("GET", PROBE_PATH)
        response = connection.getresponse()
        response.read()
        return response.getheader(IDENTITY_HEADER)
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def _log_tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


def port_taken(env: Environment, port: int) -> MfeError:
    return MfeError(
        f"port {port} on 127.0.0.1 is taken by something that is not the moto emulator; "
        f"stop that program or set another port under [env.{env.name}] port = ... in "
        f"{CONFIG_FILE}"
    )


def ensure_emulator(project: Project, env: Environment) -> str:
    """Start `env`'s emulator unless one already answers on its port; return its URL."""
    start_emulator(project, env)
    return f"http://127.0.0.1:{_port(env)}"


def start_emulator(project: Project, env: Environment, hold: ExitStack | None = None) -> bool:
    """Start `env`'s emulator unless one already answers on its port; whether this call
    started it (a new one holds nothing: provisioning says so plainly).

    `hold`: when this call starts the server, the port's `provision` lock is taken into it
    before the server answers, so this command provisions the new emulator before any
    other command sees it answer (they then find it provisioned, not lost)."""
    port = _port(env)
    endpoint = f"http://127.0.0.1:{port}"
    if probe(port) == "moto":
        return False
    pid_file, log = _paths(project, env)
    # Two commands at once, of this checkout or of another on the same port, start one server.
    with port_locked(port, "start"):
        records = read_records(pid_file)
        mine = _for_port(records, port)
        pid = mine.pid if mine and alive(mine.pid, port) else None
        elsewhere = _elsewhere(records, port)
        if pid is None:
            if mine is not None:
                # what a killed server left, not answering: its worker holds the port's lock
                terminate(mine.pid, port)
            _keep(pid_file, elsewhere)  # stale: the recorded server is gone
        state = probe(port)
        if state == "moto":
            return False
        if state == "other":
            raise port_taken(env, port)
        started = pid is None
        if pid is None:
            for record in elsewhere:
                print(_left_running(record, pid_file, env), file=sys.stderr, flush=True)
            if hold is not None:
                hold.enter_context(port_locked(port, "provision"))
            pid = _spawn(port, pid_file, log, elsewhere)
        _wait_until_up(project, env, pid, pid_file, log)
    if started:
        print(
            f"started the local AWS emulator (moto, pid {pid}) on {endpoint}; log: {log}; "
            "it runs in the background until `doit local_stop`",
            file=sys.stderr,
            flush=True,
        )
    return started


def _for_port(records: list[Record], port: int) -> Record | None:
    """The record of the server started for `port` (the newest such), if any."""
    return next((record for record in records if record.for_port(port)), None)


def _elsewhere(records: list[Record], port: int) -> list[Record]:
    """The recorded emulators that run on a port other than `port` (the config's port
    changed, or the file was copied from another checkout): not this port's server, and
    kept in the record for when the port is changed back."""
    return [
        record
        for record in records
        if record.port is not None and record.port != port and group(record.pid, record.port)
    ]


def _keep(pid_file: Path, records: list[Record]) -> None:
    """Rewrite the pid file with `records` only (none: remove it)."""
    if not records:
        pid_file.unlink(missing_ok=True)
        return
    newest, *earlier = records
    assert newest.port is not None, "only servers on another port are kept"
    write_record(pid_file, newest.pid, newest.port, earlier)


def _left_running(record: Record, pid_file: Path, env: Environment) -> str:
    return (
        f"note: the emulator recorded in {pid_file}, on port {record.port} (pid {record.pid}) "
        f"still runs; it is not the one of [env.{env.name}] port = {env.port} and other "
        f"checkouts may use it, so it is left running (stop it with `kill -- -{record.pid}`, "
        "its process group, when nothing does)"
    )


@contextmanager
def port_locked(port: int, purpose: str) -> Iterator[None]:
    """Held by one command at a time per emulator port and `purpose`, among every checkout
    of this user: `start` (one server per port), `provision` (see mfe.envs.local)."""
    with lock_file("127.0.0.1", port, purpose).open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _spawn(port: int, pid_file: Path, log: Path, earlier: Sequence[Record] = ()) -> int:
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    # Appended to: until it holds the port, the server must not take the log of one that
    # serves (it gives way with one line); then it starts its own (`moto_server.own_log`).
    command = [sys.executable, "-m", SERVER_MODULE, "-H", "127.0.0.1", "-p", str(port)]
    log_args = ["--log", str(log), "--log-max-bytes", str(max_bytes(os.environ))]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*command, *log_args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # survives the doit command (and its Ctrl-C)
        )
    write_record(pid_file, proc.pid, port, earlier)
    return proc.pid


def _wait_until_up(project: Project, env: Environment, pid: int, pid_file: Path, log: Path) -> None:
    port = _port(env)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        state = probe(port)
        if state == "moto":
            return
        if state == "other":
            raise port_taken(env, port)
        if not alive(pid, port):
            terminate(pid, port)  # never leave a server behind that the next command can't see
            pid_file.unlink(missing_ok=True)
            raise MfeError(
                f"the moto emulator exited before answering on port {port}; "
                f"its log ({log}) ends with:\n{_log_tail(log)}"
            )
        if time.monotonic() > deadline:
            terminate(pid, port)
            pid_file.unlink(missing_ok=True)
            raise MfeError(
                f"the moto emulator did not answer on port {port} within {START_TIMEOUT:.0f} s; "
                f"its log ({log}) ends with:\n{_log_tail(log)}"
            )
        time.sleep(0.1)


def started_here(project: Project, env: Environment) -> bool:
    """Whether `env`'s `local_stop` stops the emulator on its port: its pid file records
    it, or the server's log names a starter it stands in for (`emulator_owner.adopted`)."""
    port = _port(env)
    mine = _for_port(read_records(_paths(project, env)[0]), port)
    if mine is not None and group(mine.pid, port):
        return True
    return adopted(project, env, serving(port)) is not None


def stop_emulator(project: Project, env: Environment) -> str:
    """Stop `env`'s emulator if this checkout started it; return what happened, in one line.

    Under the port's `start` lock, as `ensure_emulator` starts one: a stop never reads a
    pid file a start is replacing, nor stops (or forgets) a server a start has just made
    and is waiting for. A command that found the emulator up before the stop loses it
    anyway; its next request fails (`LocalBackend` names the endpoint and says to run the
    command again)."""
    port = _port(env)
    with port_locked(port, "start"):
        return _stop(project, env, port)


def _stop(project: Project, env: Environment, port: int) -> str:
    pid_file, _ = _paths(project, env)
    records = read_records(pid_file)
    mine = _for_port(records, port)
    elsewhere = _elsewhere(records, port)
    if mine is not None and group(mine.pid, port):
        if not terminate(mine.pid, port):
            raise MfeError(
                f"could not stop the local AWS emulator (pid {mine.pid}, port {port}): "
                f"processes {group(mine.pid, port)} of its group outlived SIGKILL; "
                f"look at them with `ps -o pid,stat,args -g {mine.pid}`"
            )
        said = f"stopped the local AWS emulator (pid {mine.pid}, port {port}); {STATE_LOST}"
    elif probe(port) == "moto":
        said = _stop_found(project, env, port)
    else:
        said = f"no local AWS emulator was running (port {port})"
    _keep(pid_file, elsewhere)
    for record in elsewhere:
        said += (
            f"; {pid_file} also records the emulator on port {record.port} (pid "
            f"{record.pid}), not this port's: left running, as other checkouts may use it "
            f"(stop it with `kill -- -{record.pid}`, its process group, when nothing does)"
        )
    return said


def _stop_found(project: Project, env: Environment, port: int) -> str:
    """Stop the emulator serving `port` that no pid file of `env` records, if the server's
    log names a starter `env` stands in for; else say whose it is and how to stop it."""
    server = serving(port)
    why = adopted(project, env, server)
    if server is None or why is None:
        return not_ours(project, env, port, server)
    if not terminate(server.pgid, port):
        raise MfeError(
            f"could not stop the local AWS emulator (process group {server.pgid}, port {port}): "
            f"processes {group(server.pgid, port)} outlived SIGKILL; look at them with "
            f"`ps -o pid,stat,args -g {server.pgid}`"
        )
    return f"stopped the local AWS emulator (pid {server.pgid}, port {port}; {why}); {STATE_LOST}"
