"""The model of a monorepo every module works with: its apps, environments and settings.

`mfe.config` builds a `Project` from `mfe.toml` and the app folders, validated; nothing
else reads the TOML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mfe.domain import Domain
from mfe.errors import ConfigError, MfeError, closest

CONFIG_FILE = "mfe.toml"
STATE_DIR = ".mfe"
EnvKind = Literal["local", "dev", "aws"]


@dataclass(frozen=True)
class App:
    name: str
    path: Path
    role: Literal["parent", "fragment", "shared"]
    """`shared`: the pseudo-app of the shared modules (see `Project.shared`)."""
    dev_port: int
    element: str
    budget: int | None = None
    """Most bytes (gzip) the entry bundles and their static imports may weigh; None = no limit."""

    @property
    def dist(self) -> Path:
        return self.path / "dist"

    @property
    def manifest_path(self) -> Path:
        return self.dist / "asset-manifest.json"


@dataclass(frozen=True)
class Environment:
    name: str
    kind: EnvKind
    region: str
    port: int | None = None
    """`local`: the emulator's port; `dev`: the shell's port."""
    endpoint_url: str | None = None
    stack_prefix: str = ""
    urls: dict[str, str] = field(default_factory=dict)
    """Base URL overrides per app (custom domains)."""
    cache_bucket: str | None = None
    cache_prefix: str = "build-cache"
    allowed_hosts: tuple[str, ...] = ()
    """`dev`: Host names the dev servers answer besides 127.0.0.1, localhost and [::1]."""
    domain: Domain | None = None
    """A custom domain (AWS environments; validated and ignored on `local`)."""
    provisioned: bool = True
    """It has resources (AWS or the emulator) described by `.mfe/<env>/outputs.json`;
    `dev` has none. Set from the kind, so task definitions need not load the backends."""


@dataclass(frozen=True)
class PublishSettings:
    workers: int = 8
    keep_releases: int = 5
    max_deletes: int = 200
    cache_control: tuple[tuple[str, str], ...] = ()
    """(glob, Cache-Control value) rules that override the immutable/mutable default."""
    locking: Literal["conditional", "none"] = "conditional"
    """How the live pointer is written: S3 conditional writes, or plainly ("none": for a
    store that ignores them, when only one publish runs at a time)."""
    grace_seconds: int = 3600
    """`--prune` never deletes a file younger than this (an in-flight publish may need it)."""


@dataclass(frozen=True)
class BuildSettings:
    inputs: tuple[str, ...] = ()
    """Shared files (relative to the root) that every app's build reads."""
    env: tuple[str, ...] = ()
    """Environment variables that change build output."""


SHARED_APP = "shared"
"""Name of the pseudo-app that holds the shared modules: published, served and cached like an app."""


@dataclass(frozen=True)
class SharedSettings:
    packages: tuple[str, ...]
    """npm packages the page loads once (e.g. lit, react, react-dom)."""
    modules: tuple[str, ...]
    """The module specifiers the apps import from them (e.g. lit, react/jsx-runtime)."""
    script: str = "node tools/build-shared.mjs"
    """The command, run in the root, that builds the modules (see mfe.build.shared)."""
    tools: tuple[str, ...] = ("esbuild",)
    """Packages the script builds with: their lockfile entries rebuild the modules too."""


@dataclass(frozen=True)
class CiSettings:
    trusted_refs: tuple[str, ...] = ()
    """Git ref globs (`refs/heads/main`, `refs/tags/v*`) whose CI runs may write the shared
    build cache; empty = the repository's default branch."""


@dataclass(frozen=True)
class Project:
    root: Path
    name: str
    apps: dict[str, App]
    envs: dict[str, Environment]
    publish: PublishSettings
    build: BuildSettings
    ci: CiSettings = field(default_factory=CiSettings)
    shared: SharedSettings | None = None
    """`[shared]` in mfe.toml; when set, `apps` also holds the `shared` pseudo-app."""
    gone: tuple[str, ...] = ()
    """[apps.NAME] tables whose folder is gone, left out of `apps` (`doit serve` only)."""

    @property
    def bundled_apps(self) -> dict[str, App]:
        """The real apps (apps/<name>/), without the shared pseudo-app."""
        return {name: app for name, app in self.apps.items() if app.role != "shared"}

    @property
    def parent(self) -> App:
        return next(app for app in self.apps.values() if app.role == "parent")

    @property
    def lockfile(self) -> Path:
        return self.root / "package-lock.json"

    def check_app(self, name: str) -> str:
        """`name` if it is an app (a command line's `app=`), else MfeError naming the apps."""
        if name in self.apps:
            return name
        close = closest(name, self.apps)
        hint = f" (did you mean app={close}?)" if close else ""
        raise MfeError(
            f"unknown app '{name}'{hint}; the apps are {', '.join(sorted(self.apps))} "
            "(apps come from apps/*/package.json)"
        )

    def env(self, name: str | Environment) -> Environment:
        """The environment called `name` (an Environment passes through, for library callers)."""
        if isinstance(name, Environment):
            return name
        try:
            return self.envs[name]
        except KeyError:
            known = ", ".join(sorted(self.envs))
            close = closest(name, self.envs)
            hint = f"; did you mean {close!r}?" if close else ""
            raise ConfigError(
                f"{CONFIG_FILE}: unknown environment {name!r} "
                f"(defined: {known}{hint}); add an [env.{name}] table or pick one of those"
            ) from None

    @property
    def shell_dir(self) -> Path:
        """`shell/`: the page template and anything it includes."""
        return self.root / "shell"

    def page(self, env: str) -> Path:
        """`build/<env>/index.html`: the rendered shell page."""
        return self.root / "build" / env / "index.html"

    def state_dir(self, env: str) -> Path:
        """`.mfe/<env>/`: outputs, reports and emulator files of one environment."""
        return self.root / STATE_DIR / env

    def outputs_file(self, env: str) -> Path:
        """`.mfe/<env>/outputs.json`: where the environment's apps live (see mfe.envs.outputs)."""
        return self.state_dir(env) / "outputs.json"
