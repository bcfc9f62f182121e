"""Local provisioning on an emulator that is shared: several commands provisioning at once,
and other projects' resources on it. Each test resets the module's emulator first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_infra import make_project

from mfe.envs.changes import confirmer
from mfe.envs.local_provision import provision
from mfe.envs.session import Session
from mfe.envs.stacks import CACHING_OPTIMIZED, resource_names

from fixtures.aws import DUMMY_AWS_ENV, local_client
from fixtures.proxy import FailingProxy

TRIALS = 5
PROVISIONERS = 3
PROVISION = (
    "import sys\nfrom pathlib import Path\n"
    "from mfe.config import load_project\n"
    "from mfe.envs.session import Session\n"
    "print(Session(load_project(Path(sys.argv[1])), 'local').outputs.to_json(), end='')\n"
)
"""One command's `_ready`: start (here: find) the emulator, provision what it lacks."""


def distributions(endpoint: str) -> list[dict[str, Any]]:
    """Every distribution's config on the emulator (listed page by page). Read one by one,
    as `mfe.envs.local` does: moto 5.2.1 leaves `Comment` out of the summaries."""
    cloudfront = local_client(endpoint, "cloudfront")
    pages = cloudfront.get_paginator("list_distributions").paginate()
    items = [item for page in pages for item in page["DistributionList"].get("Items", [])]
    with ThreadPoolExecutor(max_workers=8) as pool:
        configs = pool.map(lambda item: cloudfront.get_distribution_config(Id=item["Id"]), items)
        return [config["DistributionConfig"] for config in configs]


def user_pools(endpoint: str) -> list[dict[str, Any]]:
    idp = local_client(endpoint, "cognito-idp")
    pages = idp.get_paginator("list_user_pools").paginate(PaginationConfig={"PageSize": 60})
    return [pool for page in pages for pool in page["UserPools"]]


