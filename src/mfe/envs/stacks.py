"""`doit infra`: the environment's CloudFormation stacks, deployed through change sets.

The names and parameters below are the single source for both the stacks (AWS) and the
local provisioning on the emulator (`mfe.envs.local`), so both produce the same resources.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mfe.config import Environment, Project
from mfe.envs import session as aws
from mfe.envs.outputs import AppOutputs, AuthOutputs, Outputs, write_outputs
from mfe.errors import MfeError

CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
"""The managed CloudFront cache policy `Managed-CachingOptimized`."""
CORS_AND_SECURITY_HEADERS = "e61eb60c-9c35-4d20-a928-2b84e02af89c"
"""The managed response headers policy `Managed-CORS-and-SecurityHeadersPolicy`: the shell
loads every app's modules cross-origin (SRI needs CORS), plus HSTS and nosniff."""
GUEST_USER, GUEST_PASSWORD = "guest", "awsguest"
"""The demo user of the `local` environment (as in the original Amplify demo)."""


@dataclass(frozen=True)
class Names:
    """Every name an environment's resources get, in AWS and on the emulator alike."""

    hosting_stacks: dict[str, str]
    auth_stack: str
    buckets: dict[str, str]
    comments: dict[str, str]
    """Distribution comments: how the local provisioning finds a distribution again."""
    user_pool: str
    client: str


def resource_names(project: Project, env: Environment) -> Names:
    apps = list(project.apps)
    return Names(
        hosting_stacks={app: f"{env.stack_prefix}-{app}-hosting" for app in apps},
        auth_stack=f"{env.stack_prefix}-auth",
        buckets={app: f"{project.name}-{env.name}-{app}" for app in apps},
        comments={app: f"mfe:{project.name}:{env.name}:{app}" for app in apps},
        user_pool=f"{project.name}-{env.name}-users",
        client=f"{project.name}-{env.name}-web",
    )


def auth_parameters(project: Project, env: Environment) -> dict[str, str]:
    """`infra/auth.yaml` parameters. `local` admits the demo password `awsguest`."""
    names = resource_names(project, env)
    local = env.kind == "local"
    return {
        "PoolName": names.user_pool,
        "ClientName": names.client,
        "PasswordMinLength": "8" if local else "12",
        "RequireCharacterClasses": "false" if local else "true",
        "AccessTokenMinutes": "60",
        "RefreshTokenDays": "30",
    }


def hosting_parameters(project: Project, env: Environment, app: str) -> dict[str, str]:
    """`infra/hosting.yaml` parameters for one app."""
    names = resource_names(project, env)
    return {
        "ProjectName": project.name,
        "EnvName": env.name,
        "AppName": app,
        "BucketName": names.buckets[app],
        "Comment": names.comments[app],
        "SpaFallback": "true" if project.apps[app].role == "parent" else "false",
    }


NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
Log = Callable[[str], None]


def deploy(project: Project, env: Environment, *, poll: float = 5.0, log: Log = print) -> Outputs:
    """Deploy every stack of `env` (local: provision the emulator) and write its outputs."""
    if env.kind == "local":
        from mfe.envs.local import ensure_ready

        outputs = ensure_ready(project, env)
        log(f"local emulator ready; outputs in {project.state_dir(env.name) / 'outputs.json'}")
        return outputs
    if env.kind != "aws":
        raise MfeError(f"environment '{env.name}' ({env.kind}) has no infrastructure to deploy")
    aws.require_credentials(env)
    cfn = aws.client(env, "cloudformation")
    names = resource_names(project, env)
    templates = project.root / "infra"
    hosting_body = _template(templates / "hosting.yaml")
    hosting: dict[str, dict[str, str]] = {}
    for app, stack in names.hosting_stacks.items():
        params = hosting_parameters(project, env, app)
        deploy_stack(cfn, stack, hosting_body, params, poll=poll, log=log)
        hosting[app] = stack_outputs(cfn, stack)
    auth_body = _template(templates / "auth.yaml")
    deploy_stack(
        cfn, names.auth_stack, auth_body, auth_parameters(project, env), poll=poll, log=log
    )
    outputs = outputs_from_stacks(env, hosting, stack_outputs(cfn, names.auth_stack))
    write_outputs(project, outputs)
    log(f"outputs written to {project.state_dir(env.name) / 'outputs.json'}")
    return outputs


def _template(path: Any) -> str:
    try:
        text: str = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MfeError(f"{path}: missing CloudFormation template") from None
    return text


