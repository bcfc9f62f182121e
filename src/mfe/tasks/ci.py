"""`doit ci [env=NAME] [base=GITREF] [cache=on|off|force]`: the CI entry point, and its
fan-out: `doit ci_plan [base=GITREF] shards=N`, `doit ci shard=K/N`, `doit ci publish`."""

from __future__ import annotations

from typing import Any

from doit import get_var
from doit.exceptions import BaseFail

from mfe.config import Environment, Project
from mfe.errors import MfeError
from mfe.tasks.actions import guarded
from mfe.tasks.pipes import listing
from mfe.tasks.variables import declare


def run(
    project: Project, env: Environment, base: str, cache_mode: str, shard: str, words: list[str]
) -> None:
    """Imported lazily: the pipeline pulls in botocore, which a no-op `doit` must not pay for."""
    if words not in ([], ["publish"]):
        raise MfeError(
            f"doit ci: unexpected {' '.join(words)!r}; use `doit ci`, `doit ci shard=K/N` "
            "or `doit ci publish`"
        )
    if words and shard:
        raise MfeError("doit ci publish and shard=K/N are separate jobs: give one of them")
    if shard:
        from mfe.ci.fanout import run_shard

        run_shard(project, env, shard)
        return
    if words:
        from mfe.ci.fanout import publish_from_cache

        report = publish_from_cache(project, env)
    else:
        from mfe.ci.run import parse_options, run_ci

        report = run_ci(project, env, parse_options(base, cache_mode))
    if report.published and report.site_url:  # the last line, as `doit publish` ends
        print(report.site_url, flush=True)


def ci_action(
    project: Project, env: Environment, base: str, cache_mode: str, shard: str, *, words: list[str]
) -> BaseFail | None:
    """doit hands the words after `ci` (its pos_arg) over as `words`: `doit ci publish`."""
    return guarded(run, project, env, base, cache_mode, shard, list(words or []))


def plan(project: Project, env: Environment, base: str, count: str) -> None:
    from mfe.ci.fanout import plan_ci
    from mfe.ci.run import parse_options

    try:
        limit = int(count)
    except ValueError:
        raise MfeError(f"doit ci_plan shards={count!r}: give a whole number of shards") from None
    plan_ci(project, env, parse_options(base, "on").base, limit)


def tasks(project: Project, env: Environment) -> dict[str, Any]:
    def task_ci() -> dict[str, Any]:
        """CI: build affected apps (remote build cache first), test, publish; or one fan-out
        job: `doit ci shard=K/N`, `doit ci publish`."""
        args = [project, env, get_var("base", ""), get_var("cache", "on"), get_var("shard", "")]
        return {
            **declare(
                "CI: build affected apps (build cache first), test, publish; "
                "fan-out jobs: `ci shard=K/N`, `ci publish`.",
                "env",
                "base",
                "cache",
                "shard",
            ),
            "actions": [(ci_action, args)],
            "pos_arg": "words",
            "uptodate": [False],
            "verbosity": 2,
        }

    def task_ci_plan() -> dict[str, Any]:
        """CI fan-out: plan the build-cache misses into at most shards=N shard jobs."""
        return {
            **declare(task_ci_plan.__doc__ or "", "env", "base", "shards"),
            "actions": [
                (listing, [plan, project, env, get_var("base", ""), get_var("shards", "1")])
            ],
            "uptodate": [False],
            "verbosity": 2,
        }

    return {"task_ci": task_ci, "task_ci_plan": task_ci_plan}
