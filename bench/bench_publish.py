"""`doit publish` as a user runs it, next to `aws s3 sync` doing the same uploads.

The site: a synthetic monorepo of 3 apps, ~1000 files, ~30 MB, the shell from this repo's
template. Its sources are unhashed (`files/main.js`, `files/assets/chunk12.js`,
`files/public/robots.txt`); each app's build (bench/fingerprint_build.mjs) names every
file by a hash of its bytes, as a bundler does (`main-<HASH>.js`), except `public/`, copied
as is: the JS/CSS chunks are immutable, robots.txt and site.webmanifest fixed-URL (checked
on the built manifests before any case runs). Both sides are whole commands in fresh processes
(`python -m doit publish`; one `aws s3 sync` per app plus one for the shell page), run
A B A B against one moto server. Every request goes through a loopback counting proxy
(bench/wire.py) and is counted on the wire, by service.

Cases and anchors (each anchor does the case's uploads and nothing more):
- first publish into emptied buckets vs `aws s3 sync` x3 + the shell (no invalidations:
  a first publish sends none either);
- no-op publish vs the same syncs with nothing to do;
- clean rebuild: dist/ deleted before every run; `doit publish` (rebuilds, then uploads
  nothing) vs `doit build` + the syncs (which re-upload every rebuilt file);
- a preview of one changed app (`doit publish preview=bench` after a new chunk in accounts
  was built): under 1.0 s, and its S3 requests at most the files it uploaded + 3.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from common import REPO, doit, use_port
from run import Case, Context
from wire import WireCounter

from mfe.build.manifest import read_manifest

from fixtures.aws import DUMMY_AWS_ENV, free_port, local_client, start_moto, stop_process

APPS = ("mfe-parent", "accounts", "payments")
FILES_PER_APP = 330
TOTAL_BYTES = 30 * 1024 * 1024
BUILD_SCRIPT = Path(__file__).resolve().parent / "fingerprint_build.mjs"
BUILD = f"node ../../{BUILD_SCRIPT.name}"
"""Each app's `build` script (run in apps/<app>/): the site root holds a copy of BUILD_SCRIPT."""


def make_site(
    root: Path,
    files_per_app: dict[str, int] | None = None,
    total_bytes: int = TOTAL_BYTES,
    mfe_toml: str = "",
) -> None:
    """The synthetic monorepo: npm workspaces whose builds fingerprint `files/` into dist/
    (`files_per_app`: default FILES_PER_APP for each of APPS; `mfe_toml` is appended)."""
    counts = files_per_app or dict.fromkeys(APPS, FILES_PER_APP)
    rng = random.Random(4)
    shutil.copytree(REPO / "shell", root / "shell")
    shutil.copy(REPO / "dodo.py", root / "dodo.py")
    shutil.copy(BUILD_SCRIPT, root / BUILD_SCRIPT.name)
    (root / "mfe.toml").write_text(
        '[project]\nname = "bench"\n\n[apps.mfe-parent]\nrole = "parent"\n' + mfe_toml
    )
    (root / "package.json").write_text(
        json.dumps({"name": "bench", "private": True, "workspaces": ["apps/*"]})
    )
    per_file = total_bytes // sum(counts.values())
    for app, count in counts.items():
        folder = root / "apps" / app
        files = folder / "files"
        (files / "assets").mkdir(parents=True)
        (files / "public").mkdir()
        package = {"name": app, "private": True, "scripts": {"build": BUILD}}
        (folder / "package.json").write_text(json.dumps(package))
        for index in range(count - 2):
            size = rng.randint(per_file // 4, per_file * 7 // 4)
            body = (f"/* {app} chunk {index} */\n" + "x" * size)[:size].encode()
            if index == 0:  # the entry registers the app's element, as a real bundle does
                element = f"mfe-{app.removeprefix('mfe-')}"
                body = (
                    f"customElements.define('{element}', class extends HTMLElement {{}});\n".encode()
                    + body
                )
                key = "main.js"
            else:
                key = f"assets/chunk{index}.{'css' if index % 5 == 0 else 'js'}"
            (files / key).write_bytes(body)
        (files / "public" / "robots.txt").write_text("User-agent: *\n")
        (files / "public" / "site.webmanifest").write_text('{"name": "bench"}\n')
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=root, check=True
    )


def check_fingerprints(root: Path, apps: Iterable[str]) -> None:
    """Every built file is immutable but those of `files/public/`, and each source file
    made one output: else the site is not what a bundler makes (AssertionError)."""
    for app in apps:
        files = root / "apps" / app / "files"
        sources = [path for path in files.rglob("*") if path.is_file()]
        public = {path.relative_to(files / "public").as_posix() for path in sources
                  if path.is_relative_to(files / "public")}  # fmt: skip
        manifest = read_manifest(app, root / "apps" / app / "dist")
        fixed = {name for name, entry in manifest.files.items() if not entry.immutable}
        if fixed != public or len(manifest.files) != len(sources):
            raise AssertionError(
                f"{app}: {len(manifest.files)} files built from {len(sources)}, fixed-URL ones "
                f"differ from files/public/ by {sorted(fixed ^ public)[:5]}: the synthetic "
                f"build ({BUILD_SCRIPT.name}) must fingerprint every other file"
            )