def outputs_from_stacks(
    env: Environment, hosting: dict[str, dict[str, str]], auth: dict[str, str]
) -> Outputs:
    """The outputs document from the stacks' Outputs (names as in infra/*.yaml)."""
    try:
        apps = {
            app: AppOutputs(
                bucket=out["BucketName"],
                base_url=f"https://{out['DistributionDomainName']}/",
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


def _stack(cfn: Any, name: str) -> dict[str, Any] | None:
    try:
        stack: dict[str, Any] = cfn.describe_stacks(StackName=name)["Stacks"][0]
    except cfn.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return stack


def stack_outputs(cfn: Any, name: str) -> dict[str, str]:
    stack = _stack(cfn, name) or {}
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}


def deploy_stack(
    cfn: Any,
    name: str,
    body: str,
    parameters: dict[str, str],
    *,
    poll: float = 5.0,
    log: Log = print,
) -> bool:
    """Create or update stack `name` through a change set; False when nothing changed."""
    stack = _stack(cfn, name)
    if stack and stack["StackStatus"] == "ROLLBACK_COMPLETE":
        log(f"{name}: deleting the stack left by a failed first create (ROLLBACK_COMPLETE)")
        cfn.delete_stack(StackName=name)
        cfn.get_waiter("stack_delete_complete").wait(
            StackName=name, WaiterConfig={"Delay": max(poll, 0.1), "MaxAttempts": 360}
        )
        stack = None
    create = stack is None or stack["StackStatus"] == "REVIEW_IN_PROGRESS"
    change_set = "mfe-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    started = datetime.now(UTC)
    try:
        cfn.create_change_set(
            StackName=name,
            ChangeSetName=change_set,
            TemplateBody=body,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            ChangeSetType="CREATE" if create else "UPDATE",
            Capabilities=["CAPABILITY_IAM"],
        )
    except cfn.exceptions.ClientError as exc:
        raise MfeError(f"stack {name}: the change set was refused: {exc}") from None
    described = _wait_change_set(cfn, name, change_set, poll)
    if described["Status"] == "FAILED":
        reason = described.get("StatusReason", "")
        if any(marker in reason for marker in NO_CHANGES):
            cfn.delete_change_set(StackName=name, ChangeSetName=change_set)
            log(f"{name}: no changes")
            return False
        raise MfeError(f"{name}: change set {change_set} failed: {reason}")
    log(
        f"{name}: {'creating' if create else 'updating'} ({len(described.get('Changes', []))} changes)"
    )
    try:
        cfn.execute_change_set(StackName=name, ChangeSetName=change_set)
    except cfn.exceptions.ClientError as exc:
        raise MfeError(_failure(cfn, name, started, str(exc))) from None
    status = _wait_stack(cfn, name, started, poll, log)
    if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        raise MfeError(_failure(cfn, name, started, f"ended in {status}"))
    log(f"{name}: {status}")
    return True


def _wait_change_set(cfn: Any, name: str, change_set: str, poll: float) -> dict[str, Any]:
    while True:
        described: dict[str, Any] = cfn.describe_change_set(
            StackName=name, ChangeSetName=change_set
        )
        if described["Status"] in ("CREATE_COMPLETE", "FAILED"):
            return described
        time.sleep(poll)


def _events(cfn: Any, name: str, since: datetime) -> list[dict[str, Any]]:
    """The stack's events since `since`, oldest first."""
    events = []
    for page in cfn.get_paginator("describe_stack_events").paginate(StackName=name):
        fresh = [e for e in page["StackEvents"] if e["Timestamp"] >= since]
        events += fresh
        if len(fresh) < len(page["StackEvents"]):
            break
    return events[::-1]


def _wait_stack(cfn: Any, name: str, since: datetime, poll: float, log: Log) -> str:
    seen: set[str] = set()
    while True:
        for event in _events(cfn, name, since):
            if event["EventId"] not in seen:
                seen.add(event["EventId"])
                reason = event.get("ResourceStatusReason")
                line = f"{name}: {event['LogicalResourceId']} {event['ResourceStatus']}"
                log(f"{line} ({reason})" if reason else line)
        status: str = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            return status
        time.sleep(poll)


def _failure(cfn: Any, name: str, since: datetime, what: str) -> str:
    """One message: the stack, what happened, and each failed resource's reason."""
    try:
        failed = [
            f"  {e['LogicalResourceId']} ({e.get('ResourceType', '?')}): "
            f"{e.get('ResourceStatusReason', 'no reason given')}"
            for e in _events(cfn, name, since)
            if e["ResourceStatus"].endswith("_FAILED")
        ]
    except cfn.exceptions.ClientError:
        failed = []
    details = "\n".join(["failed resources:", *failed]) if failed else ""
    return f"stack {name} failed: {what}\n{details}".rstrip() + (
        f"\nsee the stack's events: aws cloudformation describe-stack-events --stack-name {name}"
    )
