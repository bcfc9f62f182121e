"""`doit local_stop` of an emulator no pid file of this environment records: its pid file
was lost, or its starter's checkout was removed or moved, or its starter environment was
removed from mfe.toml. The server's `--log` names its starter; when that is this
environment, or a starter that can no longer stop it, local_stop stops it (found by its
port); otherwise it names the starter and gives the `kill` command as a last resort.
An environment gone from mfe.toml is named among the state lost, never asked about (no
command can stop, publish or destroy it any more)."""

from __future__ import annotations

import shutil
from pathlib import Path

import tomlkit
from test_local_stop_shared import checkout

from mfe.config import load_project
from mfe.envs.emulator import probe
from mfe.envs.emulator_process import read_records, serving, terminate
from mfe.envs.session import Session

from fixtures.aws import free_port
from fixtures.config import set_config
from fixtures.repo import run_doit


def stop_any(port: int) -> None:
    """Cleanup: stop whatever emulator serves `port`, whoever started it."""
    server = serving(port)
    if server is not None:
        terminate(server.pgid, port)


def remove_env(root: Path, name: str) -> None:
    path = root / "mfe.toml"
    document = tomlkit.parse(path.read_text())
    del document["env"][name]  # type: ignore[union-attr]
    path.write_text(tomlkit.dumps(document))


def test_local_stop_stops_its_emulator_whose_pid_file_was_lost(tmp_path: Path) -> None:
    port = free_port()
    project, other = checkout(tmp_path / "repo", port), checkout(tmp_path / "other", port)
    try:
        run_doit(project.root, "infra")
        run_doit(other.root, "infra")  # keeps state on it too: asked about first
        (project.state_dir("local") / "emulator.pid").rename(tmp_path / "lost.pid")

        refused = run_doit(project.root, "local_stop", check=False)  # no terminal to ask on
        assert refused.returncode != 0, refused.stdout
        assert f"checkout {other.root.resolve()} (environment 'local')" in refused.stdout
        assert probe(port) == "moto"

        said = run_doit(project.root, "local_stop", "--yes").stdout
        assert "stopped the local AWS emulator (pid" in said, said
        assert "emulator.pid was lost" in said, said
        assert f"also lost: checkout {other.root.resolve()}" in said, said
        assert probe(port) == "free"
    finally:
        stop_any(port)


def test_local_stop_stops_an_emulator_whose_starter_checkout_moved(tmp_path: Path) -> None:
    port = free_port()
    first, second = checkout(tmp_path / "a", port), checkout(tmp_path / "b", port)
    try:
        run_doit(first.root, "infra")  # starts it from checkout a
        run_doit(second.root, "infra")
        shutil.move(first.root, tmp_path / "a-moved")

        said = run_doit(second.root, "local_stop").stdout  # no terminal: nothing to ask
        assert f"checkout {first.root.resolve()}, which started it, no longer exists" in said
        assert "stopped the local AWS emulator (pid" in said, said
        assert probe(port) == "free"
    finally:
        stop_any(port)


def test_a_refused_stop_gives_the_kill_command(tmp_path: Path) -> None:
    port = free_port()
    first, second = checkout(tmp_path / "a", port), checkout(tmp_path / "b", port)
    try:
        run_doit(first.root, "infra")
        [started] = read_records(first.state_dir("local") / "emulator.pid")
        pid = started.pid

        said = run_doit(second.root, "local_stop").stdout
        assert f"stop it with `doit local_stop` in {first.root.resolve()}" in said, said
        assert f"as a last resort, when nothing uses it: `kill -- -{pid}`" in said, said
        assert probe(port) == "moto"
    finally:
        stop_any(port)


def test_an_environment_removed_from_mfe_toml_is_named_not_asked_about(tmp_path: Path) -> None:
    port = free_port()
    root = checkout(tmp_path / "repo", port).root
    set_config(root, "env.local2.kind", "local")
    set_config(root, "env.local2.port", port)
    try:
        run_doit(root, "infra")
        run_doit(root, "infra", "env=local2")
        remove_env(root, "local2")

        said = run_doit(root, "local_stop").stdout  # no terminal: asks nobody
        assert "stopped the local AWS emulator (pid" in said, said
        assert "also lost: environment 'local2' of this checkout (no longer in mfe.toml)" in said
        assert probe(port) == "free"
    finally:
        stop_any(port)


def test_an_emulator_started_by_an_environment_removed_from_mfe_toml_stops(
    tmp_path: Path,
) -> None:
    port = free_port()
    root = checkout(tmp_path / "repo", port).root
    set_config(root, "env.local2.kind", "local")
    set_config(root, "env.local2.port", port)
    try:
        run_doit(root, "infra", "env=local2")  # local2 starts it
        Session(load_project(root), "local").outputs  # noqa: B018 -- local uses it too
        remove_env(root, "local2")

        said = run_doit(root, "local_stop").stdout
        assert (
            "environment 'local2' of this checkout, which started it, is no longer in mfe.toml"
        ) in said, said
        assert "also lost: environment 'local2' of this checkout (no longer in mfe.toml)" in said
        assert probe(port) == "free"
    finally:
        stop_any(port)
