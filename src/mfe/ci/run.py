"""`doit ci`: affected apps -> restore from the build cache or build -> test -> publish -> report.

Unaffected apps are neither built nor tested; their `dist/` is still needed to render the
shell, so it is restored from the cache (its unchanged files upload nothing).
"""

from __future__ import annotations

import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from mfe.build import lockslice
from mfe.build.bundle import build_app
from mfe.build.inputs import input_key, node_version
from mfe.build.manifest import MANIFEST_NAME
from mfe.ci import affected, cache, steps
from mfe.ci.report import AppReport, CiReport, write_report
from mfe.config import STATE_DIR, App, Environment, Project
from mfe.envs.outputs import Outputs
from mfe.envs.session import Session
from mfe.errors import MfeError

CacheMode = Literal["on", "off", "force"]
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


def run_ci(project: Project, env: Environment, options: CiOptions) -> CiReport:
    """The whole pipeline; writes the report (also on failure) and raises MfeError on failure."""
    started = time.monotonic()
    if options.base:
        why = affected.affected_apps(project, options.base)
    else:
        why = {name: [NO_BASE_WHY] for name in project.apps}
    report = CiReport(
        env.name,
        options.base,
        {name: AppReport(affected=name in why, why=why.get(name, [])) for name in project.apps},
    )
    try:
        if options.base and not why:
            print(f"ci: no app changed since {options.base}: nothing to build or publish")
        else:
            _run(project, env, options, report)
    except MfeError as exc:
        report.error = str(exc)
        raise
    finally:
        report.seconds = round(time.monotonic() - started, 3)
        path = write_report(project, report)
        print(f"ci: report {path.relative_to(project.root).as_posix()}", flush=True)
    return report


def _run(project: Project, env: Environment, options: CiOptions, report: CiReport) -> None:
    session = Session(project, env)
    session.backend.check(session)
    workers = options.workers or max(2, os.cpu_count() or 2)
    with ThreadPoolExecutor(max_workers=workers + 1) as pool:
        # The cache needs only a reachable endpoint: making the environment ready (which
        # on the emulator also creates the cache bucket) runs alongside the lookups;
        # uploads wait for it.
        session.backend.start()
        ready = pool.submit(lambda: session.outputs)
        bucket = env.cache_bucket or ready.result().cache_bucket
        remote = None
        if options.cache != "off" and bucket:
            remote = cache.RemoteCache(session.s3, bucket, env.cache_prefix, ready=ready.result)
        elif options.cache != "off":
            cache.warn(f"no cache_bucket for environment '{env.name}': building without a cache")
        packages = lockslice.load_lockfile(project.lockfile)
        known = _recorded_keys(project)
        node_version()  # once, before the worker threads all ask for it
        futures = [
            pool.submit(
                _process_app, project, app, report.apps[name], remote, options, packages, known
            )
            for name, app in project.apps.items()
        ]
        errors = [str(exc) for f in futures if (exc := f.exception()) is not None]
        outputs = ready.result()
    _record_keys(project, {n: a.key for n, a in report.apps.items() if a.dist})
    if errors:
        raise MfeError("\n".join(errors))
    if options.publish:
        _publish(session, outputs, report)


def _process_app(
    project: Project,
    app: App,
    result: AppReport,
    remote: cache.RemoteCache | None,
    options: CiOptions,
    packages: lockslice.Packages,
    known: dict[str, str],
) -> None:
    result.key = input_key(project, app, packages).key
    if known.get(app.name) == result.key and (app.dist / MANIFEST_NAME).is_file():
        result.dist = "local"  # this checkout already holds exactly this build
        result.cache = "hit" if result.affected else "unaffected"
        result.tests = "cached" if result.affected else "not run"
        return
    use_cache = remote is not None
    if (
        use_cache
        and options.cache != "force"
        and affected.has_uncommitted_changes(project, app.path)
    ):
        use_cache = False
        result.notes.append("uncommitted changes: build cache not used (cache=force to use it)")
    if use_cache and remote and cache.restore(remote, project, app, result.key) == "hit":
        result.dist = "cache"
        result.cache = "hit" if result.affected else "unaffected"
        # Archives are uploaded only after the app's tests passed on these same inputs.
        result.tests = "cached" if result.affected else "not run"
        print(f"ci: {app.name}: restored from the build cache ({result.key[:12]})", flush=True)
        return
    steps.ensure_node_modules(project)
    started = time.monotonic()
    build_app(project, app)
    result.build_seconds = round(time.monotonic() - started, 3)
    result.dist = "build"
    if not result.affected:
        result.notes.append("not in the build cache: built only to render the shell")
        result.tests = "not run"
    else:
        result.cache = "miss"
        if steps.has_test_script(app):
            result.tests = "failed"
            steps.run_tests(app)
            result.tests = "passed"
    if use_cache and remote and result.affected:  # only tested builds enter the cache
        result.cache_upload_bytes = cache.upload(remote, app, result.key)


def _publish(session: Session, outputs: Outputs, report: CiReport) -> None:
    from mfe.publish import publish
    from mfe.shell import render_shell

    project, env = session.project, session.env
    render_shell(project, env, outputs)
    published: dict[str, Any] = publish(project, env, outputs=outputs, session=session)
    report.published = True
    report.site_url = published.get("site_url")
    for name, app_report in published.get("apps", {}).items():
        if name in report.apps:
            report.apps[name].uploaded = len(app_report.get("uploaded", []))
    report.extra["release"] = published.get("release")


def _keys_file(project: Project) -> Any:
    return project.root / STATE_DIR / "ci-keys.json"


def _recorded_keys(project: Project) -> dict[str, str]:
    try:
        data = json.loads(_keys_file(project).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _record_keys(project: Project, keys: dict[str, str]) -> None:
    merged = {**_recorded_keys(project), **keys}
    path = _keys_file(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n", encoding="utf-8")
