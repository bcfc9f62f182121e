"""`doit help TASK` names the command-line variables each task reads."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mfe.tasks.variables import VARIABLES

from fixtures.repo import REPO

EXPECTED = {
    "publish": ["env=", "app=", "preview="],
    "plan": ["env=", "app="],
    "rollback": ["env=", "app=", "to="],
    "releases": ["env="],
    "preview_rm": ["env=", "name="],
    "shell": ["env="],
    "infra": ["env="],
    "local_stop": ["env="],
    "destroy": ["env=", "--yes"],
    "ci": ["env=", "base=", "cache="],
    "user_add": ["env=", "username="],
}


def test_every_variable_read_by_a_task_is_documented() -> None:
    read = set()
    for module in (REPO / "src" / "mfe" / "tasks").glob("*.py"):
        read |= set(re.findall(r"get_var\(\"(\w+)\"", module.read_text()))
    assert read - {"env"} <= set(VARIABLES), read  # `env` is read once, in tasks/__init__
    assert "env" in VARIABLES


@pytest.mark.parametrize(("task", "variables"), sorted(EXPECTED.items()))
def test_doit_help_lists_the_variables(task: str, variables: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "doit", "help", task],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    for variable in variables:
        assert variable in result.stdout, result.stdout


def doit_in_repo(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "doit", *args], cwd=cwd, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("given", "meant"), [("evn=prod", "env=prod"), ("preveiw=pr-1", "preview=pr-1")]
)
def test_a_misspelled_variable_stops_doit_naming_it(given: str, meant: str) -> None:
    """doit ignores unknown names: `doit publish evn=prod` would publish to local."""
    result = doit_in_repo("list", given)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"unknown variable '{given}'" in result.stderr, result.stderr
    assert f"did you mean {meant}?" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""  # stopped before any task


def test_a_variable_given_twice_with_two_values_stops_doit() -> None:
    result = doit_in_repo("list", "env=local", "env=prod")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "env= given more than once (env=local, env=prod)" in result.stderr, result.stderr
    assert doit_in_repo("list", "env=prod", "env=prod").returncode == 0  # same value: harmless


def test_a_project_dodo_declares_the_variables_it_reads_itself(tmp_path: Path) -> None:
    dodo = tmp_path / "dodo.py"
    dodo.write_text(
        "from mfe.tasks import generate\n"
        f"globals().update(generate({str(REPO / 'dodo.py')!r}, variables=['region']))\n"
    )
    assert doit_in_repo("-f", str(dodo), "list", "region=eu").returncode == 0
    refused = doit_in_repo("-f", str(dodo), "list", "regoin=eu")
    assert refused.returncode == 2 and "did you mean region=eu?" in refused.stderr
