"""The `aws` kind with `endpoint_url`: an S3-compatible store (MinIO, SeaweedFS, R2).

A store has buckets and nothing else: no CloudFormation, CloudFront or Cognito. So
`doit infra` makes the buckets itself (one per app, named and tagged as the hosting stack
names and tags them, plus the environment's own build cache bucket) and writes outputs
with the store's path-style URLs, no distributions and no login; `doit destroy` deletes
those buckets, and those of apps removed since (found by their tags). No client of any
other service is ever made for it: a request meant for AWS must not leave for AWS.
Everything else (publish, releases, rollback) is the `aws` kind's: `AwsBackend` already
reads the outputs `doit infra` wrote and serves the page object without a distribution.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mfe.config import Environment, Project
from mfe.envs.aws import AwsBackend
from mfe.envs.bucket_tags import ENV, PROJECT, app_tags, bucket_tags, leftover_buckets, tag_bucket
from mfe.envs.local_lookup import bucket_names
from mfe.envs.local_provision import create_bucket
from mfe.envs.outputs import AppOutputs, Outputs, write_outputs
from mfe.envs.stacks import cache_parameters, resource_names
from mfe.errors import MfeError, aws_error_code, aws_status

if TYPE_CHECKING:
    from mfe.envs.backend import Log
    from mfe.envs.changes import Confirm
    from mfe.envs.session import Session


def aws_backend(project: Project, env: Environment) -> AwsBackend:
    """The `aws` kind's backend: AWS itself, or a store when `endpoint_url` names one."""
    return StoreBackend(project, env) if env.endpoint_url else AwsBackend(project, env)


