"""CI fan-out (issue 14): 40 apps of uneven size, cold build cache, each job timed on its own.

Runners work in parallel; this machine has 2 cores, so every job runs alone and is timed
alone. Decomposition:
- fixed per-runner set-up: `git clone`, `npm ci`, and doit's start-up (`doit list`);
- build-and-test: each `doit ci shard=K/4` (cold cache: it builds, tests and caches its
  apps) versus one runner doing the same for all 40 (`doit ci shard=1/1`);
- fan-in: clone + `doit ci publish` (restores all 40, publishes; no npm ci: it never
  builds) versus one runner's whole job (clone + `npm ci` + `doit ci cache=off`).
Shards are packed by the build times the previous run recorded (a priming run, untimed).
Targets: longest shard <= 30% of the single runner's build-and-test, the sum of the shards
<= 115% of it, fan-in < 20% of the single runner's whole job.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench_ci import AWS_ENV, finish_synthetic, git, start_moto
from common import copy_sources, doit
from run import Case, Context

from fixtures.aws import local_client

APPS = 40
SHARDS = 4
CACHE_BUCKET = "fanbench-local-build-cache"


def synthetic(target: Path, port: int) -> Path:
    """A Lit parent and 39 Lit fragments (copies of `payments`) with 0-160 extra modules."""
    copy_sources(target)
    apps = target / "apps"
    template = apps / "payments"
    for old in list(apps.iterdir()):
        if old.name != "payments":
            shutil.rmtree(old)
    lines = ['[project]\nname = "fanbench"\n[build]\ninputs = ["tools/build-app.mjs"]\n']
    for index in range(APPS):
        name = f"app-{index:02d}"
        shutil.copytree(template, apps / name)
        package = json.loads((apps / name / "package.json").read_text())
        package["name"] = name
        (apps / name / "package.json").write_text(json.dumps(package, indent=2) + "\n")
        main = apps / name / "src" / "main.js"
        text = main.read_text().replace("mfe-payments", f"mfe-{name}")
        extra = (index * 37) % 161  # uneven: 0..160 generated modules
        for k in range(extra):
            body = "".join(
                f"export const v{k}_{i} = '{name}-{k}-{i}'.repeat(3);\n" for i in range(40)
            )
            (apps / name / "src" / f"gen{k}.js").write_text(body)
        imports = "".join(f"import * as g{k} from './gen{k}.js';\n" for k in range(extra))
        uses = "".join(f"globalThis.__g{k} = g{k};\n" for k in range(extra))
        main.write_text(imports + text + uses)
        role = 'role = "parent"\n' if index == 0 else ""
        lines.append(f'[apps.{name}]\n{role}element = "mfe-{name}"\n')
    return finish_synthetic(target, template, lines, port)


def report_seconds(root: Path) -> float:
    report = json.loads((root / ".mfe" / "local" / "ci-report.json").read_text())
    return float(report["seconds"])


class Runners:
    """Fresh clones standing for CI runners, and the cold cache between measured runs."""

    def __init__(self, origin: Path, scratch: Path, endpoint: str) -> None:
        self.origin, self.scratch, self.endpoint = origin, scratch, endpoint
        self.count = 0
        self.modules = scratch / "node_modules"
        self.plans: dict[int, Path] = {}
        self.shard_work: list[list[float]] = []
        self.single_work: list[float] = []

    def prune(self) -> None:
        """Keep the disk small: only the last few runners' clones stay. Untimed (a `setup`):
        deleting an earlier runner's clone is no part of the job being measured."""
        for old in self.scratch.glob("runner-*"):
            if int(old.name.removeprefix("runner-")) <= self.count - 8:
                shutil.rmtree(old, ignore_errors=True)

    def clone(self, modules: bool = True) -> Path:
        self.count += 1
        path = self.scratch / f"runner-{self.count}"
        git(self.scratch, "clone", "-q", str(self.origin), str(path))
        if modules:
            subprocess.run(["cp", "-a", str(self.modules), str(path)], check=True)
        return path

    def wipe_entries(self) -> None:
        """A cold cache; the recorded build times (meta/) stay, as they would."""
        s3 = local_client(self.endpoint)
        listed = s3.list_objects_v2(Bucket=CACHE_BUCKET, Prefix="build-cache/trusted/")
        for item in listed.get("Contents", []):
            s3.delete_object(Bucket=CACHE_BUCKET, Key=item["Key"])

    def plan(self, root: Path, shards: int) -> Path:
        doit(root, "ci_plan", f"shards={shards}", env=AWS_ENV)
        kept = self.scratch / f"plan-{shards}.json"
        shutil.copy(root / ".mfe" / "local" / "ci-plan.json", kept)
        return kept

    def with_plan(self, shards: int) -> Path:
        root = self.clone()
        (root / ".mfe" / "local").mkdir(parents=True, exist_ok=True)
        shutil.copy(self.plans[shards], root / ".mfe" / "local" / "ci-plan.json")
        return root

    def cold_setup(self) -> None:
        self.prune()
        self.wipe_entries()
        planner = self.clone()
        self.plans = {n: self.plan(planner, n) for n in (SHARDS, 1)}
        self.roots = [self.with_plan(SHARDS) for _ in range(SHARDS)]
        self.single = self.with_plan(1)

    def shards(self) -> dict[str, Any]:
        """Each shard job, one after the other, each timed alone: its work is the time the
        report gives (from the cache set-up to the last upload); the rest of the command's
        time is start-up (Python, imports, doit), which the set-up case counts."""
        work, whole = [], []
        for k, root in enumerate(self.roots, start=1):
            started = time.perf_counter()
            doit(root, "ci", f"shard={k}/{SHARDS}", env=AWS_ENV)
            whole.append(round(time.perf_counter() - started, 3))
            work.append(report_seconds(root))
        self.shard_work.append(work)
        plan = json.loads(self.plans[SHARDS].read_text())
        return {
            "work": work,
            "command": whole,
            "apps_per_shard": [len(s["apps"]) for s in plan["shards"]],
            "estimates": [s["estimate_seconds"] for s in plan["shards"]],
        }

    def one_runner(self) -> dict[str, Any]:
        doit(self.single, "ci", "shard=1/1", env=AWS_ENV)
        self.single_work.append(report_seconds(self.single))
        return {"work": self.single_work[-1]}


