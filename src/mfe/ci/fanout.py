"""Fan CI out over runners: `doit ci_plan` -> `doit ci shard=K/N` (one per runner) -> `doit ci publish`.

The plan keys every app, looks each key up once (HEAD requests, signatures checked) and
packs the misses into shards by recorded build time. A shard job builds, tests and
stores its apps in the signed cache (an upload that fails fails it). The publish job
restores every app from the cache and never builds: an app the cache lacks fails it,
naming the app and the shard to re-run.
"""

from __future__ import annotations

import functools
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

from mfe.build import lockslice
from mfe.build.inputs import input_key, node_version
from mfe.ci import budget, cache, records, shards, trust
from mfe.ci.affected import require_committed
from mfe.ci.connect import open_cache, start_ready
from mfe.ci.deliver import deliver
from mfe.ci.recorded import Held, holds_build, record_builds, recorded_builds
from mfe.ci.report import AppReport, CiReport
from mfe.ci.run import (
    NO_BASE_WHY,
    announce_page,
    build,
    built_commit,
    cache_why,
    check_budgets,
    ci_changes,
    measure,
    note_live_sizes,
    remember_sizes,
    reported,
    restored_tests,
    test_and_cache,
)
from mfe.config import App, Environment, Project
from mfe.envs.session import Session
from mfe.errors import MfeError
from mfe.threads import pool as threads
from mfe.threads import result_of, settled

LOOKUP_WORKERS = 16
SHELL_WHY = "not in the build cache: needed to render the shell"


def _keys(project: Project, pool: ThreadPoolExecutor) -> dict[str, str]:
    packages = lockslice.load_lockfile(project.lockfile)
    node_version()
    futures = {
        name: pool.submit(input_key, project, app, packages) for name, app in project.apps.items()
    }
    return {name: result_of(future).key for name, future in futures.items()}


def plan_ci(project: Project, env: Environment, base: str | None, limit: int) -> shards.Plan:
    """Key every app, look each key up once, pack the misses into at most `limit` shards."""
    if limit < 1:
        raise MfeError(f"doit ci_plan shards={limit}: use a number of shards >= 1")
    commit = trust.head_commit(project.root)
    # Every later job checks the commit out and refuses what differs from it: say so now.
    require_committed(project, list(project.apps), commit, "the shard and publish jobs build")
    changes = ci_changes(project, env, base)
    why = changes.apps
    who = trust.resolve(project)
    trust.require_secret(who)  # said once, before open_cache warns the cache is off
    with threads(LOOKUP_WORKERS) as pool:
        remote, who = open_cache(Session(project, env), "on", None, who)  # reads: no site
        if remote is None:
            raise MfeError(f"env '{env.name}' has no build cache bucket: the fan-out needs one")
        # The shard jobs' uploads need the bucket: made here, once, not by N shards at once.
        bucket = pool.submit(remote.ready)
        keys = _keys(project, pool)
        publish = changes.publish
        probes = {name: pool.submit(cache.probe, remote, name, keys[name]) for name in keys}
        lookups = {name: result_of(probe) for name, probe in probes.items()}
        recorded = records.read(remote, records.BUILD_TIMES)
        result_of(bucket)
    misses = [name for name in keys if publish and lookups[name].outcome != "hit"]
    seconds = shards.estimates(misses, recorded)
    apps = {
        name: shards.PlannedApp(
            affected=name in why,
            why=_planned_why(why.get(name), name in misses, keys[name], lookups[name].outcome),
            key=keys[name],
            cache="miss" if name in misses else "hit",
            estimate_seconds=round(seconds.get(name, 0.0), 3),
            notes=lookups[name].notes,
        )
        for name in keys
    }
    packed = shards.pack(seconds, limit)
    plan = shards.Plan(env.name, commit, base, who.write_scope, publish, apps, packed, who.ref)
    plan.page = changes.page
    path = shards.write_plan(project, plan)
    for shard in plan.shards:
        print(
            f"ci_plan: shard {shard.shard} (~{shard.estimate_seconds:.1f}s): {' '.join(shard.apps)}"
        )
    if changes.page:
        print(f"ci_plan: the page changed since {base}: {', '.join(changes.page)}")
    hits = len(keys) - len(misses)
    print(f"ci_plan: {len(misses)} to build in {len(plan.shards)} shard(s), {hits} in the cache")
    print(f"ci_plan: plan {path.relative_to(project.root).as_posix()}", flush=True)
    return plan


