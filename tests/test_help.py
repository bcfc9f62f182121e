"""`doit help TASK` names the command-line variables each task reads; doit refuses others."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from doit import doit_cmd
from doit.loader import load_tasks

from mfe.errors import MfeError
from mfe.tasks import generate
from mfe.tasks.variables import META_KEY, VARIABLES, check_tasks

from fixtures.config import set_config
from fixtures.repo import REPO, copy_sources

EXPECTED = {
    "publish": ["env=", "app=", "preview="],
    "plan": ["env=", "app="],
    "rollback": ["env=", "app=", "to="],
    "releases": ["env=", "limit="],
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


@pytest.mark.parametrize(
    ("given", "usage"),
    [
        ("preview=", "preview=NAME"),
        ("env=", "env=NAME"),
        ("app=", "app=NAME"),
        ("to=", "to=RELEASE"),
    ],
)
def test_a_variable_given_empty_stops_doit(given: str, usage: str) -> None:
    """`doit publish preview=$PR` with PR unset published the live page, `env=$ENV` local."""
    result = doit_in_repo("list", given)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"variable '{given}' is empty" in result.stderr, result.stderr
    assert f"give a value ({usage}) or leave it out" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""  # stopped before any task


def test_a_project_dodo_declares_the_variables_it_reads_itself(tmp_path: Path) -> None:
    dodo = tmp_path / "dodo.py"
    dodo.write_text(
        "from mfe.tasks import generate\n"
        f"globals().update(generate({str(REPO / 'dodo.py')!r}, variables=['region']))\n"
    )
    assert doit_in_repo("-f", str(dodo), "list", "region=eu").returncode == 0
    refused = doit_in_repo("-f", str(dodo), "list", "regoin=eu")
    assert refused.returncode == 2 and "did you mean region=eu?" in refused.stderr


def repo_tasks(dodo_file: Path = REPO / "dodo.py", **own: Any) -> dict[str, Any]:
    """The repository's doit tasks by name, as doit loads them, plus a dodo's own creators."""
    return {task.name: task for task in load_tasks({**generate(str(dodo_file)), **own})}


@pytest.mark.parametrize(
    ("selected", "given", "refused"),
    [
        (["publish"], {"name": "pr-1"}, "name=pr-1"),  # meant preview=pr-1: a live release
        (["publish"], {"preview": "pr-1", "env": "prod"}, None),
        (["releases"], {"app": "accounts"}, "app=accounts"),
        (["build"], {"env": "prod"}, "env=prod"),  # `doit env=prod`: the default task
        (["serve"], {"env": "prod"}, "env=prod"),  # serve always renders dev
        (["local_stop", "releases"], {"to": "3"}, "to=3"),
        (["rollback"], {"app": "accounts", "to": "3"}, None),
        (["preview_rm"], {"name": "pr-1", "env": "prod"}, None),
        (["new_app"], {"name": "cart", "stack": "lit"}, None),
        (["ci"], {"env": "prod", "shard": "1/2", "base": "HEAD~1", "cache": "off"}, None),
        (["ci"], {"shards": "2"}, "shards=2"),
        (["ci_plan"], {"env": "prod", "base": "HEAD~1", "shards": "2"}, None),
        (["user_add"], {"username": "ann"}, None),
    ],
)
def test_a_variable_the_tasks_run_do_not_read_is_refused(
    monkeypatch: pytest.MonkeyPatch, selected: list[str], given: dict[str, str], refused: str | None
) -> None:
    tasks = repo_tasks()
    monkeypatch.setattr(doit_cmd, "_CMDLINE_VARS", given)
    if refused is None:
        check_tasks(tasks, selected)
        return
    with pytest.raises(MfeError) as caught:
        check_tasks(tasks, selected)
    message = str(caught.value)
    assert f"'{refused}'" in message and ", ".join(selected) in message, message
    assert f"`doit help {selected[0]}`" in message


def test_a_variable_read_by_a_task_run_first_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dodo's own task after `shell` (or `_ready`) takes env=: those read it."""
    own = {
        "task_report": lambda: {"actions": [], "task_dep": ["shell"]},
        "task_region": lambda: {"actions": [], "meta": {META_KEY: ["region"]}},
    }
    tasks = repo_tasks(**own)
    monkeypatch.setattr(doit_cmd, "_CMDLINE_VARS", {"env": "prod"})
    check_tasks(tasks, ["report"])
    monkeypatch.setattr(doit_cmd, "_CMDLINE_VARS", {"env": "prod", "region": "eu"})
    with pytest.raises(MfeError, match=r"'region=eu'.*they read env="):
        check_tasks(tasks, ["report"])
    check_tasks(tasks, ["report", "region"])
    check_tasks(tasks, ["report"], extra=["region"])  # generate(variables=['region'])


