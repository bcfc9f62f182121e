"""`doit destroy`: on `local` the project's buckets, distributions and user pool go, nothing
else on the emulator does (issue 15); on AWS the stacks, then the buckets they retain."""

from __future__ import annotations

import io
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from test_infra import make_project

from mfe.config import load_project
from mfe.envs.changes import confirmer
from mfe.envs.outputs import write_outputs
from mfe.envs.session import Session
from mfe.errors import MfeError

from fixtures.aws import DUMMY_AWS_ENV, local_client
from fixtures.repo import REPO, run_doit


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def everything(endpoint: str) -> tuple[set[str], set[str], set[str]]:
    """Bucket names, distribution comments and user pool names on the emulator."""
    s3, cf = local_client(endpoint), local_client(endpoint, "cloudfront")
    idp = local_client(endpoint, "cognito-idp")
    comments = {
        cf.get_distribution_config(Id=d["Id"])["DistributionConfig"]["Comment"]
        for d in cf.list_distributions()["DistributionList"].get("Items", [])
    }
    return (
        {b["Name"] for b in s3.list_buckets()["Buckets"]},
        comments,
        {p["Name"] for p in idp.list_user_pools(MaxResults=60)["UserPools"]},
    )


def test_destroy_on_local_removes_only_the_projects_resources(
    moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "repo", moto_server)
    session = Session(project, "local")
    outputs = session.outputs  # provisioned: buckets, distributions, pool, guest user
    s3 = local_client(moto_server)
    parent_bucket = outputs.apps["mfe-parent"].bucket
    s3.put_bucket_versioning(Bucket=parent_bucket, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"one", b"two"):  # two versions of one key
        s3.put_object(Bucket=parent_bucket, Key="index.html", Body=body)
    s3.delete_object(Bucket=parent_bucket, Key="index.html")  # and a delete marker
    s3.put_object(Bucket=outputs.apps["accounts"].bucket, Key="main-ABCDEFGH.js", Body=b"x")

    # another project's things on the same emulator
    s3.create_bucket(Bucket="someone-elses-bucket")
    s3.put_object(Bucket="someone-elses-bucket", Key="keep.txt", Body=b"keep")
    idp = local_client(moto_server, "cognito-idp")
    idp.create_user_pool(PoolName="someone-elses-users")
    local_client(moto_server, "cloudfront").create_distribution(
        DistributionConfig={
            "CallerReference": "other", "Comment": "mfe:other:local:app", "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "o.s3.amazonaws.com",
                                                  "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
            "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
                                     "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
        }
    )  # fmt: skip
    before = everything(moto_server)
    ours = set(o.bucket for o in outputs.apps.values()) | {project.env("local").cache_bucket}
    assert ours <= before[0]

    lines: list[str] = []
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal, no --yes: refused
    with pytest.raises(MfeError, match="no terminal"):
        session.backend.destroy(session, lines.append, confirmer(False, "doit destroy --yes"))
    monkeypatch.setattr("sys.stdin", Terminal(""))
    monkeypatch.setattr("builtins.input", lambda prompt: "prod")  # the wrong name
    with pytest.raises(MfeError, match="nothing deleted"):
        session.backend.destroy(session, lines.append, confirmer(False, "doit destroy --yes"))
    assert everything(moto_server) == before
    listed = "\n".join(lines)
    assert all(bucket in listed for bucket in ours if bucket)
    assert "user pool" in listed and "distribution" in listed

    monkeypatch.setattr("builtins.input", lambda prompt: "local")  # typed back
    session.backend.destroy(session, lines.append, confirmer(False, "doit destroy --yes"))

    buckets, comments, pools = everything(moto_server)
    assert buckets == before[0] - ours == {"someone-elses-bucket"}
    assert comments == {"mfe:other:local:app"}
    assert pools == {"someone-elses-users"}
    assert s3.get_object(Bucket="someone-elses-bucket", Key="keep.txt")["Body"].read() == b"keep"
    assert not project.outputs_file("local").exists()

    lines.clear()  # a second destroy finds nothing; outputs naming what is gone go too
    write_outputs(project, outputs)  # as an emulator restarted since the last command leaves
    session.backend.destroy(session, lines.append, confirmer(True, "doit destroy --yes"))
    assert "nothing of project 'mfe-demo' to delete" in lines[-1]
    assert not project.outputs_file("local").exists()


def add_extra_app(root: Path) -> None:
    """An app `extra` (removed again by the tests that add it)."""
    (root / "apps" / "extra").mkdir()
    (root / "apps" / "extra" / "package.json").write_text(
        '{"name": "extra", "scripts": {"build": "true"}}'
    )


