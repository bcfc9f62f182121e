"""The serve overlay is the whole truth, and the server outlives every bad edit.

Real doit, watchdog, esbuild and headless Chromium on a private copy of the monorepo.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
from pathlib import Path

import pytest
from playwright.sync_api import Page
from test_serve_apps import overlay, shows

from mfe.config import load_project

from fixtures.config import set_config
from fixtures.repo import link_copy, run_doit
from fixtures.serve import (
    CTRL_C_STOPPED,
    ServeProcess,
    overlay_errors,
    overlay_titles,
    page,
    serving,
    use_free_ports,
    wait_until,
)

COUNT_LOADS = "sessionStorage.loads = String(Number(sessionStorage.loads || 0) + 1);"


def test_overlay_lists_every_failure_until_all_are_fixed(monorepo: Path, page: Page) -> None:
    shell_port, _ = use_free_ports(monorepo)
    payments = monorepo / "apps/payments/src/payments-app.js"
    accounts = monorepo / "apps/accounts/src/accounts-app.jsx"
    template = monorepo / "shell/index.html.j2"
    config = monorepo / "mfe.toml"
    good = {path: path.read_text() for path in (payments, accounts, template, config)}
    overlay = page.locator("#mfe-error-overlay")

    def wait_failing(expected: list[str]) -> None:
        page.wait_for_function(
            """expected => JSON.stringify([...document.querySelectorAll(
                 '#mfe-error-overlay .mfe-error-title')].map(e => e.textContent
                 .replace('Build failed: ', '')).sort()) === JSON.stringify(expected)""",
            arg=sorted(expected),
            timeout=30_000,
        )

    server = ServeProcess(monorepo)
    try:
        server.wait_for(rf"^http://127\.0\.0\.1:{shell_port}/$")
        page.add_init_script(COUNT_LOADS)
        page.goto(f"http://127.0.0.1:{shell_port}/")
        page.locator("h2", has_text="Payments").wait_for(timeout=15_000)

        # Two broken apps: both listed; fixing one keeps the other, also in a new tab.
        payments.write_text(good[payments].replace("render() {", "render() {{", 1))
        accounts.write_text(good[accounts].replace("<table>", "<table", 1))
        wait_failing(["accounts", "payments"])
        # esbuild's messages name files from the repo root, as the terminal's lines do
        assert "apps/payments/src/payments-app.js:" in overlay.inner_text()
        accounts.write_text(good[accounts].replace(">Accounts</h2>", ">Accounts fixed</h2>"))
        page.locator("h2", has_text="Accounts fixed").wait_for(timeout=30_000)
        wait_failing(["payments"])
        page.reload()
        wait_failing(["payments"])

        # A template runtime error joins the list; the server lives on.
        template.write_text(good[template].replace("{{ title }}", "{{ title + 1 }}", 1))
        wait_failing(["payments", "shell"])
        assert "index.html.j2, line 10" in overlay.inner_text()
        assert "TypeError" in overlay.inner_text()
        template.write_text(good[template])
        payments.write_text(good[payments])
        overlay.wait_for(state="detached", timeout=30_000)

        # mfe.toml broken: an app edited meanwhile is built once the config is fixed (what
        # serve says meanwhile: test_a_broken_mfe_toml_is_told_once_and_holds_the_builds).
        config.write_text(good[config] + "\n[oops\n")
        wait_failing(["mfe.toml is broken: nothing is rebuilt until it is fixed"])
        mark = len(server.lines)
        payments.write_text(good[payments].replace(">Payments</h2>", ">Payments later</h2>"))
        server.wait_for(r"^serve: nothing rebuilt while mfe\.toml is broken", since=mark)
        config.write_text(good[config])
        page.locator("h2", has_text="Payments later").wait_for(timeout=30_000)
        overlay.wait_for(state="detached", timeout=30_000)

        # A save that changes no output does not reload the tabs.
        loads = page.evaluate("sessionStorage.loads")
        mark = len(server.lines)
        payments.touch()
        server.wait_for(r"^serve: rebuilt nothing in .*output unchanged, pages kept", since=mark)
        payments.write_text(good[payments])
        page.locator("h2", has_text=re.compile(r"^Payments$")).wait_for(timeout=30_000)
        assert page.evaluate("sessionStorage.loads") == str(int(loads) + 1)

        # A new app folder: one line saying what to do.
        (monorepo / "apps/greeting").mkdir()
        (monorepo / "apps/greeting/package.json").write_text('{"name": "greeting"}')
        wait_failing(["greeting"])
        assert "new app greeting: run `npm install`, then serve builds and serves it" in (
            overlay.inner_text()
        )
        assert server.proc.poll() is None
    finally:
        code = server.stop()
    output = "\n".join(server.lines)
    assert code == CTRL_C_STOPPED, output
    assert "Traceback" not in output
    assert "serve: stopped, bye" in output


def test_a_broken_mfe_toml_is_told_once_and_holds_the_builds(
    monorepo_built: Path, tmp_path: Path
) -> None:
    """Saves while mfe.toml does not load are named, not "rebuilt nothing"; its error is
    told once (and in the overlay); the fix builds what changed meanwhile."""
    with serving(monorepo_built, tmp_path) as served:
        server, config = served.server, served.root / "mfe.toml"
        payments = served.root / "apps/payments/src/payments-app.js"
        accounts = served.root / "apps/accounts/src/accounts-app.jsx"
        good = {path: path.read_text() for path in (config, payments, accounts)}
        broken = "mfe.toml is broken: nothing is rebuilt until it is fixed"
        mark = len(server.lines)
        config.write_text(good[config] + "\n[oops\n")
        wait_until(lambda: overlay_titles(served.shell_port) == [broken], "no overlay")
        (shown,) = overlay(served.shell_port)
        assert "mfe.toml: invalid TOML" in shown, shown

        waiting = "^serve: nothing rebuilt while mfe\\.toml is broken; changed meanwhile "
        waiting += r"\(built once it is fixed\): "
        payments.write_text(good[payments].replace(">Payments</h2>", ">Payments later</h2>"))
        line = server.wait_for(waiting + r"apps/payments/src/payments-app\.js$", since=mark)
        accounts.write_text(good[accounts].replace(">Accounts</h2>", ">Accounts later</h2>"))
        both = r"apps/accounts/src/accounts-app\.jsx, apps/payments/src/payments-app\.js"
        server.wait_for(waiting + both + "$", since=line + 1)
        told = [line for line in server.lines[mark:] if "invalid TOML" in line]
        assert len(told) == 1, "\n".join(server.lines[mark:])
        assert told[0].startswith(f"serve: {broken}: "), told[0]
        assert not any(line.startswith("serve: rebuilt") for line in server.lines[mark:])

        mark = len(server.lines)
        config.write_text(good[config])
        built = r"^serve: rebuilt .*\baccounts\b.*\bpayments\b"
        server.wait_for(rf"{built}.* for {both}, mfe\.toml; ", since=mark)
        ports = served.ports
        assert shows(served.shell_port, ports["payments"], ">Payments later</h2>")
        assert overlay_titles(served.shell_port) == []
    assert "Traceback" not in "\n".join(served.server.lines)


def test_a_failed_save_is_not_followed_by_rebuilt_nothing(
    monorepo_built: Path, tmp_path: Path
) -> None:
    """A failing save said "payments failed", then "rebuilt nothing; output unchanged, pages
    kept", as if the save had been fine; saving it still broken says it still fails. No
    empty sections of doit's after the error."""
    with serving(monorepo_built, tmp_path) as served:
        server = served.server
        payments = served.root / "apps/payments/src/payments-app.js"
        good = payments.read_text()
        broken = good.replace("render() {", "render() {{", 1)
        mark = len(server.lines)
        payments.write_text(broken)
        server.wait_for(r"^serve: payments failed; the last good build stays", since=mark)
        payments.write_text(broken.replace(">Payments</h2>", ">Paymentz</h2>"))  # same error
        again = server.wait_for(r"^serve: payments still failing; the last good", since=mark)
        assert server.lines[again].endswith("build stays served (error above)"), server.lines
        payments.write_text(good.replace(">Payments</h2>", ">Payments fixed</h2>"))
        server.wait_for(r"^serve: rebuilt payments in .*; reloading pages", since=again)
        said = server.lines[mark:]
        assert not [line for line in said if "rebuilt nothing" in line], "\n".join(said)
        told = [line for line in said if line.startswith("serve: payments failed")]
        assert len(told) == 1, "\n".join(said)
        # doit's own end of a failed run: a row of # and an empty `<stdout>:` section
        assert not [line for line in said if line.startswith("#") or "<stdout>" in line], said


