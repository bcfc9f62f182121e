"""The `aws` kind: real AWS through the standard credential chain.

Its resources come from the CloudFormation stacks `doit infra` deploys (`mfe.envs.stacks`),
the build cache bucket included; every other command reads the outputs that deploy wrote,
and never creates anything. With `endpoint_url` (an S3-compatible store) the subclass
`mfe.envs.store.StoreBackend` deploys and destroys buckets instead, and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mfe.config import App, Environment, Project
from mfe.envs.aws_settings import profile_without_keys
from mfe.envs.cloudformation import deploy_stack, outputs_from_stacks, stack_outputs
from mfe.envs.outputs import Outputs, base_url, checked_base_url, read_outputs, write_outputs
from mfe.envs.stacks import (
    auth_parameters,
    cache_parameters,
    certificate_parameters,
    hosting_parameters,
    resource_names,
)
from mfe.errors import ConfigError, MfeError

if TYPE_CHECKING:
    from mfe.envs.backend import Log
    from mfe.envs.changes import Confirm
    from mfe.envs.session import Session

POLL_SECONDS = 5.0
CERTIFICATE_REGION = "us-east-1"


@dataclass
class AwsBackend:
    project: Project
    env: Environment
    poll: float = POLL_SECONDS
    """Seconds between CloudFormation status polls."""

    def check(self, session: Session) -> None:
        """Fail early and clearly instead of a botocore NoCredentialsError mid-publish."""
        if not session.has_credentials():
            profile = profile_without_keys()
            if profile is not None:
                raise ConfigError(profile)
            raise MfeError(self.no_credentials())

    def no_credentials(self) -> str:
        return (
            f"no AWS credentials for environment '{self.env.name}': set AWS_PROFILE, "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or use OIDC role assumption in CI"
        )

    def client_settings(self, service: str) -> dict[str, Any]:
        # An S3-compatible store (MinIO, SeaweedFS, R2) replaces S3 only.
        if self.env.endpoint_url and service == "s3":
            return {"endpoint_url": self.env.endpoint_url}
        return {}

    def client_hooks(self) -> tuple[Callable[[Any], None], ...]:
        return ()  # AWS (and an S3-compatible store) keeps the standard retries

    def lost(self, exc: BaseException) -> str | None:
        return None  # AWS (and a store) keeps what it was sent: a re-run goes on from it

    def start(self) -> None:
        pass

    def ready(self, session: Session) -> Outputs:
        return read_outputs(self.project, self.env, self.hint())

    def existing(self, session: Session) -> Outputs:
        return self.ready(session)  # `ready` creates nothing on AWS either: `doit infra` does

    def deploy(self, session: Session, log: Log, confirm: Confirm | None = None) -> Outputs:
        """Deploy the build cache's stack, the hosting stack of every app and the auth stack;
        write the outputs."""
        self.check(session)
        project, env, cfn = self.project, self.env, session.cloudformation
        names = resource_names(project, env)
        self._deploy_cache(session, log, confirm)
        certificate = self._certificate(session, log, confirm)
        hosting_body = _template(project.root / "infra" / "hosting.yaml")
        hosting: dict[str, dict[str, str]] = {}
        # The parent first: the shared modules' bucket lets the parent's distribution read it.
        parent = project.parent.name
        for app in sorted(names.hosting_stacks, key=lambda name: name != parent):
            stack = names.hosting_stacks[app]
            reader = hosting.get(parent, {}).get("DistributionId", "")
            params = hosting_parameters(project, env, app, certificate, reader)
            deploy_stack(cfn, stack, hosting_body, params, poll=self.poll, log=log, confirm=confirm)
            hosting[app] = stack_outputs(cfn, stack)
        auth_body = _template(project.root / "infra" / "auth.yaml")
        auth_params = auth_parameters(project, env, demo_password=False)
        deploy_stack(
            cfn, names.auth_stack, auth_body, auth_params, poll=self.poll, log=log, confirm=confirm
        )
        outputs = outputs_from_stacks(env, hosting, stack_outputs(cfn, names.auth_stack))
        write_outputs(project, outputs)
        log(f"outputs written to {project.outputs_file(env.name)}")
        return outputs

    def _deploy_cache(self, session: Session, log: Log, confirm: Confirm | None = None) -> None:
        """The build cache bucket's stack, first: CI's plan job runs `doit infra` before it
        looks the cache up, and the bucket serves CI even when a later stack fails. Nothing
        when `[env] cache_bucket` names a bucket made elsewhere."""
        parameters = cache_parameters(self.project, self.env)
        if parameters is None:
            log(f"build cache bucket {self.env.cache_bucket}: named in mfe.toml, made elsewhere")
            return
        stack = resource_names(self.project, self.env).cache_stack
        body = _template(self.project.root / "infra" / "cache.yaml")
        cfn = session.cloudformation
        deploy_stack(cfn, stack, body, parameters, poll=self.poll, log=log, confirm=confirm)

    def _certificate(self, session: Session, log: Log, confirm: Confirm | None) -> str:
        """The custom domain's certificate ARN: given in mfe.toml, or from the certificate
        stack, deployed in us-east-1 (CloudFront reads certificates there only); "" without
        a domain."""
        domain = self.env.domain
        if domain is None:
            return ""
        if domain.certificate_arn:
            return domain.certificate_arn
        stack = resource_names(self.project, self.env).certificate_stack
        cfn = session.client_in("cloudformation", CERTIFICATE_REGION)
        body = _template(self.project.root / "infra" / "certificate.yaml")
        log(f"{stack}: certificate for {domain.name} and *.{domain.name} in {CERTIFICATE_REGION}")
        params = certificate_parameters(self.env)
        deploy_stack(cfn, stack, body, params, poll=self.poll, log=log, confirm=confirm)
        arn = stack_outputs(cfn, stack).get("CertificateArn")
        if not arn:
            raise MfeError(
                f"stack {stack} has no CertificateArn output; see infra/certificate.yaml"
            )
        return arn

    def destroy(self, session: Session, log: Log, confirm: Confirm) -> None:
        """The stacks in dependency order, then the buckets they retain (emptied)."""
        from mfe.envs.teardown import destroy_stacks

        self.check(session)
        names = resource_names(self.project, self.env)

        def cfn_for(stack: str) -> Any:
            if stack == names.certificate_stack:
                return session.client_in("cloudformation", CERTIFICATE_REGION)
            return session.cloudformation

        destroy_stacks(session, names, cfn_for, confirm, log, self.poll)

    def stored_outputs(self) -> Outputs | None:
        return read_outputs(self.project, self.env, self.hint())

    def app_url(self, app: App, outputs: Outputs | None) -> str:
        return checked_base_url(self.project, self.env, outputs, app.name)

    def site_url(self, outputs: Outputs) -> str:
        return base_url(self.env, outputs, self.project.parent.name) + self._page(outputs)

    def preview_url(self, outputs: Outputs, name: str) -> str:
        """`https://<parent site>/previews/NAME/`: the edge function maps navigation below it
        to its index.html (CloudFront's default root object applies at `/` only)."""
        parent = base_url(self.env, outputs, self.project.parent.name)
        return parent + f"previews/{name}/" + self._page(outputs)

    def _page(self, outputs: Outputs) -> str:
        """ "index.html" on a plain S3-compatible store (no distribution in front: no default
        root object, no edge function), "" behind CloudFront."""
        if outputs.apps[self.project.parent.name].distribution_id is None:
            return "index.html"
        return ""

    def conditional_writes(self) -> bool | None:
        # AWS S3 honours them; an S3-compatible store behind endpoint_url is probed once.
        return None if self.env.endpoint_url else True

    def hint(self) -> str:
        return f"run `doit infra env={self.env.name}` to create it"

    def no_login(self) -> str | None:
        return None  # the auth stack's user pool

    def stop(self, session: Session, confirm: Confirm) -> str:
        return f"environment '{self.env.name}' runs no local AWS emulator; nothing to stop"


def _template(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MfeError(f"{path}: missing CloudFormation template") from None
