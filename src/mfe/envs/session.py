"""One environment's AWS side for one command: the AWS clients, the request count and
the outputs.

Every client of the package is made here, one per service, with the backend's settings
(endpoint, credentials, its client hooks: the local emulator's stops retrying once it is
gone), standard retries and a hook that counts every request by service, so reports
count provisioning calls too; none sends `Expect: 100-continue` (`no_expect_continue`).
Clients are botocore's (what boto3 returns too, minus the S3 transfer methods):
importing boto3 also loads s3transfer, which only a multipart upload needs (`mfe.publish.upload`). Imported on first use.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mfe.config import Environment, Project
from mfe.envs.aws_settings import settings_errors
from mfe.envs.backend import Backend, backend_for
from mfe.envs.outputs import Outputs

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudfront import CloudFrontClient
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_s3 import S3Client

_CLIENT_LOCK = threading.Lock()


CREDENTIAL_SOURCES = {
    "env": "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the environment",
    "shared-credentials-file": "~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE), profile "
    "AWS_PROFILE or default",
    "config-file": "~/.aws/config (AWS_CONFIG_FILE), profile AWS_PROFILE or default",
}
"""Where botocore found the credentials (its `Credentials.method`), in the user's words."""


@functools.cache
def _botocore_session() -> Any:
    """One botocore session per process: it caches the service models (~0.05 s each)."""
    import botocore.session

    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    return botocore.session.get_session()


@dataclass(frozen=True)
class ClientSpec:
    """What makes one client, picklable (for upload worker processes)."""

    service: str
    region: str
    settings: dict[str, Any]
    """The backend's: endpoint_url and credentials (local), nothing on AWS."""
    config: dict[str, Any]
    """`botocore.config.Config` keywords."""
    hooks: tuple[Callable[[Any], None], ...] = ()
    """The backend's, called with the new client (a local emulator's: no retries once it is
    gone); picklable."""

    def make(self) -> Any:
        from botocore.config import Config

        with settings_errors():
            made = _botocore_session().create_client(
                self.service, region_name=self.region, config=Config(**self.config), **self.settings
            )
        made.meta.events.register("before-send", no_expect_continue)
        for hook in self.hooks:
            hook(made)
        return made


def no_expect_continue(request: Any, **_: Any) -> None:
    """Send no `Expect: 100-continue` (botocore adds it to every S3 PUT).

    When a server answers such a request with its final status instead of `100 Continue`
    (every store does for an empty body; a refused conditional write may too), botocore
    keeps that status on the pooled connection and pins it on the connection's next
    answer: a write that succeeded reads as a 412 after a 30 s stall, or the reverse
    (boto/botocore#3755). Every body sent here is at most one 8 MiB part, so waiting for
    the go-ahead saves little; the header is not signed, so dropping it is safe."""
    request.headers.pop("Expect", None)


class Session:
    """The clients, request counter and outputs of `env` for one command."""

    def __init__(
        self, project: Project, env: Environment | str, outputs: Outputs | None = None
    ) -> None:
        self.project = project
        self.env = project.env(env)
        self.backend: Backend = backend_for(project, self.env)
        self.requests: Counter[str] = Counter()
        """HTTP requests sent, by service (`s3`, `cloudfront`, `cognito-idp`, ...)."""
        self._outputs = outputs
        self._clients: dict[str, Any] = {}
        self._count_lock = threading.Lock()
        self._outputs_lock = threading.Lock()

    @property
    def outputs(self) -> Outputs:
        """The environment's outputs, made ready by the backend on first use."""
        with self._outputs_lock:
            if self._outputs is None:
                self._outputs = self.backend.ready(self)
            return self._outputs

    def has_credentials(self) -> bool:
        """Whether the standard credential chain finds any. SSO and assumed-role ones are
        fetched here (botocore defers them to the first request, which they would fail
        with a traceback mid-command); their clients reuse them."""
        with settings_errors():
            found = _botocore_session().get_credentials()
            if found is not None:
                found.get_frozen_credentials()
            return found is not None

    def access_key(self) -> tuple[str, str] | None:
        """(access key id, where it came from) of the credentials the clients sign with, for
        a store that refuses them; None when there are none. Made clients resolved them
        already: no lookup here."""
        explicit = self.backend.client_settings("s3").get("aws_access_key_id")
        if explicit:
            return str(explicit), f"environment '{self.env.name}' sets it"
        with settings_errors():
            found = _botocore_session().get_credentials()
        if found is None:
            return None
        method = str(found.method)
        return str(found.access_key), CREDENTIAL_SOURCES.get(method, f"botocore's {method!r}")

    def client(self, service: str) -> Any:
        """The one client of `service` in this session."""
        with _CLIENT_LOCK:  # a botocore session is not thread-safe; its clients are
            made = self._clients.get(service)
            if made is None:
                made = self._make(service)
                self._clients[service] = made
        return made

    def client_in(self, service: str, region: str) -> Any:
        """A client of `service` in another region (the custom domain's certificate stack
        lives in us-east-1 whatever the environment's region); counted like the others."""
        if region == self.env.region:
            return self.client(service)
        key = f"{service}@{region}"
        with _CLIENT_LOCK:
            made = self._clients.get(key)
            if made is None:
                made = self._make(service, region)
                self._clients[key] = made
        return made

    def spec(self, service: str, region: str | None = None) -> ClientSpec:
        """How this session makes its `service` client (an upload worker process makes the
        same one from it)."""
        config = {
            "retries": {"mode": "standard", **_max_attempts()},
            "max_pool_connections": max(16, self.project.publish.workers + 2),
            "s3": {"addressing_style": "path"} if self.env.endpoint_url else {},
            # Checksums only where an API requires them: every object's md5 (its ETag) and
            # sha256 are checked by the publish itself, S3-compatible stores (R2, older
            # MinIO) have refused the newer default checksum headers, and computing a CRC
            # per file is client CPU on a publish of thousands of files.
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
        }
        settings = self.backend.client_settings(service)
        hooks = self.backend.client_hooks()
        return ClientSpec(service, region or self.env.region, settings, config, hooks)

    def _make(self, service: str, region: str | None = None) -> Any:
        made = self.spec(service, region).make()

        def count(**_: Any) -> None:
            self.add_requests(service, 1)

        made.meta.events.register("before-send", count)
        return made

    def add_requests(self, service: str, count: int) -> None:
        """Count requests sent for this session elsewhere (an upload worker process)."""
        with self._count_lock:
            self.requests[service] += count

    @property
    def s3(self) -> S3Client:
        client: S3Client = self.client("s3")
        return client

    @property
    def cloudfront(self) -> CloudFrontClient:
        client: CloudFrontClient = self.client("cloudfront")
        return client

    @property
    def cloudformation(self) -> CloudFormationClient:
        client: CloudFormationClient = self.client("cloudformation")
        return client

    @property
    def cognito(self) -> CognitoIdentityProviderClient:
        client: CognitoIdentityProviderClient = self.client("cognito-idp")
        return client

    def counts(self, since: Counter[str] | None = None) -> dict[str, int]:
        """Requests by service (since a snapshot of `requests`), S3 and CloudFront always."""
        made = self.requests - (since or Counter())
        return {"s3": made["s3"], "cloudfront": made["cloudfront"], **made}


def _max_attempts() -> dict[str, int]:
    """Six tries per request, unless `AWS_MAX_ATTEMPTS` says otherwise: botocore reads it
    only when the client's config names no number (the AWS CLI honours it too)."""
    return {} if os.environ.get("AWS_MAX_ATTEMPTS") else {"max_attempts": 6}
