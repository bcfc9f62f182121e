"""`publish`, `plan`, `rollback`, `releases`, `preview_rm`: the release tasks (doit side).

The work lives in `mfe.publish`; publish and plan load the outputs `_ready` just wrote,
while releases, rollback and preview_rm find what exists and never start or provision
anything (`existing`): a listing after `doit destroy` or `doit local_stop` must not bring
the environment back. They print the summary, and the site URL (or the preview URL) as
the very last line (scripts take `tail -1`). Command-line variables: `app=NAME` (publish
or roll back one app), `preview=NAME` (publish a preview), `name=NAME` (preview_rm),
`to=RELEASE` (rollback).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from doit import get_var
from doit.exceptions import BaseFail, TaskFailed

from mfe.config import Environment, Project
from mfe.errors import CtrlC, Interrupted, MfeError
from mfe.tasks.actions import guarded
from mfe.tasks.pipes import listing
from mfe.tasks.publish_refusals import refusal
from mfe.tasks.variables import REFUSE_KEY, declare

PRUNE = {
    "name": "prune",
    "long": "prune",
    "type": bool,
    "default": False,
    "help": "delete files no kept release or live preview references (capped by "
    "publish.max_deletes; files younger than publish.grace_seconds stay)",
}
WAIT = {
    "name": "wait",
    "long": "wait",
    "type": bool,
    "default": False,
    "help": "wait until the CloudFront invalidations completed",
}
VERIFY = {
    "name": "verify",
    "long": "verify",
    "type": bool,
    "default": False,
    "help": "list every app's bucket and upload whatever is missing, also for apps at their "
    "live version (a publish otherwise trusts the live pointer for those), and write back "
    "the live release's fixed-URL files (index.html included) a bucket lost or holds other "
    "bytes of: repairs files deleted or changed by hand",
}
PLAN_PRUNE = {
    **PRUNE,
    "help": "also list the files `doit publish --prune` would delete (and whether "
    "publish.max_deletes stops it); nothing is deleted",
}
PLAN_VERIFY = {
    **VERIFY,
    "help": "show what `doit publish --verify` would upload and write back (it lists every "
    "app's bucket): without it, a plan of a publish that changes nothing only warns about "
    "files the buckets lost",
}
FORCE = {
    "name": "force",
    "long": "force",
    "type": bool,
    "default": False,
    "help": "publish this checkout's build of an app even over a live version from a newer "
    "commit or one this checkout has not merged, or when the build is a version live replaced or a rollback took off (each is "
    "recorded, and said per app)",
}


PUBLISH_AGAIN = "run `doit publish` again: it uploads only what is missing and finishes"
ROLLBACK_AGAIN = "this rollback switched nothing (it had not chosen its target): run it again"


@contextmanager
def _interrupted(command: str, then: str) -> Iterator[None]:
    """Ctrl-C during `command` says what is served and what to do (`then`, or what the
    library's `CtrlC` says), not just that it was interrupted: a release switches by
    one write, so the site serves a whole one."""
    try:
        yield
    except CtrlC as exc:
        raise Interrupted(f"{command} interrupted (Ctrl-C): {exc}") from None
    except KeyboardInterrupt:
        raise Interrupted(
            f"{command} interrupted (Ctrl-C): the site serves one whole release, the previous "
            f"one or the new one if its switch was made; {then}"
        ) from None


def _outputs(project: Project, env: Environment) -> Any:
    from mfe.envs.outputs import read_outputs

    return read_outputs(project, env)  # `_ready` (a task_dep) provisioned and wrote them


def _existing(project: Project, env: Environment) -> Any:
    """The outputs of what is there, made ready by nobody (NothingPublished if nothing)."""
    from mfe.envs.session import Session

    session = Session(project, env)
    return session.backend.existing(session)


def _publish(
    project: Project,
    env: Environment,
    prune: bool,
    wait: bool,
    dry_run: bool,
    force: bool,
    app: str | None,
    verify: bool = False,
) -> None:
    from mfe.publish import publish
    from mfe.publish.report import plan_lines, removal, summary

    with _interrupted("publish", PUBLISH_AGAIN) if not dry_run else nullcontext():
        report = publish(
            project, env, prune=prune, wait=wait, dry_run=dry_run,
            outputs=_outputs(project, env), app=app, force=force, verify=verify,
        )  # fmt: skip
    if dry_run:
        from mfe.build.shared import version_warnings

        print("\n".join(plan_lines(report) + version_warnings(project)))
    for name in report.forced:
        if name not in report.removed:
            what = report.forced_over.get(name, "its live version")
            print(f"publish: forced {name} over {what}")
    if report.removed and not dry_run:
        gone = ", ".join(f"{name} ({removal(report, name)})" for name in report.removed)
        print(f"publish: took off the page: {gone}")
    if report.noop and not dry_run:
        print(repaired(report.release, report.repaired) or unchanged(report.release, app))
    print(summary(report))
    print(report.site_url, flush=True)
    if report.prune_refused:
        raise MfeError(f"release {report.release} is live, but {report.prune_refused}")


def unchanged(release: str, app: str | None) -> str:
    """What a publish that swapped nothing says (`app=NAME`'s as the whole one's), as
    `doit ci` does: the table's zeros alone read like a failed upload."""
    scope = f" for {app}" if app else ""
    return f"publish: nothing to change{scope}: release {release} stays live"


def repaired(release: str, count: int) -> str:
    """What a publish that swapped nothing but repaired the live release says ("" if none)."""
    return (
        f"publish: repaired {count} file(s) of release {release} (no new release)" if count else ""
    )


def _preview(project: Project, env: Environment, name: str) -> None:
    from mfe.publish.preview import publish_preview

    report = publish_preview(project, env, name, outputs=_outputs(project, env))
    changed = preview_changed(report["changed"], report["held"])
    count = sum(len(row["uploaded"]) for row in report["apps"].values())
    print(f"preview {name}: {changed} over release {report['base_release']}, {count} file(s) "
          f"uploaded, {report['requests']['s3']} requests, {report['seconds']:.2f}s")  # fmt: skip
    print(report["url"], flush=True)


def preview_changed(changed: list[str], held: dict[str, str]) -> str:
    """The apps a preview overlays, and those it held (`mfe.publish.held`): "same as live"
    only when it held none, as the checkout's builds differ from live otherwise."""
    if not held:
        return ", ".join(changed) or "no app (same as live)"
    from mfe.publish.held import held_item

    kept = "; ".join(held_item(app, why) for app, why in sorted(held.items()))
    return f"{', '.join(changed) or 'no app changed'} (held: {kept})"


def _rollback(
    project: Project, env: Environment, wait: bool, app: str | None, to: str | None
) -> None:
    from mfe.publish.report import removal, summary
    from mfe.publish.rollback import rollback

    with _interrupted("rollback", ROLLBACK_AGAIN):
        report = rollback(project, env, wait=wait, outputs=_existing(project, env), app=app, to=to)
    what = f"app {app} of " if app else ""
    off = f", taking off {report.took_off}" if report.took_off else ""
    if report.finished:  # a rerun after a rollback killed past its swap
        print(
            f"rollback: finished {report.finished}; nothing more was rolled back: run `doit "
            f"rollback env={env.name}{f' app={app}' if app else ''}` again to go one release "
            "further back"
        )
    elif report.noop:  # `to=` what is live (a rerun after Ctrl-C): its commit step finished
        print(f"rollback: {what}release {report.rollback_of} is served already ({report.release})")
    else:
        print(
            f"rollback: serving {what}release {report.rollback_of} again as {report.release}{off}"
        )
    if report.removed:
        why = removal(report, "") if app else f"not in release {report.rollback_of}"
        print(f"rollback: took off the page: {', '.join(report.removed)} ({why})")
    print(summary(report))
    print(report.site_url, flush=True)


def _releases(project: Project, env: Environment, limit: str = "") -> None:
    from mfe.errors import NothingPublished
    from mfe.publish.releases_cmd import SHOWN, show

    count = _limit(limit, SHOWN)  # refused before anything is read
    try:
        outputs = _existing(project, env)
    except NothingPublished as exc:  # an answer, as "no release yet" is
        print(exc, flush=True)
        return
    print(show(project, env, outputs, count), flush=True)


def _limit(value: str, default: int) -> int | None:
    """`limit=N|all` of `doit releases`: N newest records, None for all."""
    if not value:
        return default
    if value == "all":
        return None
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise MfeError(
        f"doit releases limit={value!r}: give a positive whole number of releases (limit=100) or limit=all"
    )


def _preview_rm(project: Project, env: Environment, name: str) -> None:
    from mfe.publish.preview import preview_rm

    print(preview_rm(project, env, name, outputs=_existing(project, env)), flush=True)


def run_publish(
    project: Project,
    env: Environment,
    prune: bool = False,
    wait: bool = False,
    force: bool = False,
    app: str | None = None,
    preview: str | None = None,
    verify: bool = False,
) -> BaseFail | None:
    if preview:  # the reporter refuses these first; this holds under any other reporter
        options = {"prune": prune, "wait": wait, "force": force, "verify": verify}
        if why := refusal(project, app, preview)(options):
            return TaskFailed(why)
        return guarded(_preview, project, env, preview)
    return guarded(_publish, project, env, prune, wait, False, force, app, verify)


def run_plan(
    project: Project, env: Environment, prune: bool = False, verify: bool = False
) -> BaseFail | None:
    app = get_var("app") or None
    return listing(_publish, project, env, prune, False, True, False, app, verify)


def run_rollback(
    project: Project, env: Environment, wait: bool = False, app: str | None = None,
    to: str | None = None,
) -> BaseFail | None:  # fmt: skip
    return guarded(_rollback, project, env, wait, app, to)


def _missing_name() -> TaskFailed:
    return TaskFailed("preview_rm needs the preview's name: `doit preview_rm name=NAME`")


def _deps(project: Project, app: str | None) -> list[str]:
    """What publish and plan run first: one app needs only its own build (the page is
    rendered from the live pointer); an unknown app nothing, as it fails at once.

    `shell` keeps build/<env>/index.html (the contract's rendered page) up to date; the
    published page is rendered again from the merged pointer (equal when nothing else moved).
    """
    if app is None:
        return ["build", "_ready", "shell"]
    return [f"build:{app}", "_ready"] if app in project.apps else []


def refusing(declared: dict[str, Any], check: Any) -> dict[str, Any]:
    """A task's `declare`d doc and meta, plus the check of its command line."""
    return {**declared, "meta": {**declared["meta"], REFUSE_KEY: check}}


def tasks(project: Project, env: Environment) -> dict[str, Callable[[], dict[str, Any]]]:
    app = get_var("app") or None
    preview = get_var("preview") or None
    deps = _deps(project, app)
    # An unknown app=, a preview= name no URL path can hold, or preview= with app= or an
    # option it has no use for: refused before any task runs (exit 2), by the reporter.
    publish_check, app_check = refusal(project, app, preview), refusal(project, app)

    def task_publish() -> dict[str, Any]:
        """Upload changed apps, swap the live pointer, invalidate, smoke-check; prints the URL."""
        return {
            **refusing(declare(task_publish.__doc__ or "", "env", "app", "preview"), publish_check),
            "actions": [(run_publish, [project, env], {"app": app, "preview": preview})],
            "params": [PRUNE, WAIT, FORCE, VERIFY],
            "task_dep": deps,
            "uptodate": [False],
            "verbosity": 2,
        }

    def task_plan() -> dict[str, Any]:
        """Show what publish would upload, skip, delete and invalidate (changes nothing served; on local it starts and provisions the emulator first)."""
        return {
            **refusing(declare(task_plan.__doc__ or "", "env", "app"), app_check),
            "actions": [(run_plan, [project, env])],
            "params": [PLAN_PRUNE, PLAN_VERIFY],
            "task_dep": deps,
            "uptodate": [False],
            "verbosity": 2,
        }

    def task_rollback() -> dict[str, Any]:
        """Serve the previous release (or app=NAME's previous version, or to=RELEASE) again."""
        return {
            **refusing(declare(task_rollback.__doc__ or "", "env", "app", "to"), app_check),
            "actions": [(run_rollback, [project, env], {"app": app, "to": get_var("to") or None})],
            "params": [WAIT],
            "uptodate": [False],
            "verbosity": 2,
        }

    def task_releases() -> dict[str, Any]:
        """Print the release history in served order (and the live previews)."""
        return {
            **declare(task_releases.__doc__ or "", "env", "limit"),
            "actions": [(listing, [_releases, project, env, get_var("limit", "")])],
            "uptodate": [False],
            "verbosity": 2,
        }

    def task_preview_rm() -> dict[str, Any]:
        """Remove the preview name=NAME (its files go with the next publish --prune)."""
        name = get_var("name") or None
        action = (guarded, [_preview_rm, project, env, name]) if name else (_missing_name, [])
        return {
            **declare(task_preview_rm.__doc__ or "", "env", "name"),
            "actions": [action],
            "uptodate": [False],
            "verbosity": 2,
        }

    return {
        "task_publish": task_publish,
        "task_plan": task_plan,
        "task_rollback": task_rollback,
        "task_releases": task_releases,
        "task_preview_rm": task_preview_rm,
    }