def test_saves_that_leave_apps_broken_print_each_error_once_and_name_them_all(
    monorepo_built: Path, tmp_path: Path
) -> None:
    """A save of another file, or of mfe.toml, builds still-broken apps again: doit's
    report printed each full error again, then "rebuilt nothing; output unchanged", which
    named no failing app. The README: a failure is printed in full, once."""
    with serving(monorepo_built, tmp_path) as served:
        server, root = served.server, served.root
        payments = root / "apps/payments/src/payments-app.js"
        accounts = root / "apps/accounts/src/accounts-app.jsx"
        good = {path: path.read_text() for path in (payments, accounts)}
        mark = len(server.lines)
        payments.write_text(good[payments] + "\n)))\n")
        server.wait_for(r"^serve: payments failed; the last good build stays", since=mark)
        accounts.write_text(good[accounts] + "\n)))\n")
        told = server.wait_for(r"^serve: accounts failed; the last good build stays", since=mark)

        config = root / "mfe.toml"
        config.write_bytes(config.read_bytes())  # saved as it was: every app builds again
        both = r"^serve: accounts, payments still failing; the last good build stays served"
        told = server.wait_for(both + r" \(error above\)$", since=told + 1)
        format_js = root / "apps/payments/src/format.js"
        format_js.write_text(format_js.read_text() + "\n// saved\n")
        server.wait_for(r"^serve: payments still failing; ", since=told + 1)

        said = server.lines[mark:]
        errors = [line for line in said if "[ERROR]" in line]
        assert len(errors) == 2, "\n".join(said)  # one per app, as each first failed
        assert not [line for line in said if "rebuilt nothing" in line], "\n".join(said)


