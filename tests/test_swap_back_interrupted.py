"""Ctrl-C while a command swaps back a pointer naming files a prune (or a hand) deleted
(`mfe.publish.undo`): the message names the release served at that moment, as the
command knows it after each step, never one that was swapped away or never served."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from test_plan_pending import killed_after_swap
from test_releases import entry, history
from test_releases_failures import (
    AfterSwap,
    ctrl_c_publish,
    ctrl_c_rollback,
    live,
    served,
)

from mfe.envs.outputs import write_outputs
from mfe.publish.refresh import HOLD_PREFIX
from mfe.publish.rollback import rollback
from mfe.tasks.publish import run_publish

from fixtures.proxy import POINTER
from fixtures.s3 import S3Server, Site

Match = Callable[[str, str], bool]

POINTS: dict[str, Match] = {
    # listing the buckets to find what the unfinished pointer lacks: before the swap back
    "listing": lambda m, p: m == "GET" and "list-type=2" in p,
    # the swap back's pointer write (it lands; Ctrl-C arrives as it returns)
    "swap": lambda m, p: m == "PUT" and p.endswith(POINTER),
    # the first request after it: recording the pointer swapped away
    "after": AfterSwap().hold,
}


@pytest.mark.parametrize("point", sorted(POINTS))
def test_ctrl_c_in_a_publishs_swap_back_names_what_is_served(
    tmp_path: Path, moto_s3: S3Server, point: str
) -> None:
    site = Site(tmp_path / "site", moto_s3)
    killed_after_swap(site, moto_s3)
    first, killed = history(site)[0], live(site)
    site.server.client().delete_object(
        Bucket=site.bucket("accounts"), Key=entry(site.root, "accounts")
    )
    page = served(site)  # release 1's: the killed publish never wrote its page
    message = ctrl_c_publish(site, POINTS[point])
    now = live(site)
    gone = f"release {killed.release} (seq 2)"
    if point == "listing":
        assert now == killed, message
        assert message == (
            f"publish interrupted (Ctrl-C): nothing was switched: {gone} is live but its "
            "commit step is not done (this command was finishing it); run `doit publish "
            "env=local` again to finish it"
        )
    else:
        assert now.seq == 3 and now.page == first.page, message
        swapped = (
            f"publish interrupted (Ctrl-C): it swapped {gone} back (files it names are "
            f"gone): the live pointer names release {now.release} (seq 3), serving release "
            f"{first.release} again once its commit step is finished; run `doit publish "
            "env=local` again to finish it"
        )
        # Ctrl-C while the swap's write is sent but not answered: it may land after the
        # pointer is read again, so the message cannot say which.
        in_flight = (
            f"publish interrupted (Ctrl-C): {gone} names files that are gone; the live pointer "
            f"names it, or, if the swap back was made, a new release serving release "
            f"{first.release} again; run `doit publish env=local` again to finish it"
        )
        assert message in ((swapped, in_flight) if point == "swap" else (swapped,)), message
    assert served(site) == page
    assert run_publish(site.project, site.project.env("local")) is None
    assert live(site).seq == 3 and [r.seq for r in history(site)] == [1, 2, 3]
    assert hashlib.sha256(served(site)).hexdigest() == live(site).page.sha256


@pytest.mark.parametrize("landed", [False, True])
def test_ctrl_c_in_a_rollbacks_swap_back_names_what_is_served_not_its_target(
    tmp_path: Path, moto_s3: S3Server, landed: bool
) -> None:
    """A rollback whose target module and its spare copy are deleted right after its swap
    (a concurrent prune) swaps back; Ctrl-C as that swap back starts (reading the pointer)
    or lands (`landed`): the message names the release live and what the swap back serves
    again, never the target as possibly served."""
    site = Site(tmp_path / "site", moto_s3, grace_seconds=0)  # target files refreshed
    site.publish()
    first, module = live(site), entry(site.root, "accounts")
    site.change("accounts", "2")
    site.publish()
    second = live(site)
    write_outputs(site.project, site.outputs)
    s3, bucket = site.server.client(), site.bucket("accounts")
    swaps = [0]

    def when(method: str, path: str) -> bool:
        if not path.endswith(POINTER) or method not in ("GET", "PUT"):
            return False
        swaps[0] += method == "PUT"
        if swaps[0] == 1 and method == "PUT":  # the rollback's swap; a prune deletes meanwhile
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
            for key in keys:
                if key == module or (key.startswith(HOLD_PREFIX) and key.endswith(module)):
                    s3.delete_object(Bucket=bucket, Key=key)
            return False
        return swaps[0] == 2 if landed else (swaps[0] == 1 and method == "GET")

    message = ctrl_c_rollback(site, when)
    now = live(site)
    asked = f"release {first.release} (seq 1)"
    again = (
        "(files it needs were deleted meanwhile, a concurrent `--prune`?): run `doit rollback "
        "env=local to=1` to try again, finishing that first (it refuses if those files are "
        "gone: publish a fixed build then)"
    )
    if landed:
        assert now.seq == 4 and now.page == second.page, message
        assert now.rollback_of == second.release and now.took_off is not None
        assert message == (
            f"rollback interrupted (Ctrl-C): it swapped release {now.took_off} (seq 3) back "
            f"(files it names are gone): the live pointer names release {now.release} (seq "
            f"4), serving release {second.release} again once its commit step is finished; "
            f"the rollback to {asked} was undone {again}"
        )
    else:
        assert now.seq == 3 and now.rollback_of == first.release, message
        assert message == (
            f"rollback interrupted (Ctrl-C): its switch was made: release {now.release} (seq "
            f"3) is live, but files it names are gone (the next command swaps back to release "
            f"{second.release}); the rollback to {asked} is being undone {again}"
        )
    with pytest.raises(Exception, match="no longer in bucket"):
        rollback(site.project, "local", outputs=site.outputs, to="1", smoke=False)
    assert live(site).seq == 4 and [r.seq for r in history(site)] == [1, 2, 3, 4]
    assert history(site)[2].rollback_of == first.release  # the rollback swapped back
    assert live(site).page == second.page
    assert hashlib.sha256(served(site)).hexdigest() == second.page.sha256