def sync_site(
    root: Path, env: str, endpoint: str, buckets: dict[str, str], environ: dict[str, str]
) -> None:
    """The anchor: one `aws s3 sync` per app's dist/ and one for the shell page."""
    targets = [(root / "apps" / app / "dist", bucket) for app, bucket in buckets.items()]
    targets.append((root / "build" / env, buckets["mfe-parent"]))
    for folder, bucket in targets:
        subprocess.run(
            ["aws", "--endpoint-url", endpoint, "s3", "sync", str(folder), f"s3://{bucket}/",
             "--exclude", "asset-manifest.json", "--only-show-errors"],
            check=True, env=environ,
        )  # fmt: skip


def empty_buckets(s3: Any, buckets: Iterable[str]) -> None:
    for bucket in buckets:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})


class Bench:
    """The site, moto behind the counting proxy, and the commands timed on both sides."""

    def __init__(self, ctx: Context) -> None:
        moto_port = free_port()
        moto = start_moto(moto_port, ctx.tmp / "moto.log")
        ctx.stack.callback(stop_process, moto)
        self.wire = ctx.stack.enter_context(WireCounter(moto_port))
        self.s3 = local_client(f"http://127.0.0.1:{moto_port}")  # uncounted: setup only
        self.endpoint = f"http://127.0.0.1:{self.wire.port}"
        self.previews = 0
        self.root = ctx.tmp / "site"
        make_site(self.root)
        use_port(self.root, self.wire.port)  # every command reaches moto through the proxy
        self.env = {**os.environ, **DUMMY_AWS_ENV}
        self.publish()  # provisions, builds, renders the shell: outputs for the anchors
        check_fingerprints(self.root, APPS)
        outputs = json.loads((self.root / ".mfe/local/outputs.json").read_text())
        self.buckets = {app: outputs["apps"][app]["bucket"] for app in APPS}

    def publish(self) -> dict[str, Any]:
        self.wire.take()
        output = doit(self.root, "publish", env=DUMMY_AWS_ENV)
        report = json.loads((self.root / ".mfe/local/publish-report.json").read_text())
        return {
            "uploaded": sum(len(app["uploaded"]) for app in report["apps"].values()),
            "builds": output.count(".  build:"),
            **self.wire.take(),
        }

    def sync(self, build: bool = False) -> dict[str, Any]:
        """`doit build` if asked, then one `aws s3 sync` per app and one for the shell page."""
        self.wire.take()
        if build:
            doit(self.root, "build")
        sync_site(self.root, "local", self.endpoint, self.buckets, self.env)
        return self.wire.take()

    def empty(self) -> None:
        empty_buckets(self.s3, self.buckets.values())

    def change_one_app(self) -> None:
        """A new chunk in accounts, then `doit build` (untimed: the preview case times the
        publish of a built change). `assets/preview.js` gets new bytes each run, so its
        fingerprinted name is new and the previous run's is gone from dist/."""
        self.previews += 1
        body = f"export const preview = {self.previews};\n"
        (self.root / "apps/accounts/files/assets/preview.js").write_text(body)
        doit(self.root, "build", env=DUMMY_AWS_ENV)

    def preview(self) -> dict[str, Any]:
        """`doit publish preview=bench`: the wire's S3 requests against what it uploaded."""
        self.wire.take()
        doit(self.root, "publish", "preview=bench", env=DUMMY_AWS_ENV)
        report = json.loads((self.root / ".mfe/local/preview-report.json").read_text())
        uploaded = sum(len(app["uploaded"]) for app in report["apps"].values())
        return {"uploaded": uploaded, "preview s3 requests": report["requests"]["s3"],
                **self.wire.take()}  # fmt: skip

    def delete_dists(self) -> None:
        for app in APPS:
            shutil.rmtree(self.root / "apps" / app / "dist")
        time.sleep(0.01)  # rebuilt files get later mtimes than the uploaded objects


def cases(ctx: Context) -> list[Case]:
    bench = Bench(ctx)
    sync = "aws s3 sync x3 + shell page"
    return [
        Case(
            name="doit publish: first, ~1000 files / 30 MB into emptied buckets",
            run=bench.publish,
            anchors={sync: bench.sync},
            setup=bench.empty,
            target="median ratio <= 1.0; no invalidations",
            check=lambda row: (
                row["anchors"][sync]["ratio"] <= 1.0
                and not row["metrics"].get("cloudfront invalidations")
            ),
        ),
        Case(
            name="doit publish: no-op",
            run=bench.publish,
            anchors={f"{sync} (nothing to do)": bench.sync},
            prepare=lambda: (bench.publish(), None)[1],
            target="0 uploads and faster than the syncs",
            check=lambda row: (
                row["metrics"]["uploaded"] == 0
                and row["anchors"][f"{sync} (nothing to do)"]["ratio"] < 1.0
            ),
        ),
        Case(
            name="doit publish preview=NAME: one changed app (one new file)",
            run=bench.preview,
            setup=bench.change_one_app,
            prepare=lambda: (bench.publish(), None)[1],
            target="median < 1.0 s; S3 requests <= changed files + 3",
            check=lambda row: (
                row["median"] < 1.0
                and row["metrics"]["preview s3 requests"] <= row["metrics"]["uploaded"] + 3
            ),
        ),
        Case(
            name="doit publish: clean rebuild (dist/ deleted), identical bytes",
            run=bench.publish,
            anchors={f"doit build + {sync}": lambda: bench.sync(build=True)},
            setup=bench.delete_dists,
            target="3 builds, 0 uploads",
            check=lambda row: (
                row["metrics"]["builds"] == len(APPS) and row["metrics"]["uploaded"] == 0
            ),
        ),
    ]


if __name__ == "__main__":
    sys.exit("run through bench/run.py: python bench/run.py -k publish")
