"""Builds racing edits and each other (real doit, real esbuild): an input changed while its
build runs is never recorded as built; two builds of one app at once both succeed."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mfe.build.bundle import swap_into_place

from fixtures.repo import executed_tasks, run_doit, up_to_date_tasks


@pytest.fixture
def monorepo(built_monorepo: Path) -> Path:
    """This module's copies are built: each test's first build (or serve) bundles only the
    app it edited."""
    return built_monorepo


DODO = """
from pathlib import Path
from mfe.build.snapshot import READ_KEY, take

DOIT_CONFIG = {"backend": "mfe-json", "dep_file": "db.json", "verbosity": 0}

def copy_then_save_again():
    read = take(Path("."), ["in.txt"])
    text = Path("in.txt").read_text()
    Path("out.txt").write_text(text)
    if text == "first":  # an editor saves after the read, before doit stores the state
        Path("in.txt").write_text("second")
    return {READ_KEY: read}

def task_copy():
    return {"actions": [copy_then_save_again], "file_dep": ["in.txt"], "targets": ["out.txt"]}
"""


@pytest.mark.parametrize("jobs", [[], ["-n", "2"]])
def test_doit_stores_the_fingerprints_the_action_read(tmp_path: Path, jobs: list[str]) -> None:
    (tmp_path / "dodo.py").write_text(DODO)
    (tmp_path / "in.txt").write_text("first")
    assert executed_tasks(run_doit(tmp_path, *jobs).stdout) == {"copy"}
    # in.txt changed after the action read it: the stored state is the "first" one.
    assert executed_tasks(run_doit(tmp_path, *jobs).stdout) == {"copy"}
    assert (tmp_path / "out.txt").read_text() == "second"
    assert up_to_date_tasks(run_doit(tmp_path, *jobs).stdout) == {"copy"}


def test_a_save_during_doit_build_is_built(monorepo: Path) -> None:
    """The bundler has read the sources; the save lands before the task ends."""
    package = monorepo / "apps/payments/package.json"
    data = json.loads(package.read_text())
    data["scripts"]["build"] = "node ../../tools/build-app.mjs && sleep 1"
    package.write_text(json.dumps(data))
    run_doit(monorepo, "build")
    source = monorepo / "apps/payments/src/payments-app.js"
    original = source.read_text()
    source.write_text(original.replace(">Payments</h2>", ">Payments one</h2>"))

    scratch = monorepo / ".mfe/build-tmp"
    proc = subprocess.Popen(
        [sys.executable, "-m", "doit", "build"],
        cwd=monorepo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not list(scratch.glob("payments-*/out/main-*.js")):  # the bundler wrote its output
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    source.write_text(original.replace(">Payments</h2>", ">Payments two</h2>"))
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output

    entry = next((monorepo / "apps/payments/dist").glob("main-*.js")).read_text()
    assert "Payments two" in entry
    again = run_doit(monorepo, "build").stdout
    assert "build:payments" in up_to_date_tasks(again), again


EDIT_LOCK = """\
// Stands for `npm install` in another terminal: rewrites lit-html's lockfile entry while
// the build runs (after its bundler read node_modules), when MFE_TEST_LOCK_EDIT is set.
const fs = require('fs');
const mark = process.env.MFE_TEST_LOCK_EDIT;
if (mark) {
  const file = require('path').join(__dirname, 'package-lock.json');
  const lock = JSON.parse(fs.readFileSync(file, 'utf8'));
  lock.packages['node_modules/lit-html']['x-edited-during-build'] = mark;
  fs.writeFileSync(file, JSON.stringify(lock, null, 2) + '\\n');
}
"""
LOCK_ROUNDS = 4
"""The edit lands inside the build every round (no timing involved): each way of running
the task (in doit's main process, in a `-n 2` worker) once from the first build's state
and once from the state the round before left; more rounds only repeated these."""


@pytest.mark.parametrize("task", ["build:payments", "build:shared"])
def test_a_lockfile_change_during_doit_build_is_built(monorepo: Path, task: str) -> None:
    """The lockfile slice (an app's, or the shared modules') is recorded as the up-to-date
    check saw it before the build ran, not as it is when the task ends."""
    (monorepo / "edit-lock.cjs").write_text(EDIT_LOCK)
    if task == "build:payments":
        package = monorepo / "apps/payments/package.json"
        data = json.loads(package.read_text())
        data["scripts"]["build"] += " && node ../../edit-lock.cjs"
        package.write_text(json.dumps(data))
    else:
        config = monorepo / "mfe.toml"
        script = 'script = "node tools/build-shared.mjs && node edit-lock.cjs"'
        text, found = re.subn(
            r"^\[shared\].*$", rf"\g<0>\n{script}", config.read_text(), count=1, flags=re.M
        )
        assert found == 1
        config.write_text(text)
    run_doit(monorepo, "build")
    for round_ in range(LOCK_ROUNDS):
        # -a: build now; -s: no `install` (npm ci) for the edited lockfile; every other
        # round in a doit worker process (its value savers still run in the main one).
        edit = {"MFE_TEST_LOCK_EDIT": str(round_)}
        jobs = ["-n", "2"] if round_ % 2 else []
        during = run_doit(monorepo, *jobs, "-s", "-a", task, env=edit).stdout
        assert task in executed_tasks(during), during
        after = run_doit(monorepo, "-s", task).stdout
        assert task in executed_tasks(after), f"round {round_}: edit recorded as built\n{after}"
    assert task in up_to_date_tasks(run_doit(monorepo, "-s", task).stdout)


PARALLEL_ROUNDS = 8
BUILT_BY = (
    " && node -e \"require('fs').writeFileSync(process.env.MFE_OUT_DIR + '/built-by.txt', "
    'String(process.pid))"'
)
"""Appended to the build script: each build's output differs, so a dist/ mixing two builds
does not match either manifest."""


def sign_each_build(monorepo: Path, app: str) -> None:
    package = monorepo / "apps" / app / "package.json"
    data = json.loads(package.read_text())
    data["scripts"]["build"] += BUILT_BY
    package.write_text(json.dumps(data))


def assert_matches_its_manifest(dist: Path) -> None:
    manifest = json.loads((dist / "asset-manifest.json").read_text())
    on_disk = {
        path.relative_to(dist).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in dist.rglob("*")
        if path.is_file() and path.name != "asset-manifest.json"
    }
    assert on_disk == {name: entry["sha256"] for name, entry in manifest["files"].items()}


def leftovers(monorepo: Path) -> list[str]:
    """What builds left in the scratch area (the lock file that guards it excepted)."""
    scratch = monorepo / ".mfe/build-tmp"
    return (
        sorted(p.name for p in scratch.iterdir() if p.name != ".lock") if scratch.is_dir() else []
    )


def test_two_builds_of_one_app_at_once_both_succeed(monorepo: Path) -> None:
    """`doit serve` and `doit build` in another terminal may build one app at the same time."""
    sign_each_build(monorepo, "payments")
    run_doit(monorepo, "build")
    dist = monorepo / "apps/payments/dist"
    for round_ in range(PARALLEL_ROUNDS):
        run_doit(monorepo, "forget", "build:payments")
        builds = [
            subprocess.Popen(
                [sys.executable, "-m", "doit", "build:payments"],
                cwd=monorepo,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [build.communicate(timeout=120)[0] for build in builds]
        for build, output in zip(builds, outputs, strict=True):
            assert build.returncode == 0, f"round {round_}:\n{output}"
        assert_matches_its_manifest(dist)
        assert leftovers(monorepo) == [], round_
    assert "build:payments" in up_to_date_tasks(run_doit(monorepo, "build").stdout)


SWAPPERS, SWAPS = 4, 150


def test_swaps_of_one_dist_at_once_are_each_whole(tmp_path: Path) -> None:
    """The two renames of one swap never interleave with another's: no swap fails, and
    `dist/` ends as one swap's complete folder."""
    dist = tmp_path / "app" / "dist"
    failures: list[BaseException] = []

    def swap_many(worker: int) -> None:
        for swap in range(SWAPS):
            new = tmp_path / f"build-{worker}-{swap}"
            new.mkdir()
            for part in ("a", "b"):
                (new / part).write_text(f"{worker}-{swap}")
            try:
                swap_into_place(new, dist)
            except OSError as exc:
                failures.append(exc)
                return

    threads = [threading.Thread(target=swap_many, args=(w,)) for w in range(SWAPPERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(p.name for p in dist.iterdir()) == ["a", "b"]
    assert (dist / "a").read_text() == (dist / "b").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app"]  # no old dist/ left


def test_a_killed_build_leaves_nothing_behind(monorepo: Path) -> None:
    """Its scratch folder goes with the next build; the dist/ it never swapped is intact."""
    run_doit(monorepo, "build")
    dist = monorepo / "apps/payments/dist"
    before = sorted(p.name for p in dist.iterdir())
    source = monorepo / "apps/payments/src/payments-app.js"
    source.write_text(source.read_text() + "\n// killed mid-build\n")
    package = monorepo / "apps/payments/package.json"
    data = json.loads(package.read_text())
    data["scripts"]["build"] = "node ../../tools/build-app.mjs && sleep 60"
    package.write_text(json.dumps(data))
    build = subprocess.Popen(
        [sys.executable, "-m", "doit", "build:payments"],
        cwd=monorepo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    scratch = monorepo / ".mfe/build-tmp"
    deadline = time.monotonic() + 60
    try:
        while not list(scratch.rglob("main-*.js")):  # the bundler has written its output
            assert build.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        os.killpg(build.pid, signal.SIGKILL)  # doit, its shell, node and sleep
        build.wait(timeout=30)
    assert leftovers(monorepo) != []
    assert sorted(p.name for p in dist.iterdir()) == before

    data["scripts"]["build"] = "node ../../tools/build-app.mjs"
    package.write_text(json.dumps(data))
    run_doit(monorepo, "-a", "build:accounts")  # another app's build cleans up too
    assert leftovers(monorepo) == []
