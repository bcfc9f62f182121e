"""A provisioning killed midway (a closed terminal, Ctrl-C twice, an OOM kill) after it made
some of the resources, before it wrote `.mfe/local/outputs.json`. The next command must
finish it and say so, not blame an emulator restart or resources deleted by hand, and end
with each resource made once and the outputs naming them.

Each `doit infra` runs in a child process behind a loopback proxy (`FailingProxy`) that
holds the request of the kill point, so the child is SIGKILLed exactly there."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from test_infra import make_project
from test_local_provisioning import distributions, user_pools

from mfe.envs.session import Session
from mfe.envs.stacks import resource_names

from fixtures.aws import free_port, start_moto, stop_process
from fixtures.proxy import FailingProxy
from fixtures.repo import REPO, run_doit

Match = Callable[[str, str], bool]


def nth(count: int, match: Match) -> Match:
    """A `hold` predicate: the `count`th request `match` matches."""
    seen = [0]

    def hold(method: str, path: str) -> bool:
        seen[0] += match(method, path)
        return seen[0] == count

    return hold


def creates_distribution(method: str, path: str) -> bool:
    return method == "POST" and path.endswith("/distribution")


def puts_policy(method: str, path: str) -> bool:
    return method == "PUT" and path.endswith("?policy")


POINTS: dict[str, Callable[[], Match]] = {
    # a bucket made, its policy not yet (the others being made meanwhile)
    "bucket policy": lambda: nth(1, puts_policy),
    # every bucket made, the pool too or on its way, no distribution
    "first distribution": lambda: nth(1, creates_distribution),
    # one distribution made, the others not
    "second distribution": lambda: nth(2, creates_distribution),
}


def killed_infra(root: Path, proxy: FailingProxy) -> None:
    """`doit infra` in `root` (its emulator: the proxy), SIGKILLed at the proxy's hold."""
    child = subprocess.Popen(
        [sys.executable, "-m", "doit", "infra"],
        cwd=root,
        env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proxy.held.wait(120), "doit infra never reached the kill point"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    proxy.hold = None
    proxy.release.set()


@pytest.mark.parametrize("earlier", [False, True], ids=["first", "after-a-restart"])
@pytest.mark.parametrize("point", list(POINTS))
def test_the_next_command_finishes_a_killed_provisioning_and_says_so(
    moto_server: str, tmp_path: Path, point: str, earlier: bool
) -> None:
    """`earlier`: the checkout had provisioned an emulator that then lost its state (what a
    `doit local_stop` and a new start leave): the outputs file names resources it lacks."""
    httpx.post(f"{moto_server}/moto-api/reset").raise_for_status()
    proxy = FailingProxy(moto_server)
    try:
        project = make_project(tmp_path / "repo", f"http://127.0.0.1:{proxy.port}")
        shutil.copy(REPO / "dodo.py", project.root / "dodo.py")
        if earlier:
            run_doit(project.root, "infra")
            httpx.post(f"{moto_server}/moto-api/reset").raise_for_status()
        proxy.hold = POINTS[point]()
        killed_infra(project.root, proxy)

        said = run_doit(project.root, "infra").stdout
        assert "local: finishing the provisioning of environment 'local'" in said, said
        assert "restarted" not in said and "deleted?" not in said, said

        names = resource_names(project, project.env("local"))
        comments = Counter(config["Comment"] for config in distributions(moto_server))
        assert comments == Counter(names.comments.values())
        pools = [p["Id"] for p in user_pools(moto_server) if p["Name"] == names.user_pool]
        written = json.loads(project.outputs_file("local").read_text())
        assert pools == [written["auth"]["user_pool_id"]]
        assert (
            Session(project, "local").outputs.to_json() == project.outputs_file("local").read_text()
        )

        again = run_doit(project.root, "infra").stdout  # done: nothing more to finish
        assert "finishing" not in again and "local:" not in again, again
    finally:
        proxy.close()


@pytest.mark.parametrize("earlier", [False, True], ids=["first", "after-a-restart"])
def test_a_killed_provisioning_of_an_emulator_since_replaced_is_not_finished(
    tmp_path: Path, earlier: bool
) -> None:
    """The marker names the emulator it was written against: after that one stopped and
    another started on its port (`doit local_stop --yes`, another checkout's publish),
    nothing is left to finish; the new emulator holds nothing, and the command says so."""
    port = free_port()
    server = start_moto(port, tmp_path / "first.log")
    proxy = FailingProxy(f"http://127.0.0.1:{port}")
    try:
        project = make_project(tmp_path / "repo", f"http://127.0.0.1:{proxy.port}")
        shutil.copy(REPO / "dodo.py", project.root / "dodo.py")
        if earlier:
            run_doit(project.root, "infra")
            httpx.post(f"http://127.0.0.1:{port}/moto-api/reset").raise_for_status()
        proxy.hold = POINTS["second distribution"]()
        killed_infra(project.root, proxy)
        stop_process(server)
        server = start_moto(port, tmp_path / "second.log")

        said = run_doit(project.root, "infra").stdout
        assert "finishing" not in said and "restarted" not in said, said
        assert (
            "local: provisioning environment 'local' on the new emulator (the stopped one kept "
            "its state in memory), so a publish uploads everything"
        ) in said, said
        again = run_doit(project.root, "infra").stdout
        assert "local:" not in again, again
    finally:
        proxy.close()
        stop_process(server)
