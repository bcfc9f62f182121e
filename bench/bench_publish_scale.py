"""`doit publish` of a site with an app of 10,000 files, next to `aws s3 sync`, on moto
and on SeaweedFS in one run (issue 11's scale targets).

The site: bench_publish's synthetic monorepo with `accounts` at 10,000 files (~30 MB) and
a parent and `payments` of 30 files each. Each server gets its own copy of the site:
- moto: the embedded default, `doit publish` on `local` (the emulator on a free port,
  started the way the orchestrator starts it);
- SeaweedFS: an S3-compatible store behind `endpoint_url` (`[env.weed]`, buckets made
  here, outputs written as a user of a pre-made store would).
Anchors: one `aws s3 sync` per app plus one for the shell page, against the same server.
No counting proxy in the timed runs (it would cost as much CPU as the server on 10,000
requests); the publish report's request counts and `seconds` (the publish itself, from
reading the pointer to the smoke check) are the metrics, so start-up = wall - seconds.

Cases per server: first publish into emptied buckets (<= 0.6x the first syncs); no-op
publish (<= 0.3x the syncs with nothing to do; at most one listing per bucket plus the
pointer read, in fact no listing).

One more site, on moto only: `accounts` with 1,500 fixed-URL files (a `public/` folder of
unhashed assets) and `doit publish app=payments` after a one-chunk change (built untimed),
vs `aws s3 sync` of payments, the parent and the shell page: the commit step must not
check accounts' fixed files one request each (< 100 S3 requests, no slower than the syncs).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench_publish import check_fingerprints, empty_buckets, make_site, sync_site
from common import doit, use_port
from run import Case, Context

from mfe.config import load_project
from mfe.envs.outputs import AppOutputs, Outputs, write_outputs

from fixtures.aws import DUMMY_AWS_ENV, free_port, local_client
from fixtures.s3 import seaweed_server

FILES = {"mfe-parent": 30, "accounts": 10_000, "payments": 30}
TOTAL_BYTES = 30 * 1024 * 1024
FIXED_FILES = 1_500
"""Fixed-URL files of accounts in the one-app publish case."""
FIXED_CASE = f"moto: publish app=payments while accounts has {FIXED_FILES:,} fixed-URL files"


class ScaleSite:
    """One copy of the site published to one server, and the commands timed on it."""

    def __init__(self, root: Path, env: str, endpoint: str, weed: bool = False) -> None:
        self.root, self.env, self.endpoint = root, env, endpoint
        self.vars = [] if env == "local" else [f"env={env}"]
        self.environ = {**os.environ, **DUMMY_AWS_ENV}
        self.s3 = local_client(endpoint)
        if weed:
            self._provision_weed()
        doit(root, "build", env=DUMMY_AWS_ENV)
        check_fingerprints(root, FILES)
        self.publish()  # local: starts the emulator, provisions, writes outputs
        outputs = json.loads((root / f".mfe/{env}/outputs.json").read_text())
        self.buckets = {app: outputs["apps"][app]["bucket"] for app in FILES}

    def _provision_weed(self) -> None:
        apps = {}
        for app in FILES:
            bucket = f"bench-{self.env}-{app}"
            self.s3.create_bucket(Bucket=bucket)
            apps[app] = AppOutputs(bucket, f"{self.endpoint}/{bucket}/", None, None)
        project = load_project(self.root)
        write_outputs(project, Outputs(self.env, "us-east-1", apps, self.endpoint))

    def publish(self, *args: str) -> dict[str, Any]:
        doit(self.root, "publish", *self.vars, *args, env=DUMMY_AWS_ENV)
        report = json.loads((self.root / f".mfe/{self.env}/publish-report.json").read_text())
        return {
            "uploaded": sum(len(app["uploaded"]) for app in report["apps"].values()),
            "publish seconds": report["seconds"],
            **{f"{service} requests": n for service, n in report["requests"].items() if n},
        }

    def sync(self, apps: tuple[str, ...] = tuple(FILES)) -> None:
        buckets = {app: self.buckets[app] for app in apps}
        sync_site(self.root, self.env, self.endpoint, buckets, self.environ)

    def change_payments(self) -> None:
        """One changed chunk in payments, built: `assets/change.js` gets new bytes, so
        dist/ has a new fingerprinted file in place of the previous run's."""
        body = f"export const at = {time.time_ns()};\n"
        (self.root / "apps/payments/files/assets/change.js").write_text(body)
        doit(self.root, "build", env=DUMMY_AWS_ENV)

    def empty(self) -> None:
        empty_buckets(self.s3, self.buckets.values())

    def stop(self) -> None:
        if self.env == "local":
            doit(self.root, "local_stop", env=DUMMY_AWS_ENV)


