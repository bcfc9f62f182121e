"""Two doit runs of one checkout at once (real doit subprocesses): each loads the
dependency file when it starts and saves it when it ends; neither save may put back the
other's tasks as they were, so a third run finds every task up to date."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fixtures.aws import free_port
from fixtures.config import use_port
from fixtures.repo import executed_tasks, run_doit

DODO = """
from pathlib import Path

DOIT_CONFIG = {"backend": "mfe-json", "dep_file": "db.json", "verbosity": 0}

def copy_when_both_run(name, mode):
    def action():
        # A FIFO opened by both actions: each waits for the other, so both runs have
        # loaded the dependency file before either saves it (the overlap of two publishes).
        with open("rendezvous", mode) as fifo:
            fifo.write(name) if mode == "w" else fifo.read()
        Path(f"{name}.out").write_text(Path(f"{name}.in").read_text())
    return action

def task_copy():
    for name, mode in (("a", "w"), ("b", "r")):
        yield {
            "name": name,
            "actions": [copy_when_both_run(name, mode)],
            "file_dep": [f"{name}.in"],
            "targets": [f"{name}.out"],
        }
"""

ROUNDS = 5


def both_at_once(root: Path, *runs: list[str]) -> list[str]:
    """Run each `doit ARGS` at once; every one must pass. Returns their outputs."""

    def one(args: list[str]) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "doit", *args],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=600,
            env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"},
        )
        assert done.returncode == 0, f"doit {' '.join(args)}:\n{done.stdout}"
        return done.stdout

    with ThreadPoolExecutor(len(runs)) as pool:
        return list(pool.map(one, runs))


def test_two_runs_at_once_keep_each_others_tasks(tmp_path: Path) -> None:
    (tmp_path / "dodo.py").write_text(DODO)
    for round_ in range(ROUNDS):
        for name in ("a", "b"):
            (tmp_path / f"{name}.in").write_text(f"{name} {round_}")
        os.mkfifo(tmp_path / "rendezvous")
        both_at_once(tmp_path, ["copy:a"], ["copy:b"])
        (tmp_path / "rendezvous").unlink()
        # `list --status` judges each task without running it: U(p to date) or R(un).
        words = run_doit(tmp_path, "list", "--all", "--status").stdout.split()
        status = dict(zip(words[1::2], words[::2], strict=True))
        assert (status["copy:a"], status["copy:b"]) == ("U", "U"), (round_, status)


def test_two_one_app_publishes_at_once_leave_nothing_to_rebuild(built_monorepo: Path) -> None:
    """`doit publish app=accounts` and `doit publish app=payments` in one checkout, each
    building its app: a `doit build` afterwards builds nothing."""
    repo = built_monorepo
    use_port(repo, free_port())
    try:
        run_doit(repo, "publish")  # provisions the emulator's buckets once
        for round_ in range(3):
            for app, source in (("accounts", "src/data.js"), ("payments", "src/main.js")):
                path = repo / "apps" / app / source
                path.write_text(path.read_text() + f"\nexport const round{round_} = {round_};\n")
            outputs = both_at_once(repo, ["publish", "app=accounts"], ["publish", "app=payments"])
            assert "build:accounts" in executed_tasks(outputs[0]), outputs[0]
            assert "build:payments" in executed_tasks(outputs[1]), outputs[1]
            rebuilt = executed_tasks(run_doit(repo, "build").stdout)
            assert not {task for task in rebuilt if task.startswith("build:")}, (round_, rebuilt)
    finally:
        run_doit(repo, "local_stop", check=False)
