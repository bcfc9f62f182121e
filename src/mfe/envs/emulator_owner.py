"""Whose the emulator serving a port is, when no pid file of this environment records it.

The server's `--log` names its starter: `<checkout>/.mfe/<env>/emulator.log`. When that is
this checkout and environment (its pid file was lost), or a starter that can no longer
stop it (its checkout was removed or moved, or its environment is gone from this
checkout's mfe.toml), `doit local_stop` stops it, found by its port; otherwise it names
the starter, where to run `doit local_stop`, and the `kill` command as a last resort.
"""

from __future__ import annotations

from pathlib import Path

from mfe.config import CONFIG_FILE, Environment, Project
from mfe.envs.emulator_process import Server


def _starter(log: Path) -> tuple[Path, str]:
    """The checkout and environment whose `.mfe/<env>/emulator.log` is `log`."""
    return log.parent.parent.parent.resolve(), log.parent.name


def adopted(project: Project, env: Environment, server: Server | None) -> str | None:
    """Why `env`'s local_stop may stop `server` though its pid file does not record it,
    or None when it may not (another starter that still can, or none named)."""
    if server is None or server.log is None:
        return None
    root, name = _starter(server.log)
    here = root == project.root.resolve()
    if here and name == env.name:
        return f"found by its port: {project.state_dir(env.name)}/emulator.pid was lost"
    if not (root / CONFIG_FILE).is_file():
        return f"found by its port: checkout {root}, which started it, no longer exists"
    if here and name not in project.envs:
        return (
            f"found by its port: environment '{name}' of this checkout, which started it, "
            f"is no longer in {CONFIG_FILE}"
        )
    return None


def not_ours(project: Project, env: Environment, port: int, server: Server | None) -> str:
    """Why `env`'s local_stop leaves the emulator on `port` (`server`, if found) running:
    who started it, where to stop it, and the last resort."""
    last = f"; as a last resort, when nothing uses it: `{server.kill}`" if server else ""
    if server is None or server.log is None:
        return (
            f"environment '{env.name}' of this checkout did not start the emulator answering "
            f"on port {port} (another program or checkout did), so it is left running{last}"
        )
    root, name = _starter(server.log)
    here = root == project.root.resolve()
    where = "this checkout" if here else f"checkout {root}"
    there = "" if here else f" in {root}"
    option = "" if name == "local" else f" env={name}"
    return (
        f"environment '{env.name}' of this checkout did not start the emulator answering on "
        f"port {port}: environment '{name}' of {where} did, so it is left running; stop it "
        f"with `doit local_stop{option}`{there}{last}"
    )