def _planned_why(why: list[str] | None, miss: bool, key: str, outcome: str) -> list[str]:
    """An affected app's reasons (without base=, what the cache lookup found); an unaffected
    one built only because the cache lacks it says so."""
    if why == [NO_BASE_WHY] and miss:
        return [cache_why(key, outcome)]
    return why or ([SHELL_WHY] if miss else [])


def _report(
    project: Project, env: Environment, plan: shards.Plan, names: list[str], mode: str
) -> CiReport:
    report = CiReport(
        env.name,
        plan.base,
        {n: AppReport(affected=plan.apps[n].affected, why=plan.apps[n].why) for n in names},
    )
    report.extra["mode"] = mode
    report.commit, report.ref = built_commit(project)
    return report


def run_shard(project: Project, env: Environment, shard_text: str) -> CiReport:
    """Build, test and cache the apps of shard K of the plan; publishes nothing."""
    started = time.monotonic()
    index, count = shards.parse_shard(shard_text)
    plan = shards.read_plan(project, env.name, trust.head_commit(project.root))
    if not plan.shards:
        raise MfeError(
            f"doit ci shard={shard_text}: the plan has no shards: nothing to build (every app "
            "is in the build cache, or nothing changed since its base); skip the shard jobs "
            f"(the plan job's `shards` output is 0) and run `doit ci env={env.name} publish`"
        )
    who = trust.resolve(project)
    if who.write_scope != plan.scope:  # its entries would go where `ci publish` never looks
        raise MfeError(
            f"doit ci shard={shard_text}: {_scope_mismatch(project, plan, who)}; run every job "
            "of one CI run for the same ref (GITHUB_REF or MFE_CI_REF), or plan again"
        )
    if count != len(plan.shards):
        raise MfeError(
            f"doit ci shard={shard_text}: the plan has {len(plan.shards)} shard(s); "
            f"use the matrix the plan job wrote (shard=K/{len(plan.shards)})"
        )
    names = plan.shards[index - 1].apps
    report = _report(project, env, plan, names, f"shard={index}/{count}")
    with reported(project, report, started):
        _check_names(project, plan, names)
        require_committed(project, names, plan.commit, "a CI job builds")  # before any build
        trust.require_secret(who)  # before anything is built
        # One worker more than cores: process start-ups and uploads leave the cores gaps.
        workers = max(2, os.cpu_count() or 2) + 1
        with (
            threads(1) as opener,
            threads(workers) as pool,
        ):
            node = pool.submit(node_version)  # a subprocess, while botocore loads
            # Builds only fill the cache: the uploads wait for its bucket, never for the site.
            opened = opener.submit(_open_shard_cache, Session(project, env), who)
            packages = lockslice.load_lockfile(project.lockfile)
            result_of(node)  # once, before the workers all ask for it
            # Longest build first, so the shard does not end waiting on one long build.
            longest_first = sorted(names, key=lambda n: -plan.apps[n].estimate_seconds)
            futures = [
                pool.submit(_shard_app, project, plan, name, report, opened, packages)
                for name in longest_first
            ]
            settled(futures)
            errors = [str(exc) for f in futures if (exc := f.exception()) is not None]
        remote = None if opened.exception() is not None else opened.result()[0]
        if remote:  # the summary's "vs live", as a full run's
            note_live_sizes(report, remote, env)
        if errors:  # a cache that failed to open fails every app alike: say it once
            raise MfeError("\n".join(dict.fromkeys(errors)))
        budget.check(
            {n: a.size_bytes for n, a in report.apps.items() if a.affected and a.size_bytes},
            project.apps,
        )
    return report


def _open_shard_cache(
    session: Session, who: trust.Trust
) -> tuple[cache.RemoteCache | None, trust.Trust]:
    """The cache for a shard's uploads, which must succeed: the entries are all a shard job
    leaves behind, and `ci publish` would only find them missing later."""
    remote, who = open_cache(session, "on", None, who)
    return (replace(remote, uploads_required=True) if remote else None), who


