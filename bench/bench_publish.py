"""Publish versus `aws s3 sync` (issue 4) on one local moto server (a subprocess) and the
same synthetic site: 3 apps, ~1000 files, ~30 MB (fingerprinted JS/CSS chunks, source
maps, a few mutable files), the shell rendered by `mfe.shell.render_shell`.

Cases (the anchor deploys the same dists with one `aws s3 sync` per app; for the first
publish also `aws s3 cp` of index.html and a `/*` invalidation per distribution):
- first publish into empty buckets: time ratio <= 1.0;
- no-op publish: <= 3 S3+CloudFront requests per app and faster than the syncs' no-op;
- clean rebuild (identical bytes, new mtimes): 0 uploads (sync re-uploads every file).
Request counts come from the server's access log, so both tools are counted alike.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import REPO
from run import Case, Context

APPS = ("mfe-parent", "accounts", "payments")
FILES_PER_APP = 330
TOTAL_BYTES = 30 * 1024 * 1024
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


class Moto:
    """`python -m moto.server` on a free port, its access log counted per case."""

    def __init__(self, ctx: Context) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self.log_path = ctx.tmp / "moto.log"
        log = self.log_path.open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **AWS_ENV},
        )
        ctx.stack.callback(log.close)
        ctx.stack.callback(lambda: (proc.terminate(), proc.wait(timeout=10)))
        self.endpoint = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto did not start: {self.log_path.read_text()}")
            time.sleep(0.1)
        self.mark = 0

    def lines(self) -> list[str]:
        """Access-log request lines since the last call."""
        text = self.log_path.read_text(errors="replace").splitlines()
        new, self.mark = text[self.mark :], len(text)
        return [line for line in new if '"' in line and "HTTP/1.1" in line]


def requests_metrics(lines: list[str], sizes: dict[str, int]) -> dict[str, Any]:
    """Requests (all, S3 object PUTs, CloudFront) and uploaded bytes from access-log lines."""
    puts = [line.split('"')[1].split()[1] for line in lines if '"PUT /' in line]
    object_puts = [p for p in puts if "?" not in p and p.count("/") >= 2]
    cloudfront = [line for line in lines if "/2020-05-31/" in line]
    smoke = [line for line in lines if '"GET /' in line and "list-type" not in line]
    uploaded = [p.split("/", 2)[2] for p in object_puts if not p.split("/", 2)[2].startswith("_")]
    return {
        "requests": len(lines),
        "api_requests": len(lines) - len(smoke),
        "cloudfront": len(cloudfront),
        "uploads": len(uploaded),
        "MB_up": round(sum(sizes.get(key, 0) for key in uploaded) / 2**20, 1),
    }


def make_site(root: Path, port: int) -> dict[str, int]:
    """The synthetic monorepo; returns key -> size of everything publishable."""
    rng = random.Random(4)
    (root / "shell").mkdir(parents=True)
    shutil.copy(REPO / "shell" / "index.html.j2", root / "shell" / "index.html.j2")
    (root / "mfe.toml").write_text(
        '[project]\nname = "bench"\n\n[apps.mfe-parent]\nrole = "parent"\n\n'
        f"[env.local]\nport = {port}\n"
    )
    per_file = TOTAL_BYTES // (FILES_PER_APP * len(APPS))
    sizes: dict[str, int] = {}
    for app in APPS:
        folder = root / "apps" / app
        dist = folder / "dist"
        dist.mkdir(parents=True)
        (folder / "package.json").write_text(
            json.dumps({"name": app, "scripts": {"build": "true"}})
        )
        for index in range(FILES_PER_APP - 2):
            size = rng.randint(per_file // 4, per_file * 7 // 4)
            body = (f"/* {app} chunk {index} */\n" + "x" * size)[:size].encode()
            digest = hashlib.sha256(body).hexdigest()[:8].upper() + "7"
            kind = "css" if index % 5 == 0 else "js"
            name = "main" if index == 0 else f"chunk{index}"
            if index == 0:
                kind = "js"
            folder_name = "" if index == 0 else "assets/"
            key = f"{folder_name}{name}-{digest}.{kind}"
            (dist / key).parent.mkdir(parents=True, exist_ok=True)
            (dist / key).write_bytes(body)
            sizes[key] = size
        (dist / "robots.txt").write_text("User-agent: *\n")
        (dist / "site.webmanifest").write_text('{"name": "bench"}\n')
        sizes["robots.txt"] = 14
    from mfe.build.manifest import write_manifest

    for app in APPS:
        write_manifest(app, root / "apps" / app / "dist")
    return sizes


def provision(endpoint: str) -> Any:
    import boto3

    from mfe.envs.outputs import AppOutputs, Outputs

    kw = {"endpoint_url": endpoint, "region_name": "us-east-1"}
    s3 = boto3.client("s3", **kw, aws_access_key_id="testing", aws_secret_access_key="testing")
    cf = boto3.client(
        "cloudfront", **kw, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    apps = {}
    for app in APPS:
        bucket = f"bench-local-{app}"
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
             "Resource": f"arn:aws:s3:::{bucket}/*"}]}))  # fmt: skip
        made = cf.create_distribution(DistributionConfig={
            "CallerReference": bucket, "Comment": bucket, "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [{"Id": "s3", "DomainName": f"{bucket}.s3.amazonaws.com",
                                                  "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
            "DefaultCacheBehavior": {"TargetOriginId": "s3", "ViewerProtocolPolicy": "redirect-to-https",
                                     "MinTTL": 0, "TrustedSigners": {"Enabled": False, "Quantity": 0},
                                     "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}}},
        })["Distribution"]  # fmt: skip
        apps[app] = AppOutputs(bucket, f"{endpoint}/{bucket}/", made["Id"], made["DomainName"])
    return s3, Outputs(env="local", region="us-east-1", apps=apps, endpoint_url=endpoint)


class Bench:
    def __init__(self, ctx: Context) -> None:
        from mfe.config import load_project
        from mfe.shell import render_shell

        os.environ.update(AWS_ENV)
        self.moto = Moto(ctx)
        self.root = ctx.tmp / "site"
        self.sizes = make_site(self.root, self.moto.port)
        self.s3, self.outputs = provision(self.moto.endpoint)
        self.project = load_project(self.root)
        self.shell = render_shell(self.project, "local", self.outputs)
        self.sizes["index.html"] = self.shell.stat().st_size

    def publish(self) -> dict[str, Any]:
        from mfe.publish import publish
        from mfe.publish.report import Progress

        self.moto.lines()
        report = publish(self.project, "local", outputs=self.outputs, progress=Progress(rich=False))
        metrics = requests_metrics(self.moto.lines(), self.sizes)
        metrics["api_requests"] = report.requests["s3"] + report.requests["cloudfront"]
        metrics["invalidated"] = sum(len(p) for p in report.invalidations.values())
        return metrics

    def aws(self, *args: str) -> None:
        subprocess.run(
            ["aws", "--endpoint-url", self.moto.endpoint, *args],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, **AWS_ENV},
        )

    def sync(self, full: bool) -> dict[str, Any]:
        """One `aws s3 sync` per app; `full` adds the shell copy and a `/*` invalidation each."""
        self.moto.lines()
        for app in APPS:
            bucket = self.outputs.apps[app].bucket
            self.aws("s3", "sync", str(self.root / "apps" / app / "dist"), f"s3://{bucket}/",
                     "--exclude", "asset-manifest.json", "--only-show-errors")  # fmt: skip
        if full:
            parent = self.outputs.apps["mfe-parent"].bucket
            self.aws("s3", "cp", str(self.shell), f"s3://{parent}/index.html", "--only-show-errors")
            for app in APPS:
                dist = self.outputs.apps[app].distribution_id or ""
                self.aws("cloudfront", "create-invalidation", "--distribution-id", dist,
                         "--paths", "/*")  # fmt: skip
        metrics = requests_metrics(self.moto.lines(), self.sizes)
        metrics["invalidated"] = len(APPS) if full else 0
        return metrics

    def empty(self) -> None:
        for app in APPS:
            bucket = self.outputs.apps[app].bucket
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    self.s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})

    def rebuild(self) -> None:
        """A clean rebuild: every file rewritten with the same bytes (new mtimes)."""
        later = time.time() + 2
        for app in APPS:
            for path in (self.root / "apps" / app / "dist").rglob("*"):
                if path.is_file():
                    path.write_bytes(path.read_bytes())
                    os.utime(path, (later, later))


def cases(ctx: Context) -> list[Case]:
    bench = Bench(ctx)
    return [
        Case(
            name="publish: first, ~1000 files / 30 MB into empty buckets",
            run=bench.publish,
            anchors={"aws s3 sync x3 + cp index.html + /* invalidations": lambda: bench.sync(True)},
            setup=bench.empty,
            repeat=3,
            target="time ratio <= 1.0",
            check=lambda row: next(iter(row["anchors"].values()))["ratio"] <= 1.0,
        ),
        Case(
            name="publish: no-op",
            run=bench.publish,
            anchors={"aws s3 sync x3 (no-op)": lambda: bench.sync(False)},
            setup=lambda: (bench.publish(), None)[1],
            repeat=5,
            target="<= 3 requests per app and faster than sync",
            check=lambda row: (
                row["metrics"]["api_requests"] <= 3 * len(APPS)
                and next(iter(row["anchors"].values()))["ratio"] < 1.0
            ),
        ),
        Case(
            name="publish: clean rebuild, identical bytes",
            run=bench.publish,
            anchors={"aws s3 sync x3 (after rebuild)": lambda: bench.sync(False)},
            setup=lambda: (bench.publish(), bench.rebuild(), None)[2],
            repeat=3,
            target="0 uploads",
            check=lambda row: row["metrics"]["uploads"] == 0,
        ),
    ]
