"""Commands that read what is published (`doit releases`) or take part of it back (`doit
rollback`, `doit preview_rm`) start no emulator and provision nothing, as `aws s3 ls` or
`amplify status` create nothing: after `doit destroy` or `doit local_stop` they say that
nothing is published. And a command that starts the emulator again says so plainly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_destroy import everything
from test_infra import make_project

from mfe.config import load_project
from mfe.envs.session import Session

from fixtures.aws import refused
from fixtures.repo import REPO, run_doit

READERS = [["releases"], ["rollback"], ["preview_rm", "name=x"]]
"""Each with the exit code it has when nothing is published: the listing answers, the
others fail (there is nothing to roll back or remove)."""
NO_EMULATOR = (
    "no emulator runs for environment 'local' (it keeps its state in memory): nothing is "
    "published; `doit publish` starts it"
)
NOT_PROVISIONED = (
    "environment 'local' is not provisioned: nothing is published; `doit publish` provisions it"
)


def checkout(root: Path, port: int) -> Path:
    """mfe.toml, apps' package.json files, infra/ and dodo.py, on the emulator at `port`."""
    make_project(root, f"http://127.0.0.1:{port}")
    shutil.copy(REPO / "dodo.py", root)
    return root


def exit_code(task: list[str]) -> int:
    return 0 if task == ["releases"] else 1


@pytest.mark.parametrize("task", READERS)
def test_without_a_running_emulator_none_is_started(
    tmp_path: Path, free_port: int, task: list[str]
) -> None:
    root = checkout(tmp_path / "repo", free_port)
    try:
        result = run_doit(root, *task, check=False)
        assert result.returncode == exit_code(task), result.stdout
        assert NO_EMULATOR in result.stdout, result.stdout
        assert "started the local AWS emulator" not in result.stdout
        assert refused(free_port)
        assert not (root / ".mfe/local/outputs.json").exists()
    finally:
        run_doit(root, "local_stop", check=False)  # what a regression would leave running


@pytest.mark.parametrize("task", READERS)
def test_after_destroy_nothing_is_provisioned_again(
    moto_server: str, tmp_path: Path, task: list[str]
) -> None:
    root = checkout(tmp_path / "repo", int(moto_server.rsplit(":", 1)[1]))
    Session(load_project(root), "local").outputs  # noqa: B018 -- provisioned
    run_doit(root, "destroy", "--yes")
    gone = everything(moto_server)
    assert "mfe-demo-local-mfe-parent" not in gone[0]

    result = run_doit(root, *task, check=False)
    assert result.returncode == exit_code(task), result.stdout
    assert NOT_PROVISIONED in result.stdout, result.stdout
    assert everything(moto_server) == gone
    assert not (root / ".mfe/local/outputs.json").exists()


def test_a_checkout_finds_what_another_provisioned_and_writes_nothing(
    moto_server: str, tmp_path: Path
) -> None:
    """No outputs file here: the resources are found by name (a read), not made again."""
    port = int(moto_server.rsplit(":", 1)[1])
    first = checkout(tmp_path / "first", port)
    Session(load_project(first), "local").outputs  # noqa: B018 -- provisioned by the first
    made = everything(moto_server)
    second = checkout(tmp_path / "second", port)

    listed = run_doit(second, "releases")
    assert "environment 'local' has no release yet" in listed.stdout, listed.stdout
    removed = run_doit(second, "preview_rm", "name=x", check=False)
    assert "environment 'local' has no preview named 'x'" in removed.stdout, removed.stdout
    assert everything(moto_server) == made
    assert not (second / ".mfe/local/outputs.json").exists()


def test_a_command_that_starts_the_emulator_after_a_stop_says_so_plainly(
    tmp_path: Path, free_port: int
) -> None:
    """Not "has lost its state (restarted)" right after "started the local AWS emulator"."""
    root = checkout(tmp_path / "repo", free_port)
    try:
        run_doit(root, "infra")  # starts the emulator and provisions it
        run_doit(root, "local_stop")
        again = run_doit(root, "infra")
        assert "started the local AWS emulator" in again.stdout, again.stdout
        assert "local: provisioning environment 'local' on the new emulator" in again.stdout
        assert "lost its state" not in again.stdout, again.stdout
    finally:
        run_doit(root, "local_stop", check=False)
