"""`.mfe/<env>/outputs.json`: where an environment's apps live, written by provisioning.

`doit infra` (AWS) or the local provisioning (emulator) write it; the shell and publish
read it. It holds public identifiers only (bucket, distribution, pool ids), never secrets.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mfe.errors import MfeError
from mfe.files import write_atomic

if TYPE_CHECKING:  # config is imported for annotations only: it loads these names' checks
    from mfe.config import Environment, Project


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
    """The Cognito IdP endpoint the browser posts InitiateAuth and RevokeToken to."""


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


def read_outputs(project: Project, env: Environment, hint: str | None = None) -> Outputs:
    """The outputs file; `hint` (the backend's) says what to run when it is missing."""
    hint = hint or f"run `doit infra env={env.name}`"
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
        raise MfeError(
            f"{path}: missing, so the URLs of environment '{env.name}' are unknown; {hint}"
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # not the shape written
        raise MfeError(f"{path}: unreadable ({exc}); delete it and {hint}") from None


def write_outputs(project: Project, outputs: Outputs) -> bool:
    """Write the file only when its content changes (doit's file_dep then stays quiet)."""
    path = project.outputs_file(outputs.env)
    text = outputs.to_json()
    if path.exists() and path.read_bytes() == text.encode():  # a damaged file is rewritten
        return False
    write_atomic(path, text)
    return True


def base_url(env: Environment, outputs: Outputs, app: str) -> str:
    """An app's public base URL: the mfe.toml override (custom domain) or the provisioned one."""
    url = env.urls.get(app) or outputs.apps[app].base_url
    return url if url.endswith("/") else url + "/"


def checked_base_url(project: Project, env: Environment, outputs: Outputs | None, app: str) -> str:
    """`base_url`, validated so no page gets an empty or relative URL."""
    if outputs is None or (app not in outputs.apps and app not in env.urls):
        raise MfeError(
            f"{project.outputs_file(env.name)}: no entry for app '{app}'; "
            f"provision it again (`doit infra env={env.name}`) or set "
            f"[env.{env.name}.urls] {app} in mfe.toml"
        )
    url = base_url(env, outputs, app)
    source = (
        f"mfe.toml [env.{env.name}.urls] {app}"
        if app in env.urls
        else f"{project.outputs_file(env.name)} apps.{app}.base_url"
    )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MfeError(
            f"app '{app}': base URL {url!r} (from {source}) is not an absolute "
            "http(s) URL; fix it there"
        )
    return url
