"""`install` never runs `npm ci` while another npm writes node_modules in the monorepo, and
two installs at once (`doit serve` and `doit build` in another terminal) run one `npm ci`.

Real npm throughout: the other npm is a real `npm install` of a local `file:` package
(offline), paused with SIGSTOP once npm has loaded, so the check always starts while it
works; the second install is a real `doit install`, held at a gate before its `npm ci`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from mfe.build.install import STOPPING, wait_for_npm, writes_node_modules
from mfe.build.installed import mismatch
from mfe.config import load_project

from fixtures.repo import relicense_keeping_mtime

NPM_INSTALL = ["npm", "install", "--offline", "--no-audit", "--no-fund", "--loglevel=error"]
WAITING = re.compile(
    r"waiting for npm \(pid (\d+)\) in (\S+) to finish before checking node_modules"
)
DEADLINE = 120.0
MARKER = Path("node_modules/esbuild/mfe-test-marker.txt")
"""A file npm never writes: `npm ci` deletes node_modules, this with it. (A reinstalled
file's inode number is no sign: the file system may give the new file the freed one.)"""


class Doit:
    """`doit ARGS` in its own process group (a terminal's Ctrl-C goes to the group), its
    output lines collected as they come."""

    def __init__(self, root: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "doit", *args],
            cwd=root,
            env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true", **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def said(self, pattern: str | re.Pattern[str]) -> re.Match[str] | None:
        return next((m for line in self.lines if (m := re.search(pattern, line))), None)

    def wait_for(
        self, pattern: str | re.Pattern[str], unless: Callable[[], bool] = lambda: False
    ) -> re.Match[str] | None:
        """Until doit says `pattern`, ends, or `unless()`: what it said, if it did."""
        until(lambda: self.said(pattern) or self.proc.poll() is not None or unless(), "hung")
        return self.said(pattern)

    def finish(self) -> str:
        self.proc.wait(DEADLINE)
        self.reader.join(DEADLINE)
        return "\n".join(self.lines)


def until(condition: Callable[[], object], what: str) -> None:
    """Until `condition()` holds (the test observing, never the code under test waiting)."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


@contextmanager
def paused_npm_install(root: Path) -> Iterator[psutil.Process]:
    """A real `npm install` in `root`, stopped (SIGSTOP) once npm has loaded and retitled
    itself, before it writes anything; continued when the block ends. In a session of its
    own, as from another terminal, so nothing that befalls the test run's process group
    reaches it (the kernel hangs up a stopped process whose group becomes orphaned)."""
    proc = subprocess.Popen(
        NPM_INSTALL,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    npm = psutil.Process(proc.pid)
    try:
        until(lambda: "".join(npm.cmdline()).startswith("npm install"), "npm never loaded")
        npm.suspend()
        yield npm
    finally:
        npm.resume()
        output, _ = proc.communicate(timeout=DEADLINE)
        assert proc.returncode == 0, output.decode()


def declare_tiny(root: Path, wanted: bool) -> None:
    """The root package.json declares (or no longer declares) the local package `tiny`, as
    a developer edits it before running `npm install`: `install` is due until npm ran."""
    package = json.loads((root / "package.json").read_text())
    if wanted:
        package["dependencies"] = {"tiny": "file:./tiny"}
    else:
        package.pop("dependencies", None)
    (root / "package.json").write_text(json.dumps(package, indent=2) + "\n")


GATE = """#!/bin/sh
# npm, logging each command; `npm ci` waits at a gate the test opens (up to 2 minutes, so
# a test that failed before opening it leaves nothing running).
echo "$*" >> "$MFE_TEST_GATE/calls"
if [ "$1" = ci ]; then
  touch "$MFE_TEST_GATE/arrived.$$"
  waited=0
  while [ ! -e "$MFE_TEST_GATE/go" ] && [ "$waited" -lt 12000 ]; do
    sleep 0.01; waited=$((waited + 1))
  done
fi
exec "$MFE_TEST_NPM" "$@"
"""


@dataclass
class Gate:
    """`npm` on doit's PATH, logging each command; `npm ci` waits until `open()`."""

    folder: Path
    env: dict[str, str]

    def calls(self) -> list[str]:
        log = self.folder / "calls"
        return log.read_text().splitlines() if log.exists() else []

    def arrived(self) -> int:
        return len(list(self.folder.glob("arrived.*")))

    def open(self) -> None:
        (self.folder / "go").touch()

    def reset(self) -> None:
        for made in self.folder.glob("[acg]*"):
            made.unlink()


@pytest.fixture
def gate(tmp_path: Path) -> Gate:
    folder = tmp_path / "gate"
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "npm").write_text(GATE)
    (folder / "bin" / "npm").chmod(0o755)
    env = {
        "PATH": f"{folder / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "MFE_TEST_GATE": str(folder),
        "MFE_TEST_NPM": shutil.which("npm") or "npm",
    }
    return Gate(folder, env)


