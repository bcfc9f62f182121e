"""What one publish did (or, dry, would do): its own module so that the publish
(`mfe.publish.publishing`) and its dry-run report (`mfe.publish.dry`) share it without an
import cycle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mfe.publish.pointer import Live


@dataclass
class Result:
    release: str
    live: Live | None
    previous: Live | None
    noop: bool
    sent: dict[str, list[str]] = field(default_factory=dict)
    forced: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    forced_over: dict[str, str] = field(default_factory=dict)
    """app -> what `--force` published it over (`Live.forced_over`)."""
    by_app: dict[str, list[str]] = field(default_factory=dict)
    """app -> fixed-URL paths invalidated."""
    refreshed: dict[str, list[str]] = field(default_factory=dict)
    """app -> reused keys uploaded again before the swap (`mfe.publish.refresh`)."""
    removed: list[str] = field(default_factory=list)
    """Live apps this checkout does not have, taken off the page (`dropped_apps.dropped`)."""
    dirty: bool | None = None
    """The published sources differed from HEAD (`Live.dirty`); None: not a git checkout."""
    superseded: list[str] = field(default_factory=list)
    """Apps kept live from a later commit than this checkout's (`Run.keep_later`)."""
    held: dict[str, str] = field(default_factory=dict)
    """Apps whose build here live replaced or a rollback took off, kept live: app -> why."""
    prune_refused: str | None = None
    """Why `--prune` deleted nothing (`prune.PruneRefused`), after the release went live."""
    repaired: int = 0
    """Files of the live release written back or uploaded again (`--verify`, or a failed
    smoke check's repair)."""


def by_app(keys: dict[tuple[str, str], Any]) -> dict[str, list[str]]:
    """(app, key) pairs as app -> sorted keys."""
    found: dict[str, list[str]] = {}
    for app, key in sorted(keys):
        found.setdefault(app, []).append(key)
    return found