def test_a_dodo_py_syntax_error_is_in_the_overlay_and_goes_once_a_cycle_succeeds(
    monorepo_built: Path, tmp_path: Path, page: Page
) -> None:
    """A dodo.py saved broken together with an app's source: the overlay names its line (no
    app's build ran), and saving both fixed builds the app and clears it."""
    root = link_copy(monorepo_built, tmp_path / "repo")
    shell_port, _ = use_free_ports(root)
    dodo = root / "dodo.py"
    good_dodo = dodo.read_text()
    payments = root / "apps/payments/src/payments-app.js"
    good = payments.read_text()
    overlay = page.locator("#mfe-error-overlay")
    server = ServeProcess(root)
    try:
        server.wait_for(rf"^http://127\.0\.0\.1:{shell_port}/$")
        page.goto(f"http://127.0.0.1:{shell_port}/")
        page.locator("h2", has_text="Payments").wait_for(timeout=15_000)

        dodo.write_text(good_dodo + "def (:\n")
        payments.write_text(good.replace(">Payments</h2>", ">Payments one</h2>"))
        overlay.wait_for(timeout=30_000)
        line = len(good_dodo.splitlines()) + 1
        assert f"dodo.py, line {line}: SyntaxError: invalid syntax" in overlay.inner_text()

        dodo.write_text(good_dodo)
        payments.write_text(good.replace(">Payments</h2>", ">Payments two</h2>"))
        page.locator("h2", has_text="Payments two").wait_for(timeout=30_000)
        overlay.wait_for(state="detached", timeout=30_000)
    finally:
        code = server.stop()
    assert code == CTRL_C_STOPPED, "\n".join(server.lines)


