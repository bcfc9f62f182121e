"""Who keeps state on an emulator port: the environments (of this checkout or of others)
that provisioned buckets there.

One emulator serves every `local`-kind environment configured on its port: two
environments of one `mfe.toml`, or two checkouts on the default port. Stopping it loses
the state of all of them, so `doit local_stop` names them first. Each provisioning command
records its checkout, environment and buckets in a file per port, next to the port's
locks (the same for every checkout of this user); an entry counts only while its buckets
are on the emulator (an emulator started again holds none) and its outputs file names
the emulator, so stale entries say nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mfe.envs.emulator import port_locked
from mfe.envs.moto_server import lock_file
from mfe.files import write_atomic
from mfe.project import STATE_DIR


@dataclass(frozen=True)
class User:
    """An environment that provisioned buckets on the emulator."""

    root: Path
    env: str
    buckets: tuple[str, ...]

    def describe(self, here: Path) -> str:
        if self.root == here:
            return f"environment '{self.env}' of this checkout"
        return f"checkout {self.root} (environment '{self.env}')"


def _registry(port: int) -> Path:
    return lock_file("127.0.0.1", port, "users").with_suffix(".json")


def _read(port: int) -> list[User]:
    try:
        entries = json.loads(_registry(port).read_text())
        return [User(Path(e["root"]), str(e["env"]), tuple(e["buckets"])) for e in entries]
    except (FileNotFoundError, ValueError, TypeError, KeyError):
        return []  # none yet, or damaged: rewritten by the next provisioning


def register(port: int, root: Path, env: str, buckets: list[str]) -> None:
    """Record that `env` of the checkout at `root` keeps `buckets` on the emulator at
    `port` (written only when that changes; entries of removed checkouts are dropped)."""
    me = User(root.resolve(), env, tuple(sorted(buckets)))
    if me in _read(port):
        return
    with port_locked(port, "users"):
        users = [
            user
            for user in _read(port)
            if (user.root, user.env) != (me.root, me.env) and (user.root / STATE_DIR).is_dir()
        ]
        users.append(me)
        data = [{"root": str(u.root), "env": u.env, "buckets": list(u.buckets)} for u in users]
        write_atomic(_registry(port), json.dumps(data, indent=1) + "\n")


def _uses(user: User, endpoint: str) -> bool:
    """Whether `user`'s outputs file still names the emulator at `endpoint` (not when its
    port changed since, or the checkout was removed: its record is stale)."""
    try:
        written = json.loads((user.root / STATE_DIR / user.env / "outputs.json").read_text())
        return bool(written.get("endpoint_url") == endpoint)
    except (OSError, ValueError, AttributeError):
        return False


def others(
    port: int, root: Path, env: str, configured: set[str], have: set[str]
) -> tuple[list[str], list[str]]:
    """Who else loses state when the emulator at `port` stops, besides `env` of `root`:
    every other recorded environment with buckets among `have` (the emulator's) whose
    outputs file names this emulator. Two lists: those to ask about, and those named only:
    environments of `root` that its mfe.toml no longer has (`configured`: those it has),
    which no command can stop, destroy or publish any more."""
    here = root.resolve()
    users = [
        user
        for user in _read(port)
        if (user.root, user.env) != (here, env)
        and set(user.buckets) & have
        and _uses(user, f"http://127.0.0.1:{port}")
    ]
    removed = [user for user in users if user.root == here and user.env not in configured]
    asked = [user.describe(here) for user in users if user not in removed]
    named = [f"{user.describe(here)} (no longer in mfe.toml)" for user in removed]
    return asked, named


def unrecorded(port: int, own: set[str], have: set[str]) -> str | None:
    """The buckets among `have` that no environment recorded (made by hand, by another
    tool, or by an mfe that did not record them yet), named; None when there are none."""
    recorded = own.union(*(user.buckets for user in _read(port)))
    stray = sorted(have - recorded)
    if not stray:
        return None
    shown = ", ".join(stray[:5]) + (f" and {len(stray) - 5} more" if len(stray) > 5 else "")
    return f"{len(stray)} bucket(s) no environment recorded ({shown})"
