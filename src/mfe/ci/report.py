"""`.mfe/<env>/ci-report.json` and the GitHub Actions job summary of a `doit ci` run."""

from __future__ import annotations

import json
import os
import re
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
    failed: str | None = None
    """The step that failed for this app in this job: 'build', 'tests', 'restore' (not in
    the build cache); None when none did."""
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
    commit: str | None = None
    """The commit this job built (HEAD)."""
    ref: str | None = None
    """The git ref it built (`GITHUB_REF`, else the checked-out branch); None if detached."""

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
    if os.environ.get("GITHUB_ACTIONS") == "true" and report.error:
        print("\n".join(github_annotations(report)), flush=True)
    return path


def kept_live(why: str) -> str:
    """The CI report's note for an app publish kept off the live site."""
    return f"kept live: {why}"


KEPT_LIVE_NOTES = ("kept live: ", "superseded: ")
"""Notes of apps this run did not put live although it published (summary: not misleading)."""

NOT_SERVED = "uploaded but not published: the swap kept the live version; no release serves them"
"""The note of a kept app whose files went up before the swap (the run lost a race)."""

ESBUILD_ERROR = re.compile(r"^\s*(?:✘|X) \[ERROR\] (?P<message>.+)$")
LOCATION = re.compile(
    r"^\s*(?P<file>[^\s:][^:]*):(?P<line>\d+):(?P<col>\d+):\s*(?:(?:error|ERROR): (?P<message>.+))?$"
)


def build_errors(text: str) -> list[tuple[str, int, int, str]]:
    """(file, line, col, message) of each error esbuild printed in `text`: its
    `✘ [ERROR] message` line, then the `file:line:col:` of it (named from the repo root);
    also the one-line `file:line:col: error: message` form."""
    found: list[tuple[str, int, int, str]] = []
    message = None
    for line in text.splitlines():
        if (head := ESBUILD_ERROR.match(line)) is not None:
            message = head["message"].strip()
        elif (where := LOCATION.match(line)) is not None and (message or where["message"]):
            said = where["message"] or message or ""
            found.append((where["file"], int(where["line"]), int(where["col"]), said.strip()))
            message = None
    return found


def _escape(text: str, property_value: bool = False) -> str:
    """GitHub's workflow-command escaping (its toolkit's `escapeData`/`escapeProperty`)."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_value else text


def github_annotations(report: CiReport) -> list[str]:
    """GitHub Actions `::error` lines: one per build error at its file, line and column,
    then the failure itself (all its lines), so the run's page shows them without the log."""
    error = report.error or ""
    lines = [  # esbuild counts columns from 0, GitHub from 1
        f"::error file={_escape(file, True)},line={line},col={col + 1}::{_escape(message)}"
        for file, line, col, message in build_errors(error)
    ]
    title = _escape(f"{_command(report)} failed", True)
    return [*lines, f"::error title={title}::{_escape(error.rstrip())}"]


def _kb(size: int) -> str:
    return f"{size / 1000:.1f} kB"


def _change(delta: int) -> str:
    """The "vs live" cell: kB, or bytes for a change under 0.05 kB (not `+0.0 kB`)."""
    if delta == 0:
        return "same"
    sign = "+" if delta > 0 else "-"
    return f"{sign}{abs(delta)} B" if abs(delta) < 50 else f"{sign}{_kb(abs(delta))}"


def _size(app: AppReport) -> str:
    """`size | change against live | budget` cells."""
    if app.size_bytes is None:
        return "- | - | -"
    change = "new" if app.live_bytes is None else _change(app.size_bytes - app.live_bytes)
    limit = "-" if app.budget_bytes is None else _kb(app.budget_bytes)
    if app.budget_bytes is not None and app.size_bytes > app.budget_bytes:
        limit += " **over**"
    return f"{_kb(app.size_bytes)} | {change} | {limit}"


def _command(report: CiReport) -> str:
    """The job's command: `doit ci env=prod`, `... shard=2/4` or `... publish`."""
    mode = report.extra.get("mode")
    return f"doit ci env={report.env}" + (f" {mode}" if mode else "")


def _fenced(text: str) -> list[str]:
    """`text` as a Markdown code block, whatever backticks it holds."""
    fence = "```"
    while fence in text:
        fence += "`"
    return [f"{fence}text", text.rstrip(), fence]


def _tests_cell(app: AppReport) -> str:
    if app.failed == "build":
        return "**build failed**"
    if app.failed == "restore":
        return "**not restored**"
    return "**failed**" if app.tests == "failed" else app.tests


def _uploaded_cell(app: AppReport) -> str:
    """`2 (not published)` for files a kept app sent before the swap that kept live's."""
    return f"{app.uploaded} (not published)" if NOT_SERVED in app.notes else str(app.uploaded)


def _unserved(app: AppReport) -> str:
    """What a kept app's uploads amount to, after its kept-live line."""
    if NOT_SERVED not in app.notes:
        return ""
    return f" (its {app.uploaded} uploaded file(s) are served by no release)"


TABLE_HEAD = [
    "| app | affected | cache | build s | tests | uploaded | size (gzip) | vs live | budget |",
    "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: |",
]


def markdown(report: CiReport) -> str:
    """A short job summary: one row per app, then why each affected app was rebuilt."""
    base = f" since `{report.base}`" if report.base else " (no base: the build cache decides)"
    lines = [f"### `{_command(report)}`{base}", ""]
    if report.apps:  # none: refused before it reached any app (`mfe.ci.run.reached`)
        lines += TABLE_HEAD
    for name, app in report.apps.items():
        lines.append(
            f"| {name} | {'yes' if app.affected else 'no'} | {app.cache} | "
            f"{app.build_seconds:.1f} | {_tests_cell(app)} | {_uploaded_cell(app)} | "
            f"{_size(app)} |"
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
    mode = str(report.extra.get("mode", ""))
    if report.error:
        lines += ["", "**Failed:**", "", *_fenced(report.error)]
    elif report.published and report.extra.get("preview"):
        lines += ["", f"Preview `{report.extra['preview']}`: {report.site_url}"]
    elif report.published and report.extra.get("unchanged"):  # no new release
        lines += ["", f"Already live: {report.site_url} (release {report.extra['release']})"]
    elif report.published:
        lines += ["", f"Published: {report.site_url or '(no URL)'} in {report.seconds:.1f}s"]
    elif report.extra.get("not_published"):  # an untrusted ref (mfe.ci.trust.destination)
        lines += [
            "",
            f"**Not published:** {report.extra['not_published'].removeprefix('not published: ')}",
        ]
    elif mode.startswith("shard="):
        lines += ["", f"shard {mode.removeprefix('shard=')}: built and cached"]
    else:
        lines += ["", "Nothing to publish."]
    if report.published:
        kept = [
            f"- **{name}** not published, {note}" + _unserved(app)
            for name, app in report.apps.items()
            for note in app.notes
            if note.startswith(KEPT_LIVE_NOTES)
        ]
        lines += ["", *kept] if kept else []
    return "\n".join(lines) + "\n\n"