def test_serve_starts_with_an_app_that_fails_to_build(
    monorepo_built: Path, tmp_path: Path, page: Page
) -> None:
    """The others are served, the failing one from its last good build, its error shown."""
    root = link_copy(monorepo_built, tmp_path / "repo")
    shell_port, _ = use_free_ports(root)
    accounts = root / "apps/accounts/src/accounts-app.jsx"
    good = accounts.read_text()
    accounts.write_text(good.replace("<table>", "<table", 1))
    overlay = page.locator("#mfe-error-overlay")
    server = ServeProcess(root)
    try:
        url_line = server.wait_for(rf"^http://127\.0\.0\.1:{shell_port}/$")
        assert server.wait_for(r"^serve: accounts failed; the last good build stays") < url_line
        page.goto(f"http://127.0.0.1:{shell_port}/")
        page.locator("h2", has_text="Payments").wait_for(timeout=15_000)
        page.locator("h2", has_text="Accounts").wait_for(timeout=15_000)
        overlay.wait_for(timeout=15_000)
        assert overlay.locator(".mfe-error-title").all_inner_texts() == ["Build failed: accounts"]

        accounts.write_text(good.replace(">Accounts</h2>", ">Accounts fixed</h2>"))
        page.locator("h2", has_text="Accounts fixed").wait_for(timeout=30_000)
        overlay.wait_for(state="detached", timeout=30_000)
    finally:
        code = server.stop()
    assert code == CTRL_C_STOPPED, "\n".join(server.lines)


def test_serve_starts_with_an_app_that_never_built(
    monorepo_built: Path, tmp_path: Path, page: Page
) -> None:
    """No page can name an app without a build: the overlay says why until it builds."""
    root = link_copy(monorepo_built, tmp_path / "repo")
    shell_port, _ = use_free_ports(root)
    shutil.rmtree(root / "apps/accounts/dist")
    (root / "build/dev/index.html").unlink(missing_ok=True)
    accounts = root / "apps/accounts/src/accounts-app.jsx"
    good = accounts.read_text()
    accounts.write_text(good.replace("<table>", "<table", 1))
    overlay = page.locator("#mfe-error-overlay")
    server = ServeProcess(root)
    try:
        server.wait_for(rf"^http://127\.0\.0\.1:{shell_port}/$")
        assert "serve: accounts failed; it has never built" in "\n".join(server.lines)
        page.goto(f"http://127.0.0.1:{shell_port}/")
        overlay.wait_for(timeout=15_000)
        titles = overlay.locator(".mfe-error-title").all_inner_texts()
        assert sorted(titles) == ["Build failed: accounts", "Build failed: shell"]
        assert "apps/accounts/dist/asset-manifest.json: missing" in overlay.inner_text()

        accounts.write_text(good.replace(">Accounts</h2>", ">Accounts at last</h2>"))
        page.locator("h2", has_text="Accounts at last").wait_for(timeout=30_000)
        page.locator("h2", has_text="Payments").wait_for(timeout=15_000)
        overlay.wait_for(state="detached", timeout=30_000)
    except Exception:
        print("doit serve said:", *server.lines, sep="\n")  # shown with the failure
        raise
    finally:
        code = server.stop()
    assert code == CTRL_C_STOPPED, "\n".join(server.lines)


def test_shell_template_runtime_error_is_one_clear_message(monorepo: Path) -> None:
    run_doit(monorepo, "build")
    template = monorepo / "shell/index.html.j2"
    template.write_text(template.read_text().replace("{{ title }}", "{{ title + 1 }}", 1))
    result = run_doit(monorepo, "shell", "env=dev", check=False)
    assert result.returncode != 0
    assert "shell/index.html.j2, line 10: template error: TypeError" in result.stdout
    assert "Traceback" not in result.stdout


def test_port_option_colliding_with_an_app_port_says_so(monorepo: Path) -> None:
    _, ports = use_free_ports(monorepo)
    run_doit(monorepo, "build")
    result = run_doit(monorepo, "serve", "--port", str(ports["accounts"]), check=False)
    assert result.returncode != 0
    assert f"--port {ports['accounts']} collides with app 'accounts'" in result.stdout
    assert "Traceback" not in result.stdout
    with socket.socket() as probe:  # nothing was left listening
        probe.bind(("127.0.0.1", ports["accounts"]))


@pytest.mark.parametrize("port", ["abc", "65536", "-1", "80.5"])
def test_port_option_that_is_no_port_is_one_line_before_anything_runs(
    monorepo: Path, port: str
) -> None:
    """doit's own parse of `--port abc` printed its parser's error on two lines (exit 3)."""
    result = run_doit(monorepo, "serve", "--port", port, check=False)
    assert result.returncode == 2, result.stdout
    assert result.stdout.splitlines() == [
        f"error: serve: --port must be a port number 1-65535, got '{port}'"
    ], result.stdout
    assert not (monorepo / "apps/accounts/dist").exists()  # nothing was built


