"""Randomized concurrency + crash soak of publish / rollback / prune / preview (not a test).

    python bench/soak_releases.py --seed 7 --rounds 30 [--keep-going] [--dir /tmp/soak]

One moto server (a subprocess on a free loopback port, stopped by PID) and one synthetic
monorepo in git (`tests/fixtures/s3.py`: prebuilt `dist/` folders committed, so checking
out an older commit is checking out an older build; no npm). Each round the upstream
repository may commit new builds of one or two apps (and add or retire an app, `orders`),
then 2-4 checkouts, some on older commits, some with an uncommitted build of one app,
each run one random action in a child process, all at once: publish, publish app=X,
publish --prune (grace_seconds small), publish --force, rollback, rollback app=X
[to=N], rollback to=N, preview publish / preview_rm. A random subset is SIGKILLed at a
random moment. Then a checkout at the upstream head publishes (the finisher) and the
invariants are checked:

- the pointer parses; every file it references (the page's `_ca/` copy, each app's files
  per its version manifest, the fixed-URL files) is in its bucket with the right sha256;
- `index.html` served is the page the pointer names, and it passes the smoke check;
- the history has a record for every seq up to the live one, each byte for byte the
  pointer that seq wrote (the parent bucket is versioned, so every pointer ever written
  is known), and `releases` lists them all;
- no app left the page without a record saying so (a commit removed it, --force, or a
  whole rollback to a release without it), and the live apps are the upstream head's;
- every live preview's page loads (smoke check) and the files its record keeps exist;
- a second finisher publish is a no-op.

Children's outcomes (ok / refused with a one-line MfeError / killed / crashed with a
traceback) are counted and printed with the action mix at the end; a crash or a violated
invariant prints the round's actions and stops (unless --keep-going). The seed is printed
first: the same seed draws the same actions and kill delays (timing still varies).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import httpx

from mfe.config import load_project
from mfe.envs.outputs import Outputs, write_outputs
from mfe.errors import MfeError
from mfe.publish.history import HISTORY_PREFIX, history_key, seqs
from mfe.publish.local import SHELL_KEY
from mfe.publish.pointer import POINTER_KEY, Live
from mfe.publish.previews import PREVIEW_POINTERS, Preview, page_key
from mfe.publish.releases_cmd import show
from mfe.publish.smoke import smoke_check
from mfe.publish.versions import ca_key, version_key, version_of

from fixtures.aws import DUMMY_AWS_ENV, free_port, start_moto, stop_process
from fixtures.s3 import S3Server, Site, provision, write_app

APPS = ("mfe-parent", "accounts", "payments")
EXTRA = "orders"
"""The app upstream adds and retires now and then (its bucket is provisioned up front)."""

CHILD = r"""
import json, sys, traceback
from pathlib import Path
from mfe.config import load_project
from mfe.envs.outputs import read_outputs
from mfe.errors import MfeError

root, action, args = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
project = load_project(root)
env = project.env("local")
outputs = read_outputs(project, env)
try:
    if action == "publish":
        from mfe.publish import publish
        publish(project, env, outputs=outputs, smoke=False, **args)
    elif action == "rollback":
        from mfe.publish.rollback import rollback
        rollback(project, env, outputs=outputs, smoke=False, **args)
    elif action == "preview":
        from mfe.publish.preview import publish_preview
        publish_preview(project, env, args["name"], outputs=outputs, smoke=False)
    elif action == "preview_rm":
        from mfe.publish.preview import preview_rm
        preview_rm(project, env, args["name"], outputs=outputs)
except MfeError as exc:
    print(f"REFUSED {exc}")
    sys.exit(3)
