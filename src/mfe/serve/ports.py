"""Which port `doit serve --port` may give the shell: checked by the task before anything
runs (doit's own parse error of `--port abc` says nothing a user can act on), and again
by a running serve each time mfe.toml loads (an app moved onto that port)."""

from __future__ import annotations

from mfe.config import App, Project
from mfe.config_envs import listens
from mfe.errors import shown

DEV_ENV = "dev"
"""The environment `doit serve` renders and serves (its port is the one `--port` replaces)."""


def port_key(app: App) -> str:
    """The mfe.toml key of an app's dev port (the shared modules': `[shared] dev_port`)."""
    return "[shared] dev_port" if app.role == "shared" else f"[apps.{app.name}] dev_port"


def option_problem(project: Project, port: object) -> str | None:
    """Why `--port` cannot be the shell's port, naming the mfe.toml key it clashes with,
    or None (0 or None: not given, the shell takes `[env.dev] port`). Any port mfe.toml
    gives a listener would otherwise be found "already in use", or take it first."""
    if port is None or port == 0:
        return None
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        return f"--port must be a port number 1-65535, got {shown(str(port))}"
    for app in project.apps.values():
        if app.dev_port == port:
            return (
                f"--port {port} collides with app '{app.name}' ({port_key(app)} in "
                "mfe.toml); pick another --port"
            )
    for env in project.envs.values():
        if env.name != DEV_ENV and listens(env) and env.port == port:
            return (
                f"--port {port} collides with environment '{env.name}' (its server's port, "
                f"[env.{env.name}] port in mfe.toml); pick another --port"
            )
    return None
