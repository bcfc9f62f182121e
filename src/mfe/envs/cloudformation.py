"""CloudFormation: the change-set deploy of one stack (with deadlines), its outputs and its
deletion (both end in one message naming the stack and its failed resources, never a traceback).

`mfe.envs.aws` deploys the stacks of `mfe.envs.stacks` through it; `doit infra` shows each
change set and asks before one replaces or removes a stateful resource (`mfe.envs.changes`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mfe.envs.changes import Confirm, changes_of
from mfe.envs.outputs import AppOutputs, AuthOutputs, Outputs
from mfe.errors import MfeError, aws_error_code
from mfe.project import SHARED_APP

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudformation.type_defs import StackEventTypeDef

    from mfe.config import Environment


NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
CHANGE_SET_TIMEOUT = 600.0
"""Seconds a change set may take to be computed (usually a few)."""
STACK_TIMEOUT = 3600.0
"""Seconds a stack may take to create or update (CloudFront distributions take ~15 min)."""
GONE = "DELETE_COMPLETE"
Log = Callable[[str], None]


def outputs_from_stacks(
    env: Environment, hosting: dict[str, dict[str, str]], auth: dict[str, str]
) -> Outputs:
    """The outputs document from the stacks' Outputs (names as in infra/*.yaml)."""
    urls = {app: out.get("SiteUrl") for app, out in hosting.items()}
    for out in hosting.values():  # the parent's distribution serves the shared modules
        if out.get("SharedUrl"):
            urls[SHARED_APP] = out["SharedUrl"]
    try:
        apps = {
            app: AppOutputs(
                bucket=out["BucketName"],
                base_url=urls.get(app) or f"https://{out['DistributionDomainName']}/",
                distribution_id=out["DistributionId"],
                domain=out["DistributionDomainName"],
            )
            for app, out in hosting.items()
        }
        region = auth.get("Region", env.region)
        auth_outputs = AuthOutputs(
            user_pool_id=auth["UserPoolId"],
            client_id=auth["UserPoolClientId"],
            region=region,
            endpoint=f"https://cognito-idp.{region}.amazonaws.com/",
        )
    except KeyError as exc:
        raise MfeError(
            f"a stack of environment '{env.name}' lacks the output {exc}; "
            "check infra/*.yaml's Outputs section"
        ) from None
    return Outputs(
        env=env.name,
        region=env.region,
        apps=apps,
        endpoint_url=env.endpoint_url,
        auth=auth_outputs,
        cache_bucket=env.cache_bucket,
    )


def stack_status(cfn: CloudFormationClient, name: str) -> str | None:
    """The status of stack `name`, None when there is none.

    Listed rather than described: DescribeStacks answers a missing stack with a generic
    ValidationError whose only distinguishing mark is its message text.
    """
    for page in cfn.get_paginator("list_stacks").paginate():
        for summary in page["StackSummaries"]:
            if summary["StackName"] == name and summary["StackStatus"] != GONE:
                return summary["StackStatus"]
    return None


def stack_outputs(cfn: CloudFormationClient, name: str) -> dict[str, str]:
    """The Outputs of an existing stack as {key: value}."""
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}


