"""`[env.X] domain`: a custom domain for an environment's apps, read and checked with mfe.toml.

One host per app: the parent at `domain`, every other app at `<app>.<domain>`, so each
CloudFront distribution keeps its own origin and cache (a path-based layout would need one
distribution for every app). One certificate covers `domain` and `*.domain`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mfe.errors import shown


@dataclass(frozen=True)
class Domain:
    """`[env.X] domain`: the parent at `name`, every other app at `<app>.<name>`."""

    name: str
    hosted_zone_id: str | None = None
    """Route 53 zone of `name`: DNS-validated certificate and alias records are created."""
    certificate_arn: str | None = None
    """An existing ACM certificate in us-east-1 for `name` and `*.name` (then no zone needed)."""

    def host(self, app: str, parent: str) -> str:
        return self.name if app == parent else f"{app}.{self.name}"


# Patterns `re` compiles (and caches) only when an environment sets a domain.
_HOST = r"(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
_ZONE = r"Z[A-Z0-9]{1,31}"
_CERTIFICATE = r"arn:aws[a-z-]*:acm:us-east-1:\d{12}:certificate/[0-9a-f-]{36}"


def load_domain(table: Any) -> Domain | None:
    """`domain` plus `hosted_zone_id` and/or `certificate_arn`, each checked for shape."""
    name = table.get("domain", str)
    zone = table.get("hosted_zone_id", str)
    certificate = table.get("certificate_arn", str)
    if name is None:
        extra = "hosted_zone_id" if zone is not None else "certificate_arn"
        if zone is not None or certificate is not None:
            raise table.error(table.key(extra), "needs a `domain` in the same table")
        return None
    if not re.fullmatch(_HOST, name):
        raise table.error(
            table.key("domain"),
            f"must be a lowercase host name such as app.example.com, got {shown(name)}",
        )
    if zone is None and certificate is None:
        raise table.error(
            table.key("domain"),
            "needs `hosted_zone_id` (Route 53 zone: certificate and DNS records are made) "
            "or `certificate_arn` (an ACM certificate in us-east-1 you manage)",
        )
    if zone is not None and not re.fullmatch(_ZONE, zone):
        raise table.error(table.key("hosted_zone_id"), f"is not a Route 53 zone id: {shown(zone)}")
    if certificate is not None and not re.fullmatch(_CERTIFICATE, certificate):
        raise table.error(
            table.key("certificate_arn"),
            "must be an ACM certificate ARN in us-east-1 (CloudFront only uses those), "
            f"got {shown(certificate)}",
        )
    return Domain(name, zone, certificate)