def _shard_app(
    project: Project,
    plan: shards.Plan,
    name: str,
    report: CiReport,
    opened: Future[tuple[cache.RemoteCache | None, trust.Trust]],
    packages: lockslice.Packages,
) -> None:
    """One app of a shard, in a worker: its key checked against the plan, built, then
    tested, cached and measured, unless an earlier attempt of this shard cached it.

    The build comes before the cache lookup, so the first builds start while botocore loads
    (~0.2 s in every job) and the lookup (a HEAD) finds the client ready. A re-run of a
    shard pays a build for each app its earlier attempt cached, never their tests.
    """
    app, result = project.apps[name], report.apps[name]
    result.key = _verified_key(project, plan, name, packages)
    build(project, app, result)
    remote, _ = opened.result()
    found = cache.probe(remote, name, result.key) if remote else None
    if found is not None:
        result.notes.extend(found.notes)
    if found is not None and found.outcome == "hit":
        result.cache = "hit" if result.affected else "unaffected"
        result.tests = restored_tests(app, True)  # built here, not tested again
        result.notes.append("already in the build cache (an earlier attempt of this shard)")
    else:
        test_and_cache(project, app, result, remote)
    measure(app, result)


def _check_names(project: Project, plan: shards.Plan, names: list[str]) -> None:
    for name in names:
        if name not in project.apps:
            raise MfeError(f"the CI plan names app {name!r}, which this checkout does not have")


def _verified_key(
    project: Project, plan: shards.Plan, name: str, packages: lockslice.Packages
) -> str:
    """The app's input key on this runner, which must be the one the plan job computed."""
    key = input_key(project, project.apps[name], packages).key
    if key != plan.apps[name].key:
        raise MfeError(
            f"{name}: input key {key[:12]} differs from the plan's "
            f"{plan.apps[name].key[:12]} (a different Node version or build variable "
            "on this runner?); every CI job needs the same toolchain"
        )
    return key


def publish_from_cache(project: Project, env: Environment) -> CiReport:
    """Restore every app from the cache (never building), check budgets, then publish
    where `trust.destination` sends this ref (live, a preview, or nowhere)."""
    started = time.monotonic()
    plan = shards.read_plan(project, env.name, trust.head_commit(project.root))
    names = list(project.apps)
    report = _report(project, env, plan, names, "publish")
    announce_page(report, plan.page, any(app.affected for app in plan.apps.values()))
    with reported(project, report, started):
        if not plan.publish:
            print(f"ci: no app and no page input changed since {plan.base}: nothing to publish")
            return report
        # Before the cache and the site are opened.
        require_committed(project, names, plan.commit, "a CI job builds")
        who = trust.resolve(project)
        if plan.scope not in who.read_scopes:  # the shards' entries are out of its reach
            raise MfeError(
                f"doit ci publish: {_scope_mismatch(project, plan, who)}, which it does not "
                "read; run every job of one CI run for the same ref (GITHUB_REF or "
                "MFE_CI_REF), or plan again"
            )
        trust.require_secret(who)  # said once, before open_cache warns the cache is off
        goes = trust.destination(who)
        with threads(LOOKUP_WORKERS) as pool:
            node = pool.submit(node_version)  # a subprocess, while boto3 loads
            session = Session(project, env)
            # Publishing needs the site; a run that publishes nothing does not.
            ready = start_ready(session, pool) if goes.where != "none" else None
            waits = functools.partial(result_of, ready) if ready else None
            remote, who = open_cache(session, "on", waits, who)
            assert remote is not None
            packages = lockslice.load_lockfile(project.lockfile)
            _check_names(project, plan, names)
            result_of(node)  # once, before the workers all ask for it
            known = recorded_builds(project)
            futures = {
                name: pool.submit(_restore, project, name, report, plan, remote, known, packages)
                for name in names
            }
            settled(futures.values())
            errors = [str(exc) for f in futures.values() if (exc := f.exception()) is not None]
            outputs = result_of(ready) if ready else None
        record_builds(project, report, who)
        if errors:
            note_live_sizes(report, remote, env)  # the summary's "vs live", as a full run's
            raise MfeError("\n".join(errors) + "\nnothing was published")
        check_budgets(project, report, remote, env)
        if deliver(session, goes, outputs, report):
            built = {n: s for n, f in futures.items() if (s := f.result()) is not None}
            records.merge(remote, records.BUILD_TIMES, built)
            remember_sizes(remote, env, report)
    return report


