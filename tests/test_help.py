"""`doit help TASK` names the command-line variables each task reads."""

from __future__ import annotations

import re
import subprocess
import sys

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
