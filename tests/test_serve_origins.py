"""Same-origin by default: Host allow-list, CORS and source maps for the shell's origin only."""

from __future__ import annotations

import http.client
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from mfe.config import load_project
from mfe.errors import ConfigError
from mfe.serve.origins import Origins

from fixtures.config import set_config
from fixtures.repo import copy_sources
from fixtures.serve import CTRL_C_STOPPED, ServeProcess, use_free_ports


def request(port: int, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    connection.close()
    return response


def test_host_names_and_origins() -> None:
    origins = Origins(5170, ("devbox.test",))
    for host in ("127.0.0.1:5171", "localhost:5171", "[::1]:5171", "LOCALHOST:5171"):
        assert origins.host_allowed(host, 5171), host
    assert origins.host_allowed("devbox.test", 5171)
    for host in ("attacker.example:5171", "127.0.0.1:5172", "127.0.0.1:x", "", None, "[::2]"):
        assert not origins.host_allowed(host, 5171), host
    assert origins.cors_origin("http://localhost:5170") == "http://localhost:5170"
    assert origins.cors_origin("http://127.0.0.1:5171") is None  # an app's port is not the shell
    assert origins.cors_origin("http://attacker.example") is None
    assert origins.cors_origin(None) is None
    assert origins.may_read_source_map(None, None)  # DevTools
    assert not origins.may_read_source_map(None, "cross-site")
    assert not origins.may_read_source_map("http://localhost:8080", "same-site")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (["http://devbox.test"], "bare host names"),
        (["devbox.test:8080"], "bare host names"),
        (["*"], "bare host names"),
        ("devbox.test", "must be list"),
    ],
)
def test_allowed_hosts_are_validated(tmp_path: Path, value: Any, problem: str) -> None:
    root = copy_sources(tmp_path / "repo")
    set_config(root, "env.dev.allowed_hosts", value)
    with pytest.raises(ConfigError, match=problem) as error:
        load_project(root)
    assert "env.dev.allowed_hosts" in str(error.value)
    set_config(root, "env.dev.allowed_hosts", ["Devbox.test"])
    assert load_project(root).env("dev").allowed_hosts == ("devbox.test",)


def test_other_origins_cannot_read_the_sources(monorepo: Path, page: Page) -> None:
    shell_port, ports = use_free_ports(monorepo)
    set_config(monorepo, "env.dev.allowed_hosts", ["devbox.test"])
    shell = f"http://127.0.0.1:{shell_port}"
    server = ServeProcess(monorepo)
    try:
        server.wait_for(rf"^{shell}/$")
        entry = next((monorepo / "apps/payments/dist").glob("main-*.js")).name
        source_map = f"/{entry}.map"
        assert (monorepo / "apps/payments/dist" / source_map[1:]).is_file()

        # DNS rebinding: a foreign Host gets a one-line 403 on every port.
        for port, path in [(shell_port, "/"), *[(p, f"/{entry}") for p in ports.values()]]:
            refused = request(port, path, {"Host": f"attacker.example:{port}"})
            assert refused.status == 403, port
            assert refused.body.decode().count("\n") == 1  # type: ignore[attr-defined]
            assert b"attacker.example" in refused.body  # type: ignore[attr-defined]
            assert request(port, path, {"Host": f"localhost:{port}"}).status in (200, 404)
            assert request(port, path, {"Host": f"[::1]:{port}"}).status in (200, 404)
            assert request(port, path, {"Host": "devbox.test"}).status in (200, 404)

        # CORS and source maps for the shell's origin only.
        app = ports["payments"]
        foreign = {"Origin": "http://localhost:9", "Sec-Fetch-Site": "same-site"}
        assert "Access-Control-Allow-Origin" not in request(app, f"/{entry}", foreign).headers
        assert request(app, source_map, foreign).status == 403
        assert request(app, source_map, {"Sec-Fetch-Site": "cross-site"}).status == 403
        granted = request(app, f"/{entry}", {"Origin": shell})
        assert granted.headers["Access-Control-Allow-Origin"] == shell
        assert request(app, source_map, {"Origin": shell}).status == 200

        # In Chromium: the shell loads every app with SRI; another origin's fetch fails.
        page.goto(f"http://localhost:{shell_port}/")
        for heading in ("Accounts", "Payments"):
            page.locator("h2", has_text=heading).wait_for(timeout=15_000)
        assert page.locator("script[type=module][integrity]").count() >= 3
        page.route("http://localhost:9/", lambda route: route.fulfill(body="<p>elsewhere</p>"))
        page.goto("http://localhost:9/")
        outcome = page.evaluate(
            """url => fetch(url).then(r => r.text()).then(() => "read", e => e.name)""",
            f"http://127.0.0.1:{app}/{entry}",
        )
        assert outcome == "TypeError"
    finally:
        assert server.stop() == CTRL_C_STOPPED
