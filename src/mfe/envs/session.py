"""boto3 clients for an environment: emulator endpoint and dummy credentials on `local`,
the standard credential chain elsewhere, standard retries, and a request counter."""

from __future__ import annotations

import functools
import os
import threading
from collections import Counter
from typing import Any

from mfe.config import Environment
from mfe.errors import MfeError

LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class RequestCounter:
    """Counts HTTP requests per service (for reports and the request budget in benchmarks)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def attach(self, client: Any) -> Any:
        service = client.meta.service_model.service_name
        if service == "s3" or service.startswith("cloudfront"):
            service = "s3" if service == "s3" else "cloudfront"

        def count(**_: Any) -> None:
            with self._lock:
                self.counts[service] += 1

        client.meta.events.register("before-send", count)
        return client


_CLIENT_LOCK = threading.Lock()


@functools.cache
def _session() -> Any:
    """One boto3 session per process: creating one loads the service models (~0.1 s)."""
    import boto3

    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    return boto3.session.Session()


def client(
    env: Environment,
    service: str,
    counter: RequestCounter | None = None,
    max_pool_connections: int = 10,
) -> Any:
    """A boto3 client for `service` in `env` (imports boto3 lazily: it costs ~0.3 s)."""
    from botocore.config import Config

    kwargs: dict[str, Any] = {
        "region_name": env.region,
        "config": Config(
            retries={"mode": "standard", "max_attempts": 6},
            max_pool_connections=max_pool_connections,
            s3={"addressing_style": "path"} if env.endpoint_url else {},
        ),
    }
    if env.kind == "local":
        kwargs.update(LOCAL_CREDENTIALS, endpoint_url=env.endpoint_url)
    elif env.endpoint_url and service == "s3":
        kwargs["endpoint_url"] = env.endpoint_url
    with _CLIENT_LOCK:  # a boto3 session is not thread-safe; its clients are
        made = _session().client(service, **kwargs)
    return counter.attach(made) if counter else made


def require_credentials(env: Environment) -> None:
    """Fail early and clearly instead of a botocore NoCredentialsError mid-publish."""
    if env.kind == "local":
        return
    if _session().get_credentials() is None:
        raise MfeError(
            f"no AWS credentials for environment '{env.name}': set AWS_PROFILE, "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or use OIDC role assumption in CI"
        )
