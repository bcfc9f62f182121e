"""A publish that dies halfway (an S3 endpoint that starts refusing uploads after K
objects) leaves the previous release served, and the re-run uploads only what is missing."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mfe.errors import MfeError
from mfe.publish.smoke import smoke_check

from fixtures.s3 import S3Server, Site, objects

DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
    b"<Message>injected failure</Message></Error>"
)


class FailingProxy:
    """Forwards to the S3 server; object PUTs after the first `allow` answer 403."""

    def __init__(self, target: str, allow: int) -> None:
        self.target = urlsplit(target)
        self.allow = allow
        self.puts = 0
        self.paths: list[str] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:
                pass

            def relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                is_object_put = self.command == "PUT" and "?" not in self.path
                if is_object_put and self.path.count("/") >= 2:
                    with proxy.lock:
                        proxy.puts += 1
                        proxy.paths.append(self.path)
                        refuse = proxy.puts > proxy.allow
                    if refuse:
                        self.send_response(403)
                        self.send_header("Content-Type", "application/xml")
                        self.send_header("Content-Length", str(len(DENIED)))
                        self.end_headers()
                        self.wfile.write(DENIED)
                        return
                upstream = http.client.HTTPConnection(
                    proxy.target.hostname, proxy.target.port, timeout=30
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = relay

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site(tmp_path: Path, moto_s3: S3Server) -> Site:
    return Site(tmp_path / "repo", moto_s3)


@pytest.fixture
def proxy(moto_s3: S3Server) -> Iterator[FailingProxy]:
    found = FailingProxy(moto_s3.endpoint, allow=2)
    yield found
    found.close()


def test_upload_order_assets_then_mutable_then_shell(site: Site, moto_s3: S3Server) -> None:
    recorder = FailingProxy(moto_s3.endpoint, allow=10_000)
    try:
        site.point_at(recorder.port)
        site.publish()
    finally:
        recorder.close()
    keys = [path.split("/", 2)[2] for path in recorder.paths]
    kinds = ["state" if k.startswith("_mfe/") else k for k in keys]
    shell = kinds.index("index.html")
    assert all(k.startswith("main-") for k in kinds[:6])  # every app's fingerprinted files
    assert kinds[6:shell] == ["favicon.svg"]  # then mutable files
    assert set(kinds[shell + 1 :]) == {"state"}  # then the shell; release state after it


def test_interrupted_publish_keeps_old_release_and_rerun_finishes(
    site: Site, proxy: FailingProxy
) -> None:
    first = site.publish()
    old_shell = objects(site.server, site.bucket("mfe-parent"))["index.html"]
    site.change("accounts", "2")
    site.change("payments", "2")  # 4 fingerprinted files + the shell to upload

    moto_port = site.port
    site.point_at(proxy.port)
    with pytest.raises(MfeError, match=r"access denied while uploading .* in bucket 'pub"):
        site.publish()
    assert proxy.puts >= 3  # two went through, then refusals

    parent = objects(site.server, site.bucket("mfe-parent"))
    assert parent["index.html"] == old_shell  # the shell never went up
    assert [k for k in parent if k.startswith("_mfe/releases/")] == [
        f"_mfe/releases/{first['release']}.json"
    ]
    smoke_check(first["site_url"])  # the old page and all its assets still load

    site.point_at(moto_port)
    report = site.publish()
    uploaded = sorted(k for row in report["apps"].values() for k in row["uploaded"])
    assert len(uploaded) == 3  # 4 - 2 already uploaded, + index.html
    assert report["apps"]["mfe-parent"]["uploaded"] == ["index.html"]
    assert report["invalidations"] == {site.dist("mfe-parent"): ["/index.html"]}
    assert objects(site.server, site.bucket("mfe-parent"))["index.html"] != old_shell


def test_smoke_check_names_a_missing_or_corrupted_asset(site: Site) -> None:
    report = site.publish()
    url = report["site_url"]
    entry = next(k for k in report["apps"]["payments"]["uploaded"] if k.endswith(".js"))
    asset = f"{site.outputs.apps['payments'].base_url}{entry}"
    s3 = site.server.client()
    s3.put_object(
        Bucket=site.bucket("payments"), Key=entry, Body=b"tampered", ContentType="text/javascript"
    )
    with pytest.raises(MfeError, match=rf"smoke check failed for {url}:\n  {asset} does not match"):
        smoke_check(url, attempts=2, first_delay=0.05)
    s3.delete_object(Bucket=site.bucket("payments"), Key=entry)
    with pytest.raises(MfeError, match=rf"{asset} answered 403|{asset} answered 404"):
        smoke_check(url, attempts=2, first_delay=0.05)
    healed = site.publish()  # the listing shows it missing: uploaded again, smoke passes
    assert healed["apps"]["payments"]["uploaded"] == [entry]


def test_unknown_distribution_is_a_clear_error_and_the_rerun_invalidates(site: Site) -> None:
    from dataclasses import replace

    site.publish()
    real = site.outputs
    parent = real.apps["mfe-parent"]
    site.outputs = replace(
        real, apps={**real.apps, "mfe-parent": replace(parent, distribution_id="EDOESNOTEXIST")}
    )
    site.change("accounts", "2")
    with pytest.raises(MfeError, match="distribution 'EDOESNOTEXIST' of environment 'local'"):
        site.publish()
    site.outputs = real
    # The files are online and the release is recorded as not yet invalidated: once the
    # outputs name the right distribution, the re-run resumes that release and invalidates.
    again = site.publish()
    assert all(not row["uploaded"] for row in again["apps"].values())
    assert again["invalidations"] == {parent.distribution_id: ["/index.html"]}
    assert again["release"] == again["previous_release"]  # resumed, not a new release
    assert site.invalidation_count("mfe-parent") == 1
    assert site.publish()["noop"] is True