def test_destroy_on_local_also_removes_what_a_removed_app_had(
    moto_server: str, tmp_path: Path
) -> None:
    """An app provisioned once, then deleted from apps/: its bucket and distribution are
    the environment's still (named by the distribution's `mfe:<project>:<env>:<app>`
    comment), so a destroy lists them, saying why, and deletes them: nothing is left."""
    root = tmp_path / "repo"
    make_project(root, moto_server)
    add_extra_app(root)
    project = load_project(root)
    session = Session(project, "local")
    outputs = session.outputs  # provisioned with the extra app
    assert "mfe-demo-local-extra" in everything(moto_server)[0]
    local_client(moto_server).put_object(
        Bucket=outputs.apps["extra"].bucket, Key="main-ABCDEFGH.js", Body=b"x"
    )

    shutil.rmtree(root / "apps" / "extra")
    project = load_project(root)
    lines: list[str] = []
    session = Session(project, "local")
    session.backend.destroy(session, lines.append, confirmer(True, "doit destroy --yes"))
    listed = "\n".join(lines)
    assert "mfe-demo-local-extra (emptied: every object version); app 'extra' is no" in listed
    assert "(mfe:mfe-demo:local:extra); app 'extra' is no longer in apps/" in listed
    buckets, comments, pools = everything(moto_server)
    assert not {b for b in buckets if b.startswith("mfe-demo-local-")}
    assert not {c for c in comments if c.startswith("mfe:mfe-demo:local:")}
    assert "mfe-demo-local-users" not in pools


def test_destroy_lists_what_goes_once(
    moto_server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The list was logged, then printed again by the question (or put in the refusal)."""
    root = tmp_path / "repo"
    project = make_project(root, moto_server)
    session = Session(project, "local")
    bucket = session.outputs.apps["mfe-parent"].bucket  # provisioned
    shutil.copy(REPO / "dodo.py", root / "dodo.py")
    refused = subprocess.run(
        [sys.executable, "-m", "doit", "destroy"],
        cwd=root,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={**os.environ, **DUMMY_AWS_ENV},
    )
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "no terminal to ask on" in output, output
    assert output.count(bucket) == 1, output

    lines: list[str] = []
    monkeypatch.setattr("sys.stdin", Terminal(""))
    monkeypatch.setattr("builtins.input", lambda prompt: "prod")  # the wrong name
    with pytest.raises(MfeError, match="nothing deleted"):
        session.backend.destroy(session, lines.append, confirmer(False, "doit destroy --yes"))
    shown = "\n".join(lines) + capsys.readouterr().out
    assert shown.count(bucket) == 1, shown


def test_ctrl_d_at_the_destroy_question_is_no(moto_server: str, tmp_path: Path) -> None:
    """Ctrl-D on a real terminal ended `doit destroy` with an EOFError traceback ('destroy
    failed unexpectedly', exit 2): it is 'no', one line, nothing deleted, a failing exit."""
    root = tmp_path / "repo"
    project = make_project(root, moto_server)
    bucket = Session(project, "local").outputs.apps["mfe-parent"].bucket  # provisioned
    shutil.copy(REPO / "dodo.py", root / "dodo.py")
    primary, secondary = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "doit", "destroy"],
        cwd=root,
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **DUMMY_AWS_ENV},
    ) as doit:
        os.close(secondary)
        assert doit.stdout is not None
        shown = read_until(doit.stdout.fileno(), b"Type 'local' to go ahead: ")
        os.write(primary, b"\x04")  # Ctrl-D
        rest, _ = doit.communicate(timeout=120)
    os.close(primary)
    output = (shown + rest).decode()
    assert doit.returncode == 1, output
    assert "the name was not typed back; nothing deleted" in output, output
    assert "Traceback" not in output and "unexpectedly" not in output, output
    local_client(moto_server).head_bucket(Bucket=bucket)


def read_until(fd: int, marker: bytes, timeout: float = 120) -> bytes:
    """What `fd` gives until `marker` (a prompt ends no line), failing after `timeout` s."""
    read = b""
    deadline = time.monotonic() + timeout
    while marker not in read:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 65536) if ready else b""
        assert chunk, f"no {marker!r} before {'end of output' if ready else 'timeout'}: {read!r}"
        read += chunk
    return read