@pytest.mark.parametrize("emulator_port", [None, 4871], ids=["default", "set"])
def test_port_option_on_the_emulators_port_names_its_key(
    monorepo: Path, emulator_port: int | None
) -> None:
    """The local emulator listens on 127.0.0.1 too: serve said only "already in use" (or
    took the port first, and the next publish found the emulator's port busy)."""
    if emulator_port is not None:
        set_config(monorepo, "env.local.port", emulator_port)
    port = load_project(monorepo).env("local").port
    result = run_doit(monorepo, "serve", "--port", str(port), check=False)
    assert result.returncode == 2, result.stdout
    assert result.stdout.splitlines() == [
        f"error: serve: --port {port} collides with environment 'local' (its server's port, "
        "[env.local] port in mfe.toml); pick another --port"
    ], result.stdout


def test_an_edited_dodo_py_asks_for_a_restart_until_it_is_back(
    monorepo_built: Path, tmp_path: Path, page: Page
) -> None:
    """The running serve was set up by the dodo.py it started with: an edit is told in the
    terminal and the overlay (not as a failed build), and goes once dodo.py is as it was."""
    overlay = page.locator("#mfe-error-overlay")
    with serving(monorepo_built, tmp_path) as served:
        server, dodo = served.server, served.root / "dodo.py"
        good = dodo.read_text()
        assert "dodo.py" in server.lines[server.wait_for(r"^serve: watching ")]
        page.goto(served.url)
        page.locator("h2", has_text="Payments").wait_for(timeout=15_000)
        mark = len(server.lines)
        dodo.write_text(good + "\nDOIT_CONFIG['verbosity'] = 2\n")
        overlay.wait_for(timeout=30_000)
        assert overlay.locator(".mfe-error-title").all_inner_texts() == ["Restart needed: dodo.py"]
        advice = "stop it (Ctrl-C) and run `doit serve` again to apply the change"
        assert advice in overlay.inner_text()
        line = server.wait_for(r"^serve: Restart needed: dodo\.py: dodo\.py changed", since=mark)
        assert advice in server.lines[line]

        dodo.write_text(good)
        overlay.wait_for(state="detached", timeout=30_000)
    assert "Traceback" not in "\n".join(served.server.lines)


def test_a_dodo_py_edit_is_one_restart_notice_and_no_rebuild_line(
    monorepo_built: Path, tmp_path: Path
) -> None:
    """Saves of dodo.py tell the restart once (no "rebuilt nothing" per save), and say
    when it is back as serve started with it."""
    with serving(monorepo_built, tmp_path) as served:
        server, dodo = served.server, served.root / "dodo.py"
        payments = served.root / "apps/payments/src/payments-app.js"
        good = dodo.read_text()
        mark = len(server.lines)
        dodo.write_text(good + "\nDOIT_CONFIG['verbosity'] = 2\n")
        server.wait_for(r"^serve: Restart needed: dodo\.py: dodo\.py changed", since=mark)
        assert overlay_titles(served.shell_port) == ["Restart needed: dodo.py"]
        dodo.write_text(good + "\n# another edit\n")
        payments.touch()
        changed = server.wait_for(r"^serve: rebuilt .* for apps/payments/", since=mark)
        assert not any(line.startswith("serve: rebuilt") for line in server.lines[mark:changed])
        told = [line for line in server.lines[mark:] if "Restart needed" in line]
        assert len(told) == 1, "\n".join(server.lines[mark:])

        mark = len(server.lines)
        dodo.write_text(good)
        back = r"^serve: dodo\.py is back as serve started with it: no restart needed$"
        server.wait_for(back, since=mark)
        wait_until(lambda: overlay_titles(served.shell_port) == [], "the notice stays")
        payments.touch()
        changed = server.wait_for(r"^serve: rebuilt .* for apps/payments/", since=mark)
        assert not any(line.startswith("serve: rebuilt") for line in server.lines[mark:changed])
    assert "Traceback" not in "\n".join(served.server.lines)


