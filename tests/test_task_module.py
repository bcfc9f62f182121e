"""The task module stays light and self-describing: `doit list` is what users run first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from doit.loader import load_tasks

from mfe.tasks import generate

from fixtures.repo import run_doit

HEAVY = ("boto3", "botocore", "jinja2", "rich")

LIST_IN_PROCESS = f"""
import sys
from doit.doit_cmd import DoitMain

code = DoitMain().run(["list"])
assert "mfe.tasks" in sys.modules, "dodo.py did not load mfe.tasks"
loaded = sorted({{name.partition(".")[0] for name in sys.modules}} & set({HEAVY!r}))
print("HEAVY:" + ",".join(loaded))
sys.exit(code)
"""


def test_doit_list_imports_no_boto3_jinja2_or_rich(monorepo: Path) -> None:
    """`doit list` in a fresh interpreter: dodo.py -> mfe.tasks, and nothing heavy with it."""
    result = subprocess.run(
        [sys.executable, "-c", LIST_IN_PROCESS],
        cwd=monorepo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HEAVY:\n" in result.stdout, result.stdout  # none of them was imported
    assert "build" in result.stdout  # and the listing itself was printed


def test_doit_list_shows_every_task_with_a_one_line_doc(monorepo: Path) -> None:
    tasks = load_tasks(generate(str(monorepo / "dodo.py")))
    public = {task.name for task in tasks if not task.subtask_of and not task.name.startswith("_")}
    assert {"build", "install", "publish", "serve", "ci"} <= public

    listing = run_doit(monorepo, "list").stdout.splitlines()
    documented = {}
    for line in listing:
        name, _, doc = line.partition(" ")
        documented[name] = doc.strip()
    assert set(documented) == public, listing
    for name, doc in documented.items():
        assert doc, f"task {name} has no doc line"
