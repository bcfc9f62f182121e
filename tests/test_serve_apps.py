"""`doit serve` follows the apps of a reloaded mfe.toml: added, removed or moved, no restart.

Real doit, npm, esbuild and sockets on a private copy of the monorepo; the page and the
apps' ports are checked over HTTP.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfe.config import App, Project, load_project
from mfe.serve.origins import Origins
from mfe.serve.reload import Broker
from mfe.serve.server import Gate, Site
from mfe.serve.session import Servers

from fixtures.aws import free_ports, refused
from fixtures.config import set_config
from fixtures.repo import link_copy, run_doit
from fixtures.serve import (
    CTRL_C_STOPPED,
    Served,
    ServeProcess,
    overlay_errors,
    overlay_titles,
    page,
    served_entry,
    serving,
    use_free_ports,
    wait_until,
)

NPM_INSTALL = ["npm", "install", "--offline", "--no-audit", "--no-fund", "--loglevel=error"]


def overlay(shell_port: int) -> list[str]:
    """What the overlay of a tab opened now lists (the apps, `mfe.toml`, ...): [] for none."""
    return sorted(f"{e['app']}: {e['text']}" for e in overlay_errors(shell_port))


def entry(shell_port: int, app_port: int) -> str:
    """The app's entry module on `app_port` as the page names it, or "" (not named, not
    served)."""
    try:
        return served_entry(shell_port, app_port)
    except (AssertionError, OSError):
        return ""


def shows(shell_port: int, app_port: int, heading: str) -> bool:
    """The page names the app's entry on `app_port`, which serves it with `heading`."""
    return heading in entry(shell_port, app_port)


def copy_app(root: Path, source: str, name: str, heading: str) -> None:
    """A new app folder: `source` copied under `name`, its element and heading renamed."""
    folder = root / "apps" / name
    shutil.copytree(root / "apps" / source, folder, ignore=shutil.ignore_patterns("dist"))
    package = json.loads((folder / "package.json").read_text())
    (folder / "package.json").write_text(json.dumps({**package, "name": name}, indent=2))
    main = folder / "src/main.js"
    main.write_text(main.read_text().replace(f"'mfe-{source}'", f"'mfe-{name}'"))
    app = folder / "src/payments-app.js"
    app.write_text(app.read_text().replace(">Payments</h2>", f">{heading}</h2>"))


def npm_install(root: Path) -> None:
    subprocess.run(NPM_INSTALL, cwd=root, check=True, capture_output=True, timeout=300)


def test_an_app_added_then_removed_in_mfe_toml_is_served_then_closed(
    monorepo_built: Path, tmp_path: Path
) -> None:
    root = link_copy(monorepo_built, tmp_path / "repo")
    shell_port, ports = use_free_ports(root)
    config = root / "mfe.toml"
    original = config.read_text()
    server = ServeProcess(root)
    try:
        server.wait_for(rf"^http://127\.0\.0\.1:{shell_port}/$")
        (port,) = free_ports(1)
        copy_app(root, "payments", "ledger", "Ledger")
        wait_until(lambda: any("new app ledger" in e for e in overlay(shell_port)), "no hint")
        npm_install(root)
        config.write_text(
            original + f'\n[apps.ledger]\ndev_port = {port}\nelement = "mfe-ledger"\n'
        )
        wait_until(lambda: shows(shell_port, port, "Ledger"), lambda: "\n".join(server.lines), 120)
        assert "<mfe-ledger" in page(shell_port)
        wait_until(lambda: overlay(shell_port) == [], lambda: f"{overlay(shell_port)}", 60)
        assert shows(shell_port, ports["payments"], ">Payments</h2>")
        # served first on its default port if `npm install` was seen before the table
        served_there = rf"^serve: ledger: http://127\.0\.0\.1:{port}/ \(apps/ledger/dist\)"
        server.wait_for(served_there + r"(; port \d+ closed)?$")
        source = root / "apps/ledger/src/payments-app.js"  # its sources are watched now
        source.write_text(source.read_text().replace(">Ledger</h2>", ">Ledger edited</h2>"))
        wait_until(
            lambda: shows(shell_port, port, "Ledger edited"), lambda: "\n".join(server.lines)
        )

        shutil.rmtree(root / "apps/ledger")
        npm_install(root)
        config.write_text(original)
        wait_until(lambda: refused(port), lambda: "\n".join(server.lines), 60)
        wait_until(lambda: f":{port}/" not in page(shell_port), lambda: page(shell_port), 60)
        assert "<mfe-ledger" not in page(shell_port)
        wait_until(lambda: overlay(shell_port) == [], lambda: f"{overlay(shell_port)}", 60)
        assert shows(shell_port, ports["payments"], ">Payments</h2>")
        server.wait_for(rf"^serve: ledger: no longer served \(port {port} closed\)$")
    finally:
        code = server.stop()
    output = "\n".join(server.lines)
    assert code == CTRL_C_STOPPED, output
    assert "Traceback" not in output


