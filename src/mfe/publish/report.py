"""What a publish, plan or rollback did (`PublishReport`, written as
`.mfe/<env>/publish-report.json`), the closing summary table, and the upload progress
(a rich bar on a terminal, plain lines in CI or when piped)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mfe.files import write_atomic
from mfe.publish.local import LocalFile
from mfe.publish.versions import CA_PREFIX

REPORT_FILE = "publish-report.json"
PLAN_FILE = "plan-report.json"
"""`doit plan` writes here, so a dry run never overwrites the last real publish's report."""


@dataclass
class AppResult:
    """One app's row: keys uploaded (or restored), unchanged files, keys deleted."""

    uploaded: list[str] = field(default_factory=list)
    skipped: int = 0
    deleted: list[str] = field(default_factory=list)
    bytes: int = 0


@dataclass
class PublishReport:
    """The report of DESIGN.md section 3; publish, plan and rollback all return one."""

    env: str
    release: str
    site_url: str
    apps: dict[str, AppResult]
    invalidations: dict[str, list[str]]
    """distribution id -> paths sent."""
    requests: dict[str, int]
    """HTTP requests by service during the command."""
    seconds: float
    previous_release: str | None = None
    noop: bool = False
    invalidated_by_app: dict[str, list[str]] = field(default_factory=dict)
    dry_run: bool = False
    rollback_of: str | None = None
    """A rollback: the release served again."""
    seq: int = 0
    """The live pointer's sequence number after the command (see `doit releases`)."""
    changed: list[str] = field(default_factory=list)
    """Apps whose live version this command changed."""
    forced: list[str] = field(default_factory=list)
    """Apps published over a newer live commit or one not merged here, or taken off the
    page, with --force."""
    forced_over: dict[str, str] = field(default_factory=dict)
    """app -> what --force published it over: `a newer commit <sha>`, `a commit not merged
    here <sha>`, `a version a rollback took off`, `a version live has replaced`."""
    refreshed: dict[str, list[str]] = field(default_factory=dict)
    """app -> reused keys (also in `uploaded`) uploaded again before the swap: older than
    half of `grace_seconds` and named by no live version (`mfe.publish.refresh`)."""
    removed: list[str] = field(default_factory=list)
    """Live apps this checkout does not have, taken off the page (`mfe.publish.dropped_apps.dropped`)."""
    superseded: list[str] = field(default_factory=list)
    """Apps live from a later commit than this checkout's, kept live (`doit ci`: a run that
    finished after a run of that later commit)."""
    held: dict[str, str] = field(default_factory=dict)
    """Apps built here as a version live replaced or a rollback took off, so the live one
    stays (without --force): app -> why."""
    not_published: list[str] = field(default_factory=list)
    """Superseded or held apps with files in their `uploaded`: those went up before the
    pointer swap that then kept the live version (it lost a race to a later commit), so
    they are in the bucket but no release serves them."""
    dirty: bool | None = None
    """Published from a checkout whose sources of it differed from its commit (uncommitted
    edits; a rollback: the restored release's); None: not a git checkout, or not known."""
    prune_refused: str | None = None
    """`--prune` deleted nothing, over `publish.max_deletes`: why (the release is live)."""
    repaired: int = 0
    """Files of the live release written back or uploaded again because its buckets lost
    them or hold other bytes (`--verify`, or a failed smoke check's repair)."""
    took_off: str | None = None
    """A whole rollback: the release it took off as the console names it (who made it, and
    how: `history.summary`); an app rollback: the app's version it took off and the one now
    served (`rollback.taken_off`). Not in the JSON document, whose `previous_release` is
    the id of the release taken off."""
    finished: str | None = None
    """A plain rollback that found a rollback stopped past its swap and only finished its
    commit step (`rollback.repeats`): that one, as the console names it; not in the JSON
    document (`noop` is true)."""

    @property
    def action(self) -> str:
        return "plan" if self.dry_run else "rollback" if self.rollback_of else "publish"

    def to_dict(self) -> dict[str, Any]:
        """The JSON document; `dry_run` and `rollback_of` only when they apply, never
        `took_off` or `finished` (a console line's words)."""
        data = asdict(self)
        if not self.dry_run:
            del data["dry_run"]
        if self.rollback_of is None:
            del data["rollback_of"]
        if self.prune_refused is None:
            del data["prune_refused"]
        del data["took_off"]
        del data["finished"]
        return data


