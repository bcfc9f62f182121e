"""`doit infra` shows each change and asks before replacing or removing data (issue 15)."""

from __future__ import annotations

import io
import json
import os
import pty
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, TextIO

import pytest
from test_infra import make_project

from mfe.envs.changes import changes_of, confirmer
from mfe.envs.cloudformation import deploy_stack
from mfe.errors import MfeError

from fixtures.aws import DUMMY_AWS_ENV, local_client
from fixtures.proxy import FailingProxy
from fixtures.repo import REPO
from fixtures.serve import wait_until


def template(**resources: str) -> str:
    return json.dumps(
        {
            "Resources": {
                name: {"Type": kind, "Properties": _properties(name, kind)}
                for name, kind in resources.items()
            }
        }
    )


def _properties(name: str, kind: str) -> dict[str, Any]:
    if kind == "AWS::S3::Bucket":
        return {"BucketName": f"changes-{name.lower()}"}
    return {"QueueName": f"changes-{name.lower()}"}


def test_change_lines_and_what_counts_as_destructive() -> None:
    def change(action: str, kind: str, replacement: str | None = None) -> dict[str, Any]:
        resource = {"Action": action, "LogicalResourceId": "R", "ResourceType": kind}
        if replacement:
            resource["Replacement"] = replacement
        return {"Type": "Resource", "ResourceChange": resource}

    described = {
        "Changes": [
            change("Add", "AWS::S3::Bucket"),
            change("Modify", "AWS::S3::Bucket", "False"),
            change("Modify", "AWS::CloudFront::Distribution", "True"),
            change("Modify", "AWS::Cognito::UserPool", "Conditional"),
            change("Remove", "AWS::S3::Bucket"),
            change("Remove", "AWS::S3::BucketPolicy"),
        ]
    }
    found = changes_of(described)
    assert [c.action for c in found] == ["add", "modify", "replace", "replace?", "remove", "remove"]
    assert [c.destructive for c in found] == [False, False, True, True, True, False]
    assert found[2].line() == "  replace  R (AWS::CloudFront::Distribution)"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_change_sets_ask_before_removing_a_bucket(
    moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfn = local_client(moto_server, "cloudformation")
    lines: list[str] = []

    def deploy(body: str, yes: bool = False) -> bool:
        confirm = confirmer(yes, "doit infra env=prod --yes")
        return deploy_stack(
            cfn, "t-changes", body, {}, poll=0.05, log=lines.append, confirm=confirm
        )

    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal
    assert deploy(template(Bucket="AWS::S3::Bucket"))  # creating asks nothing
    assert deploy(
        template(Bucket="AWS::S3::Bucket", Queue="AWS::SQS::Queue")
    )  # an addition neither
    assert "  add      Queue (AWS::SQS::Queue)" in lines

    removal = template(Queue="AWS::SQS::Queue")
    with pytest.raises(MfeError) as refused:
        deploy(removal)
    message = str(refused.value)
    assert "no terminal" in message and "doit infra env=prod --yes" in message
    assert "remove   Bucket (AWS::S3::Bucket)" in message
    left = cfn.list_change_sets(StackName="t-changes")["Summaries"]
    assert [c for c in left if c["ExecutionStatus"] == "AVAILABLE"] == []  # not left behind
    resources = cfn.describe_stack_resources(StackName="t-changes")["StackResources"]
    assert "Bucket" in {r["LogicalResourceId"] for r in resources}

    answers = iter(["no", "yes"])
    monkeypatch.setattr("sys.stdin", Terminal(""))
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    with pytest.raises(MfeError, match="not executed; nothing changed"):
        deploy(removal)
    assert deploy(removal)  # answered yes
    resources = cfn.describe_stack_resources(StackName="t-changes")["StackResources"]
    assert {r["LogicalResourceId"] for r in resources} == {"Queue"}

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert deploy(template(Other="AWS::S3::Bucket", Queue="AWS::SQS::Queue"))
    assert deploy(template(Queue="AWS::SQS::Queue"), yes=True)  # --yes: no question
    resources = cfn.describe_stack_resources(StackName="t-changes")["StackResources"]
    assert {r["LogicalResourceId"] for r in resources} == {"Queue"}


def eof_terminal() -> tuple[TextIO, int]:
    """A real terminal (a pty) whose user pressed Ctrl-D at the start of a line: stdin
    and the primary side, to close."""
    primary, secondary = pty.openpty()
    os.write(primary, b"\x04")
    return os.fdopen(secondary, "r"), primary


@pytest.mark.parametrize("ending", ["CtrlD", "CtrlC"])
def test_a_question_ended_by_ctrl_d_or_ctrl_c_leaves_no_change_set(
    moto_server: str, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    """Only a refusal or a 'no' deleted the change set: an interrupted question left it on
    the stack. Ctrl-D is 'no' (it was an EOFError traceback)."""
    cfn = local_client(moto_server, "cloudformation")
    stack = f"t-ending-{ending.lower()}"
    assert deploy_stack(cfn, stack, template(**{ending: "AWS::S3::Bucket"}), {}, poll=0.05)
    removal = template(Queue="AWS::SQS::Queue")

    def ctrl_c(question: str, lines: list[str], expected: str = "yes") -> bool:
        raise KeyboardInterrupt  # what input() raises when Ctrl-C ends the question

    stdin, primary = eof_terminal()
    try:
        monkeypatch.setattr("sys.stdin", stdin)
        confirm = confirmer(False, "doit infra --yes") if ending == "CtrlD" else ctrl_c
        expected = MfeError if ending == "CtrlD" else KeyboardInterrupt
        with pytest.raises(expected) as ended:
            deploy_stack(cfn, stack, removal, {}, poll=0.05, confirm=confirm)
    finally:
        stdin.close()
        os.close(primary)

    if ending == "CtrlD":
        assert "not executed; nothing changed" in str(ended.value)
    left = cfn.list_change_sets(StackName=stack)["Summaries"]
    assert [c for c in left if c["ExecutionStatus"] == "AVAILABLE"] == []  # not left behind
    resources = cfn.describe_stack_resources(StackName=stack)["StackResources"]
    assert {r["LogicalResourceId"] for r in resources} == {ending}


def test_ctrl_c_while_the_change_set_is_computed_leaves_none(
    moto_server: str, tmp_path: Path
) -> None:
    """Ctrl-C after CreateChangeSet, before the question (CloudFormation still computing
    the change set): `doit infra` ends by SIGINT and deletes the change set all the same.
    The proxy holds the first DescribeChangeSet, so doit is stopped in that span."""
    root = tmp_path / "repo"
    make_project(root, moto_server)
    shutil.copy(REPO / "dodo.py", root / "dodo.py")
    stack = "mfe-demo-prod-cache"  # `doit infra` deploys the build cache's stack first
    cfn = local_client(moto_server, "cloudformation", region="eu-west-1")  # prod's region
    proxy = FailingProxy(
        moto_server, hold_body=lambda method, path, body: b"Action=DescribeChangeSet" in body
    )
    aws = {**DUMMY_AWS_ENV, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}"}
    try:
        with subprocess.Popen(
            [sys.executable, "-m", "doit", "infra", "env=prod", "--yes"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, **aws},
            start_new_session=True,  # SIGINT to its group, as a terminal's Ctrl-C
        ) as doit:
            wait_until(lambda: change_sets(cfn, stack), "no change set made", timeout=120)
            assert proxy.held.wait(30)  # doit waits for the change set to be computed
            os.killpg(doit.pid, signal.SIGINT)
            output, _ = doit.communicate(timeout=120)
    finally:
        proxy.close()
    text = output.decode()
    assert doit.returncode == -signal.SIGINT, text
    assert "Traceback" not in text, text
    assert change_sets(cfn, stack) == []


def change_sets(cfn: Any, stack: str) -> list[str]:
    """The names of the stack's change sets; none while there is no such stack."""
    try:
        summaries = cfn.list_change_sets(StackName=stack)["Summaries"]
    except cfn.exceptions.ClientError:
        return []
    return [summary["ChangeSetName"] for summary in summaries]
