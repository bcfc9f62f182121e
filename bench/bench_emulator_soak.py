"""A week of a team's use of the local emulator, compressed: does it keep its size?

The emulator runs for days (`doit local_stop` is rare), serving every publish, rollback,
preview, CI cache lookup and sign-in of a checkout. This soak starts it the project's way
(a `Session` of a synthetic three-app repo on `local`: `ensure_emulator`, then the local
backend's provisioning of buckets, distributions and the user pool) and runs cycles of:
a publish of a changed app with `--prune` (a new chunk each time, the previous ones pruned
with no grace), every few cycles a preview published and removed, a rollback (and the
publish after it), a CI cache upload and restore, and a guest sign-in (the page's unsigned
`InitiateAuth`). Every round of cycles it samples the server's and its granian worker's
resident memory (`/proc/<pid>/status` VmRSS), open file descriptors and threads.

Target: after the warm-up rounds, the worker's RSS grows by at most SLOPE_KB per cycle (a
linear fit over the later rounds), and its descriptors (open connections come and go: at
most twice the first round's) and threads do not grow. Measured on 2 shared cores, moto
5.2.1: ~28 KB a cycle over 200 cycles (worker 121 -> 127 MB), which is what a cycle adds
that the emulator must keep: a release history record, app version records and a CI
cache entry (objects no prune removes) and the sign-in's access and id tokens (kept for
their hour: the emulator drops them once expired, `expire_cognito_tokens`, and keeps a
user's newest refresh tokens only). Before the invalidation cap ~35 KB; the FakeKey
leak fixed earlier grew ~170 KB a cycle. Run alone: `python bench/bench_emulator_soak.py
[CYCLES]` prints the samples.
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import children, held

from mfe.ci.cache import RemoteCache, restore, upload
from mfe.config import load_project
from mfe.envs.emulator_process import read_records, terminate
from mfe.envs.local import GUEST_PASSWORD, GUEST_USER
from mfe.envs.session import Session
from mfe.publish import publish
from mfe.publish.preview import preview_rm, publish_preview
from mfe.publish.rollback import rollback

from fixtures.aws import DUMMY_AWS_ENV, free_port
from fixtures.s3 import make_site, render_shell, write_app

ROUND = 25
"""Cycles between two samples (one bench run)."""
SLOPE_KB = 50.0
"""The worker's RSS growth per cycle allowed after warm-up: catches a leak of what the
cycles delete (the FakeKey one grew ~170 KB a cycle), not the records they keep."""


@dataclass
class Sample:
    cycle: int
    seconds: float
    server_kb: int
    worker_kb: int
    fds: int
    threads: int


@dataclass
class Soak:
    """The synthetic repo, its emulator and what the cycles did so far."""

    root: Path
    port: int
    outputs: Any = None
    """The environment's outputs, once provisioned."""
    server: int = 0
    """The emulator's pid (its process group)."""
    cycle: int = 0
    samples: list[Sample] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def start(cls, root: Path) -> Soak:
        port = free_port()
        os.environ.update(DUMMY_AWS_ENV)
        make_site(root, port, name="soak", keep_releases=2, grace_seconds=0)
        soak = cls(root, port)
        soak.outputs = Session(soak.project, "local").outputs  # starts + provisions
        soak.server = soak.pids()[0]
        render_shell(root, soak.outputs)
        publish(soak.project, "local", prune=True)
        s3 = soak.session().s3
        s3.create_bucket(Bucket="soak-ci-cache")
        soak.sample()
        return soak

    @property
    def project(self) -> Any:
        return load_project(self.root)

    def session(self) -> Session:
        return Session(self.project, "local", self.outputs)

    def pids(self) -> tuple[int, int]:
        """The server (from the pid file) and its granian worker."""
        records = read_records(self.project.state_dir("local") / "emulator.pid")
        server = records[0].pid
        (worker,) = children(server)
        return server, worker

    def sample(self) -> Sample:
        (server_kb, server_fds, server_threads), (worker_kb, worker_fds, worker_threads) = map(
            held, self.pids()
        )
        sample = Sample(
            self.cycle,
            round(time.monotonic() - self.started, 1),
            server_kb,
            worker_kb,
            server_fds + worker_fds,
            server_threads + worker_threads,
        )
        self.samples.append(sample)
        return sample

    def one_cycle(self) -> None:
        """What a team does between two of the emulator's samples, once."""
        self.cycle += 1
        n = self.cycle
        project = self.project
        chunk = {f"chunk-{os.urandom(5).hex()}.js": os.urandom(4_000)}
        write_app(self.root, "accounts", f"v{n}", extra=chunk)
        render_shell(self.root, self.outputs)
        publish(project, "local", prune=True)
        if n % 5 == 0:  # a pull request's preview, then its closing
            write_app(self.root, "payments", f"pr{n}")
            publish_preview(project, "local", f"pr-{n}")
            preview_rm(project, "local", f"pr-{n}")
            write_app(self.root, "payments", f"p{n}")
            render_shell(self.root, self.outputs)
            publish(project, "local", prune=True)
        if n % 7 == 0:  # a bad release rolled back, then fixed forward
            rollback(project, "local")
            write_app(self.root, "accounts", f"fix{n}", extra=chunk)
            render_shell(self.root, self.outputs)
            publish(project, "local", prune=True)
        self.ci_cache(n)
        self.sign_in()

    def ci_cache(self, n: int) -> None:
        """A CI run: the build cache misses, uploads, and the next run restores it."""
        cache = RemoteCache(self.session().s3, "soak-ci-cache", "builds", b"soak-secret")
        app = self.project.apps["payments"]
        upload(cache, app, f"key{n}")
        assert restore(cache, self.project, app, f"key{n}").outcome == "hit"

    def sign_in(self) -> None:
        """The login page's call: an unsigned InitiateAuth for the guest."""
        auth = self.outputs.auth
        answer = httpx.post(
            f"http://127.0.0.1:{self.port}/",
            headers={
                "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
                "Content-Type": "application/x-amz-json-1.1",
            },
            json={
                "AuthFlow": "USER_PASSWORD_AUTH",
                "ClientId": auth.client_id,
                "AuthParameters": {"USERNAME": GUEST_USER, "PASSWORD": GUEST_PASSWORD},
            },
            timeout=30,
        )
        answer.raise_for_status()

    def run_round(self) -> dict[str, Any]:
        with contextlib.redirect_stderr(io.StringIO()):  # the commands' progress lines
            for _ in range(ROUND):
                self.one_cycle()
        last = self.sample()
        return {
            "cycles": last.cycle,
            "worker_MB": round(last.worker_kb / 1024, 1),
            "server_MB": round(last.server_kb / 1024, 1),
            "fds": last.fds,
            "threads": last.threads,
            "KB/cycle": round(self.slope(), 1),
        }

    def slope(self) -> float:
        """The worker's RSS growth per cycle, fitted over the samples after the first round."""
        later = self.samples[2:]
        if len(later) < 2:
            return 0.0
        fit = statistics.linear_regression([s.cycle for s in later], [s.worker_kb for s in later])
        return fit.slope

    def stop(self) -> None:
        """By the pid found at the start: run.py removes the scratch folder, with the pid
        file, before it runs the cleanups."""
        terminate(self.server, self.port)


def cases(ctx: Any) -> Iterator[Any]:
    from run import Case

    soak = Soak.start(ctx.tmp / "soak")
    ctx.stack.callback(soak.stop)

    def check(row: dict[str, Any]) -> bool:
        first, later = soak.samples[1], soak.samples[2:]
        fds = max(s.fds for s in later) <= 2 * first.fds
        threads = max(s.threads for s in later) <= first.threads + 2
        return soak.slope() <= SLOPE_KB and fds and threads

    yield Case(
        name=f"emulator soak, {ROUND} cycles a run",
        run=soak.run_round,
        repeat=8,
        target=f"worker RSS <= {SLOPE_KB:.0f} KB/cycle after warm-up; fds, threads flat",
        check=check,
    )


def main() -> None:
    import tempfile

    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory(prefix="mfe-soak-") as tmp:
        soak = Soak.start(Path(tmp) / "soak")
        try:
            print(soak.samples[-1], flush=True)
            while soak.cycle < cycles:
                print(soak.run_round(), soak.samples[-1], flush=True)
        finally:
            soak.stop()


if __name__ == "__main__":
    main()
