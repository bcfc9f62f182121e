"""`doit destroy env=NAME`: remove an environment's resources, after saying what goes.

Called by the backends (`LocalBackend.destroy`, `AwsBackend.destroy`, `StoreBackend.destroy`
for an S3-compatible store, which deletes buckets only): the emulator's
resources of this project are deleted through the API; an AWS environment's stacks are
deleted in dependency order (hosting, then auth, then the certificate the distributions
used, then the build cache), and the buckets the hosting and cache templates retain
(`DeletionPolicy: Retain`) are emptied (every version and delete marker) and deleted after
their stack.
Nothing belonging to another project or environment is touched: everything is found by
the names of `mfe.envs.stacks.resource_names`, and what an app removed from apps/ since
left behind by its environment's marks (a distribution comment, a bucket's tags, a
hosting stack's name and parameters).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mfe.envs.local_lookup import bucket_names
from mfe.envs.stacks import bucket_name, comment_prefix
from mfe.errors import MfeError, aws_error_code

if TYPE_CHECKING:
    from mfe.envs.changes import Confirm
    from mfe.envs.session import Session
    from mfe.envs.stacks import Names

Log = Callable[[str], None]


@dataclass
class Teardown:
    """What a destroy deletes, found before asking."""

    buckets: list[str] = field(default_factory=list)
    distributions: dict[str, str] = field(default_factory=dict)
    """id -> comment (local: deleted through the API)."""
    user_pools: dict[str, str] = field(default_factory=dict)
    """id -> name (local)."""
    stacks: list[str] = field(default_factory=list)
    """In deletion order (AWS)."""
    notes: dict[str, str] = field(default_factory=dict)
    """bucket name or distribution id -> why it goes too (an app removed from apps/)."""

    def lines(self) -> list[str]:
        return (
            [f"  stack         {name}{self._note(name)}" for name in self.stacks]
            + [
                f"  bucket        {name} (emptied: every object version){self._note(name)}"
                for name in self.buckets
            ]
            + [
                f"  distribution  {i} ({comment}){self._note(i)}"
                for i, comment in self.distributions.items()
            ]
            + [f"  user pool     {i} ({name}) and its users" for i, name in self.user_pools.items()]
        )

    def _note(self, key: str) -> str:
        return f"; {self.notes[key]}" if key in self.notes else ""

    def empty(self) -> bool:
        return not (self.buckets or self.distributions or self.user_pools or self.stacks)


def ask(session: Session, teardown: Teardown, confirm: Confirm, log: Log) -> bool:
    """Print the list and ask for the environment's name; False when nothing is to be done.

    The list is logged whatever the answer (`--yes` too: the run's record of what went), so
    the question comes without it: once is enough on a terminal and in a refusal."""
    env = session.env.name
    if teardown.empty():  # outputs left naming it (an emulator restarted since) go too
        session.project.outputs_file(env).unlink(missing_ok=True)
        log(f"environment '{env}': nothing of project '{session.project.name}' to delete")
        return False
    question = f"Delete environment '{env}' of project '{session.project.name}'?"
    log(f"destroy env={env} deletes:")
    for line in teardown.lines():
        log(line)
    if not confirm(question, [], expected=env):
        raise MfeError(f"destroy env={env}: the name was not typed back; nothing deleted")
    return True


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object version and delete marker of `bucket`; how many were deleted."""
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        keys = [
            {"Key": item["Key"], "VersionId": item["VersionId"]}
            for listing in ("Versions", "DeleteMarkers")
            for item in page.get(listing, [])
        ]
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise MfeError(
                    f"bucket {bucket}: could not delete {first['Key']}: {first['Message']}"
                )
            deleted += len(batch)
    return deleted


def delete_bucket(s3: Any, bucket: str, log: Log) -> None:
    try:
        count = empty_bucket(s3, bucket)
        s3.delete_bucket(Bucket=bucket)
    except s3.exceptions.NoSuchBucket:
        log(f"bucket {bucket}: already gone")
        return
    log(f"bucket {bucket}: {count} object versions and the bucket deleted")


# -- local: the emulator's resources of this project, through the API -----------------


def local_teardown(session: Session, names: Names) -> Teardown:
    """The project's resources on the emulator, those of apps removed from apps/ since they
    were provisioned included: their distributions carry this environment's comment prefix
    (`mfe:<project>:<env>:<app>`), which names the app, so its bucket too."""
    s3, cloudfront, idp = session.s3, session.cloudfront, session.cognito
    project, env = session.project.name, session.env.name
    have = bucket_names(s3)
    wanted = [*names.buckets.values(), session.env.cache_bucket or ""]
    teardown = Teardown(buckets=[b for b in wanted if b and b in have])
    prefix = comment_prefix(project, env)
    # every page: others' distributions and pools on a shared emulator must not hide ours
    for page in cloudfront.get_paginator("list_distributions").paginate():
        for item in page["DistributionList"].get("Items", []):
            config = cloudfront.get_distribution_config(Id=item["Id"])["DistributionConfig"]
            comment = config.get("Comment", "")
            if not comment.startswith(prefix):
                continue
            teardown.distributions[item["Id"]] = comment
            app = comment.removeprefix(prefix)
            if app in names.comments:
                continue
            teardown.notes[item["Id"]] = f"app '{app}' is no longer in apps/"
            bucket = bucket_name(project, env, app)
            if bucket in have and bucket not in teardown.buckets:
                teardown.buckets.append(bucket)
                teardown.notes[bucket] = f"app '{app}' is no longer in apps/"
    for pools in idp.get_paginator("list_user_pools").paginate(PaginationConfig={"PageSize": 60}):
        for pool in pools["UserPools"]:
            if pool["Name"] == names.user_pool:
                teardown.user_pools[pool["Id"]] = pool["Name"]
    return teardown


def destroy_local(session: Session, names: Names, confirm: Confirm, log: Log) -> None:
    teardown = local_teardown(session, names)
    if not ask(session, teardown, confirm, log):
        return
    for bucket in teardown.buckets:
        delete_bucket(session.s3, bucket, log)
    cloudfront = session.cloudfront
    for distribution in teardown.distributions:
        # as in AWS: only a disabled distribution can be deleted, with its current ETag
        current = cloudfront.get_distribution_config(Id=distribution)
        config = current["DistributionConfig"]
        config["Enabled"] = False
        updated = cloudfront.update_distribution(
            Id=distribution, IfMatch=current["ETag"], DistributionConfig=config
        )
        cloudfront.delete_distribution(Id=distribution, IfMatch=updated["ETag"])
        log(f"distribution {distribution}: deleted")
    for pool_id in teardown.user_pools:
        session.cognito.delete_user_pool(UserPoolId=pool_id)
        log(f"user pool {pool_id}: deleted")
    session.project.outputs_file(session.env.name).unlink(missing_ok=True)
    log(f"environment '{session.env.name}' destroyed on the emulator")


# -- aws: the stacks, in dependency order ------------------------------------------------


def stack_order(names: Names, removed: dict[str, str] | None = None) -> list[str]:
    """Hosting stacks first (their distributions use the certificate), those of apps
    removed from apps/ (`removed`: app -> stack) too, then auth, then the certificate
    stack; the build cache's last (nothing depends on it)."""
    return [
        *names.hosting_stacks.values(),
        *(removed or {}).values(),
        names.auth_stack,
        names.certificate_stack,
        names.cache_stack,
    ]


def destroy_stacks(
    session: Session,
    names: Names,
    cfn_for: Callable[[str], Any],
    confirm: Confirm,
    log: Log,
    poll: float,
) -> None:
    """Delete the environment's stacks; `cfn_for(stack)` is the CloudFormation client of
    the stack's region (the certificate stack lives in us-east-1)."""
    from mfe.envs.cloudformation import delete_stack, stack_status

    removed = removed_app_stacks(session, names, cfn_for(names.auth_stack))
    present = [
        s
        for s in stack_order(names, removed)
        if s in removed.values() or stack_status(cfn_for(s), s) not in (None, "DELETE_COMPLETE")
    ]
    retained = retained_buckets(session, names, present, cfn_for, removed)
    teardown = Teardown(stacks=present, buckets=list(retained))
    for app, stack in removed.items():
        why = f"app '{app}' is no longer in apps/"
        teardown.notes[stack] = why
        teardown.notes.update({b: why for b, owner in retained.items() if owner == stack})
    if not ask(session, teardown, confirm, log):
        return
    for stack in present:
        log(f"{stack}: deleting")
        try:
            delete_stack(cfn_for(stack), stack, poll=poll, log=log)
        except MfeError as exc:
            raise MfeError(
                f"{exc}\nremove what blocks those resources, then run "
                f"`doit destroy env={session.env.name}` again: it goes on from there"
            ) from None
        log(f"{stack}: deleted")
        for bucket in [b for b, owner in retained.items() if owner == stack]:
            delete_bucket(session.s3, bucket, log)
    for bucket in [b for b, owner in retained.items() if owner not in present]:
        delete_bucket(session.s3, bucket, log)  # its stack went in an earlier, interrupted run
    session.project.outputs_file(session.env.name).unlink(missing_ok=True)
    log(f"environment '{session.env.name}' destroyed")


def retained_buckets(
    session: Session,
    names: Names,
    present: list[str],
    cfn_for: Callable[[str], Any],
    removed: dict[str, str] | None = None,
) -> dict[str, str]:
    """bucket -> the stack that retains it (hosting, build cache): named by the outputs of
    the stacks still there, and found by its deterministic name when its stack is gone (a
    destroy interrupted between a stack and its bucket leaves a bucket no output names).
    `removed`: app -> hosting stack of the apps removed from apps/ since."""
    from mfe.envs.cloudformation import stack_outputs

    buckets = {names.hosting_stacks[app]: bucket for app, bucket in names.buckets.items()}
    project, env = session.project.name, session.env.name
    buckets.update(
        {stack: bucket_name(project, env, app) for app, stack in (removed or {}).items()}
    )
    buckets[names.cache_stack] = names.cache_bucket
    found: dict[str, str] = {}
    for stack, bucket in buckets.items():
        output = stack_outputs(cfn_for(stack), stack).get("BucketName") if stack in present else ""
        if output:
            found[output] = stack
        elif bucket_exists(session.s3, bucket):
            found[bucket] = stack
    return found


def removed_app_stacks(session: Session, names: Names, cfn: Any) -> dict[str, str]:
    """app -> hosting stack, of the apps removed from apps/ since `doit infra` deployed
    them: a stack named `<stack_prefix>-<app>-hosting` whose parameters name this project
    and environment (another environment's prefix may start with this one's)."""
    from mfe.envs.cloudformation import GONE

    prefix, suffix = f"{session.env.stack_prefix}-", "-hosting"
    ours = set(names.hosting_stacks.values())
    candidates = [
        summary["StackName"]
        for page in cfn.get_paginator("list_stacks").paginate()
        for summary in page["StackSummaries"]
        if summary["StackStatus"] != GONE
        and summary["StackName"].startswith(prefix)
        and summary["StackName"].endswith(suffix)
        and summary["StackName"] not in ours
    ]
    found: dict[str, str] = {}
    for stack in candidates:
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        given = {
            p["ParameterKey"]: p.get("ParameterValue", "")
            for p in described.get("Parameters") or []
        }
        app = given.get("AppName", "")
        mine = (given.get("ProjectName"), given.get("EnvName")) == (
            session.project.name,
            session.env.name,
        )
        if mine and app and stack == f"{prefix}{app}{suffix}":
            found[app] = stack
    return found


def bucket_exists(s3: Any, bucket: str) -> bool:
    """Whether `bucket` exists and is this account's (S3 answers 403 for another's)."""
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if aws_error_code(exc) in ("404", "NoSuchBucket", "NotFound", "403", "AccessDenied"):
            return False
        raise
    return True
