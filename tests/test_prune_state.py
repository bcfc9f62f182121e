"""Release state under `_mfe/` stays bounded: `--prune` deletes the app version records no
kept release names, and what a publish or rollback lists does not grow with the state."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from test_releases import history, live, served

from mfe.errors import MfeError
from mfe.publish.rollback import rollback
from mfe.publish.versions import VERSIONS_PREFIX

from fixtures.s3 import S3Server, Site, objects

GRACE = 2


def records(site: Site, app: str) -> set[str]:
    """The version records in an app's bucket."""
    return {k for k in objects(site.server, site.bucket(app)) if k.startswith(VERSIONS_PREFIX)}


def test_prune_deletes_the_version_records_no_kept_release_names(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """accounts v1, v2, v3 with keep_releases = 1: a prune once they are older than the
    grace period leaves only the live version's record (the history stays whole), and a
    rollback to a pruned release is refused, changing nothing."""
    site = Site(tmp_path / "site", moto_s3, keep_releases=1, grace_seconds=GRACE)
    site.publish()
    for version in ("2", "3"):
        site.change("accounts", version)
        site.publish()
    assert len(records(site, "accounts")) == 3
    time.sleep(GRACE + 0.5)  # older than the grace period
    site.publish(prune=True)
    now = live(site)
    assert records(site, "accounts") == {
        f"{VERSIONS_PREFIX}accounts/{now.apps['accounts'].version}.json"
    }
    assert len(records(site, "payments")) == 1  # live, never changed
    assert len(history(site)) == 3  # the audit log is kept
    page = served(site)
    with pytest.raises(MfeError, match=r"\(pruned\?\)"):
        rollback(site.project, "local", outputs=site.outputs, to="1")
    assert live(site) == now and served(site) == page


def test_a_prune_keeps_young_version_records(tmp_path: Path, moto_s3: S3Server) -> None:
    """A record younger than the grace period may be an in-flight publish's: kept."""
    site = Site(tmp_path / "site", moto_s3, keep_releases=1, grace_seconds=3600)
    site.publish()
    site.change("accounts", "2")
    site.publish(prune=True)
    assert len(records(site, "accounts")) == 2


@pytest.mark.parametrize("command", ["publish", "rollback"])
def test_release_state_does_not_grow_what_a_publish_or_rollback_lists(
    tmp_path: Path, moto_s3: S3Server, command: str
) -> None:
    """Thousands of keys under `_mfe/` (records of a long history) cost a publish of the
    app, or a rollback, no more requests than a bucket without them: release state is
    listed by the prefix a step needs, not walked through with the app's files."""
    site = Site(tmp_path / "site", moto_s3)
    site.publish()
    s3 = site.server.client()

    def cost(version: str) -> int:
        site.change("payments", version)
        if command == "rollback":  # of that publish
            site.publish(smoke=False)
            report = rollback(site.project, "local", outputs=site.outputs, smoke=False)
            return int(report.requests["s3"])
        return int(site.publish(app="payments", smoke=False)["requests"]["s3"])

    def grow(start: int) -> None:  # beyond a page of a listing (1000 keys) in each bucket
        for bucket in (site.bucket("payments"), site.bucket("mfe-parent")):
            for n in range(start, start + 1200):
                s3.put_object(Bucket=bucket, Key=f"{VERSIONS_PREFIX}x/{n:05d}.json", Body=b"")

    site.change("payments", "2")
    site.publish()
    quiet = cost("3")
    grow(0)
    grown = cost("4")
    grow(1200)
    assert grown <= quiet + 2  # one page of state at most per bucket listed, however much
    assert cost("5") == grown