def test_publish_with_a_variable_it_does_not_read_runs_nothing(monorepo: Path) -> None:
    """`doit publish name=pr-1` (meant preview=pr-1) made a live release: now nothing runs."""
    result = doit_in_repo("publish", "env=dev", "name=pr-1", cwd=monorepo)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "error: 'name=pr-1' on the command line" in result.stdout, result.stdout
    assert "they read app=, env=, preview=" in result.stdout
    assert "`doit help publish`" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not list(monorepo.glob("apps/*/dist")), "publish built the apps before refusing"


def test_a_misspelled_task_is_refused_with_the_closest_names() -> None:
    """doit alone says 'Invalid parameter' (and `doit help pubish` prints its usage, exit 0)."""
    for args in (["pubish"], ["help", "pubish"]):
        result = doit_in_repo(*args)
        assert result.returncode == 3, result.stdout + result.stderr
        assert "did you mean `doit publish`?" in result.stderr, result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stdout == ""


def test_an_unknown_task_option_names_the_options_of_the_task() -> None:
    result = doit_in_repo("publish", "--forse")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "unknown option --forse for `doit publish` (did you mean --force?)" in result.stderr
    assert "--prune" in result.stderr and "CmdOption" not in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stdout == ""


def test_doit_in_a_subfolder_points_at_seek_file_as_the_readme_does() -> None:
    """README: from a subfolder, `doit -k publish` finds dodo.py (doit alone says 'use -f')."""
    folder = REPO / "apps" / "payments"
    result = doit_in_repo("list", cwd=folder)
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"no dodo.py in {folder}" in result.stderr, result.stderr
    assert "`doit -k list` (--seek-file)" in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    found = doit_in_repo("-k", "list", cwd=folder)
    assert found.returncode == 0 and "publish" in found.stdout, found.stdout + found.stderr


def test_doit_help_serve_names_the_shell_port_mfe_toml_sets(tmp_path: Path) -> None:
    root = copy_sources(tmp_path / "repo")
    set_config(root, "env.dev.port", 5399)
    result = doit_in_repo("help", "serve", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "shell port (default: 5399, [env.dev] port in mfe.toml)" in result.stdout


def test_plan_takes_verify_as_publish_does() -> None:
    """`doit plan --verify` shows what `doit publish --verify` uploads and writes back."""
    result = doit_in_repo("help", "plan")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--verify" in result.stdout


def readme_commands() -> dict[str, list[str]]:
    """The commands in the first column of README's Tasks table, by task: `doit ci_plan
    [base=GITREF] ...` under `ci_plan`; a plain `doit` is the default task, `build`."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Tasks\n", 1)[1].split("\n## ", 1)[0]
    commands: dict[str, list[str]] = {}
    for line in section.splitlines():
        if not line.startswith("| `doit"):
            continue
        first = re.split(r"(?<!\\)\|", line)[1].replace("\\|", "|")
        for command in re.findall(r"`(doit[^`]*)`", first):
            words = command.split()
            commands.setdefault(words[1] if len(words) > 1 else "build", []).append(command)
    return commands


def test_the_readme_tasks_table_shows_every_task_with_its_variables_and_options() -> None:
    """Every task `doit list` shows has a row, and every variable and option its `doit help`
    lists is in that row's command (README was missing `install`, `user_add`, `plan app=`,
    `plan --prune` and `rollback --wait`)."""
    listed = doit_in_repo("list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    tasks = [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]
    commands = readme_commands()
    missing = []
    for task in tasks:
        helped = doit_in_repo("help", task)
        assert helped.returncode == 0, helped.stdout + helped.stderr
        variables = re.findall(r"(?:Variables: |, )(\w+)=", helped.stdout.splitlines()[0])
        options = re.findall(r"^\s+(?:-\w, )?(--[\w-]+)", helped.stdout, re.MULTILINE)
        shown = " ".join(commands.get(task, []))
        words = {f"{v}=": rf"(?<![\w-]){v}=" for v in variables}
        words |= {option: rf"{option}(?![\w-])" for option in options}
        missing += [f"{task}: {w}" for w, pattern in words.items() if not re.search(pattern, shown)]
        if task not in commands:
            missing.append(f"{task}: no row")
    assert "ci_plan" in tasks and "install" in tasks and missing == [], missing
