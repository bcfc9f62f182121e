"""Where a CI job's build goes: the live site, a pull request's preview, or nowhere
(`trust.destination` decides); shared by `doit ci` and `doit ci publish`."""

from __future__ import annotations

import os

from mfe.ci import trust
from mfe.ci.report import NOT_SERVED, CiReport, kept_live
from mfe.config import Environment, Project
from mfe.envs.outputs import Outputs
from mfe.envs.session import Session


def deliver(
    session: Session, goes: trust.Destination, outputs: Outputs | None, report: CiReport
) -> bool:
    """Publish where `trust.destination` sends this run (`doit ci` and `doit ci publish`
    alike); True when it went live (only then are build times and live sizes recorded)."""
    if goes.where == "none":
        print(f"ci: {goes.note}", flush=True)
        report.extra["not_published"] = goes.note
        return False
    assert outputs is not None  # made ready for every run that publishes
    if goes.where == "preview":  # never live: a preview at previews/pr-<n>/
        publish_preview(session.project, session.env, goes.preview, outputs, report)
        return False
    publish_site(session, outputs, report)
    return True


def publish_site(session: Session, outputs: Outputs, report: CiReport) -> None:
    from mfe.publish import publish
    from mfe.publish.commit_order import CI_FORCE_HINT
    from mfe.shell import render_shell

    project, env = session.project, session.env
    render_shell(project, env, outputs)
    published = publish(
        project,
        env,
        outputs=outputs,
        session=session,
        keep_newer=True,
        force_hint=CI_FORCE_HINT,
    )
    report.published = True
    report.site_url = published.site_url
    for name, result in published.apps.items():
        if name in report.apps:
            report.apps[name].uploaded = len(result.uploaded)
    for name in published.superseded:
        if name in report.apps:
            report.apps[name].notes.append("superseded: live from a later commit, kept live")
    for name, why in published.held.items():
        if name in report.apps:
            report.apps[name].notes.append(kept_live(why))
    for name in published.not_published:
        if name in report.apps:
            report.apps[name].notes.append(NOT_SERVED)
    report.extra["release"] = published.release
    if published.noop:  # nothing to change: the live release stays, no new one was made
        report.extra["unchanged"] = True
        if published.repaired:  # files of the live release were missing: put back
            report.extra["repaired"] = published.repaired
            print(
                f"ci: repaired {published.repaired} file(s) of release {published.release} "
                "(no new release)",
                flush=True,
            )
        else:
            print(f"ci: nothing to change: release {published.release} stays live", flush=True)


def publish_preview(
    project: Project, env: Environment, name: str, outputs: Outputs, report: CiReport
) -> None:
    """The pull request's apps over the live release at previews/NAME/; the URL goes to the
    report, the job summary and `$GITHUB_OUTPUT` (`preview_url`, for the PR comment)."""
    from mfe.publish import preview

    published = preview.publish_preview(project, env, name, outputs=outputs)
    report.published = True
    report.site_url = published["url"]
    report.extra["preview"] = name
    for app, row in published.get("apps", {}).items():
        if app in report.apps:
            report.apps[app].uploaded = len(row.get("uploaded", []))
    for app, why in published.get("held", {}).items():  # the preview shows live's
        if app in report.apps:
            report.apps[app].notes.append(kept_live(why))
    output = os.environ.get("GITHUB_OUTPUT")
    if output:
        with open(output, "a", encoding="utf-8") as out:
            out.write(f"preview_url={published['url']}\n")
    print(f"ci: preview {name}: {published['url']}", flush=True)
