"""Damage to what the commit step and a rollback serve from: a `_ca/` page copy, the local
page and version caches, a live fixed-URL file deleted from its bucket. Each is verified
before it is served, and repaired where the bytes can be had (moto server, real files)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from test_releases import history, live, served

from mfe.publish.local import SHELL_KEY
from mfe.publish.rollback import rollback
from mfe.publish.versions import ca_key, read_version

from fixtures.s3 import S3Server, Site, write_app

WHOLE_ROLLBACK = """
import sys
from mfe.config import load_project
from mfe.envs.outputs import read_outputs
from mfe.publish.rollback import rollback

project = load_project(__import__("pathlib").Path(sys.argv[1]))
env = project.env("local")
rollback(project, env, outputs=read_outputs(project, env), to="1", smoke=False)
"""


@pytest.fixture
def site(tmp_path: Path, moto_s3: S3Server) -> Site:
    """Two releases: accounts 1, then accounts 2."""
    site = Site(tmp_path / "repo", moto_s3)
    site.publish()
    site.change("accounts", "2")
    site.publish()
    return site


def pages(site: Site) -> Path:
    return site.project.state_dir("local") / "pages"


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def corrupt_page_copy(site: Site, seq: int) -> str:
    """Other bytes in the `_ca/` copy of release `seq`'s page, which this checkout's page
    cache no longer holds; returns the copy's key."""
    key = ca_key(SHELL_KEY, history(site)[seq - 1].page.sha256)
    site.server.client().put_object(Bucket=site.bucket("mfe-parent"), Key=key, Body=b"junk")
    for cached in pages(site).glob("*.html"):
        cached.unlink()
    return key


def test_a_tampered_page_cache_is_not_served(site: Site) -> None:
    first = history(site)[0]
    cached = pages(site) / f"{first.page.sha256}.html"
    assert cached.is_file()
    cached.write_text("<html>EVIL</html>")
    rollback(site.project, "local", outputs=site.outputs, to="1")
    assert sha(served(site)) == first.page.sha256
    assert not cached.is_file() or sha(cached.read_bytes()) == first.page.sha256  # not EVIL


def test_a_tampered_version_cache_is_read_again_from_the_bucket(site: Site) -> None:
    """Another checkout's accounts is rendered from its cached version manifest: one whose
    module integrity was edited is dropped, so the page gets the right SRI."""
    import shutil

    version = live(site).apps["accounts"].version
    cached = site.project.state_dir("local") / "versions" / "accounts" / f"{version}.json"
    data = json.loads(cached.read_text())
    entry = data["asset_manifest"]["entries"][0]
    right = data["asset_manifest"]["files"][entry]["integrity"]
    wrong = "sha384-" + "A" * 64
    data["asset_manifest"]["files"][entry]["integrity"] = wrong
    cached.write_text(json.dumps(data))
    shutil.rmtree(site.root / "apps" / "accounts" / "dist")
    write_app(site.root, "payments", "2")  # the page is rendered by the publish, not here
    site.publish(app="payments")  # smoke-checked: every module's SRI
    page = served(site).decode()
    assert right in page and wrong not in page

    files = dict(data["files"])  # a record edited: the version hash no longer matches
    key = next(iter(files))
    data["files"][key] = {**files[key], "sha256": "0" * 64}
    cached.write_text(json.dumps(data))
    state = site.project.state_dir("local")
    found = read_version(site.server.client(), site.bucket("accounts"), "accounts", version, state)
    assert found[key].sha256 == files[key]["sha256"]
