"""A request to the local emulator fails at once when nothing listens on its port any more.

botocore's standard retries try a refused connection six times with exponential backoff,
so a command whose emulator `doit local_stop` stopped (or that was killed) waited 20-40 s
per request before saying so. On loopback a refused connect is definitive: nobody listens,
and the emulator kept its state in memory, so no retry can reach the one this command used.
A failure with the port still open (a reset or timeout from a busy emulator, one restarted
between two tries) keeps the standard retries, as a 500 or throttling does, and so does
every other kind of environment (it never gets this hook).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

PROBE_SECONDS = 1.0
"""A loopback connect is refused or accepted at once; no answer (a full accept queue of a
busy emulator) is not "gone"."""


@dataclass(frozen=True)
class FailFastWhenGone:
    """A client hook (see `ClientSpec`): a connection error to `host:port` ends the call
    with that error, without retries, when the port refuses a fresh connect. Picklable,
    so upload worker processes add it to their clients too."""

    host: str
    port: int

    @classmethod
    def for_endpoint(cls, endpoint: str) -> FailFastWhenGone | None:
        """The hook for an emulator at `endpoint`; None off loopback, where a refused connect
        may be a firewall's or a moment of a network's, not proof that nothing listens."""
        parts = urlsplit(endpoint)
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        return cls(host, port) if host is not None and _loopback(host) else None

    def __call__(self, client: Any) -> None:
        service = client.meta.service_model.service_id.hyphenize()
        # botocore calls every `needs-retry` handler (the standard one, registered when the
        # client was made, computes the delay) before it sleeps, and an exception raised by
        # one ends the call (botocore.endpoint.Endpoint._needs_retry): nothing is slept.
        client.meta.events.register(f"needs-retry.{service}", self.needs_retry)

    def needs_retry(self, caught_exception: Exception | None = None, **_: Any) -> None:
        """Raise the request's own connection error when the emulator is gone; otherwise
        leave the decision (and the delay) to the standard retry handler."""
        from botocore.exceptions import ConnectionError, HTTPClientError

        if isinstance(caught_exception, ConnectionError | HTTPClientError) and self.gone():
            raise caught_exception

    def gone(self) -> bool:
        """Whether a fresh connect to the port is refused (nothing listens on it)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=PROBE_SECONDS):
                return False
        except ConnectionRefusedError:
            return True
        except OSError:
            return False


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
