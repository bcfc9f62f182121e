"""`.mfe/<env>/ci-report.json` and the GitHub Actions job summary of a `doit ci` run."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from mfe.config import Project
from mfe.files import write_atomic

CacheOutcome = Literal["hit", "miss", "unaffected"]


@dataclass
class AppReport:
    affected: bool
    why: list[str]
    cache: CacheOutcome = "unaffected"
    build_seconds: float = 0.0
    uploaded: int = 0
    """Files publish uploaded for this app."""
    key: str = ""
    """The input key (names the cache archive)."""
    dist: str = ""
    """Where dist/ came from: 'local' (already current), 'cache', 'build'."""
    tests: str = "none"
    """'passed', 'failed', 'none' (no test script), 'cached' (same inputs passed before),
    'not run' (unaffected)."""
    cache_upload_bytes: int = 0
    notes: list[str] = field(default_factory=list)
    size_bytes: int | None = None
    """gzip size of the entry bundles and their static imports (mfe.ci.budget)."""
    budget_bytes: int | None = None
    live_bytes: int | None = None
    """The same measure for the live version (last trusted publish), if known."""


@dataclass
class CiReport:
    env: str
    base: str | None
    apps: dict[str, AppReport]
    published: bool = False
    site_url: str | None = None
    seconds: float = 0.0
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def report_path(project: Project, env: str) -> Path:
    return project.state_dir(env) / "ci-report.json"


def write_report(project: Project, report: CiReport) -> Path:
    path = report_path(project, report.env)
    write_atomic(path, report.to_json())
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as out:
            out.write(markdown(report))
    return path


def _kb(size: int) -> str:
    return f"{size / 1000:.1f} kB"


def _size(app: AppReport) -> str:
    """`size | change against live | budget` cells."""
    if app.size_bytes is None:
        return "- | - | -"
    if app.live_bytes is None:
        change = "new"
    else:
        delta = app.size_bytes - app.live_bytes
        change = f"{'+' if delta >= 0 else '-'}{_kb(abs(delta))}"
    limit = "-" if app.budget_bytes is None else _kb(app.budget_bytes)
    if app.budget_bytes is not None and app.size_bytes > app.budget_bytes:
        limit += " **over**"
    return f"{_kb(app.size_bytes)} | {change} | {limit}"


def markdown(report: CiReport) -> str:
    """A short job summary: one row per app, then why each affected app was rebuilt."""
    base = f" since `{report.base}`" if report.base else " (no base: the build cache decides)"
    lines = [
        f"### `doit ci env={report.env}`{base}",
        "",
        "| app | affected | cache | build s | tests | uploaded | size (gzip) | vs live | budget |",
        "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, app in report.apps.items():
        lines.append(
            f"| {name} | {'yes' if app.affected else 'no'} | {app.cache} | "
            f"{app.build_seconds:.1f} | {app.tests} | {app.uploaded} | {_size(app)} |"
        )
    lines.append("")
    for name, app in report.apps.items():
        if app.affected and app.why:
            shown = ", ".join(f"`{reason}`" for reason in app.why[:8])
            more = f" and {len(app.why) - 8} more" if len(app.why) > 8 else ""
            lines.append(f"- **{name}**: {shown}{more}")
    if report.extra.get("page_changed"):  # published though no app may have changed
        shown = ", ".join(f"`{reason}`" for reason in report.extra["page_changed"])
        lines.append(f"- **the page**: {shown}")
    for warning in report.extra.get("warnings", []):
        lines += ["", f"**Warning:** {warning.removeprefix('warning: ')}"]
    if report.error:
        lines += ["", f"**Failed:** {report.error.splitlines()[0]}"]
    elif report.published and report.extra.get("preview"):
        lines += ["", f"Preview `{report.extra['preview']}`: {report.site_url}"]
    elif report.published:
        lines += ["", f"Published: {report.site_url or '(no URL)'} in {report.seconds:.1f}s"]
    elif report.extra.get("not_published"):  # an untrusted ref (mfe.ci.trust.destination)
        lines += [
            "",
            f"**Not published:** {report.extra['not_published'].removeprefix('not published: ')}",
        ]
    else:
        lines += ["", "Nothing to publish."]
    return "\n".join(lines) + "\n\n"
