"""`.mfe/<env>/outputs.json`: where an environment's apps live, written by provisioning.

`doit infra` (AWS) or the local provisioning (emulator) write it; the shell and publish
read it. It holds public identifiers only (bucket, distribution, pool ids), never secrets.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from mfe.config import Environment, Project
from mfe.errors import MfeError


@dataclass(frozen=True)
class AppOutputs:
    bucket: str
    base_url: str
    """Where the browser loads the app's files from; ends with '/'."""
    distribution_id: str | None = None
    domain: str | None = None
    """The CloudFront domain (dxxxx.cloudfront.net) when there is a distribution."""


@dataclass(frozen=True)
class AuthOutputs:
    user_pool_id: str
    client_id: str
    region: str
    endpoint: str
    """The Cognito IdP endpoint the browser posts InitiateAuth to."""


@dataclass(frozen=True)
class Outputs:
    env: str
    region: str
    apps: dict[str, AppOutputs]
    endpoint_url: str | None = None
    """The AWS API endpoint (the emulator on `local`); None means real AWS."""
    auth: AuthOutputs | None = None
    cache_bucket: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def read_outputs(project: Project, env: Environment) -> Outputs:
    path = project.outputs_file(env.name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        auth = data.get("auth")
        return Outputs(
            env=data["env"],
            region=data["region"],
            apps={name: AppOutputs(**app) for name, app in data["apps"].items()},
            endpoint_url=data.get("endpoint_url"),
            auth=AuthOutputs(**auth) if auth else None,
            cache_bucket=data.get("cache_bucket"),
            extra=data.get("extra", {}),
        )
    except FileNotFoundError:
        how = "doit publish" if env.kind == "local" else f"doit infra env={env.name}"
        raise MfeError(
            f"{path}: missing, so the URLs of environment '{env.name}' are unknown; run `{how}`"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise MfeError(
            f"{path}: unreadable ({exc}); delete it and run `doit infra env={env.name}`"
        ) from None


def write_outputs(project: Project, outputs: Outputs) -> bool:
    """Write the file only when its content changes (doit's file_dep then stays quiet)."""
    path = project.outputs_file(outputs.env)
    text = outputs.to_json()
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


def base_url(env: Environment, outputs: Outputs, app: str) -> str:
    """An app's public base URL: the mfe.toml override (custom domain) or the provisioned one."""
    url = env.urls.get(app) or outputs.apps[app].base_url
    return url if url.endswith("/") else url + "/"