@dataclass
class StoreBackend(AwsBackend):
    @property
    def endpoint(self) -> str:
        assert self.env.endpoint_url, "aws_backend picks a store only with an endpoint"
        return self.env.endpoint_url.rstrip("/")

    def no_credentials(self) -> str:
        return (
            f"no credentials for the S3-compatible store {self.endpoint} of environment "
            f"'{self.env.name}': export the store's keys as AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY (or name a profile holding them in AWS_PROFILE)"
        )

    def no_login(self) -> str | None:
        return (
            f"environment '{self.env.name}' is an S3-compatible store ({self.endpoint}, "
            f"mfe.toml [env.{self.env.name}] endpoint_url): its site has no login, so there is "
            "no user pool to add users to; add them to an AWS or the local environment's pool"
        )

    def client_settings(self, service: str) -> dict[str, Any]:
        if service != "s3":  # a client of another service would talk to AWS itself
            raise MfeError(
                f"environment '{self.env.name}' is an S3-compatible store ({self.endpoint}, "
                f"mfe.toml [env.{self.env.name}] endpoint_url): it has no {service}; "
                "that needs an AWS environment"
            )
        return {"endpoint_url": self.endpoint}

    def deploy(self, session: Session, log: Log, confirm: Confirm | None = None) -> Outputs:
        """Make the missing buckets (tagged), write the outputs; says when nothing changed."""
        self.check(session)
        project, env, s3 = self.project, self.env, session.s3
        names = resource_names(project, env)
        wanted = {
            bucket: app_tags(project.name, env.name, app) for app, bucket in names.buckets.items()
        }
        if cache_parameters(project, env) is not None:
            wanted[names.cache_bucket] = {
                PROJECT: project.name,
                ENV: env.name,
                "mfe:purpose": "build-cache",
            }
        else:
            log(f"build cache bucket {env.cache_bucket}: named in mfe.toml, made elsewhere")
        with self._store_errors(session, "listing its buckets"):
            have = bucket_names(s3)
        changed = [
            bucket
            for bucket, tags in wanted.items()
            if self._ensure_bucket(session, bucket, tags, bucket in have, log)
        ]
        apps = {
            app: AppOutputs(bucket=bucket, base_url=f"{self.endpoint}/{bucket}/")
            for app, bucket in names.buckets.items()
        }
        outputs = Outputs(
            env=env.name,
            region=env.region,
            apps=apps,
            endpoint_url=self.endpoint,
            cache_bucket=env.cache_bucket,
        )
        written = write_outputs(project, outputs)
        if not changed and not written:
            log(
                f"environment '{env.name}': nothing changed ({len(wanted)} buckets on "
                f"{self.endpoint} as they were; {project.outputs_file(env.name)} unchanged)"
            )
        else:
            log(f"outputs written to {project.outputs_file(env.name)}")
        return outputs

    def _ensure_bucket(
        self, session: Session, bucket: str, tags: dict[str, str], exists: bool, log: Log
    ) -> bool:
        """Make (or adopt, if untagged) `bucket`; whether anything changed. A bucket another
        project or environment tagged, or one the store says someone else owns, is taken."""
        s3 = session.s3
        with self._store_errors(session, f"making bucket '{bucket}'"):
            if exists:
                current = bucket_tags(s3, bucket)
                if current == tags:
                    return False
                theirs = {k: current[k] for k in (PROJECT, ENV) if k in current}
                if theirs and theirs != {k: tags[k] for k in (PROJECT, ENV)}:
                    shown = ", ".join(f"{k}={v}" for k, v in theirs.items())
                    raise self._taken(bucket, f"it is tagged {shown}")
                if not theirs:  # listed is not owned (a store may list every user's): ask
                    self._create(session, bucket)
                if not tag_bucket(s3, bucket, tags):
                    return False  # a store without bucket tags: nothing to change
                log(f"bucket {bucket}: exists; tagged as this environment's")
                return True
            self._create(session, bucket)
            tag_bucket(s3, bucket, tags)
        log(f"bucket {bucket}: created on {self.endpoint}")
        return True

    def _create(self, session: Session, bucket: str) -> None:
        """Create `bucket`, or find it is ours already; the store says if another has it."""
        s3 = session.s3
        try:
            create_bucket(s3, bucket, self.env.region)
        except s3.exceptions.BucketAlreadyExists:
            raise self._taken(bucket, "the store says another owner has it") from None
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass  # made since the listing (another `doit infra`), or made by hand: ours

    def _taken(self, bucket: str, why: str) -> MfeError:
        return MfeError(
            f"bucket '{bucket}' on {self.endpoint} is taken by someone else ({why}); "
            f"environment '{self.env.name}' names its buckets <project>-<env>-<app>: choose "
            "another [project] name or environment name in mfe.toml"
        )

    def destroy(self, session: Session, log: Log, confirm: Confirm) -> None:
        """The buckets `deploy` made, and those of apps removed since; no stack, ever."""
        from mfe.envs.teardown import Teardown, ask, delete_bucket

        self.check(session)
        project, env, s3 = self.project, self.env, session.s3
        names = resource_names(project, env)
        own = list(names.buckets.values())
        if cache_parameters(project, env) is not None:
            own.append(names.cache_bucket)
        with self._store_errors(session, "listing its buckets"):
            have = bucket_names(s3)
            current = [b for b in own if b in have and self._ours(session, b)]
            known = set(own) | {names.cache_bucket}
            leftovers = leftover_buckets(s3, have, project.name, env.name, known)
        notes = {b: f"app '{app}' is no longer in apps/" for b, app in leftovers.items()}
        teardown = Teardown(buckets=current + list(leftovers), notes=notes)
        if not ask(session, teardown, confirm, log):
            return
        with self._store_errors(session, "deleting its buckets"):
            for bucket in teardown.buckets:
                delete_bucket(s3, bucket, log)
        project.outputs_file(env.name).unlink(missing_ok=True)
        log(f"environment '{env.name}' destroyed on {self.endpoint}")

    def _ours(self, session: Session, bucket: str) -> bool:
        """Tagged with this project and environment, or untagged (made by hand, or before
        buckets were tagged) and owned by these credentials: a store may list every
        user's buckets, so the store is asked (a CreateBucket of a bucket that exists
        answers whose it is)."""
        tags = bucket_tags(session.s3, bucket)
        if PROJECT in tags or ENV in tags:
            return tags.get(PROJECT) == self.project.name and tags.get(ENV) == self.env.name
        try:
            self._create(session, bucket)
        except MfeError:
            return False
        return True

    @contextmanager
    def _store_errors(self, session: Session, doing: str) -> Iterator[None]:
        """botocore's failures as one line naming the store's URL and what to do."""
        from botocore.exceptions import BotoCoreError, ClientError

        from mfe.publish.remote import is_lost, refused_credentials

        where = f"the S3-compatible store {self.endpoint} of environment '{self.env.name}'"
        try:
            yield
        except ClientError as exc:
            code = aws_error_code(exc)
            refused = refused_credentials(session, code)
            if refused:
                raise MfeError(f"{refused} ({code}) while {doing} on {where}") from None
            raise MfeError(
                f"{where} answered {code or aws_status(exc)} while {doing}: {exc}"
            ) from None
        except (BotoCoreError, OSError) as exc:
            if is_lost(exc):
                raise MfeError(
                    f"{where} does not answer ({exc}) while {doing}: start it, or fix "
                    f"[env.{self.env.name}] endpoint_url in mfe.toml"
                ) from None
            raise MfeError(f"request to {where} failed while {doing}: {exc}") from None