def test_a_dodo_py_that_does_not_load_is_told_at_its_save_and_holds_the_builds(
    monorepo_built: Path, tmp_path: Path
) -> None:
    """A dodo.py saved with a syntax error (or raising at import): the save itself is told
    with the file, line and what to do, in the terminal and the overlay; saves meanwhile are
    named, not "rebuilt nothing", and the last good build stays served; fixing dodo.py builds
    them with no other save."""
    with serving(monorepo_built, tmp_path) as served:
        server, dodo = served.server, served.root / "dodo.py"
        payments = served.root / "apps/payments/src/payments-app.js"
        accounts = served.root / "apps/accounts/src/accounts-app.jsx"
        good = {path: path.read_text() for path in (dodo, payments, accounts)}
        line = len(good[dodo].splitlines()) + 1
        mark = len(server.lines)
        dodo.write_text(good[dodo] + "def (:\n")
        told = server.wait_for(r"^serve: dodo\.py failed; the last good build stays served:$", mark)
        said = f"^dodo\\.py, line {line}: SyntaxError: invalid syntax$"
        assert server.wait_for(said, told) == told + 1  # the lines may come later
        assert server.wait_for("^doit cannot load dodo\\.py: fix that line;", told) == told + 2
        (error,) = [e for e in overlay_errors(served.shell_port) if not e["title"]]
        assert error["app"] == "dodo.py", error
        assert error["text"].startswith(f"dodo.py, line {line}: SyntaxError"), error

        waiting = r"^serve: nothing rebuilt while dodo\.py is broken; changed meanwhile "
        waiting += r"\(built once it is fixed\): "
        payments.write_text(good[payments].replace(">Payments</h2>", ">Payments later</h2>"))
        server.wait_for(waiting + r"apps/payments/src/payments-app\.js$", since=told)
        accounts.write_text(good[accounts].replace(">Accounts</h2>", ">Accounts later</h2>"))
        both = r"apps/accounts/src/accounts-app\.jsx, apps/payments/src/payments-app\.js"
        server.wait_for(waiting + both + "$", since=told)
        assert shows(served.shell_port, served.ports["payments"], ">Payments</h2>")

        dodo.write_text(good[dodo] + "raise RuntimeError('no tasks today')\n")
        server.wait_for(rf"^dodo\.py, line {line}: RuntimeError: no tasks today$", since=told)
        said = server.lines[mark:]
        assert not [text for text in said if text.startswith("serve: rebuilt")], "\n".join(said)
        assert len([text for text in said if "SyntaxError" in text]) == 1, "\n".join(said)

        dodo.write_text(good[dodo])  # fixed: what was saved meanwhile is built and served
        wait_until(
            lambda: (
                shows(served.shell_port, served.ports["payments"], ">Payments later</h2>")
                and shows(served.shell_port, served.ports["accounts"], "Accounts later")
                and overlay_errors(served.shell_port) == []
            ),
            lambda: "\n".join(server.lines[mark:]),
        )
        fixed = server.wait_for(r"^serve: rebuilt accounts, payments in ", since=told)

        dodo.write_text(good[dodo] + "def (:\n")  # fixed with nothing saved meanwhile
        told = server.wait_for(r"^serve: dodo\.py failed; ", since=fixed)
        dodo.write_text(good[dodo])
        unchanged = (
            r"^serve: rebuilt nothing in [\d.]+s for dodo\.py; output unchanged, pages kept$"
        )
        server.wait_for(unchanged, told)
        wait_until(lambda: overlay_errors(served.shell_port) == [], "the error stays")
    assert "Traceback" not in "\n".join(served.server.lines)