def deploy_stack(
    cfn: CloudFormationClient,
    name: str,
    body: str,
    parameters: dict[str, str],
    *,
    poll: float = 5.0,
    log: Log = print,
    confirm: Confirm | None = None,
) -> bool:
    """Create or update stack `name` through a change set; False when nothing changed.

    Every change is printed first; an update that replaces or removes a bucket, distribution
    or user pool runs only if `confirm` says so (no `confirm`: refused).
    """
    status = stack_status(cfn, name)
    if status == "ROLLBACK_COMPLETE":
        log(f"{name}: deleting the stack left by a failed first create (ROLLBACK_COMPLETE)")
        delete_stack(cfn, name, poll=poll, log=log)
        status = None
    create = status is None or status == "REVIEW_IN_PROGRESS"
    change_set = "mfe-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    started = datetime.now(UTC)
    settled = False  # executed, or deleted: nothing of this run's left behind
    try:
        try:
            cfn.create_change_set(
                StackName=name,
                ChangeSetName=change_set,
                TemplateBody=body,
                Parameters=[
                    {"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()
                ],
                ChangeSetType="CREATE" if create else "UPDATE",
                Capabilities=["CAPABILITY_IAM"],
            )
        except cfn.exceptions.ClientError as exc:
            raise MfeError(f"stack {name}: the change set was refused: {exc}") from None
        described = wait_change_set(cfn, name, change_set, poll)
        if described["Status"] == "FAILED":
            reason = described.get("StatusReason", "")
            if any(marker in reason for marker in NO_CHANGES):
                settled = True  # said once, here, if it is left
                discard_change_set(cfn, name, change_set, log)
                log(f"{name}: no changes")
                return False
            raise MfeError(f"{name}: change set {change_set} failed: {reason}")
        changes = changes_of(described)
        log(f"{name}: {'creating' if create else 'updating'} ({len(changes)} changes)")
        for change in changes:
            log(change.line())
        risky = [change.line() for change in changes if change.destructive]
        question = f"{name}: this replaces or removes what holds files, URLs or users?"
        if risky and not (confirm is not None and confirm(question, risky)):
            raise MfeError(f"{name}: change set {change_set} not executed; nothing changed")
        try:
            cfn.execute_change_set(StackName=name, ChangeSetName=change_set)
        except cfn.exceptions.ClientError as exc:
            raise MfeError(_failure(cfn, name, started, str(exc))) from None
        settled = True
    finally:  # whatever ended it before the execution (no, a failure, Ctrl-C): none left
        if not settled:
            discard_change_set(cfn, name, change_set, log)
    status = _wait_stack(cfn, name, started, poll, log)
    if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        raise MfeError(_failure(cfn, name, started, f"ended in {status}"))
    log(f"{name}: {status}")
    return True


def discard_change_set(cfn: CloudFormationClient, name: str, change_set: str, log: Log) -> bool:
    """Delete a change set that will not be executed; one that never got made (Ctrl-C
    before CreateChangeSet reached CloudFormation) is fine. A failed deletion is said with
    the command that finishes it, and does not hide why the deploy stopped."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        cfn.delete_change_set(StackName=name, ChangeSetName=change_set)
    except ClientError as exc:
        if aws_error_code(exc) == "ChangeSetNotFound":
            return True
        problem: Exception = exc
    except BotoCoreError as exc:
        problem = exc
    else:
        return True
    log(
        f"{name}: change set {change_set} is left ({problem}); delete it with `aws "
        f"cloudformation delete-change-set --stack-name {name} --change-set-name {change_set}`"
    )
    return False


def delete_stack(
    cfn: CloudFormationClient, name: str, *, poll: float = 5.0, log: Log = print
) -> None:
    """Delete stack `name` and wait until it is gone; an MfeError naming the stack and each
    resource that failed to delete when CloudFormation gives up (DELETE_FAILED)."""
    # Followed by id: once deleted, a stack is no longer found by its name.
    stack_id = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackId"]
    started = datetime.now(UTC)
    cfn.delete_stack(StackName=name)
    status = _wait_stack(cfn, stack_id, started, poll, log, label=name)
    if status != GONE:
        raise MfeError(_failure(cfn, stack_id, started, f"deleting it ended in {status}", name))


def wait_change_set(
    cfn: CloudFormationClient,
    name: str,
    change_set: str,
    poll: float,
    timeout: float = CHANGE_SET_TIMEOUT,
) -> dict[str, Any]:
    """Poll until the change set is computed (or failed); an error after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = dict(
            cfn.describe_change_set(StackName=name, ChangeSetName=change_set)
        )
        if described["Status"] in ("CREATE_COMPLETE", "FAILED"):
            return described
        if time.monotonic() > deadline:
            raise MfeError(
                f"stack {name}: change set {change_set} still {described['Status']} after "
                f"{timeout:.0f} s; look at it in the CloudFormation console, then run "
                "`doit infra` again"
            )
        time.sleep(poll)


def _events(cfn: CloudFormationClient, name: str, since: datetime) -> list[StackEventTypeDef]:
    """The stack's events since `since`, oldest first."""
    events = []
    for page in cfn.get_paginator("describe_stack_events").paginate(StackName=name):
        fresh = [e for e in page["StackEvents"] if e["Timestamp"] >= since]
        events += fresh
        if len(fresh) < len(page["StackEvents"]):
            break
    return events[::-1]


def _wait_stack(
    cfn: CloudFormationClient,
    stack: str,
    since: datetime,
    poll: float,
    log: Log,
    timeout: float = STACK_TIMEOUT,
    label: str | None = None,
) -> str:
    """Poll `stack` (name or id; `label`: its name, for messages) until no longer in progress."""
    name = label or stack
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while True:
        for event in _events(cfn, stack, since):
            if event["EventId"] not in seen:
                seen.add(event["EventId"])
                reason = event.get("ResourceStatusReason")
                line = f"{name}: {event['LogicalResourceId']} {event['ResourceStatus']}"
                log(f"{line} ({reason})" if reason else line)
        status: str = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            return status
        if time.monotonic() > deadline:
            raise MfeError(
                f"stack {name}: still {status} after {timeout:.0f} s; follow it with "
                f"aws cloudformation describe-stack-events --stack-name {name}"
            )
        time.sleep(poll)


def _failure(
    cfn: CloudFormationClient, stack: str, since: datetime, what: str, label: str | None = None
) -> str:
    """One message: the stack, what happened, and each failed resource's reason."""
    name = label or stack
    try:
        failed = [
            f"  {e['LogicalResourceId']} ({e.get('ResourceType', '?')}): "
            f"{e.get('ResourceStatusReason', 'no reason given')}"
            for e in _events(cfn, stack, since)
            if e["ResourceStatus"].endswith("_FAILED")
        ]
    except cfn.exceptions.ClientError:
        failed = []
    details = "\n".join(["failed resources:", *failed]) if failed else ""
    return f"stack {name} failed: {what}\n{details}".rstrip() + (
        f"\nsee the stack's events: aws cloudformation describe-stack-events --stack-name {name}"
    )