def test_a_new_app_folder_is_served_once_npm_installed_it(
    monorepo_built: Path, tmp_path: Path
) -> None:
    """No table in mfe.toml: the folder is the app. `npm install` changes the lockfile,
    serve finds the apps again, builds the new one and serves it on its default port."""
    root = link_copy(monorepo_built, tmp_path / "repo")
    shell_port, ports = use_free_ports(root)
    server = ServeProcess(root)
    try:
        server.wait_for(rf"^http://127\.0\.0\.1:{shell_port}/$")
        copy_app(root, "payments", "ledger", "Ledger")
        hint = "ledger: new app ledger: run `npm install`, then serve builds and serves it"
        wait_until(lambda: hint in overlay(shell_port), lambda: f"{overlay(shell_port)}")
        port = load_project(root).apps["ledger"].dev_port
        npm_install(root)
        wait_until(lambda: shows(shell_port, port, "Ledger"), lambda: "\n".join(server.lines), 120)
        wait_until(lambda: overlay(shell_port) == [], lambda: f"{overlay(shell_port)}", 60)
        assert shows(shell_port, ports["payments"], ">Payments</h2>")
    finally:
        code = server.stop()
    assert code == CTRL_C_STOPPED, "\n".join(server.lines)


def test_a_new_app_in_mfe_toml_before_its_npm_install_is_one_notice(
    monorepo_built: Path, tmp_path: Path
) -> None:
    """`doit new_app` writes the folder and its [apps.NAME] table, then runs `npm install`:
    meanwhile serve said install failed ("run `doit` again"), every build UnmetDependency,
    and the shell failed ("run `doit build:NAME` first"); now one notice, then it serves."""
    root = link_copy(monorepo_built, tmp_path / "repo")
    shell_port, ports = use_free_ports(root)
    server = ServeProcess(root)
    try:
        server.wait_for(rf"^http://127\.0\.0\.1:{shell_port}/$")
        mark = len(server.lines)
        copy_app(root, "payments", "ledger", "Ledger")
        (port,) = free_ports(1)
        set_config(root, "apps.ledger.dev_port", port)
        hint = "new app ledger: run `npm install`, then serve builds and serves it"
        wait_until(lambda: overlay(shell_port) == [f"ledger: {hint}"], "the one notice")
        server.wait_for(rf"^serve: {re.escape(hint)}$", since=mark)
        npm_install(root)
        wait_until(lambda: shows(shell_port, port, "Ledger"), lambda: "\n".join(server.lines), 120)
        wait_until(lambda: overlay(shell_port) == [], lambda: f"{overlay(shell_port)}", 60)
        assert shows(shell_port, ports["payments"], ">Payments</h2>")
        said = "\n".join(server.lines[mark:])
        assert "failed" not in said and "UnmetDependency" not in said, said
    finally:
        code = server.stop()
    assert code == CTRL_C_STOPPED, "\n".join(server.lines)