def test_a_broken_package_file_is_named_in_the_overlay_until_fixed(
    monorepo_built: Path, tmp_path: Path
) -> None:
    """A save that breaks an app's package.json, or a merge that leaves a conflict in the
    lockfile, names the file (also in the heading) and what is wrong in the overlay (not
    "see the error above", not `npm ci` failing with its usage text); the fix is built."""
    with serving(monorepo_built, tmp_path) as served:
        package = served.root / "apps/payments/package.json"
        good = package.read_text()
        source = served.root / "apps/payments/src/payments-app.js"
        source_text = source.read_text()

        mark = len(served.server.lines)
        package.write_text(good.replace('"private": true,', '"private": true'))
        wait_until(lambda: overlay(served.shell_port) != [], "no overlay")
        (shown,) = overlay(served.shell_port)
        assert "apps/payments/package.json: invalid JSON" in shown, shown
        heading = "apps/payments/package.json"  # the file at fault, not dodo.py that loads it
        assert overlay_titles(served.shell_port) == [f"Build failed: {heading}"]
        served.server.wait_for(rf"^serve: {re.escape(heading)} failed; the last good", mark)
        source.write_text(source_text.replace(">Payments</h2>", ">Payments again</h2>"))
        waiting = rf"^serve: nothing rebuilt while {re.escape(heading)} is broken; changed "
        served.server.wait_for(waiting + r"meanwhile .*apps/payments/src/payments-app\.js$", mark)
        accounts = served.root / "apps/accounts/src/accounts-app.jsx"  # another app meanwhile
        accounts.write_text(accounts.read_text().replace(">Accounts</h2>", ">Accounts again</h2>"))
        served.server.wait_for(waiting + r"meanwhile .*apps/accounts/src/accounts-app\.jsx", mark)
        said = served.server.lines[mark:]
        assert not [line for line in said if line.startswith("serve: rebuilt")], "\n".join(said)
        said = [line for line in served.server.lines[mark:] if "invalid JSON" in line]
        assert len(said) == 1, "\n".join(served.server.lines[mark:])  # not once per load

        package.write_text(good)  # the fix builds both apps, not only the one it belongs to
        wait_until(
            lambda: (
                shows(served.shell_port, served.ports["payments"], "Payments again")
                and shows(served.shell_port, served.ports["accounts"], "Accounts again")
                and overlay(served.shell_port) == []
            ),
            lambda: "\n".join(served.server.lines),
        )

        lockfile = served.root / "package-lock.json"
        locked = lockfile.read_text()
        mark = len(served.server.lines)
        lockfile.write_text("<<<<<<< HEAD\n" + locked)  # a merge left its conflict in
        wait_until(lambda: overlay(served.shell_port) != [], "no overlay")
        (shown,) = overlay(served.shell_port)
        assert shown.startswith("install: package-lock.json: invalid JSON"), shown
        assert "run `npm install` to rewrite it" in shown, shown
        assert not any(line.startswith("npm error") for line in served.server.lines[mark:])

        lockfile.write_text(locked)
        wait_until(lambda: overlay(served.shell_port) == [], lambda: "\n".join(served.server.lines))

        declared = json.loads(good)  # a checkout whose package.json the lockfile lags behind
        declared["dependencies"]["left-pad"] = "^1.3.0"
        package.write_text(json.dumps(declared, indent=2))
        wait_until(lambda: overlay(served.shell_port) != [], "no overlay")
        (shown,) = overlay(served.shell_port)
        assert "Missing: left-pad@" in shown and "npm install" in shown, shown
        assert "Usage:" not in shown, shown

        package.write_text(good)
        wait_until(lambda: overlay(served.shell_port) == [], lambda: "\n".join(served.server.lines))
    assert "Traceback" not in "\n".join(served.server.lines)


BAD_TASK = '''

def task_lint():
    """Lint once the apps are built."""
    return {"actions": ["true"], "task_dep": ["build:acounts"]}
'''


