"""The settings tables of `mfe.toml`: `[publish]`, `[ci]`, `[shared]` and size values.

`mfe.config` reads the file and the apps and environments; the tables here each become
one settings dataclass of `mfe.project`, with errors naming the file and dotted key.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from mfe.project import SHARED_APP, App, CiSettings, PublishSettings, SharedSettings
from mfe.toml_table import Table, shown

MAX_WORKERS = 256
"""Parallel uploads: each is a thread and a pooled connection, made up front."""


def load_publish(table: Table) -> PublishSettings:
    rules = []
    for index, rule in enumerate(table.get("cache_control", list, [])):
        rule_table = Table(table.file, f"publish.cache_control[{index}]", rule)
        glob, value = rule_table.get("glob", str), rule_table.get("value", str)
        if not glob or not value:
            raise rule_table.error(rule_table.prefix, "needs both 'glob' and 'value'")
        problem = cache_control_problem(value)
        if problem:
            raise rule_table.error(
                rule_table.key("value"),
                f"is {shown(value)}, which {problem}; give a Cache-Control value such as "
                "'public, max-age=600'",
            )
        rule_table.done()
        rules.append((glob, value))
    settings = PublishSettings(
        workers=table.get("workers", int, 8),
        keep_releases=table.get("keep_releases", int, 5),
        max_deletes=table.get("max_deletes", int, 200),
        cache_control=tuple(rules),
        locking=table.get("locking", str, "conditional"),
        grace_seconds=table.get("grace_seconds", int, 3600),
    )
    if settings.locking not in ("conditional", "none"):
        raise table.error(table.key("locking"), 'must be "conditional" or "none"')
    for key in ("grace_seconds", "max_deletes"):
        if getattr(settings, key) < 0:
            raise table.error(table.key(key), "must not be negative")
    for key in ("workers", "keep_releases"):
        if getattr(settings, key) < 1:
            raise table.error(table.key(key), "must be at least 1")
    if settings.workers > MAX_WORKERS:  # each holds an HTTP connection and a thread
        raise table.error(
            table.key("workers"), f"must be at most {MAX_WORKERS} (8 to 64 suit most sites)"
        )
    table.done()
    return settings


_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
# Patterns, not compiled ones: `re` compiles (and caches) them when a value needs them, so
# a `doit` whose mfe.toml sets no Cache-Control or size pays nothing for them.
_DIRECTIVE = rf"{_TOKEN}(?:=(?:{_TOKEN}|{_QUOTED}))?"
_PART = rf'(?:{_QUOTED}|[^,"])+|"'


def cache_control_problem(value: str) -> str | None:
    """Why `value` cannot be sent as a Cache-Control header, or None. A header value is
    visible ASCII and spaces (RFC 9110 field-value without obs-text): botocore refuses a
    line break mid-publish, and S3 drops a value with other bytes without a word. The
    directives are checked loosely (`name` or `name=value`, comma-separated)."""
    bad = next((c for c in value if not (c == " " or "!" <= c <= "~")), None)
    if bad is not None:
        return f"holds {shown(bad)}: a header value takes visible ASCII characters and spaces only"
    if not value.strip():
        return "is blank"
    for part in re.findall(_PART, value):  # a comma inside a quoted string splits nothing
        if part.strip() and not re.fullmatch(_DIRECTIVE, part.strip()):
            return f"has {shown(part.strip())}, which is no directive (name or name=value)"
    return None


_SIZE = r"\s*(\d+(?:\.\d+)?)\s*(B|kB|KB|KiB|MB|MiB)\s*"
_UNITS = {"B": 1, "kB": 1000, "KB": 1000, "KiB": 1024, "MB": 1000**2, "MiB": 1024**2}


def size(table: Table, name: str) -> int | None:
    """A size such as "250 kB" (1000 bytes) or "1.5 MiB" (1024**2) in bytes."""
    text = table.get(name, str)
    if text is None:
        return None
    match = re.fullmatch(_SIZE, text)
    if not match:
        raise table.error(
            table.key(name), f'must be a size such as "250 kB" or "1 MiB", got {shown(text)}'
        )
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def load_ci(table: Table) -> CiSettings:
    refs = table.strings("trusted_refs")
    if "trusted_refs" in table.data and not refs:
        raise table.error(
            table.key("trusted_refs"),
            "is empty: name at least one ref, or remove it to trust the default branch",
        )
    normalized = []
    for ref in refs:
        full = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
        if not ref or any(c.isspace() for c in ref) or ".." in ref:
            raise table.error(table.key("trusted_refs"), f"has an invalid git ref {shown(ref)}")
        if fnmatch.fnmatchcase("refs/pull/1/merge", full) or full.startswith("refs/pull/"):
            raise table.error(
                table.key("trusted_refs"),
                f"includes pull-request refs ({shown(ref)}): a pull request's code must never write "
                "the shared build cache; trust branches or tags such as 'main' or 'refs/tags/v*'",
            )
        if not full.startswith(("refs/heads/", "refs/tags/")):
            raise table.error(
                table.key("trusted_refs"),
                f"has {shown(ref)}: use a branch name ('main'), 'refs/heads/...' or 'refs/tags/...'",
            )
        normalized.append(full)
    table.done()
    return CiSettings(trusted_refs=tuple(normalized))


def _package_of(specifier: str) -> str:
    parts = specifier.split("/")
    return "/".join(parts[:2]) if specifier.startswith("@") else parts[0]


def load_shared(root: Path, table: Table, apps: dict[str, App]) -> SharedSettings | None:
    """`[shared]`: adds the `shared` pseudo-app to `apps` (built into build/shared/dist)."""
    if not table.data:
        table.done()
        return None
    packages = table.strings("packages")
    modules = table.strings("modules")
    script = table.get("script", str, SharedSettings.script)
    tools = table.strings("tools") if "tools" in table.data else SharedSettings.tools
    port = table.port("dev_port", 5171 + len(apps))
    table.done()
    if not packages:
        raise table.error(table.key("packages"), "must list at least one npm package to share")
    for index, specifier in enumerate(modules):
        if _package_of(specifier) not in packages:
            raise table.error(
                f"{table.key('modules')}[{index}]",
                f"names {shown(specifier)}, whose package {shown(_package_of(specifier))} is not under "
                "shared.packages; add the package or remove the module",
            )
    for package in packages:
        if not any(_package_of(m) == package for m in modules):
            raise table.error(
                table.key("packages"),
                f"lists {shown(package)} but no shared.modules entry imports it; add the module "
                f"specifiers the apps import (e.g. {shown(package)})",
            )
    if SHARED_APP in apps:
        raise table.error(
            "shared",
            f"needs the app name {shown(SHARED_APP)}, but apps/{SHARED_APP}/ exists; rename that app",
        )
    assert port is not None
    apps[SHARED_APP] = App(SHARED_APP, root / "build" / SHARED_APP, "shared", port, "")
    return SharedSettings(packages, modules, script, tools)
