"""The long-lived bundler of a `doit serve` session: `node <build script> --serve`.

A one-app rebuild then pays neither Node's start-up nor a cold bundle: the script keeps
one esbuild context per app and rebuilds it incrementally. It serves the apps whose
`build` script is `node <one of the [build] inputs>` (the shared build script), speaking
one JSON line per request and answer; other apps, and every build outside `doit serve`,
run their build script as before. When the script, or the installed packages, change,
the process is started again, so it never builds with stale options or modules.
The options themselves live in `tools/esbuild-options.mjs`, shared with the one-shot build.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from mfe.config import App, Project
from mfe.errors import MfeError

PROTOCOL = "mfe-bundler/1"


def shared_script(project: Project, app: App, command: str) -> Path | None:
    """The [build] input that `command` runs with plain `node`, if that is all it does."""
    words = shlex.split(command)
    if len(words) != 2 or words[0] != "node":
        return None
    script = (app.path / words[1]).resolve()
    inputs = {(project.root / name).resolve() for name in project.build.inputs}
    return script if script in inputs else None


class LiveBundler:
    """One bundler process per build script, started on first use, restarted when stale."""

    def __init__(self, project: Project, env: dict[str, str]) -> None:
        self.project, self.env = project, env
        self._lock = threading.RLock()
        """One build at a time; held by serve's cycle for its whole doit run (`holding`)."""
        self._procs: dict[Path, tuple[subprocess.Popen[str], tuple[Any, ...]]] = {}
        self._unsupported: set[Path] = set()
        self._id = 0
        self._closed = False
        """Serve is stopping: no process starts any more (the warm-up thread may still
        ask, after a Ctrl-C that left node_modules half deleted by `npm ci`)."""

    @contextlib.contextmanager
    def holding(self, stop: threading.Event) -> Iterator[None]:
        """Held while a serve cycle runs doit: any build may run `npm ci` first (its
        `install` dependency), and node started meanwhile by the warm-up would import
        esbuild from a node_modules npm is deleting. The warm-up waits, then starts afresh
        on the new packages; a Ctrl-C (`stop`) during the cycle ends it: npm may have left
        node_modules half deleted."""
        with self._lock:
            try:
                yield
            finally:
                if stop.is_set():
                    self._closed = True

    def bundle(
        self, script: Path, app: App, out: Path, shared: dict[str, Any]
    ) -> tuple[bool, str] | None:
        """(ok, esbuild's messages) for one build of `app` into `out` (`shared`: what the
        one-shot build gets as MFE_SHARED); None when `script` has no serve mode, or the
        bundler was closed."""
        with self._lock:
            proc = self._process(script)
            if proc is None:
                return None
            self._id += 1
            request = {
                "id": self._id,
                "app": str(app.path),
                "out": str(out),
                "label": app.name,
                "shared": shared,
            }
            try:
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(json.dumps(request) + "\n")
                proc.stdin.flush()
                answer = _read_json(proc.stdout)
            except (OSError, ValueError) as exc:
                self._stop(script)
                raise MfeError(
                    f"build:{app.name}: the serve bundler ({script.name} --serve) stopped "
                    f"({exc}); it starts again with the next build"
                ) from None
            return bool(answer.get("ok")), str(answer.get("text", ""))

    def warm(self, apps: Iterable[tuple[Path, App]], scratch: Path, shared: dict[str, Any]) -> None:
        """Build each app once into `scratch` (then removed), so the first edit is incremental."""
        for script, app in apps:
            with contextlib.suppress(MfeError):  # the real build reports it
                self.bundle(script, app, scratch / app.name, shared)
        shutil.rmtree(scratch, ignore_errors=True)

    def pid(self, script: Path) -> int | None:
        """The running process for `script`, if any (restarts show as a new pid)."""
        entry = self._procs.get(script)
        return entry[0].pid if entry else None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for script in list(self._procs):
                self._stop(script)

    def _process(self, script: Path) -> subprocess.Popen[str] | None:
        if script in self._unsupported or self._closed:
            return None
        stamp = self._stamp(script)
        if script in self._procs:
            proc, started_with = self._procs[script]
            if proc.poll() is None and started_with == stamp:
                return proc
            self._stop(script)
        proc = subprocess.Popen(
            ["node", str(script), "--serve"],
            cwd=self.project.root,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # Ctrl-C stops serve, which then ends this (stdin closes)
        )
        try:
            hello = _read_json(proc.stdout)  # type: ignore[arg-type]
        except ValueError:
            hello = {}
        if hello.get("ready") != PROTOCOL:
            proc.kill()
            proc.wait()
            self._unsupported.add(script)
            return None
        self._procs[script] = (proc, stamp)
        return proc

    def _stamp(self, script: Path) -> tuple[Any, ...]:
        """What the running process was started with: the script, the modules it imports
        (the [build] inputs) and the installed packages."""
        paths = [script, *(self.project.root / name for name in self.project.build.inputs)]
        paths.append(self.project.root / "node_modules" / ".package-lock.json")
        stamps: list[Any] = []
        for path in paths:
            try:
                stat = path.stat()
                stamps.append((stat.st_mtime_ns, stat.st_size))
            except OSError:
                stamps.append(None)
        return tuple(stamps)

    def _stop(self, script: Path) -> None:
        proc, _ = self._procs.pop(script)
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _read_json(stream: IO[str]) -> dict[str, Any]:
    line = stream.readline()
    if not line:
        raise ValueError("no answer")
    answer = json.loads(line)
    if not isinstance(answer, dict):
        raise ValueError(f"unexpected answer {line.strip()!r}")
    return answer


_active: LiveBundler | None = None


def activate(bundler: LiveBundler | None) -> None:
    """Make builds in this process use `bundler` (serve), or stop doing so (None)."""
    global _active
    _active = bundler


def active() -> LiveBundler | None:
    return _active
