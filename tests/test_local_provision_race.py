"""Several commands at once on a stopped emulator (three `doit infra` in three terminals,
a CI job's parallel steps): one starts it and provisions it, saying so once; the others
wait for it and find it provisioned, saying nothing (not "lost its state (restarted)",
and not provisioning it again)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from test_local_stop_shared import checkout

from mfe.envs.emulator import probe, stop_emulator

from fixtures.aws import free_port
from fixtures.repo import run_doit

COMMANDS = 3
ROUNDS = 4


def infra_at_once(root: Path, count: int) -> list[str]:
    """`doit infra` in `root`, `count` at once; each one's output (all must succeed)."""
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "doit", "infra"],
            cwd=root,
            env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(count)
    ]
    said = [child.communicate(timeout=300)[0] for child in children]
    for child, out in zip(children, said, strict=True):
        assert child.returncode == 0, out
    return said


def test_commands_at_once_on_a_stopped_emulator_provision_it_once(tmp_path: Path) -> None:
    port = free_port()
    project = checkout(tmp_path / "repo", port)
    try:
        run_doit(project.root, "infra")
        for _ in range(ROUNDS):
            run_doit(project.root, "local_stop", "--yes")
            assert probe(port) == "free"
            said = "\n".join(infra_at_once(project.root, COMMANDS))
            assert said.count("started the local AWS emulator") == 1, said
            assert said.count("local: provisioning environment 'local' on the new emulator") == 1
            assert "restarted" not in said and "local: the emulator" not in said, said
            assert said.count("local:") == 1, said
    finally:
        stop_emulator(project, project.env("local"))
