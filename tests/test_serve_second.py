"""A second `doit serve` on ports a first one holds: of this checkout, or of another one.

Two real serve processes: the first from `serving`, the second run as a user would."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mfe.config import load_project

from fixtures.aws import free_ports
from fixtures.config import set_config
from fixtures.repo import link_copy, run_doit
from fixtures.serve import (
    CTRL_C_STOPPED,
    Served,
    ServeProcess,
    overlay_errors,
    serving,
    use_free_ports,
    wait_until,
)

RECORD = ".mfe/serve.json"
KEYS = ("[apps.mfe-parent] dev_port", "[apps.accounts] dev_port", "[apps.payments] dev_port")


@pytest.fixture(scope="module")
def served(monorepo_built: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(monorepo_built, tmp_path_factory.mktemp("first")) as served:
        yield served


def shared_port(root: Path) -> int:
    return load_project(root).apps["shared"].dev_port


def refusal(root: Path, *args: str) -> str:
    """The one error line of a second serve in `root`, which must exit at once."""
    result = run_doit(root, "serve", *args, check=False, timeout=60)
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stdout, result.stdout
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("error:")]
    return line


def test_the_running_serve_is_recorded_with_its_url_and_ports(served: Served) -> None:
    record = json.loads((served.root / RECORD).read_text())
    assert record["pid"] == served.server.proc.pid
    assert record["url"] == served.url
    shared = shared_port(served.root)
    assert record["ports"] == {"shell": served.shell_port, **served.ports, "shared": shared}


@pytest.mark.parametrize("option", [False, True], ids=["plain", "--port"])
def test_a_second_serve_of_the_checkout_points_at_the_first(served: Served, option: bool) -> None:
    args = ["--port", str(free_ports(1)[0])] if option else []
    line = refusal(served.root, *args)
    assert line == (
        f"error: doit serve already serves this checkout at {served.url} "
        f"(pid {served.server.proc.pid}): open that, or stop it (Ctrl-C in its terminal) first"
    )
    assert served.url in served.server.lines[-1:]  # the first one goes on, untouched


def test_a_serve_of_another_checkout_is_named_with_the_settings_to_change(
    served: Served, tmp_path: Path
) -> None:
    """A copy of the checkout (its record copied too, naming the first) on the same ports."""
    other = link_copy(served.root, tmp_path / "other")
    line = refusal(other)
    ports = (served.shell_port, *served.ports.values(), shared_port(served.root))
    assert line == (
        f"error: ports {', '.join(map(str, ports))} of this checkout are served by the doit "
        f"serve of {served.root.resolve()} at {served.url} (pid {served.server.proc.pid}); "
        "a second checkout needs ports of its own: change [env.dev] port (or pass --port), "
        f"{', '.join(KEYS)} and [shared] dev_port in mfe.toml"
    )


def test_port_is_named_only_when_the_shell_port_is_among_those_held(
    served: Served, tmp_path: Path
) -> None:
    other = link_copy(served.root, tmp_path / "other")
    moved = refusal(other, "--port", str(free_ports(1)[0]))  # the shell moved, apps not
    ports = (*served.ports.values(), shared_port(served.root))
    assert moved.startswith(f"error: ports {', '.join(map(str, ports))} of this"), moved
    assert "--port" not in moved and "[env.dev] port" not in moved, moved
    assert moved.endswith(f"own: change {', '.join(KEYS)} and [shared] dev_port in mfe.toml")
    use_free_ports(other)  # every port its own, but --port on the first serve's shell
    line = refusal(other, "--port", str(served.shell_port))
    assert line == (
        f"error: port {served.shell_port} of this checkout is served by the doit serve of "
        f"{served.root.resolve()} at {served.url} (pid {served.server.proc.pid}); a second "
        "checkout needs ports of its own: pick another --port"
    )


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("pid", ["dead", "alive, not a serve"])
def test_a_stale_record_is_ignored_and_replaced(
    monorepo_built: Path, tmp_path: Path, pid: str
) -> None:
    """Left by a serve that was killed (SIGKILL: nothing removed it), its pid since ended
    or reused: the record is not believed unless its shell port answers as that pid."""
    root = link_copy(monorepo_built, tmp_path / "repo")
    shell_port, _ = use_free_ports(root)
    stale = {
        "pid": dead_pid() if pid == "dead" else os.getpid(),
        "root": str(root.resolve()),
        "url": f"http://127.0.0.1:{shell_port}/",
        "ports": {"shell": shell_port},
    }
    (root / RECORD).write_text(json.dumps(stale))
    with serving_in(root, shell_port) as server:
        assert json.loads((root / RECORD).read_text())["pid"] == server.proc.pid


@contextmanager
def serving_in(root: Path, shell_port: int) -> Iterator[ServeProcess]:
    """`doit serve` in `root` until the end, when it must stop cleanly and leave no record."""
    server = ServeProcess(root)
    try:
        server.wait_for(rf"^http://127\.0\.0\.1:{shell_port}/$")
        yield server
    finally:
        assert server.stop() == CTRL_C_STOPPED, "\n".join(server.lines)
    assert not (root / RECORD).exists()


def test_the_record_follows_an_app_moved_in_mfe_toml(monorepo_built: Path, tmp_path: Path) -> None:
    root = link_copy(monorepo_built, tmp_path / "repo")
    shell_port, _ = use_free_ports(root)
    (port,) = free_ports(1)
    with serving_in(root, shell_port) as server:
        mark = len(server.lines)
        set_config(root, "apps.payments.dev_port", port)
        server.wait_for(
            rf"^serve: payments: http://127\.0\.0\.1:{port}/ .*; port \d+ closed$", mark
        )
        assert json.loads((root / RECORD).read_text())["ports"]["payments"] == port


def held_by_first(served: Served, key: str) -> str:
    """How a port of `key` that the first serve holds is told: whose it is, what to change."""
    return (
        f"port {served.ports['payments']} of this checkout is served by the doit serve of "
        f"{served.root.resolve()} at {served.url} (pid {served.server.proc.pid}); a second "
        f"checkout needs ports of its own: change {key} in mfe.toml"
    )


def test_an_app_port_moved_onto_another_serves_names_that_serve(
    served: Served, tmp_path: Path
) -> None:
    """A second checkout serving on ports of its own, then mfe.toml moves one app onto a
    port of the first serve: the overlay names that serve and the key, not "in use"."""
    other = link_copy(served.root, tmp_path / "other")
    shell_port, ports = use_free_ports(other)
    with serving_in(other, shell_port) as server:
        set_config(other, "apps.payments.dev_port", served.ports["payments"])
        expected = (
            held_by_first(served, "[apps.payments] dev_port")
            + "; then reload the page (or save mfe.toml again)"
        )
        wait_until(
            lambda: [e["text"] for e in overlay_errors(shell_port)] == [expected],
            lambda: f"{overlay_errors(shell_port)}\n" + "\n".join(server.lines),
        )
        set_config(other, "apps.payments.dev_port", ports["payments"])  # moved back
        wait_until(lambda: overlay_errors(shell_port) == [], lambda: "\n".join(server.lines))


def test_an_app_port_of_another_serve_at_start_names_that_serve(
    served: Served, tmp_path: Path
) -> None:
    other = link_copy(served.root, tmp_path / "other")
    use_free_ports(other)
    set_config(other, "apps.payments.dev_port", served.ports["payments"])
    line = refusal(other)
    assert line == "error: " + held_by_first(served, "[apps.payments] dev_port")
