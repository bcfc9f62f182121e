"""A rollback SIGKILLed right after its pointer swap (a closed terminal, an OOM kill, a
cancelled CI job: nothing printed the `to=` that finishes it). What users do then is run
the same `doit rollback` again: it must finish the interrupted rollback and stop there,
not go one release further back; `doit releases` says the unfinished step is a rollback
and how to finish it. A killed publish is finished and the rollback goes on."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from test_releases import history
from test_releases_failures import CHILD, AfterSwap, kill_when_held, live, served

from mfe.envs.outputs import write_outputs
from mfe.publish.releases_cmd import show
from mfe.tasks.publish import run_rollback

from fixtures.s3 import S3Server, Site

ROLLBACK = """
import sys
from mfe.config import load_project
from mfe.envs.outputs import read_outputs
from mfe.publish.rollback import rollback

project = load_project(__import__("pathlib").Path(sys.argv[1]))
env = project.env("local")
app = sys.argv[2] or None
rollback(project, env, outputs=read_outputs(project, env), app=app, smoke=False)
"""


def three_releases(site: Site) -> list[str]:
    """Seqs 1-3, each with another accounts build; their release ids."""
    releases = []
    for version in ("1", "2", "3"):
        if version != "1":
            site.change("accounts", version)
        site.publish()
        releases.append(live(site).release)
    write_outputs(site.project, site.outputs)  # read by the killed child
    return releases


@pytest.mark.parametrize("app", [None, "accounts"])
def test_a_plain_rollback_after_one_killed_past_its_swap_finishes_it_and_stops(
    tmp_path: Path, moto_s3: S3Server, app: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    site = Site(tmp_path / "site", moto_s3)
    releases = three_releases(site)
    third_page = live(site).page
    args = [ROLLBACK, str(site.root), app or ""]
    kill_when_held(site, moto_s3, AfterSwap().hold, args, "the rollback never swapped")
    killed = live(site)
    assert killed.seq == 4 and killed.rollback_of == releases[1]  # swapped, commit step not
    assert [r.seq for r in history(site)] == [1, 2, 3]

    of = f" app={app}" if app else ""
    listed = show(site.project, site.project.env("local"), site.outputs)
    assert (
        f"live: seq 4, release {killed.release} (its commit step is unfinished: a rollback"
        f"{f' of {app}' if app else ''} to release {releases[1]} (seq 2), stopped after its "
        f"switch; `doit rollback env=local{of}` finishes it and rolls back no further)"
    ) in listed, listed

    capsys.readouterr()
    project = site.project
    assert run_rollback(project, project.env("local"), app=app) is None
    out = capsys.readouterr().out
    now = live(site)
    assert now.seq == 4 and now.rollback_of == releases[1], out  # finished, nothing more
    assert [r.seq for r in history(site)] == [1, 2, 3, 4]
    assert hashlib.sha256(served(site)).hexdigest() == now.page.sha256 != third_page.sha256
    assert (
        f"rollback: finished the interrupted rollback{f' of {app}' if app else ''} to release "
        f"{releases[1]} (now {now.release}); nothing more was rolled back: run `doit rollback "
        f"env=local{of}` again to go one release further back"
    ) in out, out

    assert run_rollback(project, project.env("local"), app=app) is None  # and on from there
    assert live(site).seq == 5 and live(site).rollback_of == releases[0]


def test_a_rollback_after_a_killed_publish_finishes_it_and_rolls_back(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """An unfinished publish is no rollback to repeat: finished, then rolled back from."""
    site = Site(tmp_path / "site", moto_s3)
    releases = three_releases(site)
    site.change("accounts", "4")
    kill_when_held(site, moto_s3, AfterSwap().hold, [CHILD, str(site.root)], "never swapped")
    assert live(site).seq == 4 and live(site).action == "publish"
    project = site.project
    assert run_rollback(project, project.env("local")) is None
    assert live(site).seq == 5 and live(site).rollback_of == releases[2]
    assert [r.seq for r in history(site)] == [1, 2, 3, 4, 5]
