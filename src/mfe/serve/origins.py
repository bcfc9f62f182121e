"""Same-origin by default: which Host names the dev servers answer, and who may read.

A web page the developer visits must not read the sources: through DNS rebinding its
requests carry `Host: attacker.example` (refused, 403), and read directly from the
browser they carry its `Origin` (no CORS grant). Only the shell's origin gets CORS, which
its `crossorigin` module scripts need, and source maps. The class of Vite's CVE-2025-24010.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Origins:
    shell_port: int
    extra_hosts: tuple[str, ...] = ()
    """`[env.dev] allowed_hosts`: more names the servers answer (behind a proxy, say)."""
    shell_origins: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        names = [f"[{h}]" if ":" in h else h for h in (*LOOPBACK, *self.extra_hosts)]
        origins = {f"http://{name}:{self.shell_port}" for name in names}
        origins |= {f"{scheme}://{h}" for h in self.extra_hosts for scheme in ("http", "https")}
        object.__setattr__(self, "shell_origins", frozenset(origins))

    def host_allowed(self, host: str | None, port: int) -> bool:
        """`Host` names loopback or an allowed host, with this server's port (or none)."""
        try:
            parts = urlsplit(f"//{host or ''}")
            given = parts.port
        except ValueError:
            return False
        name = parts.hostname or ""
        return name in (*LOOPBACK, *self.extra_hosts) and given in (None, port)

    def cors_origin(self, origin: str | None) -> str | None:
        """The `Access-Control-Allow-Origin` for a request's `Origin`: the shell's, or none."""
        return origin if origin in self.shell_origins else None

    def may_read_source_map(self, origin: str | None, fetch_site: str | None) -> bool:
        """Source maps (the original sources) go to the shell's pages and to DevTools only."""
        if origin is not None:
            return origin in self.shell_origins
        return fetch_site != "cross-site"
