"""A file saved while its build runs is never recorded as built (real doit, real esbuild)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.repo import executed_tasks, run_doit, up_to_date_tasks

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

    scratch = monorepo / ".mfe/build-tmp/payments"
    proc = subprocess.Popen(
        [sys.executable, "-m", "doit", "build"],
        cwd=monorepo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not list(scratch.glob("main-*.js")):  # the bundler has written its output
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
LOCK_ROUNDS = 6


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
