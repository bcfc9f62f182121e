"""A command that starts the emulator again after a stop says so plainly."""

from __future__ import annotations

import shutil
from pathlib import Path

from test_infra import make_project

from fixtures.repo import REPO, run_doit


def checkout(root: Path, port: int) -> Path:
    """mfe.toml, apps' package.json files, infra/ and dodo.py, on the emulator at `port`."""
    make_project(root, f"http://127.0.0.1:{port}")
    shutil.copy(REPO / "dodo.py", root)
    return root


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
