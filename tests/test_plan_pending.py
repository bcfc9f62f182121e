"""`doit plan` over a live pointer whose commit step is not done (its publish SIGKILLed
right after its swap): a publish finishes that step first, or, when the pointer names files
its buckets no longer hold (a prune, a hand), swaps back to the release before it and
publishes over that. The plan must say which, and list what the publish then really does."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from test_releases import entry, history
from test_releases_failures import CHILD, AfterSwap, kill_when_held, live, served

from mfe.envs.outputs import write_outputs
from mfe.publish import PublishReport, publish
from mfe.publish.report import plan_lines

from fixtures.s3 import S3Server, Site


def killed_after_swap(site: Site, server: S3Server) -> None:
    """Release 1, then a publish of accounts 2 SIGKILLed right after its swap (seq 2)."""
    site.publish()
    site.change("accounts", "2")
    write_outputs(site.project, site.outputs)  # read by the killed child
    kill_when_held(site, server, AfterSwap().hold, [CHILD, str(site.root)], "never swapped")
    assert live(site).seq == 2 and [r.seq for r in history(site)] == [1]


def report(site: Site, dry_run: bool, force: bool) -> PublishReport:
    return publish(
        site.project, "local", outputs=site.outputs, dry_run=dry_run, force=force, smoke=False
    )


def writes(lines: list[str]) -> list[str]:
    return sorted(line for line in lines if line.startswith(("upload", "invalidate", "delete")))


@pytest.mark.parametrize(("pruned", "force"), [(False, False), (True, False), (True, True)])
def test_plan_over_an_unfinished_pointer_shows_what_the_publish_then_does(
    tmp_path: Path,
    moto_s3: S3Server,
    pruned: bool,
    force: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`pruned`: the killed publish's new accounts entry module is deleted from its bucket
    (as a prune that read the pointer before the swap would): the plan names the swap back
    and the release it serves again, then plans from there: this checkout's accounts 2,
    which live replaced, is held (or, `force`, published again: its module uploaded
    again); else it lists the finishing writes. Either way the publish writes and
    invalidates what the plan listed, no more, and the plan itself writes nothing."""
    site = Site(tmp_path / "site", moto_s3)
    killed_after_swap(site, moto_s3)
    first, killed = history(site)[0], live(site)
    module = entry(site.root, "accounts")
    if pruned:
        site.server.client().delete_object(Bucket=site.bucket("accounts"), Key=module)
    capsys.readouterr()

    planned = report(site, dry_run=True, force=force)
    said = capsys.readouterr().out
    assert live(site) == killed and [r.seq for r in history(site)] == [1]  # nothing written
    if pruned:
        assert (
            f"release {killed.release} (seq 2) is live but its commit step is not done, and "
            f"{module} (accounts) named by it are gone from the buckets (pruned?): a publish "
            f"swaps back first, serving release {first.release} (seq 1) again as seq 3"
        ) in said, said
        assert "a publish finishes it" not in said
        assert (f"upload  accounts: {module}" in plan_lines(planned)) is force
        assert (planned.seq, planned.noop) == (3, not force)  # seq: the one it goes on from
        assert planned.release == ("(next)" if force else "(swap back)")
        assert planned.previous_release == "(swap back)"
    else:
        assert "a publish finishes it" in said and "swaps back" not in said
        assert (planned.seq, planned.noop, planned.release) == (2, True, killed.release)

    done = report(site, dry_run=False, force=force)
    assert writes(plan_lines(done)) == writes(plan_lines(planned))
    now = live(site)
    assert now.seq == done.seq == planned.seq + (1 if force else 0)
    if pruned:
        assert history(site)[2].rollback_of == first.release  # the swap back, recorded
    assert hashlib.sha256(served(site)).hexdigest() == now.page.sha256
    assert (module in served(site).decode()) is (force or not pruned)