def test_concurrent_provisionings_of_a_fresh_emulator_make_everything_once(
    moto_server: str, tmp_path: Path
) -> None:
    """CloudFront comments and Cognito pool names are not unique: two commands that each
    found nothing would each create a distribution per app and a pool (or fail on the
    distribution's CallerReference). They take turns, so the later ones find it all."""
    project = make_project(tmp_path / "repo", moto_server)
    names = resource_names(project, project.env("local"))
    environ = {**os.environ, **DUMMY_AWS_ENV}
    for trial in range(TRIALS):
        httpx.post(f"{moto_server}/moto-api/reset").raise_for_status()
        project.outputs_file("local").unlink(missing_ok=True)
        commands = [
            subprocess.Popen(
                [sys.executable, "-c", PROVISION, str(project.root)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=environ,
            )
            for _ in range(PROVISIONERS)
        ]
        results = [(command, *command.communicate(timeout=120)) for command in commands]
        for command, _, err in results:
            assert command.returncode == 0, f"trial {trial}: {err}"
        outputs = {out for _, out, _ in results}
        assert len(outputs) == 1, f"trial {trial}: the commands disagree: {outputs}"

        comments = Counter(config["Comment"] for config in distributions(moto_server))
        assert comments == Counter(names.comments.values()), f"trial {trial}"
        pools = [p["Id"] for p in user_pools(moto_server) if p["Name"] == names.user_pool]
        written = outputs.pop()
        assert pools == [json.loads(written)["auth"]["user_pool_id"]], f"trial {trial}"
        assert project.outputs_file("local").read_text() == written


def test_other_projects_pools_and_distributions_do_not_hide_ours(
    moto_server: str, tmp_path: Path
) -> None:
    """Listings come 60 pools or 100 distributions a page: on an emulator that other
    projects fill, ours are found on a later page, not made again, and destroy finds them."""
    httpx.post(f"{moto_server}/moto-api/reset").raise_for_status()
    idp = local_client(moto_server, "cognito-idp")
    cloudfront = local_client(moto_server, "cloudfront")
    with ThreadPoolExecutor(max_workers=8) as pool:  # other projects' commands, at once
        made = [pool.submit(idp.create_user_pool, PoolName=f"someone-elses-users-{index}")
                for index in range(60)]  # fmt: skip
        made += [
            pool.submit(cloudfront.create_distribution,
                        DistributionConfig=other_distribution(f"other-{index}"))
            for index in range(100)
        ]  # fmt: skip
        for future in made:
            future.result()
    project = make_project(tmp_path / "repo", moto_server)
    names = resource_names(project, project.env("local"))
    first = Session(project, "local").outputs  # ours come after the others: later pages

    project.outputs_file("local").unlink()  # provisioned again: everything found again
    assert Session(project, "local").outputs == first
    assert first.auth is not None
    ours = [p["Id"] for p in user_pools(moto_server) if p["Name"] == names.user_pool]
    assert ours == [first.auth.user_pool_id]
    comments = Counter(config["Comment"] for config in distributions(moto_server))
    assert [comments[comment] for comment in names.comments.values()] == [1] * len(names.comments)

    session = Session(project, "local")
    session.backend.destroy(session, lambda line: None, confirmer(True, "doit destroy --yes"))
    assert not [p for p in user_pools(moto_server) if p["Name"] == names.user_pool]
    assert len(user_pools(moto_server)) == 60
    left = {config["Comment"] for config in distributions(moto_server)}
    assert left == {f"other-{index}" for index in range(100)}


def test_ctrl_c_while_reading_distributions_starts_no_queued_read(
    moto_server: str, tmp_path: Path
) -> None:
    """Ctrl-C that the kernel gives another thread than the main one (here: the proxy's,
    while it holds the first distribution's config read, which the main thread waits on)
    comes through at once: no queued read starts after it. A bare `Future.result()` slept
    on until that read was answered, while the other reads (0.3 s each) drained the queue."""
    httpx.post(f"{moto_server}/moto-api/reset").raise_for_status()
    cloudfront = local_client(moto_server, "cloudfront")
    with ThreadPoolExecutor(max_workers=8) as pool:
        made = [
            pool.submit(
                cloudfront.create_distribution, DistributionConfig=other_distribution(f"o{n}")
            )
            for n in range(60)
        ]
        for future in made:
            future.result()
    first = cloudfront.list_distributions()["DistributionList"]["Items"][0]["Id"]
    sent: list[float] = []
    reads: list[float] = []

    def ctrl_c_to_this_thread(method: str, path: str) -> None:
        if not path.endswith("/config"):
            return
        reads.append(time.monotonic())
        if f"/{first}/" not in path:
            threading.Event().wait(0.3)
            return
        threading.Event().wait(0.5)  # the main thread waits on this read by now
        sent.append(time.monotonic())
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        threading.Event().wait(4)

    proxy = FailingProxy(moto_server, gate=ctrl_c_to_this_thread)
    try:
        project = make_project(tmp_path / "repo", f"http://127.0.0.1:{proxy.port}")
        names = resource_names(project, project.env("local"))
        with pytest.raises(KeyboardInterrupt):
            provision(Session(project, "local"), names)
    finally:
        proxy.close()
    late = [round(at - sent[0], 2) for at in reads if at > sent[0] + 1]
    assert sent and not late and len(reads) < 60, (late, len(reads))


def other_distribution(comment: str) -> dict[str, Any]:
    """Another project's distribution."""
    origin = {
        "Id": "o",
        "DomainName": "o.s3.amazonaws.com",
        "S3OriginConfig": {"OriginAccessIdentity": ""},
    }
    return {
        "CallerReference": comment,
        "Comment": comment,
        "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [origin]},
        "DefaultCacheBehavior": {
            "TargetOriginId": "o",
            "ViewerProtocolPolicy": "allow-all",
            "CachePolicyId": CACHING_OPTIMIZED,
        },
    }


def test_other_clients_of_our_pool_do_not_hide_ours(moto_server: str, tmp_path: Path) -> None:
    """Clients come 60 a page: with more in the pool (added by hand or by other tools), ours
    is found on a later page, not made again."""
    httpx.post(f"{moto_server}/moto-api/reset").raise_for_status()
    project = make_project(tmp_path / "repo", moto_server)
    names = resource_names(project, project.env("local"))
    provisioned = Session(project, "local").outputs.auth
    assert provisioned is not None
    pool_id = provisioned.user_pool_id
    idp = local_client(moto_server, "cognito-idp")
    ours = [c for c in pool_clients(idp, pool_id) if c["ClientName"] == names.client]
    idp.delete_user_pool_client(UserPoolId=pool_id, ClientId=ours[0]["ClientId"])
    for index in range(60):  # listed before ours, which is made again after them
        idp.create_user_pool_client(UserPoolId=pool_id, ClientName=f"another-tool-{index}")
    project.outputs_file("local").unlink()
    first = Session(project, "local").outputs

    project.outputs_file("local").unlink()  # provisioned again: the client found again
    assert Session(project, "local").outputs == first
    ours = [c for c in pool_clients(idp, pool_id) if c["ClientName"] == names.client]
    assert first.auth is not None and [c["ClientId"] for c in ours] == [first.auth.client_id]
    assert len(pool_clients(idp, pool_id)) == 61


def pool_clients(idp: Any, pool_id: str) -> list[dict[str, Any]]:
    pages = idp.get_paginator("list_user_pool_clients").paginate(UserPoolId=pool_id)
    return [client for page in pages for client in page["UserPoolClients"]]


@pytest.mark.parametrize("damage", [b"\xff\xfe not utf-8", b"", b"{}", b'{"env": "loc'])
def test_a_damaged_outputs_file_is_written_again(
    moto_server: str, tmp_path: Path, damage: bytes
) -> None:
    """Bytes that are not UTF-8 failed every provisioning command with a traceback."""
    project = make_project(tmp_path / "repo", moto_server)
    written = Session(project, "local").outputs
    project.outputs_file("local").write_bytes(damage)
    assert Session(project, "local").outputs == written
    assert project.outputs_file("local").read_text() == written.to_json()
