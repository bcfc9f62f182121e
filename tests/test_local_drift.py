"""The local emulator drifting from what `.mfe/local/outputs.json` names: resources deleted
by hand are made again (and said so), and a local environment outside us-east-1."""

from __future__ import annotations

from pathlib import Path

import httpx

from mfe.config import load_project
from mfe.envs.session import Session
from mfe.publish import publish

from fixtures.aws import local_client
from fixtures.s3 import make_site, render_shell


def test_a_local_environment_in_another_region_provisions_and_publishes(
    moto_server: str, tmp_path: Path
) -> None:
    """S3 refuses a CreateBucket outside us-east-1 that does not name its region."""
    root = make_site(tmp_path / "repo", int(moto_server.rsplit(":", 1)[1]), name="euwest")
    with (root / "mfe.toml").open("a") as toml:
        toml.write('region = "eu-west-1"\n')  # under [env.local], the file's last table
    project = load_project(root)
    outputs = Session(project, "local").outputs
    render_shell(root, outputs)

    report = publish(project, "local")  # smoke-checks the site too

    s3 = local_client(moto_server, region="eu-west-1")
    buckets = [o.bucket for o in outputs.apps.values()] + [outputs.cache_bucket or ""]
    locations = {s3.get_bucket_location(Bucket=b)["LocationConstraint"] for b in buckets}
    assert locations == {"eu-west-1"}
    assert outputs.auth is not None and outputs.auth.region == "eu-west-1"
    page = httpx.get(report.site_url)
    assert page.status_code == 200 and "<mfe-parent>" in page.text