"""


def git(root: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=soak", "-c", "user.email=soak@mfe.local", *args]
    return subprocess.run(command, cwd=root, check=True, capture_output=True, text=True).stdout


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class Violation(Exception):
    """An invariant does not hold."""


@dataclass
class Action:
    checkout: str
    commit: str
    dirty: str | None
    kind: str
    args: dict[str, Any]
    kill_at: float | None
    outcome: str = ""
    seconds: float = 0.0

    def describe(self) -> str:
        kill = f" kill@{self.kill_at:.2f}s" if self.kill_at is not None else ""
        dirty = f" dirty={self.dirty}" if self.dirty else ""
        args = " ".join(f"{k}={v}" for k, v in self.args.items())
        return (
            f"{self.checkout}@{self.commit[:8]}{dirty}: {self.kind} {args}{kill} -> "
            f"{self.outcome} ({self.seconds:.2f}s)"
        )


@dataclass
class Soak:
    rng: random.Random
    workdir: Path
    server: S3Server
    kill_probability: float
    site: Site = field(init=False)
    outputs: Outputs = field(init=False)
    checkouts: list[Path] = field(default_factory=list)
    finisher: Path = field(init=False)
    typical: float = 2.0
    mix: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    upstream_rounds: int = 0
    previews: set[str] = field(default_factory=set)

    # ------------------------------------------------------------------ set-up
    def setup(self, checkouts: int, grace: int, keep: int) -> None:
        origin = self.workdir / "origin"
        self.site = Site(origin, self.server, keep_releases=keep, grace_seconds=grace)
        extra = provision(self.server, self.site.name, apps=(EXTRA,)).apps
        self.outputs = Outputs(
            env="local",
            region="us-east-1",
            apps={**self.site.outputs.apps, **extra},
            endpoint_url=self.server.endpoint,
        )
        s3 = self.server.client()
        s3.put_bucket_versioning(  # every pointer ever written stays listable
            Bucket=self.parent_bucket, VersioningConfiguration={"Status": "Enabled"}
        )
        (origin / ".gitignore").write_text(".mfe/\nbuild/\n")
        git(origin, "init", "-q", "-b", "main")
        git(origin, "add", "-A")
        git(origin, "commit", "-qm", "v1")
        for number in range(checkouts):
            self.checkouts.append(self.clone(f"c{number}"))
        self.finisher = self.clone("finisher")

    def clone(self, name: str) -> Path:
        root = self.workdir / name
        git(self.workdir, "clone", "-q", str(self.workdir / "origin"), name)
        write_outputs(load_project(root), self.outputs)
        return root

    @property
    def parent_bucket(self) -> str:
        return self.outputs.apps["mfe-parent"].bucket

    def url(self, app: str, key: str) -> str:
        return f"{self.outputs.apps[app].base_url}{key}"

    # ------------------------------------------------------------------ upstream
    def origin_apps(self, commit: str = "HEAD") -> set[str]:
        out = git(self.workdir / "origin", "ls-tree", "--name-only", f"{commit}:apps")
        return set(out.split())

    def advance_upstream(self, round_no: int) -> None:
        """Commit new builds of one or two apps upstream; now and then add or retire orders."""
        origin = self.workdir / "origin"
        toml = origin / "mfe.toml"
        if self.rng.random() < 0.3:
            return
        present = (origin / "apps" / EXTRA).is_dir()
        roll = self.rng.random()
        if not present and roll < 0.15:
            folder = origin / "apps" / EXTRA
            folder.mkdir(parents=True)
            (folder / "package.json").write_text(
                json.dumps({"name": EXTRA, "scripts": {"build": "true"}})
            )
            write_app(origin, EXTRA, f"u{round_no}")
            toml.write_text(
                toml.read_text().replace("[publish]", f"[apps.{EXTRA}]\n\n[publish]", 1)
            )
            message = f"add {EXTRA}"
        elif present and roll < 0.12:
            shutil.rmtree(origin / "apps" / EXTRA)
            toml.write_text(toml.read_text().replace(f"[apps.{EXTRA}]\n\n", ""))
            message = f"retire {EXTRA}"
        else:
            apps = sorted(self.origin_apps())
            changed = self.rng.sample(apps, self.rng.choice((1, 1, 2)))
            for app in changed:
                write_app(origin, app, f"u{round_no}")
            message = f"round {round_no}: {', '.join(changed)}"
        git(origin, "add", "-A")
        git(origin, "commit", "-qm", message)
        self.upstream_rounds += 1

    def checkout(self, root: Path, commit: str) -> None:
        git(root, "fetch", "-q", "origin")
        git(root, "reset", "-q", "--hard")
        git(root, "clean", "-qfd")
        git(root, "checkout", "-q", "--detach", commit)

    def record_bytes(self, seq: int) -> bytes:
        s3 = self.server.client()
        body: bytes = s3.get_object(Bucket=self.parent_bucket, Key=history_key(seq))["Body"].read()
        return body

    # ------------------------------------------------------------------ actions
    def history_seqs(self) -> list[int]:
        s3 = self.server.client()
        keys: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.parent_bucket, Prefix=HISTORY_PREFIX
        ):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return seqs(keys)

    def draw(self, root: Path, round_no: int) -> Action:
        rng = self.rng
        commits = git(self.workdir / "origin", "rev-list", "--first-parent", "main").split()
        older = rng.random() < 0.3 and len(commits) > 1
        commit = commits[rng.randint(1, min(4, len(commits) - 1))] if older else commits[0]
        self.checkout(root, commit)
        apps = sorted(p.name for p in (root / "apps").iterdir() if (p / "package.json").is_file())
        dirty = None
        if rng.random() < 0.5:
            dirty = rng.choice(apps)
            write_app(root, dirty, f"{root.name}-r{round_no}")
        kinds = {
            "publish": 3,
            "publish_app": 2,
            "prune": 2,
            "force": 0.3,
            "rollback": 1,
            "rollback_app": 1,
            "rollback_app_to": 0.7,
            "rollback_to": 0.7,
            "preview": 1,
            "preview_rm": 0.6,
        }
        kind = rng.choices(list(kinds), weights=list(kinds.values()))[0]
        known = self.history_seqs()
        args: dict[str, Any] = {}
        action = {"publish_app": "publish", "prune": "publish", "force": "publish"}.get(kind, kind)
        if kind == "publish_app":
            args = {"app": dirty or rng.choice(apps)}
        elif kind == "prune":
            args = {"prune": True}
        elif kind == "force":
            args = {"force": True}
        elif kind in ("rollback_app", "rollback_app_to"):
            args = {"app": rng.choice(apps)}
            if kind == "rollback_app_to" and known:
                args["to"] = str(rng.choice(known[-8:]))
            action = "rollback"
        elif kind == "rollback_to":
            args = {"to": str(rng.choice(known[-8:]))} if known else {}
            action = "rollback"
        elif kind in ("preview", "preview_rm"):
            args = {"name": f"p{rng.randint(0, 3)}"}
        kill_at = None
        if rng.random() < self.kill_probability:
            kill_at = rng.uniform(0.3, 1.1) * self.typical
        self.mix[kind] += 1
        return Action(root.name, commit, dirty, action, args, kill_at)

    def run_all(self, actions: list[Action], roots: list[Path]) -> None:
        env = {**os.environ, **DUMMY_AWS_ENV}
        started = time.monotonic()
        procs = []
        logs = []
        for action, root in zip(actions, roots, strict=True):
            out, err = (root.parent / f"{root.name}.{n}" for n in ("out", "err"))
            logs.append((out, err))
            with out.open("wb") as stdout, err.open("wb") as stderr:
                procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-c",
                            CHILD,
                            str(root),
                            action.kind,
                            json.dumps(action.args),
                        ],
                        env=env,
                        stdout=stdout,
                        stderr=stderr,
                    )
                )
        pending = dict(enumerate(procs))
        kills = {i: a.kill_at for i, a in enumerate(actions) if a.kill_at is not None}
        while pending:
            now = time.monotonic() - started
            for index, proc in list(pending.items()):
                if proc.poll() is not None:
                    actions[index].seconds = now
                    del pending[index]
                elif index in kills and now >= kills[index]:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(10)
                    actions[index].seconds = now
                    actions[index].outcome = "killed"
                    del pending[index]
                elif now > 180:
                    proc.kill()
                    proc.wait(10)
                    actions[index].outcome = "hung"
                    del pending[index]
            time.sleep(0.01)
        for action, proc, (out_path, err_path) in zip(actions, procs, logs, strict=True):
            out = out_path.read_text(errors="replace")
            err = err_path.read_text(errors="replace")
            if action.outcome in ("killed", "hung"):
                pass
            elif proc.returncode == 0:
                action.outcome = "ok"
            elif proc.returncode == 3 and "\nREFUSED " in "\n" + out:
                said = ("\n" + out).split("\nREFUSED ", 1)[1]
                action.outcome = "refused: " + said.strip()[:300]
            else:
                action.outcome = f"CRASHED rc={proc.returncode}: {(out + err).strip()[-3000:]}"
            self.outcomes[action.outcome.split(":")[0].split(" rc=")[0]] += 1

    # ------------------------------------------------------------------ finisher + checks
    def finish(self) -> dict[str, Any]:
        self.checkout(self.finisher, "origin/main")
        from mfe.publish import publish

        project = load_project(self.finisher)
        with (
            open(os.devnull, "w") as quiet,
            contextlib.redirect_stderr(quiet),
            contextlib.redirect_stdout(quiet),
        ):
            report = publish(project, "local", outputs=self.outputs).to_dict()
            again = publish(project, "local", outputs=self.outputs, smoke=False).to_dict()
        if not again["noop"]:
            raise Violation(f"a second finisher publish was not a no-op: {again['changed']}")
        return report

    def get(self, app: str, key: str) -> bytes | None:
        answer = httpx.get(self.url(app, key), timeout=30)
        return answer.content if answer.status_code == 200 else None

    def check_file(self, app: str, key: str, digest: str, what: str) -> None:
        body = self.get(app, key)
        if body is None:
            raise Violation(f"{what}: {app}/{key} is missing")
        if sha(body) != digest:
            raise Violation(f"{what}: {app}/{key} has sha {sha(body)[:12]}, not {digest[:12]}")

    def check_version(self, app: str, version: str, what: str) -> None:
        body = self.get(app, version_key(app, version))
        if body is None:
            s3 = self.server.client()
            try:
                body = s3.get_object(
                    Bucket=self.outputs.apps[app].bucket, Key=version_key(app, version)
                )["Body"].read()
            except Exception as exc:
                raise Violation(
                    f"{what}: version list {app}/{version[:12]} missing: {exc}"
                ) from None
        files = json.loads(body)["files"]
        from mfe.publish.releases import FileRecord

        records = {k: FileRecord(**r) for k, r in files.items()}
        if version_of(records) != version:
            raise Violation(f"{what}: version list {app}/{version[:12]} does not hash to it")
        for key, rec in records.items():
            self.check_file(
                app, key if rec.immutable else ca_key(key, rec.sha256), rec.sha256, what
            )

    def check(self) -> None:
        s3 = self.server.client()
        bucket = self.parent_bucket
        raw = s3.get_object(Bucket=bucket, Key=POINTER_KEY)["Body"].read()
        live = Live.from_json(raw)
        what = f"live seq {live.seq}"
        self.check_file("mfe-parent", ca_key(SHELL_KEY, live.page.sha256), live.page.sha256, what)
        self.check_file("mfe-parent", SHELL_KEY, live.page.sha256, what + " (served page)")
        for app, version in live.apps.items():
            self.check_version(app, version.version, what)
            for key, blob in version.mutable.items():
                self.check_file(app, key, blob.sha256, what + " (fixed URL)")
        smoke_check(self.url("mfe-parent", SHELL_KEY), attempts=1)
        # history: every seq, byte for byte every pointer ever written
        known = self.history_seqs()
        if known != list(range(1, live.seq + 1)):
            missing = sorted(set(range(1, live.seq + 1)) - set(known))
            raise Violation(
                f"history seqs missing {missing}, extra {sorted(set(known) - set(range(1, live.seq + 1)))}"
            )
        written: dict[int, set[bytes]] = {}
        pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=POINTER_KEY)
        for page in pages:
            for item in page.get("Versions", []):
                if item["Key"] != POINTER_KEY:
                    continue
                body = s3.get_object(Bucket=bucket, Key=POINTER_KEY, VersionId=item["VersionId"])[
                    "Body"
                ].read()
                written.setdefault(json.loads(body)["seq"], set()).add(body)
        for seq, bodies in sorted(written.items()):
            if len(bodies) > 1:
                raise Violation(f"seq {seq} was written as {len(bodies)} different pointers")
            record = self.record_bytes(seq)
            if record != next(iter(bodies)):
                raise Violation(f"history record {seq} differs from the pointer seq {seq} wrote")
        records = {seq: Live.from_json(self.record_bytes(seq)) for seq in known}
        listed = show(
            load_project(self.finisher),
            load_project(self.finisher).env("local"),
            self.outputs,
            limit=10**6,
        )
        rows = {
            int(line.split()[0]) for line in listed.splitlines()[1:] if line.split()[0].isdigit()
        }
        if rows != set(known):
            raise Violation(f"releases lists seqs {sorted(rows)}, history has {known}")
        for seq in known[1:]:
            before, after = records[seq - 1], records[seq]
            for app in sorted(set(before.apps) - set(after.apps)):
                if f"{app} (removed)" not in after.changed:
                    raise Violation(f"seq {seq} took {app} off the page without saying so")
                # A rollback records its target's commit, not the checkout's: the marking
                # is all its record can show (it applied publish's rule when it ran).
                rolled = after.action == "rollback"
                if not (rolled or app in after.forced or self.retired(app, before, after)):
                    raise Violation(f"seq {seq} took {app} off with no commit removing it")
        head = self.origin_apps()
        if set(live.apps) != head:
            raise Violation(
                f"live apps {sorted(live.apps)} after the finisher, head has {sorted(head)}"
            )
        self.check_previews()

    def retired(self, app: str, before: Live, after: Live) -> bool:
        """Whether `after`'s commit descends from `app`'s live commit in `before` and lacks it."""
        published, head = before.apps[app].commit, after.commit
        if not published or not head:
            return False
        origin = self.workdir / "origin"
        ancestor = subprocess.run(
            ["git", "merge-base", "--is-ancestor", published, head], cwd=origin, check=False
        ).returncode
        return ancestor == 0 and app not in self.origin_apps(head)

    def check_previews(self) -> None:
        s3 = self.server.client()
        listing = s3.list_objects_v2(Bucket=self.parent_bucket, Prefix=PREVIEW_POINTERS)
        for item in listing.get("Contents", []):
            body = s3.get_object(Bucket=self.parent_bucket, Key=item["Key"])["Body"].read()
            preview = Preview.from_json(body)
            what = f"preview {preview.name}"
            for app, keys in preview.kept().items():
                for key in keys:
                    if self.get(app, key) is None:
                        raise Violation(f"{what}: {app}/{key} is missing")
            for app, version in preview.pointer.apps.items():
                if app not in preview.pointer.changed:
                    self.check_version(app, version.version, what)
            try:
                smoke_check(self.url("mfe-parent", page_key(preview.name)), attempts=1)
            except MfeError as exc:
                raise Violation(f"{what}: {exc}") from None

    # ------------------------------------------------------------------ a round
    def round(self, round_no: int) -> list[Action]:
        self.advance_upstream(round_no)
        count = self.rng.randint(2, len(self.checkouts))
        roots = self.rng.sample(self.checkouts, count)
        actions = [self.draw(root, round_no) for root in roots]
        self.run_all(actions, roots)
        done = [a.seconds for a in actions if a.outcome == "ok"]
        if done:
            self.typical = 0.8 * self.typical + 0.2 * max(done)
        return actions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--checkouts", type=int, default=4, help="2-4")
    parser.add_argument("--grace", type=int, default=6, help="[publish] grace_seconds")
    parser.add_argument("--keep", type=int, default=3, help="[publish] keep_releases")
    parser.add_argument("--kill", type=float, default=0.35, help="kill probability")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (kept)")
    parser.add_argument("--keep-going", action="store_true")
    opts = parser.parse_args()
    seed = opts.seed if opts.seed is not None else random.SystemRandom().randrange(10**6)
    print(f"seed {seed}", flush=True)
    workdir = Path(opts.dir or tempfile.mkdtemp(prefix="soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    moto = start_moto(port, workdir / "moto.log")
    failures = 0
    round_no = 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the emulator on kill PID
    soak = Soak(random.Random(seed), workdir, S3Server(f"http://127.0.0.1:{port}", True), opts.kill)
    try:
        os.environ.update(DUMMY_AWS_ENV)
        soak.setup(max(2, min(4, opts.checkouts)), opts.grace, opts.keep)
        soak.finish()
        for round_no in range(1, opts.rounds + 1):
            actions = soak.round(round_no)
            problem = next(
                (a.outcome for a in actions if a.outcome.startswith(("CRASHED", "hung"))), None
            )
            try:
                soak.finish()
                soak.check()
            except (Violation, MfeError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            status = "ok" if problem is None else "VIOLATION"
            print(f"round {round_no}: {status}", flush=True)
            for action in actions:
                print(f"   {action.describe()}", flush=True)
            if problem is not None:
                failures += 1
                print(f"   !! {problem}", flush=True)
                if not opts.keep_going:
                    break
    finally:
        stop_process(moto)
        if opts.dir is None and not failures:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"seed {seed}: {round_no} rounds, {failures} with a violation; workdir {workdir}")
    print(f"actions: {dict(sorted(soak.mix.items()))}")
    print(
        f"outcomes: {dict(sorted(soak.outcomes.items()))}; upstream commits {soak.upstream_rounds}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