def test_doit_destroy_without_a_running_emulator_says_so(monorepo: Path) -> None:
    from fixtures.aws import free_port
    from fixtures.config import use_port

    use_port(monorepo, free_port())
    result = run_doit(monorepo, "destroy", "--yes")
    assert "not running" in result.stdout and "in memory" in result.stdout


def test_aws_stacks_go_in_dependency_order(tmp_path: Path) -> None:
    from mfe.envs.stacks import resource_names
    from mfe.envs.teardown import stack_order

    project = make_project(tmp_path / "repo", "http://127.0.0.1:4566")
    names = resource_names(project, project.env("prod"))
    order = stack_order(names)
    assert order[: len(project.apps)] == list(names.hosting_stacks.values())
    assert order[len(project.apps) :] == [
        "mfe-demo-prod-auth",
        "mfe-demo-prod-certificate",
        "mfe-demo-prod-cache",
    ]


def aws_on(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """Every AWS client of an `aws` environment goes to the loopback emulator, never to AWS."""
    for name, value in {**DUMMY_AWS_ENV, "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(name, value)


class DeleteFails:
    """CloudFormation holding one stack whose distribution fails to delete (DELETE_FAILED,
    which moto's CloudFormation never ends in): answers each call by operation, in any order."""

    def __init__(self, stack: str, bucket: str) -> None:
        self.stack, self.bucket = stack, bucket
        self.stack_id = f"arn:aws:cloudformation:eu-west-1:123456789012:stack/{stack}/1"
        self.status, self.events = "CREATE_COMPLETE", list[dict[str, Any]]()
        self.created = datetime.now(UTC)

    def __call__(self, model: Any, **_: Any) -> tuple[Any, Any]:
        from botocore.awsrequest import AWSResponse

        return AWSResponse(None, 200, {}, None), getattr(self, model.name)()

    def _stack(self) -> dict[str, Any]:
        return {"StackName": self.stack, "StackId": self.stack_id, "CreationTime": self.created,
                "StackStatus": self.status}  # fmt: skip

    def ListStacks(self) -> dict[str, Any]:
        return {"StackSummaries": [self._stack()]}

    def DescribeStacks(self) -> dict[str, Any]:
        outputs = [{"OutputKey": "BucketName", "OutputValue": self.bucket}]
        return {"Stacks": [{**self._stack(), "Outputs": outputs}]}

    def DeleteStack(self) -> dict[str, Any]:
        self.status = "DELETE_FAILED"
        now = datetime.now(UTC)
        event = {"StackId": self.stack_id, "StackName": self.stack, "Timestamp": now}
        self.events = [
            {**event, "EventId": "3", "LogicalResourceId": self.stack, "ResourceStatus": "DELETE_FAILED"},
            {**event, "EventId": "2", "LogicalResourceId": "Distribution",
             "ResourceType": "AWS::CloudFront::Distribution", "ResourceStatus": "DELETE_FAILED",
             "ResourceStatusReason": "The distribution is not disabled."},
            {**event, "EventId": "1", "LogicalResourceId": self.stack, "ResourceStatus": "DELETE_IN_PROGRESS"},
        ]  # fmt: skip
        return {}

    def DescribeStackEvents(self) -> dict[str, Any]:
        return {"StackEvents": self.events}


def test_a_stack_that_fails_to_delete_is_one_error_naming_it_and_its_resources(
    moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mfe.envs.stacks import resource_names

    aws_on(monkeypatch, moto_server)  # S3 and the certificate's region: the emulator's
    project = make_project(tmp_path / "repo", moto_server)
    session = Session(project, "prod")
    names = resource_names(project, session.env)
    stack = names.hosting_stacks[project.parent.name]
    fake = DeleteFails(stack, names.buckets[project.parent.name])
    session.cloudformation.meta.events.register("before-call.cloudformation.*", fake)
    lines: list[str] = []

    with pytest.raises(MfeError) as caught:
        session.backend.destroy(session, lines.append, confirmer(True, "doit destroy --yes"))

    message = str(caught.value)
    assert f"stack {stack} failed" in message and "DELETE_FAILED" in message
    assert "Distribution (AWS::CloudFront::Distribution): The distribution is not" in message
    assert "doit destroy env=prod" in message


def test_a_rerun_finishes_a_destroy_interrupted_between_a_stack_and_its_bucket(
    moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_infra import buckets_only

    from mfe.envs.stacks import hosting_parameters, resource_names

    aws_on(monkeypatch, moto_server)
    project = make_project(tmp_path / "repo", moto_server)
    session = Session(project, "prod")
    names = resource_names(project, session.env)
    cfn, s3 = session.cloudformation, session.s3
    for app, stack in names.hosting_stacks.items():  # what moto's CloudFormation can make
        parameters = hosting_parameters(project, session.env, app)
        cfn.create_stack(
            StackName=stack,
            TemplateBody=buckets_only("hosting.yaml"),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        )
        s3.put_object(Bucket=names.buckets[app], Key="index.html", Body=b"x")
    here = {"CreateBucketConfiguration": {"LocationConstraint": session.env.region}}
    s3.create_bucket(Bucket="mfe-demo-staging-accounts", **here)  # another environment's
    # The first run deleted the parent's stack, then stopped (Ctrl-C, a CI timeout) before
    # emptying the bucket the stack retained.
    cfn.delete_stack(StackName=names.hosting_stacks[project.parent.name])
    orphan = names.buckets[project.parent.name]
    assert orphan in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    lines: list[str] = []

    session.backend.destroy(session, lines.append, confirmer(True, "doit destroy --yes"))

    left = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert not left & set(names.buckets.values()), lines
    assert "mfe-demo-staging-accounts" in left
    assert any(orphan in line for line in lines if line.startswith("  bucket"))  # listed first

    lines.clear()  # and a run after a destroy that stopped once every stack was gone
    ours = {*names.buckets.values(), names.cache_bucket}  # the cache stack's too
    for bucket in ours:
        s3.create_bucket(Bucket=bucket, **here)
    session.backend.destroy(session, lines.append, confirmer(True, "doit destroy --yes"))
    assert not {b["Name"] for b in s3.list_buckets()["Buckets"]} & ours
    assert lines[-1] == "environment 'prod' destroyed"


def test_destroy_on_aws_also_removes_the_stacks_of_a_removed_app(
    moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An app deployed by `doit infra`, then deleted from apps/: its hosting stack (named
    `<stack_prefix>-<app>-hosting`, its parameters naming project, environment and app) is
    listed with the reason and deleted with the others, before the auth stack, and so is
    the bucket it retains. Another environment's stack whose name starts alike stays.
    (moto's CloudFormation makes the hosting template's bucket only.)"""
    from test_infra import buckets_only

    from mfe.envs.stacks import auth_parameters, hosting_parameters, resource_names

    aws_on(monkeypatch, moto_server)
    root = tmp_path / "repo"
    make_project(root, moto_server)
    add_extra_app(root)
    project = load_project(root)
    session = Session(project, "prod")
    names = resource_names(project, session.env)
    cfn, s3 = session.cloudformation, session.s3

    def create(stack: str, template: str, parameters: dict[str, str]) -> None:
        cfn.create_stack(
            StackName=stack,
            TemplateBody=template,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        )

    for app, stack in names.hosting_stacks.items():
        create(stack, buckets_only("hosting.yaml"), hosting_parameters(project, session.env, app))
    s3.put_object(Bucket=names.buckets["extra"], Key="index.html", Body=b"x")
    auth = (REPO / "infra" / "auth.yaml").read_text()
    create(names.auth_stack, auth, auth_parameters(project, session.env))
    other = {  # environment 'prod-eu' of stack prefix mfe-demo-prod-eu: not ours
        **hosting_parameters(project, session.env, "extra"),
        "EnvName": "prod-eu",
        "BucketName": "mfe-demo-prod-eu-extra",
    }
    create("mfe-demo-prod-eu-extra-hosting", buckets_only("hosting.yaml"), other)

    shutil.rmtree(root / "apps" / "extra")
    project = load_project(root)
    session = Session(project, "prod")
    lines: list[str] = []
    session.backend.destroy(session, lines.append, confirmer(True, "doit destroy --yes"))

    listed = "\n".join(lines)
    why = "; app 'extra' is no longer in apps/"
    assert f"  stack         mfe-demo-prod-extra-hosting{why}" in listed, listed
    assert f"  bucket        mfe-demo-prod-extra (emptied: every object version){why}" in listed
    deleting = [line for line in lines if line.endswith(": deleting")]
    assert deleting.index("mfe-demo-prod-extra-hosting: deleting") < deleting.index(
        f"{names.auth_stack}: deleting"
    )
    left = {
        s["StackName"]
        for s in cfn.list_stacks()["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    }
    assert left == {"mfe-demo-prod-eu-extra-hosting"}, left
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert "mfe-demo-prod-extra" not in buckets and "mfe-demo-prod-eu-extra" in buckets
    assert not buckets & set(names.buckets.values())
