"""The `[env.NAME]` tables of `mfe.toml`: each environment's kind, region, ports, URLs and
cache, checked key by key.

Split from `mfe.config` (which loads the whole file) because environments have the most
rules: per-kind defaults, keys a kind does not use, endpoint and host-name grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from mfe.domain import load_domain
from mfe.errors import ConfigError, closest, shown
from mfe.project import App, Environment
from mfe.regions import region_problem
from mfe.toml_table import Table


@dataclass(frozen=True)
class _KindDefaults:
    """What an environment of one kind gets when its table leaves a key out."""

    region: str | None = None
    port: int | None = None
    endpoint: str | None = None
    """Formatted with the port: the emulator's API endpoint."""
    cache_bucket: str | None = None
    """Formatted with the project and environment names."""
    listens: bool = False
    """Its port is a server's on 127.0.0.1, so no app's dev port may be the same."""
    port_shared: bool = False
    """Environments of this kind may share one port (one emulator serves them all)."""
    provisioned: bool = True
    """It has AWS (or emulator) resources, so its name must make valid resource names."""
    serves_browsers: bool = False
    """Its servers answer browsers directly: `allowed_hosts` widens their Host check."""
    unused: frozenset[str] = frozenset()
    """Keys of `[env.NAME]` that mean nothing for this kind: set, they are a mistake."""
    aws_regions: bool = False
    """Its `region` must be one AWS has (unless `endpoint_url` names a store of its own)."""


_OWN_CACHE_BUCKET = "{project}-{env}-build-cache"
"""The environment's own cache bucket (`resource_names(...).cache_bucket`), made by the
emulator's provisioning or, on AWS, by the cache stack."""

_DOMAIN_KEYS = ("domain", "hosted_zone_id", "certificate_arn")
_KIND_DEFAULTS: dict[str, _KindDefaults] = {
    "local": _KindDefaults(
        "us-east-1",
        4566,
        "http://127.0.0.1:{port}",
        _OWN_CACHE_BUCKET,
        listens=True,
        port_shared=True,
        # No stacks: the emulator is provisioned through the API. A domain is checked and
        # ignored with a note (a table copied from an AWS environment stays valid). The
        # endpoint is the emulator's own, on `port`: another would get the calls of an
        # emulator started elsewhere.
        unused=frozenset({"stack_prefix", "allowed_hosts", "endpoint_url"}),
    ),
    "dev": _KindDefaults(
        "us-east-1",
        5170,
        listens=True,
        provisioned=False,
        serves_browsers=True,
        # Only the dev servers on 127.0.0.1: no AWS, no cache, URLs from the apps' dev ports.
        unused=frozenset(
            {"region", "endpoint_url", "stack_prefix", "urls", "cache_bucket", "cache_prefix"}
            | set(_DOMAIN_KEYS)
        ),
    ),
    "aws": _KindDefaults(
        cache_bucket=_OWN_CACHE_BUCKET,
        unused=frozenset({"port", "allowed_hosts"}),
        aws_regions=True,
    ),
}


def load_envs(project: str, table: Table, apps: dict[str, App]) -> dict[str, Environment]:
    data = dict(table.data)
    data.setdefault("local", {})
    data.setdefault("dev", {})
    table.data = data
    envs: dict[str, Environment] = {}
    emulator_port = _local_emulator_port(table)
    for name in data:
        env_table = table.sub(name)
        default_kind = name if name in ("local", "dev") else "aws"
        kind = env_table.get("kind", str, default_kind)
        if kind not in _KIND_DEFAULTS:
            raise env_table.error(
                env_table.key("kind"), f"must be 'local', 'dev' or 'aws', got {shown(kind)}"
            )
        defaults = _KIND_DEFAULTS[kind]
        _check_unused(env_table, kind, defaults, _unused_fix(name, "kind" in env_table.data))
        region = env_table.get("region", str, defaults.region)
        if region is None:
            raise env_table.error(env_table.key("region"), "is required for an AWS environment")
        if not region.strip():
            raise env_table.error(
                env_table.key("region"), "is empty; give an AWS region such as 'eu-west-1'"
            )
        port = env_table.port("port", emulator_port if kind == "local" else defaults.port)
        default_endpoint = defaults.endpoint.format(port=port) if defaults.endpoint else None
        endpoint = _endpoint_url(env_table, default_endpoint)
        problem = region_problem(region, defaults.aws_regions and endpoint is None)
        if problem:
            raise env_table.error(env_table.key("region"), problem)
        default_cache = (
            defaults.cache_bucket.format(project=project, env=name)
            if defaults.cache_bucket
            else None
        )
        urls = _app_urls(env_table.sub("urls"), apps)
        envs[name] = Environment(
            name=name,
            kind=kind,
            region=region,
            port=port,
            endpoint_url=endpoint,
            stack_prefix=env_table.get("stack_prefix", str, f"{project}-{name}"),
            urls=urls,
            cache_bucket=env_table.get("cache_bucket", str, default_cache),
            cache_prefix=env_table.get("cache_prefix", str, "build-cache"),
            allowed_hosts=_host_names(env_table) if defaults.serves_browsers else (),
            domain=load_domain(env_table),
            provisioned=defaults.provisioned,
        )
        env_table.done()
    table.done()
    return envs


