"""Run the benchmark suite: `python bench/run.py [-k PATTERN] [-c CASE] [--pairs N] [--json FILE]`.

Every `bench/bench_*.py` module defines `cases(ctx) -> Iterable[Case]`. A case and its
anchors run interleaved, A B A B (`setup` untimed before every run), for at least
MIN_PAIRS pairs, so a slow spell on a shared machine hits both sides of a pair; each
pair's ratio (case / anchor) is reported with the median of those ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
# Benchmarks reuse the test suite's helpers (monorepo copy, doit runner, serve process).
sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
Metrics = dict[str, Any] | None


MIN_PAIRS = 5


@dataclass
class Case:
    """One measured command. `run` may return extra metrics (request counts, uploads...)."""

    name: str
    run: Callable[[], Metrics]
    anchors: dict[str, Callable[[], Metrics]] = field(default_factory=dict)
    setup: Callable[[], None] | None = None
    """Untimed, before every timed run (the case's and each anchor's)."""
    prepare: Callable[[], None] | None = None
    """Untimed, once before the first pair (e.g. a publish so the next one is a no-op)."""
    repeat: int | None = None
    """Pairs to run (at least MIN_PAIRS)."""
    target: str = ""
    """The goal in words, e.g. 'median < 0.5 s'."""
    check: Callable[[dict[str, Any]], bool] | None = None
    """Given this case's result row, True when the target is met."""


@dataclass
class Context:
    """What a bench module gets: a scratch folder and a place to register cleanups."""

    tmp: Path
    stack: contextlib.ExitStack
    case: str | None = None
    """`--case`: only the cases whose name contains this."""

    def wants(self, *names: str) -> bool:
        """Whether any of these cases runs: a module skips building what only others need."""
        return self.case is None or any(self.case in name for name in names)


def timed(func: Callable[[], Metrics], setup: Callable[[], None] | None) -> tuple[float, Metrics]:
    if setup:
        setup()
    started = time.perf_counter()
    metrics = func()
    return time.perf_counter() - started, metrics


def summary(times: list[float], metrics: Metrics) -> dict[str, Any]:
    return {
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "times": [round(t, 4) for t in times],
        "runs": len(times),
        "metrics": metrics or {},
    }


def run_case(case: Case, pairs: int) -> dict[str, Any]:
    """A B A B...: the case, then each anchor, `pairs` times; ratios per pair and their median."""
    count = max(MIN_PAIRS, pairs, case.repeat or 0)
    if case.prepare:
        case.prepare()
    times: list[float] = []
    anchor_times: dict[str, list[float]] = {name: [] for name in case.anchors}
    metrics: Metrics = None
    anchor_metrics: dict[str, Metrics] = {}
    for _ in range(count):
        elapsed, metrics = timed(case.run, case.setup)
        times.append(elapsed)
        for name, anchor in case.anchors.items():
            elapsed, anchor_metrics[name] = timed(anchor, case.setup)
            anchor_times[name].append(elapsed)
    row: dict[str, Any] = {"name": case.name, "target": case.target, **summary(times, metrics)}
    row["anchors"] = {}
    for name, measured in anchor_times.items():
        result = summary(measured, anchor_metrics[name])
        result["ratios"] = [round(a / b, 3) for a, b in zip(times, measured, strict=True)]
        result["ratio"] = statistics.median(result["ratios"])
        row["anchors"][name] = result
    if case.check:
        row["met"] = bool(case.check(row))
    return row


def load_modules(pattern: str | None) -> list[Any]:
    modules = []
    for path in sorted(BENCH_DIR.glob("bench_*.py")):
        if pattern and pattern not in path.stem:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        modules.append(module)
    return modules


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="mfe benchmarks (seconds)")
    for column in (
        "case",
        "median",
        "min",
        "max",
        "anchor: median, ratio (each pair)",
        "metrics",
        "target",
        "met",
    ):
        table.add_column(column)
    for row in rows:
        anchors = "\n".join(
            f"{name}: {a['median']:.3f}, median ratio {a['ratio']:.2f}x"
            f" (pairs: {' '.join(f'{r:.2f}' for r in a['ratios'])})"
            for name, a in row["anchors"].items()
        )
        metrics = ", ".join(f"{k}={v}" for k, v in row["metrics"].items())
        met = {True: "yes", False: "NO"}.get(row.get("met"), "")  # type: ignore[call-overload]
        table.add_row(
            row["name"],
            f"{row['median']:.3f}",
            f"{row['min']:.3f}",
            f"{row['max']:.3f}",
            anchors,
            metrics,
            row["target"],
            met,
        )
    Console(width=200).print(table)


def as_a_user() -> None:
    """Commands run with bytecode caching on, as on a user's machine: a sandbox's
    PYTHONDONTWRITEBYTECODE=1 would compile the editable `mfe` package (and any module
    without a .pyc) from source in every measured process, ~30 ms that no user pays."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-k", dest="pattern", help="only bench_*.py modules whose name contains this"
    )
    parser.add_argument("-c", "--case", help="only the cases whose name contains this")
    parser.add_argument(
        "--pairs",
        "--repeat",
        type=int,
        default=MIN_PAIRS,
        help=f"case/anchor pairs per case (at least {MIN_PAIRS})",
    )
    parser.add_argument("--json", type=Path, default=BENCH_DIR / "results" / "latest.json")
    args = parser.parse_args(argv)
    as_a_user()

    rows: list[dict[str, Any]] = []
    for module in load_modules(args.pattern):
        with (
            contextlib.ExitStack() as stack,
            tempfile.TemporaryDirectory(prefix="mfe-bench-") as tmp,
        ):
            ctx = Context(Path(tmp), stack, args.case)
            for case in module.cases(ctx):
                if not ctx.wants(case.name):
                    continue
                print(f"... {case.name}", flush=True)
                rows.append(run_case(case, args.pairs))
    print_table(rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {"machine": {"python": platform.python_version(), "cpus": _cpus()}, "cases": rows}
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 1 if any(row.get("met") is False for row in rows) else 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    raise SystemExit(main())