def human(size: float) -> str:
    """Decimal units, as the README's sizes (`budget = "250 kB"`): 1 kB is 1000 bytes."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def use_rich() -> bool:
    return sys.stdout.isatty() and not os.environ.get("CI")


class Progress:
    """Thread-safe progress sink for the upload phases. Its lines start with the command
    that runs (`rollback:` for a rollback's uploads and invalidations, `preview NAME:` for a
    preview's uploads, which share publish's code). Without a terminal (a CI log) a long phase says how far it got
    every `every` seconds, as no bar redraws there."""

    def __init__(
        self, rich: bool | None = None, command: str = "publish", every: float = 10.0
    ) -> None:
        self.rich = use_rich() if rich is None else rich
        self.command = command
        self.every = every
        self._lock = threading.Lock()
        self._bar: Any = None
        self._task: Any = None
        self._done = self._files = self._sent = self._size = 0
        self._name = ""
        self._told = 0.0

    def phase(self, name: str, batch: list[LocalFile]) -> None:
        self.close()
        files, size = len(batch), sum(f.size for f in batch)
        self._files, self._size, self._done, self._sent = files, size, 0, 0
        self._name = name
        self._told = time.monotonic()
        if self.rich:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )
            from rich.progress import Progress as Bar

            self._bar = Bar(
                TextColumn("[bold]{task.description}"),  # upload <phase> <done>/<files>
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
            )
            self._bar.start()
            self._task = self._bar.add_task(f"upload {name}", total=size)
        else:
            print(f"{self.command}: uploading {uploading(name, batch)}", flush=True)

    def advance(self, size: int) -> None:
        with self._lock:
            self._sent += size
            if self._bar is not None:
                self._bar.advance(self._task, size)

    def file_done(self, file: LocalFile) -> None:
        with self._lock:
            self._done += 1
            if self._bar is not None:
                self._bar.update(  # no key: a long one wrapped the bar on 80 columns
                    self._task, description=f"upload {self._name} {self._done}/{self._files}"
                )
            elif self._done < self._files and time.monotonic() - self._told >= self.every:
                self._told = time.monotonic()
                print(
                    f"{self.command}: uploaded {self._done}/{self._files} files, "
                    f"{human(self._sent)} of {human(self._size)}",
                    flush=True,
                )

    def note(self, text: str) -> None:
        line = f"{self.command}: {text}"
        if self._bar is not None:
            self._bar.console.print(line)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


NAMED_UPLOADS = 3
"""A phase of this many files or fewer names them in its progress line."""


def uploading(name: str, batch: list[LocalFile]) -> str:
    """What a phase uploads: its files by name when few (two phases of one file of the
    same size read alike otherwise), else their count and size."""
    if len(batch) > NAMED_UPLOADS:
        return f"{len(batch)} {name} file(s), {human(sum(f.size for f in batch))}"
    return ", ".join(shown(f) for f in batch)


def shown(file: LocalFile) -> str:
    """`app/key (size)`; a content-addressed copy (`_ca/<hash>/key`, what goes up before
    the swap for a fixed URL such as index.html) under the key it stands for."""
    key, size = file.key, human(file.size)
    if key.startswith(CA_PREFIX) and key.count("/") >= 2:
        return f"{file.app}/{key.split('/', 2)[2]} ({size}, its _ca/ copy)"
    return f"{file.app}/{key} ({size})"


def summary(report: PublishReport) -> str:
    """The closing table as text (rich renders it without colour when not on a terminal)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report.action} {report.env}: {report.release}")
    for column in columns(report):
        table.add_column(column, justify="left" if column in ("app", LIVE_AS_IN) else "right")
    for app, row in report.apps.items():
        cells = [
            app,
            str(len(row.uploaded)),
            str(row.skipped),
            str(len(row.deleted)),
            str(len(report.invalidated_by_app.get(app, []))),
            human(row.bytes),
        ]
        if report.rollback_of:
            cells.append(rolled_back(report, app))
        table.add_row(*cells)
    requests = ", ".join(f"{k} {v}" for k, v in sorted(report.requests.items()))
    table.caption = f"{report.seconds:.2f}s, requests: {requests or 'none'}"
    console = Console(file=None, force_terminal=use_rich(), width=100, record=True, soft_wrap=False)
    with console.capture() as capture:
        console.print(table)
    return capture.get().rstrip()


LIVE_AS_IN = "live as in"
"""A rollback's column: the release whose version of the app it made live again."""


def columns(report: PublishReport) -> tuple[str, ...]:
    """A plan's counts are what a publish would do; a rollback's uploads are restored
    copies, and its last column says which app it switched."""
    if report.dry_run:
        return ("app", "to upload", "skipped", "to delete", "to invalidate", "bytes")
    if report.rollback_of:
        return ("app", "restored", "skipped", "deleted", "invalidated", "bytes", LIVE_AS_IN)
    return ("app", "uploaded", "skipped", "deleted", "invalidated", "bytes")


def rolled_back(report: PublishReport, app: str) -> str:
    """A rollback's cell for `app`: an app rollback restores one app's version without
    uploading it (its files are still in the bucket), so the counts alone show nothing."""
    if app in report.removed:
        return "taken off"
    if app in report.changed:
        return report.rollback_of or ""
    return ""


def plan_lines(report: PublishReport) -> list[str]:
    """`doit plan`: one line per upload (refreshes marked), delete and invalidation path."""
    lines = []
    for app, row in report.apps.items():
        again = set(report.refreshed.get(app, []))
        lines += [
            f"upload  {app}: {key}" + (" (again)" if key in again else "") for key in row.uploaded
        ]
        lines += [f"delete  {app}: {key}" for key in row.deleted]
        if row.skipped:
            lines.append(f"skip    {app}: {row.skipped} unchanged file(s)")
        if again:
            lines.append(
                f"refresh {app}: {len(again)} reused file(s) uploaded again: older than half of "
                "grace_seconds, a concurrent --prune could delete them before the swap"
            )
    lines += [f"remove  {app}: off the page ({removal(report, app)})" for app in report.removed]
    for dist, paths in report.invalidations.items():
        lines += [f"invalidate {dist}: {path}" for path in paths]
    return lines


def removal(report: PublishReport, app: str) -> str:
    """Why a publish takes `app` off the page."""
    return "forced" if app in report.forced else "removed in a commit after its live version"


def write_report(state_dir: Path, report: PublishReport) -> Path:
    name = PLAN_FILE if report.dry_run else REPORT_FILE
    return write_named_report(state_dir, name, report.to_dict())


def write_named_report(state_dir: Path, name: str, report: dict[str, Any]) -> Path:
    path = state_dir / name
    write_atomic(path, json.dumps(report, indent=2) + "\n")
    return path
