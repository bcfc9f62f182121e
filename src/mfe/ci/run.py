"""`doit ci`: affected apps -> restore from the build cache or build -> test -> publish -> report.

Unaffected apps are neither built nor tested; their `dist/` is still needed to render the
shell, so it is restored from the cache (its unchanged files upload nothing). The pieces
here (one app's restore-or-build, budgets), the cache's opening (mfe.ci.connect), the
recorded builds (mfe.ci.recorded) and publishing (mfe.ci.deliver) are shared with the
fan-out modes in mfe.ci.fanout.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mfe.build import lockslice
from mfe.build.bundle import build_app
from mfe.build.inputs import input_key, node_version
from mfe.build.manifest import MANIFEST_NAME
from mfe.ci import affected, budget, cache, records, steps, trust
from mfe.ci.connect import CacheMode, open_cache, start_ready
from mfe.ci.deliver import deliver
from mfe.ci.recorded import Held, holds_build, record_builds, recorded_builds
from mfe.ci.report import AppReport, CiReport, write_report
from mfe.config import App, Environment, Project
from mfe.envs.session import Session
from mfe.errors import MfeError
from mfe.output import say
from mfe.threads import pool as threads
from mfe.threads import result_of, settled

CACHE_MODES = ("on", "off", "force")
NO_BASE_WHY = "no base= given: every app is a candidate, the build cache decides"


@dataclass(frozen=True)
class CiOptions:
    base: str | None = None
    cache: CacheMode = "on"
    publish: bool = True
    workers: int = 0
    """Apps processed in parallel; 0 = the CPU count (at least 2)."""


def parse_options(base: str | None, cache_mode: str | None) -> CiOptions:
    """From doit vars: an all-zero SHA (a new branch's `before`) means no base."""
    base = (base or "").strip() or None
    if base and re.fullmatch(r"0+", base):
        base = None
    mode = (cache_mode or "on").strip().lower()
    if mode not in CACHE_MODES:
        raise MfeError(f"doit ci cache={cache_mode!r}: use one of {', '.join(CACHE_MODES)}")
    return CiOptions(base=base, cache=mode)  # type: ignore[arg-type]


def ci_changes(project: Project, env: Environment, base: str | None) -> affected.Changes:
    """What `doit ci` and `doit ci_plan` build and whether they publish: with a base, the
    affected apps and the page-level changes since it; without, every app (the cache decides)."""
    if base:
        return affected.changes_since(project, env.name, base)
    return affected.Changes({name: [NO_BASE_WHY] for name in project.apps}, [])


def announce_page(report: CiReport, page: list[str], apps_changed: bool) -> None:
    """Report the page-level changes; say them when they alone make the run publish."""
    if not page:
        return
    report.extra["page_changed"] = page
    if not apps_changed:
        print(
            f"ci: no app changed since {report.base}, the page did ({', '.join(page)}): "
            "publishing it",
            flush=True,
        )


def cache_why(key: str, outcome: str) -> str:
    """Why a candidate is built when no base= says why: what the build cache lookup found."""
    found = "a rejected entry" if outcome == "rejected" else "no entry"
    return f"the build cache has {found} for its input key {key[:12]}"


def run_ci(project: Project, env: Environment, options: CiOptions) -> CiReport:
    """The whole pipeline; writes the report (also on failure) and raises MfeError on failure."""
    from mfe.build.shared import version_warnings

    started = time.monotonic()
    warnings = version_warnings(project)
    for line in warnings:
        print(f"ci: {line}", flush=True)
    changes = ci_changes(project, env, options.base)
    why = changes.apps
    report = CiReport(
        env.name,
        options.base,
        {name: AppReport(affected=name in why, why=why.get(name, [])) for name in project.apps},
    )
    if warnings:
        report.extra["warnings"] = warnings  # shared packages at different major versions
    announce_page(report, changes.page, bool(changes.apps))
    report.commit, report.ref = built_commit(project)
    with reported(project, report, started):
        if not changes.publish:
            print(
                f"ci: no app and no page input changed since {options.base}: "
                "nothing to build or publish"
            )
        else:
            _run(project, env, options, report)
    return report


def built_commit(project: Project) -> tuple[str | None, str | None]:
    """(commit, ref) this job builds, for the report: HEAD and the ref the trust rules read."""
    from mfe.ci.trust import current_ref

    head = affected.git(project.root, "rev-parse", "HEAD", check=False)
    commit = head.stdout.strip() if head.returncode == 0 else None
    return commit, current_ref(project, os.environ) or None


@contextmanager
def reported(project: Project, report: CiReport, started: float) -> Iterator[None]:
    """Write the CI report however the run ends; a failed run's report carries its error
    and rows only for the apps it reached (`reached`)."""
    try:
        yield
    except MfeError as exc:
        report.error = str(exc)
        report.apps = {name: app for name, app in report.apps.items() if reached(app)}
        raise
    finally:
        report.seconds = round(time.monotonic() - started, 3)
        path = write_report(project, report)
        print(f"ci: report {path.relative_to(project.root).as_posix()}", flush=True)


def reached(app: AppReport) -> bool:
    """Did the job get to this app? Every job's work on an app starts by keying it: a run
    refused before that (uncommitted changes, no secret, another ref's plan) established
    no cache or test outcome for it, so its report claims none."""
    return bool(app.key)


def _run(project: Project, env: Environment, options: CiOptions, report: CiReport) -> None:
    session = Session(project, env)
    who = trust.resolve(project)
    goes = trust.destination(who) if options.publish else None
    mode = _cache_mode(project, who, options.cache)
    workers = options.workers or max(2, os.cpu_count() or 2)
    with threads(workers + 1) as pool:
        node = pool.submit(node_version)  # a subprocess, while boto3 loads
        # Publishing needs the site; the cache, and a run that publishes nothing, do not.
        ready = start_ready(session, pool) if goes and goes.where != "none" else None
        waits = functools.partial(result_of, ready) if ready else None
        remote, who = open_cache(session, mode, waits, who)
        report.extra["cache_scope"] = who.write_scope if remote else "off"
        packages = lockslice.load_lockfile(project.lockfile)
        known = recorded_builds(project)
        if who.trusted:  # what an untrusted run left in dist/ is its code's output: built again
            known = {name: held for name, held in known.items() if held.trusted}
        result_of(node)  # once, before the worker threads all ask for it
        futures = [
            pool.submit(
                process_app,
                project,
                app,
                report.apps[name],
                remote,
                mode,
                packages,
                known,
                report.apps[name].affected,
            )
            for name, app in project.apps.items()
        ]
        settled(futures)
        # One failed install fails every app that needed it: said once.
        errors = list(dict.fromkeys(str(e) for f in futures if (e := f.exception()) is not None))
        outputs = result_of(ready) if ready else None
    record_builds(project, report, who)
    if errors:
        if remote:  # the summary compares what was built with live, in failed runs too
            note_live_sizes(report, remote, env)
        raise MfeError("\n".join(errors))
    check_budgets(project, report, remote, env)
    if goes and deliver(session, goes, outputs, report) and remote:
        built = {n: a.build_seconds for n, a in report.apps.items() if a.dist == "build"}
        records.merge(remote, records.BUILD_TIMES, built)
        remember_sizes(remote, env, report)


def _cache_mode(project: Project, who: trust.Trust, mode: CacheMode) -> CacheMode:
    """Outside a git checkout nothing ties the files to a commit: the cache stays off
    unless forced (said once, for the run, not as a note on every app)."""
    if who.checkout or mode != "on":
        return mode
    print(
        f"ci: {affected.not_a_checkout(project.root)}: the build cache is not used "
        "(nothing ties these files to a commit; cache=force uses it)",
        flush=True,
    )
    return "off"


def process_app(
    project: Project,
    app: App,
    result: AppReport,
    remote: cache.RemoteCache | None,
    mode: CacheMode,
    packages: lockslice.Packages,
    known: dict[str, Held],
    cacheable: bool,
) -> None:
    """Restore `app` (local or remote cache) or build it, then measure it for its budget;
    `cacheable` builds are tested and uploaded (only tested builds enter the cache)."""
    _restore_or_build(project, app, result, remote, mode, packages, known, cacheable)
    measure(app, result)


def measure(app: App, result: AppReport) -> None:
    """The app's size for its budget check, in the worker that made its `dist/` (gzip
    releases the GIL, so apps are measured in parallel, not one by one at the end), unless
    its cache entry recorded it (signed: see `cache.upload`)."""
    if not (app.dist / MANIFEST_NAME).is_file():
        return
    if result.size_bytes is None:
        result.size_bytes = budget.compressed_size(app)
    result.budget_bytes = app.budget


def _restore_or_build(
    project: Project,
    app: App,
    result: AppReport,
    remote: cache.RemoteCache | None,
    mode: CacheMode,
    packages: lockslice.Packages,
    known: dict[str, Held],
    cacheable: bool,
) -> None:
    result.key = input_key(project, app, packages).key
    use_cache = remote is not None
    if use_cache and mode != "force" and affected.has_uncommitted_changes(project, app.path):
        use_cache = False
        result.notes.append("uncommitted changes: build cache not used (cache=force to use it)")
    if holds_build(app, result.key, known):
        take_held(app, result, remote if use_cache else None, known[app.name], cacheable)
        return
    if use_cache and remote:
        lookup = cache.restore(remote, project, app, result.key)
        result.notes.extend(lookup.notes)
        if lookup.outcome == "hit":
            result.dist = "cache"
            result.size_bytes = lookup.size_bytes  # None: measured by `measure`
            result.cache = "hit" if result.affected else "unaffected"
            result.tests = restored_tests(app, result.affected)
            say(f"ci: {app.name}: restored from the build cache ({result.key[:12]})")
            return
        if result.why == [NO_BASE_WHY]:
            result.why = [cache_why(result.key, lookup.outcome)]
    build(project, app, result)
    if not cacheable:
        result.notes.append("not in the build cache: built only to render the shell")
        result.tests = "not run"
        return
    test_and_cache(project, app, result, remote if use_cache else None)


def take_held(
    app: App, result: AppReport, remote: cache.RemoteCache | None, held: Held, cacheable: bool
) -> None:
    """Take the tested build this checkout holds (`dist: local`). Its `cache` says what the
    build cache had: `hit` only if a scope this run reads already had the key, else `miss`.
    A miss goes up (`cache_upload_bytes`) when this run would upload a build of its own
    (it uses the cache, and the app is tested here) and a run on a trusted ref recorded the
    build: local files alone must not fill the cache other runners trust."""
    result.dist = "local"
    result.tests = restored_tests(app, result.affected)
    said = f"ci: {app.name}: took the tested build dist/ holds ({result.key[:12]})"
    if not cacheable:  # unaffected: neither looked up nor uploaded, as a build of it
        result.cache = "unaffected"
        say(said)
        return
    found = cache.probe(remote, app.name, result.key).outcome if remote else "miss"
    result.cache = "hit" if found == "hit" else "miss"
    if remote is None or found == "hit":
        say(said + ("; the build cache has it" if found == "hit" else ""))
        return
    if not held.trusted:
        why = (
            "held build not uploaded to the build cache: its record (.mfe/ci-keys.json) "
            "is not from a run on a trusted ref"
        )
        result.notes.append(why)
        say(f"{said}; {why}")
        return
    measure(app, result)  # recorded with the entry, as a build's
    result.cache_upload_bytes = cache.upload(remote, app, result.key, 0.0, result.size_bytes)
    if result.cache_upload_bytes:
        say(f"{said}; the build cache lacked it: uploaded ({result.cache_upload_bytes} bytes)")
    else:
        say(f"{said}; the build cache lacks it, and the upload failed (warned above)")


def restored_tests(app: App, affected: bool) -> str:
    """The tests cell of a build taken from the cache or this checkout: 'cached' (entries
    are stored only after the app's tests passed on these same inputs), 'none' for an app
    without a test script (nothing passed), 'not run' for an unaffected app."""
    if not affected:
        return "not run"
    return "cached" if steps.has_test_script(app) else "none"


def build(project: Project, app: App, result: AppReport) -> None:
    """Build `app` (installing JS dependencies first if needed), timed for the report. An
    affected app built here missed the cache, whether its build succeeds or not."""
    if result.affected:
        result.cache = "miss"
    try:
        steps.ensure_node_modules(project)
        started = time.monotonic()
        build_app(project, app)
    except MfeError:
        result.failed, result.tests = "build", "not run"
        raise
    result.build_seconds = round(time.monotonic() - started, 3)
    result.dist = "build"


def test_and_cache(
    project: Project, app: App, result: AppReport, remote: cache.RemoteCache | None
) -> None:
    """Run the built app's tests, then store it in the cache (only tested builds enter it)."""
    if steps.has_test_script(app):
        result.tests, result.failed = "failed", "tests"
        steps.run_tests(project, app)
        result.tests, result.failed = "passed", None
    if remote:
        measure(app, result)  # recorded with the entry, so restores need not measure
        result.cache_upload_bytes = cache.upload(
            remote, app, result.key, result.build_seconds, result.size_bytes
        )


def check_budgets(
    project: Project, report: CiReport, remote: cache.RemoteCache | None, env: Environment
) -> None:
    """Measure every app present (unless its worker did), compare with the live sizes,
    fail affected apps over budget."""
    for name, result in report.apps.items():
        measure(project.apps[name], result)
    if remote:
        note_live_sizes(report, remote, env)
    budget.check(
        {n: a.size_bytes for n, a in report.apps.items() if a.affected and a.size_bytes},
        project.apps,
    )


def note_live_sizes(report: CiReport, remote: cache.RemoteCache, env: Environment) -> None:
    """Each measured app's live size (last trusted publish), for the summary's "vs live"."""
    live = records.read(remote, records.sizes_name(env.name))
    for name, result in report.apps.items():
        entry = live.get(name)
        if result.size_bytes is None or not isinstance(entry, dict):
            continue
        if isinstance(entry.get("bytes"), int):
            result.live_bytes = entry["bytes"]


def remember_sizes(remote: cache.RemoteCache, env: Environment, report: CiReport) -> None:
    sizes = {
        name: {"bytes": app.size_bytes, "key": app.key}
        for name, app in report.apps.items()
        if app.size_bytes is not None
    }
    records.merge(remote, records.sizes_name(env.name), sizes)