def cases(ctx: Context) -> Iterator[Case]:
    port = start_moto(ctx)
    endpoint = f"http://127.0.0.1:{port}"
    origin = synthetic(ctx.tmp / "origin", port)
    scratch = ctx.tmp / "runners"
    scratch.mkdir()
    runners = Runners(origin, scratch, endpoint)
    primer = runners.clone(modules=False)
    doit(primer, "install")
    shutil.copytree(primer / "node_modules", runners.modules, symlinks=True)
    doit(primer, "ci", env=AWS_ENV)  # records every app's build time, fills the site

    def fixed_setup() -> dict[str, Any]:
        started = time.perf_counter()
        root = runners.clone(modules=False)
        cloned = time.perf_counter()
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=root, check=True
        )
        installed = time.perf_counter()
        doit(root, "list")
        listed = time.perf_counter()
        return {
            "clone": round(cloned - started, 3),
            "npm_ci": round(installed - cloned, 3),
            "doit_start_up": round(listed - installed, 3),
        }

    yield Case(
        name="fan-out: fixed per-runner set-up (clone, npm ci, doit start-up)",
        run=fixed_setup,
        setup=runners.prune,
        target="reported (each runner pays it once)",
    )

    yield Case(
        name=f"fan-out: {SHARDS} shard jobs, cold cache (sum; each timed alone)",
        run=runners.shards,
        anchors={"one runner: doit ci shard=1/1 (all 40)": runners.one_runner},
        setup=runners.cold_setup,
        target="longest shard <= 30% and sum <= 115% of one runner's build-and-test",
        check=lambda row: _shards_met(runners),
    )

    def fan_in() -> dict[str, Any]:
        root = runners.clone(modules=False)
        (root / ".mfe" / "local").mkdir(parents=True)
        shutil.copy(runners.plans[SHARDS], root / ".mfe" / "local" / "ci-plan.json")
        doit(root, "ci", "publish", env=AWS_ENV)
        report = json.loads((root / ".mfe" / "local" / "ci-report.json").read_text())
        return {"restored": sum(a["dist"] == "cache" for a in report["apps"].values())}

    def single_whole_job() -> dict[str, Any]:
        root = runners.clone(modules=False)
        doit(root, "ci", "cache=off", env=AWS_ENV)  # npm ci runs inside: a fresh runner
        return {}

    def warm() -> None:
        runners.cold_setup()
        runners.one_runner()  # every app in the cache for the fan-in

    yield Case(
        name="fan-in: clone + doit ci publish (40 apps restored, never built)",
        run=fan_in,
        anchors={"one runner's whole job: clone + doit ci cache=off (npm ci)": single_whole_job},
        setup=runners.prune,
        prepare=warm,
        target="fan-in < 20% of one runner's whole job",
        check=lambda row: next(iter(row["anchors"].values()))["ratio"] < 0.20,
    )


def _shards_met(runners: Runners) -> bool:
    """Per pair: longest shard's work / one runner's, and the sum's; medians over pairs."""
    longest = [max(w) / s for w, s in zip(runners.shard_work, runners.single_work, strict=False)]
    total = [sum(w) / s for w, s in zip(runners.shard_work, runners.single_work, strict=False)]
    print(f"fan-out: longest shard / one runner {longest}, sum / one runner {total}")
    return statistics.median(longest) <= 0.30 and statistics.median(total) <= 1.15
