"""The CI plan: which apps' builds the cache lacks, packed into shards by recorded build time.

`doit ci_plan` writes it to `.mfe/<env>/ci-plan.json` (and a GitHub Actions matrix to
`$GITHUB_OUTPUT`); the shard jobs and the publish job read the same file (a workflow
artifact), so all jobs agree on the commit, the keys and who builds what.
"""

from __future__ import annotations

import json
import os
import re
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mfe.config import Project
from mfe.errors import MfeError
from mfe.files import write_atomic

FORMAT = "mfe-ci-plan/1"
DEFAULT_SECONDS = 1.0
"""Estimate for an app never built before when no app has a recorded time either."""


@dataclass
class PlannedApp:
    affected: bool
    why: list[str]
    key: str
    cache: str
    """'hit' (a verified entry exists) or 'miss' (a shard builds it)."""
    estimate_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass
class Shard:
    shard: str
    """`K/N`."""
    apps: list[str]
    estimate_seconds: float


@dataclass
class Plan:
    env: str
    commit: str
    base: str | None
    scope: str
    publish: bool
    """False when a base is given and neither an app nor the page changed since it."""
    apps: dict[str, PlannedApp]
    shards: list[Shard]
    ref: str = ""
    """The git ref it was planned for ('' if detached); its jobs must build the same."""
    format: str = FORMAT
    page: list[str] = field(default_factory=list)
    """Page-level changes since the base (mfe.ci.affected.page_changes): publish though no
    app changed."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    def matrix(self) -> dict[str, list[str]]:
        return {"shard": [s.shard for s in self.shards]}


def pack(seconds: dict[str, float], limit: int) -> list[Shard]:
    """Longest build first onto the least loaded shard (LPT): at most `limit` shards,
    none empty; apps and shards in a stable order so every job derives the same plan."""
    count = min(limit, len(seconds))
    bins: list[tuple[float, list[str]]] = [(0.0, []) for _ in range(count)]
    for name in sorted(seconds, key=lambda n: (-seconds[n], n)):
        index = min(range(count), key=lambda i: (bins[i][0], i))
        total, names = bins[index]
        bins[index] = (total + seconds[name], [*names, name])
    return [
        Shard(f"{k}/{count}", sorted(names), round(total, 3))
        for k, (total, names) in enumerate(bins, start=1)
    ]


def estimates(misses: list[str], recorded: dict[str, object]) -> dict[str, float]:
    """Recorded build seconds; apps never recorded get the median of the others."""
    known = {
        name: float(value)
        for name, value in recorded.items()
        if isinstance(value, int | float) and value >= 0
    }
    fallback = statistics.median(known.values()) if known else DEFAULT_SECONDS
    return {name: known.get(name, fallback) for name in misses}


def plan_path(project: Project, env: str) -> Path:
    return project.state_dir(env) / "ci-plan.json"


def write_plan(project: Project, plan: Plan) -> Path:
    path = plan_path(project, plan.env)
    write_atomic(path, plan.to_json())
    output = os.environ.get("GITHUB_OUTPUT")
    if output:
        with open(output, "a", encoding="utf-8") as out:
            out.write(f"matrix={json.dumps(plan.matrix(), separators=(',', ':'))}\n")
            out.write(f"shards={len(plan.shards)}\n")
            out.write(f"publish={'true' if plan.publish else 'false'}\n")
    return path


def read_plan(project: Project, env: str, commit: str) -> Plan:
    """The plan of this environment and commit, or an error saying how to get it."""
    path = plan_path(project, env)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"a JSON {type(data).__name__}, not an object")
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT!r}")
        plan = Plan(
            env=data["env"],
            commit=data["commit"],
            base=data["base"],
            scope=data["scope"],
            publish=bool(data["publish"]),
            apps={name: PlannedApp(**entry) for name, entry in data["apps"].items()},
            shards=[Shard(**shard) for shard in data["shards"]],
            ref=str(data.get("ref") or ""),
            page=list(data.get("page", [])),  # plans written before this field: none
        )
    except FileNotFoundError:
        raise MfeError(
            f"{path}: no CI plan; run `doit ci_plan env={env} shards=N` first (in a workflow: "
            "download the plan job's artifact into .mfe/<env>/)"
        ) from None
    except KeyError as exc:
        raise MfeError(
            f"{path}: the CI plan has no {exc.args[0]!r} field (written by another version of "
            f"mfe, or edited?); run `doit ci_plan env={env} shards=N` again"
        ) from None
    except (ValueError, TypeError, AttributeError) as exc:  # a field of another JSON type
        raise MfeError(
            f"{path}: unreadable CI plan ({exc}); run `doit ci_plan env={env} shards=N` again"
        ) from None
    if plan.env != env:
        raise MfeError(f"{path}: the plan is for env={plan.env}, not env={env}")
    if plan.commit != commit:
        raise MfeError(
            f"{path}: the plan is for commit {plan.commit[:12]}, this checkout is at "
            f"{commit[:12]}; every CI job must check out the planned commit"
        )
    return plan


def parse_shard(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise MfeError(f"doit ci shard={text!r}: use shard=K/N with 1 <= K <= N (e.g. shard=2/4)")
    return int(match.group(1)), int(match.group(2))