SCALE_CASES = ("first publish, 10,000-file app", "no-op publish, 10,000-file app")


def site_cases(label: str, site: ScaleSite) -> list[Case]:
    sync = "aws s3 sync x3 + shell page"
    return [
        Case(
            name=f"{label}: {SCALE_CASES[0]}",
            run=site.publish,
            anchors={sync: site.sync},
            setup=site.empty,
            target="median ratio <= 0.6",
            check=lambda row: row["anchors"][sync]["ratio"] <= 0.6,
        ),
        Case(
            name=f"{label}: {SCALE_CASES[1]}",
            run=site.publish,
            anchors={f"{sync} (nothing to do)": site.sync},
            prepare=lambda: (site.publish(), None)[1],
            target="median ratio <= 0.3; no listing (2 S3 requests)",
            check=lambda row: (
                row["anchors"][f"{sync} (nothing to do)"]["ratio"] <= 0.3
                and row["metrics"]["uploaded"] == 0
                and row["metrics"].get("s3 requests", 0) <= len(FILES) + 1
            ),
        ),
    ]


def fixed_url_case(work: Path, ctx: Context) -> Case:
    """One app published while another has FIXED_FILES fixed-URL files (see module doc)."""
    root = work / "fixed"
    make_site(root, dict.fromkeys(FILES, 30), 3 * 1024 * 1024)
    public = root / "apps" / "accounts" / "files" / "public"
    for index in range(FIXED_FILES):  # copied as is by the build: a fixed URL each
        (public / f"icon{index}.svg").write_text(f"<svg><!-- {index} --></svg>\n")
    use_port(root, free_port())
    site = ScaleSite(root, "local", f"http://127.0.0.1:{_port(root)}")
    ctx.stack.callback(site.stop)
    sync = "aws s3 sync payments + parent + shell page"
    return Case(
        name=FIXED_CASE,
        run=lambda: site.publish("app=payments"),
        anchors={sync: lambda: site.sync(("mfe-parent", "payments"))},
        setup=site.change_payments,
        target="< 100 S3 requests; median ratio <= 1.0",
        check=lambda row: (
            row["metrics"].get("s3 requests", 0) < 100 and row["anchors"][sync]["ratio"] <= 1.0
        ),
    )


def cases(ctx: Context) -> Iterator[Case]:
    # The copies outlive ctx.tmp's cleanup until their servers are stopped (LIFO stack).
    work = Path(tempfile.mkdtemp(prefix="mfe-bench-scale-"))
    ctx.stack.callback(shutil.rmtree, work, True)
    if ctx.wants(FIXED_CASE):
        yield fixed_url_case(work, ctx)
    if not ctx.wants(
        *(f"{label}: {what}" for label in ("moto", "SeaweedFS") for what in SCALE_CASES)
    ):
        return
    moto_root = work / "moto"
    make_site(moto_root, FILES, TOTAL_BYTES)
    use_port(moto_root, free_port())
    moto = ScaleSite(moto_root, "local", f"http://127.0.0.1:{_port(moto_root)}")
    ctx.stack.callback(moto.stop)
    yield from site_cases("moto", moto)

    data = work / "weed-data"
    data.mkdir()
    server = ctx.stack.enter_context(seaweed_server(data))
    weed_root = work / "weed"
    make_site(
        weed_root,
        FILES,
        TOTAL_BYTES,
        f'\n[env.weed]\nregion = "us-east-1"\nendpoint_url = "{server.endpoint}"\n',
    )
    yield from site_cases("SeaweedFS", ScaleSite(weed_root, "weed", server.endpoint, weed=True))


def _port(root: Path) -> int:
    import tomllib

    return int(tomllib.loads((root / "mfe.toml").read_text())["env"]["local"]["port"])


if __name__ == "__main__":
    sys.exit("run through bench/run.py: python bench/run.py -k publish_scale")