def test_doit_new_app_while_serve_runs_waits_for_its_npm_install(
    monorepo_built: Path, tmp_path: Path
) -> None:
    """`doit new_app` writes the folder and [apps.NAME], then runs `npm install`: serve
    says it waits for that install (no failed build, no advice to run it), then builds the
    app and names its URL once it serves something."""
    root = link_copy(monorepo_built, tmp_path / "repo")
    shell_port, ports = use_free_ports(root)
    server = ServeProcess(root)
    try:
        server.wait_for(rf"^http://127\.0\.0\.1:{shell_port}/$")
        mark = len(server.lines)
        new_app = subprocess.Popen(
            [sys.executable, "-m", "doit", "new_app", "name=cart2", "stack=lit"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        seen: set[str] = set()
        while new_app.poll() is None:  # what a tab shows while npm installs
            seen.update(overlay_titles(shell_port))
            time.sleep(0.05)
        said_new_app = new_app.communicate()[0]
        assert new_app.returncode == 0, said_new_app
        assert seen <= {"New app cart2: installing"}, seen
        port = load_project(root).apps["cart2"].dev_port
        wait_until(lambda: shows(shell_port, port, "Cart2"), lambda: "\n".join(server.lines), 120)
        wait_until(lambda: overlay(shell_port) == [], lambda: f"{overlay(shell_port)}", 60)
        waiting = "serve: new app cart2: waiting for the npm install under way, then serve "
        told = server.wait_for(f"^{re.escape(waiting)}builds and serves it$", since=mark)
        rebuilt = server.wait_for(r"^serve: rebuilt .*cart2", since=told)
        url = server.wait_for(rf"^serve: cart2: http://127\.0\.0\.1:{port}/ ", since=mark)
        assert url > rebuilt, "\n".join(server.lines[mark:])
        said = "\n".join(server.lines[mark:])
        assert "failed" not in said and "run `npm install`" not in said, said
        assert shows(shell_port, ports["payments"], ">Payments</h2>")
    finally:
        code = server.stop()
    assert code == CTRL_C_STOPPED, "\n".join(server.lines)


@pytest.fixture(scope="module")
def served(monorepo_built: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(monorepo_built, tmp_path_factory.mktemp("apps")) as served:
        yield served


@pytest.fixture
def config(served: Served) -> Iterator[Path]:
    """mfe.toml; whatever a test writes there is undone, and served again, afterwards."""
    path = served.root / "mfe.toml"
    original = path.read_text()
    yield path
    path.write_text(original)
    for app, port in served.ports.items():
        wait_until(lambda: entry(served.shell_port, port) != "", f"{app} not back")  # noqa: B023
    wait_until(lambda: overlay(served.shell_port) == [], "errors left")


def set_ports(config: Path, ports: dict[str, int]) -> None:
    text = config.read_text()
    for app, port in ports.items():
        text, found = re.subn(
            rf"(\[apps\.{app}\][^\[]*?dev_port = )\d+", rf"\g<1>{port}", text, count=1
        )
        assert found, app
    config.write_text(text)


def test_a_moved_dev_port_moves_the_app_server(served: Served, config: Path) -> None:
    shell, ports = served.shell_port, served.ports
    (port,) = free_ports(1)
    mark = len(served.server.lines)
    set_ports(config, {"accounts": port})
    wait_until(
        lambda: shows(shell, port, "accounts-heading"), lambda: "\n".join(served.server.lines)
    )
    moved = rf"^serve: accounts: http://127\.0\.0\.1:{port}/ \(apps/accounts/dist\); "
    served.server.wait_for(moved + rf"port {ports['accounts']} closed$", since=mark)
    assert refused(ports["accounts"])
    assert f":{ports['accounts']}/" not in page(shell)
    assert overlay(shell) == []

    # Two apps swap ports in one save: each closes before the other binds.
    set_ports(config, {"accounts": ports["payments"], "payments": port})
    wait_until(lambda: shows(shell, port, ">Payments</h2>"), lambda: "\n".join(served.server.lines))
    wait_until(lambda: shows(shell, ports["payments"], "accounts-heading"), lambda: page(shell))
    assert overlay(shell) == []


def test_a_busy_port_is_a_config_error_and_the_others_keep_serving(
    served: Served, config: Path
) -> None:
    shell, ports = served.shell_port, served.ports
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        set_ports(config, {"payments": port})
        expected = (
            f"mfe.toml: port {port} for app 'payments' is already in use on 127.0.0.1; stop "
            "whatever listens there or change [apps.payments] dev_port in mfe.toml; then "
            "reload the page (or save mfe.toml again)"
        )
        wait_until(lambda: overlay(shell) == [expected], f"{overlay(shell)}")
        assert refused(ports["payments"])
        assert shows(shell, ports["accounts"], "accounts-heading")
    assert served.server.proc.poll() is None
    config.write_text(config.read_text())  # the port is free now: saving tries again
    wait_until(lambda: shows(shell, port, ">Payments</h2>"), lambda: "\n".join(served.server.lines))
    wait_until(lambda: overlay(shell) == [], f"{overlay(shell)}")


def next_event(stream: http.client.HTTPResponse) -> str:
    """The name of the next event an open tab's stream gets (pings skipped; the stream pings
    every 15 s, so waiting for a later event is bounded here, not by the socket's timeout)."""
    deadline = time.monotonic() + 30
    while True:
        assert time.monotonic() < deadline, "no event in 30 s (pings only)"
        line = stream.readline().decode()
        assert line, "the stream ended"
        if line.startswith("event: "):
            return line.removeprefix("event: ").strip()


def test_a_busy_port_is_bound_once_free_when_a_tab_loads_the_page(
    served: Served, config: Path
) -> None:
    """No notice comes when a port frees: the developer who freed it looks at the page, and
    that load binds it; open tabs reload, as they could not load the app before."""
    shell = served.shell_port
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        set_ports(config, {"payments": port})
        wait_until(lambda: overlay(shell) != [], "no overlay")
        match = re.search(r'data-version="([^"]+)"', page(shell))
        assert match
        tab = http.client.HTTPConnection("127.0.0.1", shell, timeout=20)
        tab.request("GET", f"/_mfe/events?since={match.group(1)}")
        stream = tab.getresponse()
        assert next_event(stream) == "build-error"
    try:
        page(shell)  # the port is free now: this load binds it
        wait_until(
            lambda: shows(shell, port, ">Payments</h2>"), lambda: "\n".join(served.server.lines)
        )
        assert next_event(stream) == "reload"
    finally:
        tab.close()
    assert overlay(shell) == []


def test_page_loads_while_mfe_toml_is_broken_print_nothing(served: Served, config: Path) -> None:
    """A port found busy is tried again by page loads; with mfe.toml broken meanwhile they
    load it in vain, quietly (its error was told once)."""
    shell, server = served.shell_port, served.server
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        set_ports(config, {"payments": busy.getsockname()[1]})
        wait_until(lambda: overlay(shell) != [], "no overlay")
        mark = len(server.lines)
        config.write_text(config.read_text() + "\n[oops\n")
        told = server.wait_for(r"^serve: mfe\.toml is broken: .*invalid TOML", since=mark)
        for _ in range(3):
            page(shell)
        served.root.joinpath("apps/payments/src/payments-app.js").touch()  # a barrier
        line = server.wait_for(r"^serve: nothing rebuilt while mfe\.toml is broken", since=told)
        assert server.lines[line].endswith(": apps/payments/src/payments-app.js")
        assert line == told + 1, "\n".join(server.lines[mark:])


def test_a_moved_shell_port_asks_for_a_restart_and_rebuilds_go_on(
    served: Served, config: Path
) -> None:
    """As for an edited dodo.py: the page stays on the port the tabs use, a notice says a
    restart moves it, saves are still built; the port put back ends the notice."""
    shell, server = served.shell_port, served.server
    source = served.root / "apps/payments/src/payments-app.js"
    original = source.read_text()
    (port,) = free_ports(1)
    mark = len(server.lines)
    set_config(served.root, "env.dev.port", port)
    title = f"Restart needed: mfe.toml ([env.dev] port {shell} -> {port})"
    wait_until(lambda: overlay_titles(shell) == [title], lambda: f"{overlay_errors(shell)}")
    told = server.wait_for(rf"^serve: {re.escape(title)}: mfe\.toml changed since", since=mark)
    assert "run `doit serve` again to apply the change" in server.lines[told]
    assert refused(port)
    try:
        source.write_text(original.replace(">Payments</h2>", ">Payments moved</h2>"))
        wait_until(
            lambda: shows(shell, served.ports["payments"], "Payments moved"),
            lambda: "\n".join(server.lines[mark:]),
        )
        server.wait_for(r"^serve: rebuilt payments in ", since=told)
        assert overlay_titles(shell) == [title]
    finally:
        source.write_text(original)
    set_config(served.root, "env.dev.port", shell)
    back = r"^serve: mfe\.toml is back to the ports serve started with: no restart needed$"
    server.wait_for(back, since=told)
    wait_until(lambda: overlay(shell) == [], lambda: f"{overlay(shell)}")
    wait_until(lambda: shows(shell, served.ports["payments"], ">Payments</h2>"), "not rebuilt")


def test_allowed_hosts_saved_in_mfe_toml_apply_to_every_server(
    served: Served, config: Path
) -> None:
    ports = [served.shell_port, *served.ports.values()]

    def statuses(host: str) -> set[int]:
        return {status(port, "/", {"Host": host}) for port in ports}

    assert statuses("devbox.test") == {403}
    set_config(served.root, "env.dev.allowed_hosts", ["devbox.test"])
    wait_until(lambda: 403 not in statuses("devbox.test"), lambda: "\n".join(served.server.lines))
    assert statuses("attacker.example") == {403}
    config.write_text(config.read_text().replace('allowed_hosts = ["devbox.test"]', ""))
    wait_until(lambda: statuses("devbox.test") == {403}, lambda: "\n".join(served.server.lines))


def test_apps_added_and_removed_while_a_client_requests_leave_the_right_ports(
    monorepo_built: Path, tmp_path: Path
) -> None:
    """Ten rounds of payments removed, then back on another port, while a client keeps
    loading the page and keeps a connection to payments' port alive: the ports of the
    end state answer, every other refuses, no kept-alive connection outlives its server
    and no thread is left."""
    root = link_copy(monorepo_built, tmp_path / "repo")
    shell_port, ports = use_free_ports(root)
    project = load_project(root)
    run_doit(root, "shell", "env=dev")  # the page, as serve's first build renders it
    payments = project.apps["payments"]
    before = set(threading.enumerate())
    gate, broker = Gate(), Broker()
    servers = Servers(
        Site("shell", shell_port, "[env.dev] port", page=project.page("dev")),
        None,
        gate,
        broker,
        Origins(shell_port),
    )
    entry = next((root / "apps/payments/dist").glob("main-*.js")).name
    stop, failures = threading.Event(), []

    def client() -> None:
        """The page and a file of an app that stays, over and over."""
        while not stop.is_set():
            try:
                if "<mfe-payments" not in page(shell_port):
                    failures.append("page without payments")
                if get(ports["accounts"], "/asset-manifest.json") != 200:
                    failures.append("accounts did not answer")
            except OSError as exc:
                failures.append(f"{exc!r}")

    servers.start(project)
    spare = free_ports(10)
    loader = threading.Thread(target=client)
    loader.start()
    try:
        for round_, port in enumerate(spare):
            kept, idle = (
                http.client.HTTPConnection("127.0.0.1", servers.apps["payments"][0].site.port)
                for _ in range(2)
            )
            for connection in (kept, idle):
                connection.request("GET", f"/{entry}")
                assert connection.getresponse().read()
            servers.apply(without(project, "payments"))
            assert refused(kept.port), round_
            assert idle.sock is not None
            idle.sock.settimeout(10)
            assert idle.sock.recv(1) == b"", round_  # an idle connection is closed at once
            with pytest.raises((OSError, http.client.HTTPException)):
                kept.request("GET", f"/{entry}")  # the removed server answers nothing more
                kept.getresponse().read()
            kept.close()
            idle.close()
            project = with_app(project, dataclasses.replace(payments, dev_port=port))
            servers.apply(project)
        assert servers.apps.keys() == project.apps.keys()
        for app in project.apps.values():
            assert get(app.dev_port, "/asset-manifest.json") == 200, app.name
        assert [port for port in [ports["payments"], *spare[:-1]] if not refused(port)] == []
    finally:
        stop.set()
        loader.join(timeout=30)
        servers.stop()
        broker.close()
    assert failures == []
    assert all(refused(port) for port in [shell_port, *ports.values(), spare[-1]])
    wait_until(lambda: set(threading.enumerate()) == before, f"{threading.enumerate()}")


def get(port: int, path: str) -> int:
    return status(port, path, {})


def status(port: int, path: str, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def without(project: Project, name: str) -> Project:
    return dataclasses.replace(project, apps={k: v for k, v in project.apps.items() if k != name})


def with_app(project: Project, app: App) -> Project:
    return dataclasses.replace(project, apps={**project.apps, app.name: app})


def test_an_app_folder_deleted_before_its_table_leaves_the_others_served_and_rebuilt(
    monorepo_built: Path, tmp_path: Path
) -> None:
    """`rm -rf apps/accounts` with [apps.accounts] still in mfe.toml: the overlay and the
    terminal name the table to remove and the missing folder; payments is served and
    rebuilt meanwhile; the folder restored (`git checkout`) is served again."""
    root = link_copy(monorepo_built, tmp_path / "repo")
    shell_port, ports = use_free_ports(root)
    folder = root / "apps/accounts"
    saved = shutil.copytree(folder, tmp_path / "accounts", symlinks=True)
    payments = root / "apps/payments/src/payments-app.js"
    original = payments.read_text()
    expected = (
        "mfe.toml: mfe.toml: [apps.accounts] names an app, but its "
        "folder apps/accounts/ is missing (no apps/accounts/package.json); remove the "
        "[apps.accounts] table from mfe.toml, or restore the folder"
    )
    server = ServeProcess(root)
    try:
        server.wait_for(rf"^http://127\.0\.0\.1:{shell_port}/$")
        assert "[apps.accounts]" in (root / "mfe.toml").read_text()
        shutil.rmtree(folder)
        wait_until(
            lambda: overlay(shell_port) == [expected],
            f"{overlay(shell_port)}\n" + "\n".join(server.lines),
            60,
        )
        server.wait_for(r"^serve: mfe\.toml failed; the other apps are served and rebuilt")
        wait_until(lambda: refused(ports["accounts"]), lambda: "\n".join(server.lines))
        assert "<mfe-accounts" not in page(shell_port)
        payments.write_text(original.replace(">Payments</h2>", ">Payments meanwhile</h2>"))
        wait_until(
            lambda: shows(shell_port, ports["payments"], "Payments meanwhile"),
            "\n".join(server.lines),
        )
        assert overlay(shell_port) == [expected]

        shutil.copytree(saved, folder, symlinks=True)
        wait_until(
            lambda: shows(shell_port, ports["accounts"], "accounts-heading"), page(shell_port)
        )
        wait_until(lambda: overlay(shell_port) == [], lambda: f"{overlay(shell_port)}", 60)
        assert shows(shell_port, ports["payments"], "Payments meanwhile")
    finally:
        code = server.stop()
    output = "\n".join(server.lines)
    assert code == CTRL_C_STOPPED, output
    assert "Traceback" not in output


def test_an_app_folder_copied_with_its_package_name_is_told_to_rename_it(
    monorepo_built: Path, tmp_path: Path
) -> None:
    """`cp -r apps/payments apps/billing`: serve said to run `npm install`, which fails
    ("multiple workspaces with the same name"); it names both package.json files now."""
    root = link_copy(monorepo_built, tmp_path / "repo")
    shell_port, _ = use_free_ports(root)
    server = ServeProcess(root)
    try:
        server.wait_for(rf"^http://127\.0\.0\.1:{shell_port}/$")
        mark = len(server.lines)
        shutil.copytree(root / "apps/payments", root / "apps/billing", symlinks=True)
        rename = (
            'new app billing: apps/billing/package.json: "name" is "payments", as in '
            "apps/payments/package.json; npm workspaces need unique names (`npm install` "
            'fails on two): rename it ("name": "billing"), then run `npm install`'
        )
        server.wait_for(rf"^serve: {re.escape(rename)}$", since=mark)
        wait_until(
            lambda: overlay(shell_port) == [f"billing: {rename}"], lambda: overlay(shell_port)
        )
        assert overlay_titles(shell_port) == ["New app billing: rename its package"]
        said = "\n".join(server.lines[mark:])
        assert "run `npm install`, then serve builds" not in said, said
    finally:
        code = server.stop()
    assert code == CTRL_C_STOPPED, "\n".join(server.lines)


def test_two_apps_given_one_package_name_are_headed_by_their_package_json_not_mfe_toml(
    monorepo_built: Path, tmp_path: Path
) -> None:
    """An installed app's package.json renamed to another app's name, then mfe.toml saved:
    the project does not load, and serve headed that "mfe.toml is broken" though mfe.toml
    was fine."""
    with serving(monorepo_built, tmp_path) as served:
        root, server, shell_port = served.root, served.server, served.shell_port
        package = root / "apps/accounts/package.json"
        good = package.read_text()
        mark = len(server.lines)
        package.write_text(json.dumps({**json.loads(good), "name": "payments"}))
        server.wait_for(r"^serve: apps/accounts/package\.json failed", since=mark)
        config = root / "mfe.toml"
        config.write_text(config.read_text() + "# saved\n")
        files = "apps/accounts/package.json and apps/payments/package.json"
        heading = f"{files} are broken: nothing is rebuilt until it is fixed"
        told = server.wait_for(rf"^serve: {re.escape(heading)}: apps/", since=mark)
        assert '"name" is "payments"' in server.lines[told], server.lines[told]
        wait_until(lambda: heading in overlay_titles(shell_port), lambda: overlay(shell_port))
        assert not [title for title in overlay_titles(shell_port) if "mfe.toml" in title]
        assert f"{files}: apps/accounts/package.json: " in overlay(shell_port)[0]
        assert not [line for line in server.lines[mark:] if "mfe.toml" in line], server.lines
        mark = len(server.lines)
        package.write_text(good)
        wait_until(lambda: overlay_titles(shell_port) == [], lambda: overlay(shell_port))


def test_saves_of_a_new_apps_package_json_are_named(monorepo_built: Path, tmp_path: Path) -> None:
    """While a new app folder waits for `npm install`, an edit of its package.json said
    only "rebuilt nothing": it is named, as any other save."""
    root = link_copy(monorepo_built, tmp_path / "repo")
    shell_port, _ = use_free_ports(root)
    server = ServeProcess(root)
    try:
        server.wait_for(rf"^http://127\.0\.0\.1:{shell_port}/$")
        copy_app(root, "payments", "billing", "Billing")
        hint = "new app billing: run `npm install`, then serve builds and serves it"
        told = server.wait_for(rf"^serve: {re.escape(hint)}$")
        package = root / "apps/billing/package.json"
        for description in ("one", "two"):
            mark = len(server.lines)
            package.write_text(
                json.dumps({**json.loads(package.read_text()), "description": description})
            )
            server.wait_for(r"^serve: changed: apps/billing/package\.json$", since=mark)
        said = server.lines[told:]
        assert not [line for line in said if "rebuilt" in line], "\n".join(said)
    finally:
        code = server.stop()
    assert code == CTRL_C_STOPPED, "\n".join(server.lines)


def test_a_new_apps_url_is_printed_once_it_has_built_not_before(
    monorepo_built: Path, tmp_path: Path
) -> None:
    """A copied (or moved) app folder brings its `dist/`: its URL was printed as soon as
    serve found the app, before its `npm install` or its first build (README: "its URL is
    printed once it has built")."""
    root = link_copy(monorepo_built, tmp_path / "repo")
    shell_port, _ = use_free_ports(root)
    server = ServeProcess(root)
    try:
        server.wait_for(rf"^http://127\.0\.0\.1:{shell_port}/$")
        mark = len(server.lines)
        copy_app(root, "payments", "ledger", "Ledger")
        shutil.copytree(root / "apps/payments/dist", root / "apps/ledger/dist")
        server.wait_for(r"^serve: new app ledger: run `npm install`", since=mark)
        npm_install(root)
        port = load_project(root).apps["ledger"].dev_port
        wait_until(lambda: shows(shell_port, port, "Ledger"), lambda: "\n".join(server.lines), 120)
        rebuilt = server.wait_for(r"^serve: rebuilt .*\bledger\b", since=mark)
        url = server.wait_for(rf"^serve: ledger: http://127\.0\.0\.1:{port}/ ", since=mark)
        assert url > rebuilt, "\n".join(server.lines[mark:])
    finally:
        code = server.stop()
    assert code == CTRL_C_STOPPED, "\n".join(server.lines)