def test_install_waits_for_an_npm_install_in_another_terminal(monorepo: Path, gate: Gate) -> None:
    """`npm install` (adding, then removing a package) runs while `doit install` checks:
    doit says it waits for that npm, runs no `npm ci` beside it (which would delete
    node_modules under it), and finds node_modules matching once npm is done."""
    (monorepo / "tiny").mkdir()
    (monorepo / "tiny" / "package.json").write_text('{"name": "tiny", "version": "1.0.0"}\n')
    gate.open()  # doit's npm ci, if it ran one, is not held: only logged
    marker = monorepo / MARKER
    for round, wanted in enumerate([True, False, True, False]):
        declare_tiny(monorepo, wanted)
        marker.write_text("npm ci would delete this\n")
        with paused_npm_install(monorepo) as npm:
            doit = Doit(monorepo, "install", env=gate.env)
            match = doit.wait_for(WAITING)
            state = npm.status() if npm.is_running() else "gone"
            assert match is not None, f"round {round}: no wait (npm {state}):\n" + doit.finish()
            assert match.groups() == (str(npm.pid), str(monorepo))
            assert doit.proc.poll() is None and gate.calls() == []
        output = doit.finish()
        assert doit.proc.returncode == 0, output
        assert "matches package-lock.json now: no npm ci" in output, output
        assert gate.calls() == [] and marker.is_file(), f"round {round}: {output}"
        assert mismatch(load_project(monorepo)) is None
        assert (monorepo / "node_modules" / "tiny").exists() == wanted


def test_ctrl_c_stops_the_wait_for_another_npm_at_once(monorepo: Path) -> None:
    """Ctrl-C while waiting: doit ends by SIGINT with one line, no traceback; serve's first
    Ctrl-C (which lets a build finish) ends the wait too. The other npm carries on."""
    (monorepo / "tiny").mkdir()
    (monorepo / "tiny" / "package.json").write_text('{"name": "tiny", "version": "1.0.0"}\n')
    declare_tiny(monorepo, True)
    with paused_npm_install(monorepo):
        doit = Doit(monorepo, "install")
        assert doit.wait_for(WAITING), doit.finish()
        os.killpg(doit.proc.pid, signal.SIGINT)
        started = time.monotonic()
        output = doit.finish()
        assert time.monotonic() - started < 5, output
        assert doit.proc.returncode == -signal.SIGINT, output
        assert "error: interrupted (Ctrl-C)" in output and "Traceback" not in output, output

        raised: list[BaseException] = []

        def wait() -> None:
            try:
                wait_for_npm(monorepo)
            except BaseException as exc:  # what the waiting thread ended with
                raised.append(exc)

        STOPPING.set()  # as serve's signal handler does
        try:
            waiter = threading.Thread(target=wait, daemon=True)
            waiter.start()
            waiter.join(5)
        finally:
            STOPPING.clear()
        assert [type(exc) for exc in raised] == [KeyboardInterrupt]
    assert mismatch(load_project(monorepo)) is None  # npm finished its install


def test_two_installs_at_once_run_one_npm_ci(monorepo: Path, gate: Gate) -> None:
    """Two `doit install`s that both found node_modules stale: the second waits for the
    first (held before its `npm ci`), decides again and runs none."""
    marker = monorepo / MARKER
    for round, license in enumerate(["MIT OR Apache-2.0", "MIT"]):
        gate.reset()
        relicense_keeping_mtime(monorepo / "package-lock.json", "node_modules/esbuild", license)
        marker.write_text("npm ci deletes this\n")
        first = Doit(monorepo, "install", env=gate.env)
        until(lambda: gate.arrived(), "the first install ran no npm ci")
        second = Doit(monorepo, "install", env=gate.env)
        second.wait_for("waiting for another install", unless=lambda: gate.arrived() > 1)
        gate.open()
        outputs = first.finish(), second.finish()
        said = f"round {round}: {gate.calls()}\n" + "\n---\n".join(outputs)
        assert first.proc.returncode == second.proc.returncode == 0, said
        assert len(gate.calls()) == 1 and gate.calls()[0].startswith("ci "), said
        assert second.said(r"waiting for another install \(npm ci\) in "), said
        assert "matches package-lock.json now: no npm ci" in outputs[1], said
        assert not marker.exists()  # the first one's npm ci reinstalled
        assert mismatch(load_project(monorepo)) is None


def test_only_npm_commands_that_write_node_modules_are_waited_for() -> None:
    """`npm run dev` in another terminal may run for hours: it changes no node_modules."""
    writers = [
        ["node", "/usr/bin/npm", "install", "lit"],
        ["npm install"],  # as npm retitles itself on Linux
        ["npm ci", "", ""],
        ["/usr/lib/node_modules/npm/bin/npm-cli.js", "-w", "apps/x", "uninstall", "y"],
        ["node", "/usr/local/bin/npm", "--prefer-offline", "up"],
    ]
    others = [
        ["npm run dev"],
        ["node", "/usr/bin/npm", "run", "install"],  # a script named install
        ["npm exec vite"],
        ["node", "server.js", "install"],
        ["npm"],
        [],
        None,
    ]
    assert [writes_node_modules(c) for c in writers] == [True] * len(writers)
    assert [writes_node_modules(c) for c in others] == [False] * len(others)
