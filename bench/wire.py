"""A loopback HTTP proxy in front of the emulator that counts requests on the wire, by service.

Everything a command sends to the emulator's port goes through here, so the counts include
what boto3 events never see: the emulator probe, provisioning checks, smoke-check GETs, and
every process (`doit`, `aws`) alike. The service comes from the SigV4 credential scope
(`Credential=KEY/DATE/REGION/SERVICE/aws4_request`); unsigned requests count as
`unsigned` (the smoke check's page and asset GETs, the emulator probe).
"""

from __future__ import annotations

import http.client
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}


def service_of(headers: Any, path: str) -> str:
    scope = _SCOPE.search(headers.get("Authorization", ""))
    if scope:
        return scope.group(1)
    if "X-Amz-Credential=" in path:  # a presigned URL
        match = re.search(r"X-Amz-Credential=[^&]*?%2F\d{8}%2F[^%]+%2F([^%]+)%2F", path)
        if match:
            return match.group(1)
    return "unsigned"


class WireCounter:
    """`with WireCounter(upstream_port) as wire:` listens on `wire.port`; `wire.take()` counts."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        counter = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    parts = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass  # trailers
                            return b"".join(parts)
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _forward(self) -> None:
                body = self._body()
                service = service_of(self.headers, self.path)
                with counter.lock:
                    counter.counts[service] += 1
                    if service == "s3" and self.command == "PUT" and "?" not in self.path:
                        counter.counts["s3 object PUTs"] += 1
                    elif service == "cloudfront" and self.path.endswith("/invalidation"):
                        counter.counts["cloudfront invalidations"] += int(self.command == "POST")
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in _HOP | {"expect"}
                }
                headers.pop("Content-Length", None)
                connection = counter._connection()
                try:
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    payload = response.read()
                finally:
                    connection.close()
                self.send_response_only(response.status, response.reason)
                head = self.command == "HEAD"  # keeps the object's length, sends no body
                for key, value in response.getheaders():
                    if key.lower() not in _HOP and (head or key.lower() != "content-length"):
                        self.send_header(key, value)
                if not head:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=120)

    def take(self) -> dict[str, int]:
        """Requests per service since the last call, `total`, and object PUTs/invalidations."""
        with self.lock:
            counts, self.counts = dict(self.counts), Counter()
        extra = {k: counts.pop(k) for k in list(counts) if " " in k}
        return {**dict(sorted(counts.items())), "total": sum(counts.values()), **extra}

    def __enter__(self) -> WireCounter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
