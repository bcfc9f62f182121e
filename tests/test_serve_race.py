"""`doit serve` under racing saves: no edit is lost, no output goes missing (real doit)."""

from __future__ import annotations

import fnmatch
import json
import random
import re
import shlex
import time
from pathlib import Path

import pytest

from fixtures.repo import run_doit, up_to_date_tasks
from fixtures.serve import CTRL_C_STOPPED, ServeProcess, served_entry, use_free_ports, wait_until

HEADING = ">Payments</h2>"


@pytest.fixture
def monorepo(built_monorepo: Path) -> Path:
    """This module's copies are built: each test's first build (or serve) bundles only the
    app it edited."""
    return built_monorepo


def reported(lines: list[str]) -> set[str]:
    """Apps named by `serve: rebuilt A, B in ...` lines."""
    found: set[str] = set()
    for line in lines:
        if match := re.match(r"serve: rebuilt (.+?) in ", line):
            found.update(match.group(1).split(", "))
    return found


SAVE_TRIALS = 12
"""Even trials save again the moment the bundler is done (the build script marks it), inside
the 0.3 s window every time; odd ones 0.05-0.5 s after the first save, anywhere in the build."""


def slow_build(root: Path, app: str, seconds: float) -> Path:
    """Make `app`'s build outlive its bundler by `seconds`; returns the file it touches
    once bundled (outside the copy: no input of anything)."""
    bundled = root.parent / "bundled"
    package = root / "apps" / app / "package.json"
    data = json.loads(package.read_text())
    data["scripts"]["build"] = (
        f"node ../../tools/build-app.mjs && touch {shlex.quote(str(bundled))} && sleep {seconds}"
    )
    package.write_text(json.dumps(data))
    return bundled


def test_a_second_save_during_a_build_is_never_lost(monorepo: Path) -> None:
    """Save, then save again into a build that outlives its bundler by 0.3 s (the window
    where doit used to fingerprint the newer file): the second save is always served."""
    bundled = slow_build(monorepo, "payments", 0.3)
    shell_port, ports = use_free_ports(monorepo)
    source = monorepo / "apps/payments/src/payments-app.js"
    original = source.read_text()
    dist = monorepo / "apps/payments/dist"
    rng = random.Random(12)
    server = ServeProcess(monorepo)
    try:
        server.wait_for(r"^http://127\.0\.0\.1:\d+/$")
        for trial in range(SAVE_TRIALS):
            last = f"Payments b{trial}"
            bundled.unlink(missing_ok=True)
            source.write_text(original.replace(HEADING, f">Payments a{trial}</h2>"))
            if trial % 2:
                time.sleep(rng.uniform(0.05, 0.5))
            else:
                wait_until(
                    bundled.exists, f"trial {trial}: never bundled\n" + "\n".join(server.lines)
                )
            source.write_text(original.replace(HEADING, f">{last}</h2>"))
            wait_until(
                lambda: last in served_entry(shell_port, ports["payments"]),  # noqa: B023
                f"trial {trial}: {last!r} never served\n" + "\n".join(server.lines),
            )
            assert last in next(dist.glob("main-*.js")).read_text()
    finally:
        code = server.stop()
    assert code == CTRL_C_STOPPED, "\n".join(server.lines)
    after = run_doit(monorepo, "build").stdout
    assert "build:payments" in up_to_date_tasks(after), after
    assert f"Payments b{SAVE_TRIALS - 1}" in next(dist.glob("main-*.js")).read_text()


def test_two_apps_edited_together_always_report_both(monorepo: Path) -> None:
    """30 rounds: both apps' results are printed every time, and the goodbye at the end."""
    use_free_ports(monorepo)
    payments = monorepo / "apps/payments/src/payments-app.js"
    accounts = monorepo / "apps/accounts/src/accounts-app.jsx"
    originals = {payments: payments.read_text(), accounts: accounts.read_text()}
    server = ServeProcess(monorepo)
    try:
        server.wait_for(r"^http://127\.0\.0\.1:\d+/$")
        for round_ in range(30):
            mark = len(server.lines)
            for path, text in originals.items():
                path.write_text(text.replace("</h2>", f" {round_}</h2>", 1))
            # One batch or two (a loaded machine may split the saves): both are reported,
            # as the line names the builds doit ran (serve hides doit's line per task).
            wait_until(
                lambda: reported(server.lines[mark:]) >= {"accounts", "payments"},  # noqa: B023
                f"round {round_}:\n" + "\n".join(server.lines[mark:]),
            )
    finally:
        code = server.stop()
    assert code == CTRL_C_STOPPED
    assert server.lines[-1] == "serve: stopped, bye", server.lines[-5:]