def test_tasks_doit_refuses_are_told_once_and_shown_until_dodo_py_is_fixed(
    monorepo_built: Path, tmp_path: Path
) -> None:
    """A dodo.py task depending on a task that does not exist: doit runs nothing (exit 3),
    and `doit serve` would not start again either. Its error is told at the save, once (not
    on every save), and shown in the overlay, headed dodo.py, with no restart notice, until
    a cycle runs through; a save of the page template meanwhile waits like the others."""
    with serving(monorepo_built, tmp_path) as served:
        server, dodo = served.server, served.root / "dodo.py"
        payments = served.root / "apps/payments/src/payments-app.js"
        template = served.root / "shell/index.html.j2"
        good, source, page_text = dodo.read_text(), payments.read_text(), template.read_text()
        missing = "Task dependency 'build:acounts' does not exist"
        mark = len(server.lines)
        dodo.write_text(good + BAD_TASK)
        told = server.wait_for(r"^serve: dodo\.py failed; the last good build stays served:$", mark)
        assert server.wait_for(re.escape(missing), told) == told + 1  # the line may come later
        assert overlay_titles(served.shell_port) == ["Build failed: dodo.py"]
        restart = run_doit(served.root, "serve", check=False, timeout=60)  # no way out
        assert restart.returncode == 3 and missing in restart.stdout, restart.stdout
        template.write_text(page_text.replace("<title>", "<title>Later ", 1))
        waiting = r"^serve: nothing rebuilt while dodo\.py is broken; changed meanwhile "
        server.wait_for(waiting + r"\(built once it is fixed\): shell/index\.html\.j2$", told)
        assert "<title>Later " not in page(served.shell_port)
        for text in (">Payments one</h2>", ">Payments two</h2>"):  # two saves, one error
            since = len(server.lines)
            payments.write_text(source.replace(">Payments</h2>", text))
            server.wait_for(r"^serve: changed: apps/payments/src/payments-app\.js$", since)

        def refused() -> bool:
            return any(missing in e["text"] for e in overlay_errors(served.shell_port))

        wait_until(refused, lambda: "\n".join(server.lines[mark:]))
        assert "Build failed: dodo.py" in overlay_titles(served.shell_port)
        told = [line for line in server.lines[mark:] if missing in line]
        assert len(told) == 1, "\n".join(server.lines[mark:])
        assert not any(line.startswith("ERROR:") for line in server.lines[mark:])
        waiting = r"^serve: nothing rebuilt while dodo\.py is broken; changed meanwhile "
        server.wait_for(waiting + r"\(built once it is fixed\): apps/payments/", since=mark)
        assert not any(line.startswith("serve: rebuilt") for line in server.lines[mark:])
        assert not any("Restart needed" in line for line in server.lines[mark:])

        dodo.write_text(good)  # fixed: the apps saved meanwhile are built, the overlay goes
        wait_until(
            lambda: (
                shows(served.shell_port, served.ports["payments"], "Payments two")
                and "<title>Later " in page(served.shell_port)
                and overlay_titles(served.shell_port) == []
            ),
            lambda: "\n".join(server.lines[mark:]),
        )
    assert "Traceback" not in "\n".join(served.server.lines)


def test_a_dodo_py_that_does_not_load_shows_only_its_error_not_a_restart(
    monorepo_built: Path, tmp_path: Path
) -> None:
    """A restart with a dodo.py that does not load would fail to start: while it is broken
    the overlay shows its load error alone (no "Restart needed"), a save of the page template
    meanwhile waits like any other save, and the restart notice is back once dodo.py loads
    again and still differs from what serve started with."""
    with serving(monorepo_built, tmp_path) as served:
        server, dodo = served.server, served.root / "dodo.py"
        template = served.root / "shell/index.html.j2"
        good, page_text = dodo.read_text(), template.read_text()
        mark = len(server.lines)
        dodo.write_text(good + "def (:\n")
        told = server.wait_for(r"^serve: dodo\.py failed; the last good build stays served:$", mark)
        assert overlay_titles(served.shell_port) == ["Build failed: dodo.py"]

        template.write_text(page_text.replace("<title>", "<title>Later ", 1))
        waiting = r"^serve: nothing rebuilt while dodo\.py is broken; changed meanwhile "
        server.wait_for(waiting + r"\(built once it is fixed\): shell/index\.html\.j2$", told)
        said = server.lines[mark:]
        assert not [line for line in said if line.startswith("serve: rebuilt")], "\n".join(said)
        assert not [line for line in said if "Restart needed" in line], "\n".join(said)
        assert "<title>Later " not in page(served.shell_port)

        dodo.write_text(good + "\n# an edit that loads\n")
        server.wait_for(r"^serve: Restart needed: dodo\.py: dodo\.py changed", since=told)
        wait_until(
            lambda: overlay_titles(served.shell_port) == ["Restart needed: dodo.py"],
            lambda: "\n".join(server.lines[mark:]),
        )
        wait_until(lambda: "<title>Later " in page(served.shell_port), "the page waits still")
    assert "Traceback" not in "\n".join(served.server.lines)
