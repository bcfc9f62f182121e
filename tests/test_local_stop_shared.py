"""`doit local_stop` of an emulator that other environments keep state on: two `local`-kind
environments of one mfe.toml on one port, or two checkouts on one port. It names who
started it (when it is not this environment) and who loses state (asking first, `--yes`
in CI), instead of blaming "another checkout" and wiping theirs unnamed."""

from __future__ import annotations

import shutil
from pathlib import Path

from test_infra import make_project

from mfe.config import Project, load_project
from mfe.envs.emulator import probe, stop_emulator
from mfe.envs.session import Session

from fixtures.aws import free_port, local_client
from fixtures.config import set_config
from fixtures.repo import REPO, run_doit


def checkout(root: Path, port: int) -> Project:
    """The repo's config and apps (no sources: provisioning needs none), emulator on `port`."""
    project = make_project(root, f"http://127.0.0.1:{port}")
    shutil.copy(REPO / "dodo.py", root / "dodo.py")
    return project


def test_two_environments_of_one_checkout_on_one_port(tmp_path: Path) -> None:
    port = free_port()
    root = checkout(tmp_path / "repo", port).root
    set_config(root, "env.second.kind", "local")
    set_config(root, "env.second.port", port)
    project = load_project(root)
    try:
        Session(project, "local").outputs  # noqa: B018 -- starts the emulator, provisions
        Session(project, "second").outputs  # noqa: B018 -- the same emulator
        assert (project.state_dir("local") / "emulator.pid").exists()

        said = run_doit(root, "local_stop", "env=second").stdout
        assert (
            f"environment 'second' of this checkout did not start the emulator answering on "
            f"port {port}: environment 'local' of this checkout did, so it is left running; "
            "stop it with `doit local_stop`"
        ) in said, said
        assert "another checkout" not in said and probe(port) == "moto"

        refused = run_doit(root, "local_stop", check=False)  # no terminal to ask on
        assert refused.returncode != 0, refused.stdout
        assert "environment 'second' of this checkout" in refused.stdout, refused.stdout
        assert "run `doit local_stop env=local --yes` to go ahead" in refused.stdout
        assert probe(port) == "moto"

        stopped = run_doit(root, "local_stop", "--yes").stdout
        assert "stopped the local AWS emulator (pid" in stopped, stopped
        assert "also lost: environment 'second' of this checkout" in stopped, stopped
        assert probe(port) == "free"
    finally:
        stop_emulator(project, project.env("local"))


def test_two_checkouts_on_one_port(tmp_path: Path) -> None:
    port = free_port()
    first, second = checkout(tmp_path / "a", port), checkout(tmp_path / "b", port)
    try:
        Session(first, "local").outputs  # noqa: B018 -- starts the emulator, provisions
        Session(second, "local").outputs  # noqa: B018 -- uses it (same bucket names)

        said = run_doit(second.root, "local_stop").stdout
        assert (
            f"environment 'local' of checkout {first.root.resolve()} did, so it is left "
            f"running; stop it with `doit local_stop` in {first.root.resolve()}"
        ) in said, said
        assert probe(port) == "moto"

        refused = run_doit(first.root, "local_stop", check=False)
        assert refused.returncode != 0, refused.stdout
        other = f"checkout {second.root.resolve()} (environment 'local')"
        assert other in refused.stdout, refused.stdout
        assert probe(port) == "moto"

        stopped = run_doit(first.root, "local_stop", "--yes").stdout
        assert f"also lost: {other}" in stopped, stopped
        assert probe(port) == "free"
        alone = run_doit(first.root, "local_stop").stdout  # nothing runs: nothing to ask
        assert f"no local AWS emulator was running (port {port})" in alone, alone
    finally:
        stop_emulator(first, first.env("local"))


def test_a_bucket_made_by_hand_is_named_not_asked_about(tmp_path: Path) -> None:
    port = free_port()
    project = checkout(tmp_path / "repo", port)
    try:
        Session(project, "local").outputs  # noqa: B018 -- starts the emulator, provisions
        local_client(f"http://127.0.0.1:{port}").create_bucket(Bucket="made-by-hand")

        stopped = run_doit(project.root, "local_stop").stdout  # no terminal: nobody asked
        assert "also lost: 1 bucket(s) no environment recorded (made-by-hand)" in stopped
        assert probe(port) == "free"
    finally:
        stop_emulator(project, project.env("local"))