def test_a_source_deleted_while_doit_runs_is_no_build_failure(monorepo: Path) -> None:
    """A checkout deletes a file of one app while doit builds another first: doit finds a
    file it listed gone, which is no failure of that app (its next build follows the
    deletion), so neither the terminal nor the overlay says it failed."""
    bundled = slow_build(monorepo, "accounts", 0.5)
    shell_port, ports = use_free_ports(monorepo)
    accounts = monorepo / "apps/accounts/src/accounts-app.jsx"
    payments = monorepo / "apps/payments/src/payments-app.js"
    spare = monorepo / "apps/payments/src/spare.js"  # imported by nothing
    originals = {path: path.read_text() for path in (accounts, payments)}
    spare.write_text("export const spare = 1;\n")
    server = ServeProcess(monorepo)
    try:
        server.wait_for(r"^http://127\.0\.0\.1:\d+/$")
        for trial in range(3):
            mark = len(server.lines)
            bundled.unlink(missing_ok=True)
            for path, text in originals.items():
                path.write_text(text.replace("</h2>", f" {trial}</h2>", 1))
            wait_until(bundled.exists, f"trial {trial}: never bundled\n" + "\n".join(server.lines))
            spare.unlink()  # build:payments is next, its file_dep listing spare.js
            wait_until(
                lambda: f"Payments {trial}" in served_entry(shell_port, ports["payments"]),  # noqa: B023
                f"trial {trial}:\n" + "\n".join(server.lines[mark:]),
            )
            written = len(server.lines)
            spare.write_text("export const spare = 1;\n")
            server.wait_for(r"^serve: rebuilt payments ", since=written)
            assert not [
                line
                for line in server.lines[mark:]
                if "payments failed" in line or "DependencyError" in line
            ], "\n".join(server.lines[mark:])
    finally:
        code = server.stop()
    assert code == CTRL_C_STOPPED, "\n".join(server.lines)


STALLED_SAVES = 8
STALL_SECONDS = 0.2
"""How long each save's writer stays descheduled between its write and its close: far past
the watcher's 25 ms quiet period, well inside its wait for the close (1 s)."""


def test_a_save_whose_writer_stalls_before_closing_is_one_rebuild(monorepo: Path) -> None:
    """On a loaded machine a writer may be descheduled between `write` and `close`: the
    close came as a second batch of the same save, a second line "rebuilt nothing" (or
    named in the next save's line). Here every save of payments stalls (the stimulus, not
    a wait) and a save of accounts follows it: each save is exactly one line of its own."""
    use_free_ports(monorepo)
    payments = monorepo / "apps/payments/src/payments-app.js"
    accounts = monorepo / "apps/accounts/src/accounts-app.jsx"
    originals = {path: path.read_text() for path in (payments, accounts)}
    server = ServeProcess(monorepo)
    try:
        server.wait_for(r"^http://127\.0\.0\.1:\d+/$")
        mark = len(server.lines)
        for trial in range(STALLED_SAVES):
            before = len(server.lines)
            with payments.open("w") as writer:
                writer.write(originals[payments].replace(HEADING, f">Payments s{trial}</h2>"))
                writer.flush()
                time.sleep(STALL_SECONDS)  # descheduled before its close
            server.wait_for(r"^serve: rebuilt ", since=before)
            accounts.write_text(originals[accounts].replace("</h2>", f" s{trial}</h2>", 1))
            server.wait_for(r"^serve: rebuilt accounts ", since=before)
        said = server.lines[mark:]
        rebuilt = [line for line in said if line.startswith("serve: rebuilt ")]
        expected = [
            "serve: rebuilt payments in * for apps/payments/src/payments-app.js; *",
            "serve: rebuilt accounts in * for apps/accounts/src/accounts-app.jsx; *",
        ] * STALLED_SAVES
        assert len(rebuilt) == len(expected), "\n".join(said)
        assert all(map(fnmatch.fnmatchcase, rebuilt, expected)), "\n".join(said)
    finally:
        code = server.stop()
    assert code == CTRL_C_STOPPED, "\n".join(server.lines)