def _local_emulator_port(table: Table) -> int | None:
    """The `local` environment's emulator port: another local-kind environment without a
    `port` shares that emulator (its buckets carry its own name), rather than starting one
    on the default port that `[env.local] port` moved away from."""
    local = table.sub("local")
    default = _KIND_DEFAULTS["local"].port
    if local.get("kind", str, "local") != "local":
        return default
    return local.port("port", default)


def _endpoint_url(table: Table, default: str | None) -> str | None:
    """`endpoint_url`, checked: a malformed one would surface at the first AWS call as a
    botocore traceback (or a request to another URL), far from mfe.toml."""
    value: str | None = table.get("endpoint_url", str, default)
    if "endpoint_url" not in table.data or value is None:
        return value
    problem = _url_problem(value)
    if problem:
        raise table.error(
            table.key("endpoint_url"),
            f"is {shown(value)}, which {problem}; give the API's base URL, such as "
            "'http://127.0.0.1:9000' or 'https://s3.example.com'",
        )
    return value.removesuffix("/")  # URLs are made as f"{endpoint}/{bucket}/"


def _url_problem(url: str) -> str | None:
    """Why `url` is not an absolute http(s) URL of a host alone, or None."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is no number or is out of range
    except ValueError as exc:
        return f"is no valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an absolute http:// or https:// URL with a host"
    if parts.username is not None or parts.password is not None:
        return "holds credentials (they come from the AWS credential chain)"
    if parts.path not in ("", "/") or parts.query or parts.fragment or url.endswith(("?", "#")):
        return "has a path, query or fragment (only scheme, host and port are used)"
    if any(c.isspace() for c in url):
        return "holds white space"
    return None


_ALL_ENV_KEYS = frozenset(
    {"kind", "region", "port", "endpoint_url", "stack_prefix", "urls", "cache_bucket"}
    | {"cache_prefix", "allowed_hosts", *_DOMAIN_KEYS}
)


def _check_unused(table: Table, kind: str, defaults: _KindDefaults, fix: str) -> None:
    """A key this kind has no use for would be ignored without a word: say so instead
    (`fix`: what to do about it)."""
    for key in sorted(defaults.unused & set(table.data)):
        known = ", ".join(sorted(_ALL_ENV_KEYS - defaults.unused))
        raise table.error(
            table.key(key),
            f"means nothing for an environment of kind '{kind}'; {fix} (its settings: {known})",
        )


def _unused_fix(name: str, kind_given: bool) -> str:
    """What to do about an unused key: remove it, unless the table's name is almost `local`
    or `dev` (`[env.locla]`), whose kind then defaults to 'aws': name the table it meant."""
    close = None if kind_given or name in ("local", "dev") else closest(name, ("local", "dev"))
    if close is None:
        return "remove it"
    return (
        f"[env.{name}] has no `kind`, so it is an AWS environment: did you mean "
        f"[env.{close}]? (otherwise remove the key)"
    )


def _app_urls(table: Table, apps: dict[str, App]) -> dict[str, str]:
    """`[env.NAME.urls]`: one base URL per app, keyed by an app's name."""
    for app in table.data:
        if app not in apps:
            raise table.error(
                table.key(app), f"names no app; the apps are {', '.join(sorted(apps))}"
            )
    urls = {app: table.get(app, str) for app in table.data}
    table.done()
    return urls


_HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


def _host_names(table: Table) -> tuple[str, ...]:
    """`allowed_hosts`: bare DNS names or IPv4 addresses (no scheme, port, path or '*')."""
    names = tuple(name.lower() for name in table.strings("allowed_hosts"))
    for name in names:
        if not _HOST_NAME.fullmatch(name):
            raise table.error(
                table.key("allowed_hosts"),
                f"must list bare host names such as 'devbox.example.test', got {shown(name)}",
            )
    return names


def listens(env: Environment) -> bool:
    """Its port is a server's on 127.0.0.1 (the emulator, the dev shell)."""
    return bool(env.port) and _KIND_DEFAULTS[env.kind].listens


def check_ports(file: Path, apps: dict[str, App], envs: dict[str, Environment]) -> None:
    """No two listeners (app dev servers, the dev shell, emulators) on one port."""
    seen: dict[int, str] = {}
    claims = [
        ("shared.dev_port" if a.role == "shared" else f"apps.{a.name}.dev_port", a.dev_port)
        for a in apps.values()
    ]
    # The dev shell and the emulator listen on 127.0.0.1 too: no app may share their port.
    shared: dict[int, str] = {}  # one emulator may serve several environments
    for env in envs.values():
        defaults = _KIND_DEFAULTS[env.kind]
        if env.port and defaults.listens and defaults.port_shared:
            shared[env.port] = env.name
        elif env.port and defaults.listens:
            claims.append((f"env.{env.name}.port", env.port))
    claims += [(f"env.{name}.port", port) for port, name in shared.items()]
    for key, port in claims:
        if port in seen:
            raise ConfigError(
                f"{file}: key '{key}' reuses port {port}, already taken by '{seen[port]}'"
            )
        seen[port] = key