def _scope_mismatch(project: Project, plan: shards.Plan, who: trust.Trust) -> str:
    """'PLAN was made for REF (cache scope S/), this job runs for REF (cache scope S/)'."""
    planned = plan.ref or "another ref"
    here = who.ref or ("a detached HEAD" if who.checkout else str(project.root))
    return (
        f"{shards.plan_path(project, plan.env)} was made for {planned} (cache scope "
        f"{plan.scope}/), this job runs for {here} (cache scope {who.write_scope}/)"
    )


def _restore(
    project: Project,
    name: str,
    report: CiReport,
    plan: shards.Plan,
    remote: cache.RemoteCache,
    known: dict[str, Held],
    packages: lockslice.Packages,
) -> float | None:
    """Restore one app (its key checked against the plan first) and measure it; returns
    its recorded build time if a shard built it in this run."""
    app, result = project.apps[name], report.apps[name]
    result.key = _verified_key(project, plan, name, packages)
    seconds = _restore_planned(project, app, result, plan, remote, known)
    measure(app, result)
    return seconds


def _restore_planned(
    project: Project,
    app: App,
    result: AppReport,
    plan: shards.Plan,
    remote: cache.RemoteCache,
    known: dict[str, Held],
) -> float | None:
    """What this job did with the app is what its report says: restored (a hit; its tests
    passed before it was cached) or not (a miss, not tested), whatever the plan found."""
    name = app.name
    planned = plan.apps[name]
    result.cache = "miss" if result.affected else "unaffected"
    result.tests = "not run"
    if holds_build(app, planned.key, known):
        _restored(app, result, "local")
        return None
    lookup = cache.restore(remote, project, app, planned.key)
    result.notes.extend(lookup.notes)
    if lookup.outcome != "hit":
        result.failed = "restore"
    if lookup.outcome != "hit" and lookup.corrupt:  # the plan's HEAD took it for a hit
        raise MfeError(
            f"{name}: {lookup.corrupt}; run `doit ci_plan env={plan.env}` again "
            "(ci publish never builds)"
        )
    if lookup.outcome != "hit":
        where = " or ".join(remote.url(scope, name, planned.key) for scope in remote.read_scopes)
        raise MfeError(
            f"{name} is not in the build cache ({where}): {_rerun(plan, name)} "
            "(ci publish never builds)"
        )
    _restored(app, result, "cache")
    result.size_bytes = lookup.size_bytes  # None (an older entry): `measure` measures it
    if planned.cache == "miss":
        by = _built_by(plan, name)
        result.notes.append(f"built by {by}")
        result.why = [_shard_built(by, planned.key, why) for why in result.why]
        return lookup.build_seconds
    return None


def _built_by(plan: shards.Plan, name: str) -> str:
    """`shard K/N of this run`: the plan's shard that built `name`."""
    found = [shard.shard for shard in plan.shards if name in shard.apps]
    return f"shard {found[0]} of this run" if found else "a shard job of this run"


def _shard_built(by: str, key: str, why: str) -> str:
    """The plan's reason for an app it found missing from the cache, as this job (which
    restores it: a hit) tells it: the shard built it since."""
    if why not in (cache_why(key, "miss"), cache_why(key, "rejected")):
        return why  # a changed file (base=): true of this job too
    return f"built by {by}: the plan found no usable build cache entry for its input key {key[:12]}"


def _restored(app: App, result: AppReport, dist: str) -> None:
    result.dist = dist
    result.cache = "hit" if result.affected else "unaffected"
    result.tests = restored_tests(app, result.affected)


def _rerun(plan: shards.Plan, name: str) -> str:
    """What puts `name` back in the cache: the shard the plan gave it to, or a new plan."""
    for shard in plan.shards:
        if name in shard.apps:
            return (
                f"shard {shard.shard}, which builds it, failed or has not run; re-run it "
                f"(`doit ci env={plan.env} shard={shard.shard}`)"
            )
    return "the plan found it there, but it is gone or no longer verifies; run ci_plan again"
