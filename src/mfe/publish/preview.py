"""Previews: `doit publish preview=NAME` overlays the apps changed here on the live
release, at `previews/NAME/` of the parent site, without touching anything live.

The changed apps' new files go up under the keys a publish would use (fingerprinted
names, `_ca/` copies), the page to `previews/NAME/index.html`, and a preview pointer
(`_mfe/previews/NAME.json`: the overlaid pointer plus every key of its changed apps,
those the live version had online already too, which `--prune` keeps). The pointer is
written twice: before the page, pending and also naming what the page it replaces needs
(`Preview.ahead`), and after it, as itself; a command killed between leaves no page whose
files a prune could delete. Each of the three writes is conditional on what was read (the
page's ETag before the record's, `write_page`), so two runs of one name (two CI jobs of a
pull request) or a run and `preview_rm` never leave a page its record does not describe:
a write refused re-reads and starts over, and whichever finishes last wins. No listing:
the live pointer and the version manifests (cached locally) say what is online already,
so a preview costs its changed files plus eight requests (one checks that the pointer is
not older than the history, restored by hand: a preview over it is refused; two read the
page and record it replaces).

`--prune` keeps what a preview's pointer names, but not before it is written: a release
swapped in meanwhile can let a prune delete files of the release the preview overlays.
So the live pointer is read again after the preview pointer is written, and a preview
whose base was swapped past is written again over the newer release.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from mfe.config import Environment, Project
from mfe.envs.outputs import Outputs
from mfe.errors import MfeError
from mfe.publish.conditional import Conflict, delete_if, put_if
from mfe.publish.held import held_note, held_why
from mfe.publish.pointer import Live
from mfe.publish.previews import Preview, check_name, page_key, pointer_key, read_state
from mfe.publish.remote import s3_errors
from mfe.publish.report import Progress, write_named_report

if TYPE_CHECKING:
    from mfe.envs.session import Session

    pass


def publish_preview(
    project: Project,
    env: Environment | str,
    name: str,
    *,
    outputs: Outputs | None = None,
    progress: Progress | None = None,
    smoke: bool = True,
    session: Session | None = None,
) -> dict[str, Any]:
    """Upload the changed apps' new files, write the preview page and pointer; the report
    (also `.mfe/<env>/preview-report.json`) carries the preview `url`. The library entry
    point for CI (`doit ci publish` on a pull request), with its own `session` if given."""
    from mfe.publish.merge import candidate
    from mfe.publish.releases import dirty_apps, now_iso, published_source
    from mfe.publish.run import Run

    started = time.monotonic()
    check_name(name)
    progress = progress or Progress(command=f"preview {name}")  # its lines, as its summary's
    run = Run.start(project, env, outputs, progress, only=None, dry_run=True, session=session)
    live, _, behind_history = run.read_settled()
    if behind_history:  # it would overlay a release older than the one served
        raise MfeError(f"preview '{name}' was not written: {behind_history}")
    if live is None:
        raise MfeError(
            f"environment '{run.env.name}' has no live release to preview against; "
            f"run `doit publish env={run.env.name}` first"
        )
    (commit_id, dirty), now = published_source(project, run.local), now_iso()
    apps_dirty = dirty_apps(project, run.local, dirty)
    candidates = {
        app: candidate(app, la.files, la.entries, commit_id, now, apps_dirty[app])
        for app, la in run.local.items()
    }
    uploaded: dict[str, list[str]] = {}
    for _attempt in range(ATTEMPTS):
        held = held_apps(run, live, candidates)
        changed, added = write_preview(run, name, live, candidates, held, now, commit_id, dirty)
        for app, keys in added.items():
            uploaded.setdefault(app, []).extend(k for k in keys if k not in uploaded[app])
        # A swap since `live` was read may have let a `--prune` that had not seen this
        # preview's pointer delete files of the release it overlays (those it reuses):
        # overlay the newer release instead, whose files that prune kept.
        now_live, _ = run.read_live()
        if now_live is None or now_live.seq == live.seq:
            break
        live = now_live
    else:
        raise MfeError(
            f"the live release of environment '{run.env.name}' kept changing while preview "
            f"'{name}' was written ({ATTEMPTS} attempts); run it again"
        )
    for app in held:
        run.progress.note(held_note(project.root, live, candidates[app], force=False))
    url = run.session.backend.preview_url(run.outputs, name)
    if smoke:
        from mfe.publish.smoke import smoke_check

        smoke_check(url if url.endswith(".html") else url + "index.html")
    report = {
        "env": run.env.name,
        "preview": name,
        "url": url,
        "base_release": live.release,
        "commit": commit_id,
        "dirty": dirty,
        "changed": changed,
        "held": {app: held_why(project.root, live, candidates[app]) for app in held},
        "apps": {app: {"uploaded": keys} for app, keys in uploaded.items()},
        "requests": run.counts(),
        "seconds": round(time.monotonic() - started, 3),
    }
    write_named_report(project.state_dir(run.env.name), "preview-report.json", report)
    return report


ATTEMPTS = 8


def write_preview(
    run: Any,
    name: str,
    live: Live,
    candidates: dict[str, Any],
    held: list[str],
    now: str,
    commit: str | None = None,
    dirty: bool | None = None,
) -> tuple[list[str], dict[str, list[str]]]:
    """Upload what the preview of `candidates` (less the `held` ones, `held_apps`) over
    `live` lacks, write its page and its pointer (which says the `commit` it was built
    from, `dirty` if its sources were not that commit's); returns (changed apps, app ->
    keys uploaded)."""
    from mfe.publish.merge import changed_apps, merge
    from mfe.publish.page import render_page
    from mfe.publish.plan import AppPlan, online_copy
    from mfe.publish.versions import read_version

    state = run.project.state_dir(run.env.name)
    changed = changed_apps(live, candidates, held)
    added: dict[str, list[str]] = {}
    needed: dict[str, list[str]] = {}
    run.plans = {}
    for app in changed:
        bucket = run.buckets[app]
        online: set[str] = set()
        if app in live.apps:
            with s3_errors(run.session, bucket, f"reading the file list of {app}"):
                files = read_version(run.s3, bucket, app, live.apps[app].version, state)
            online = {k if r.immutable else online_copy_key(k, r.sha256) for k, r in files.items()}
        copies = [online_copy(f) for f in candidates[app].files]
        plan = AppPlan(app, bucket, None, [], {}, [c for c in copies if c.key not in online])
        run.plans[app] = plan
        added[app] = [f.key for f in plan.uploads]
        needed[app] = sorted(c.key for c in copies)
    run.upload(run.plans)
    apps = merge(live, changed, candidates, [])
    html = render_page(run.project, run.env, run.outputs, apps, run.manifest_for)
    overlay = Live(live.seq, live.release, now, apps, live.page, changed=changed, action="preview")
    preview = Preview(name, now, live.seq, overlay, added, needed, commit, dirty)
    write_page(run, preview, html)
    return changed, added


def write_page(run: Any, preview: Preview, html: bytes) -> None:
    """Claim the record (pending, naming the new page's files and those of every page it
    replaces), write the page, write the record as itself: each by a conditional request on
    what was read, so that of two runs of one name (or a run and `preview_rm`) the one whose
    write lands on what it did not read re-reads and starts again, and the last to finish
    leaves its page and record. A run killed anywhere leaves a page the record keeps."""
    name, parent = preview.name, run.parent_bucket
    cond = run.conditional
    for attempt in range(ATTEMPTS):
        with s3_errors(run.session, parent, f"reading {pointer_key(name)}"):
            page, earlier, etag = read_state(run.s3, parent, name)
        try:
            with s3_errors(run.session, parent, f"writing {pointer_key(name)}"):
                claim = put_record(run, preview.ahead(earlier), etag, cond)
            with s3_errors(run.session, parent, f"writing {page_key(name)}"):
                put_if(
                    run.s3, parent, page_key(name), html, page, conditional=cond,
                    ContentType="text/html; charset=utf-8", CacheControl="no-cache",
                )  # fmt: skip
            with s3_errors(run.session, parent, f"writing {pointer_key(name)}"):
                put_record(run, preview, claim, cond)
            return
        except Conflict:  # another run or a removal of this name wrote meanwhile
            backoff(attempt)
    raise MfeError(
        f"preview '{name}' of environment '{run.env.name}' kept being written or removed by "
        f"other commands while this one wrote it ({ATTEMPTS} attempts); run it again"
    )


def backoff(attempt: int) -> None:
    """Jittered, growing: two runs that collided do not collide again in step."""
    time.sleep(random.uniform(0.02, 0.1) * (2 ** min(attempt, 4)))


def put_record(run: Any, preview: Preview, etag: str | None, conditional: bool) -> str:
    """Write a preview's record (`_mfe/previews/NAME.json`) over the one read (`etag`)."""
    return put_if(
        run.s3, run.parent_bucket, pointer_key(preview.name), preview.to_json(), etag,
        conditional=conditional, ContentType="application/json", CacheControl="no-store",
    )  # fmt: skip


def held_apps(run: Any, live: Live, candidates: dict[str, Any]) -> list[str]:
    """The apps built here that the preview keeps at their live version, as a publish
    would (`merge.stale`): a branch that did not pull another team's app must not show
    its old version. Said, not silent: the terminal, the report's `held`, CI's notes."""
    from mfe.publish.built_here import read_built
    from mfe.publish.merge import stale

    built = read_built(run.project.state_dir(run.env.name), run.parent_bucket)
    return stale(live, candidates, built, run.project.root)


def online_copy_key(key: str, sha256: str) -> str:
    from mfe.publish.versions import ca_key

    return ca_key(key, sha256)


def preview_rm(
    project: Project, env: Environment | str, name: str, *, outputs: Outputs | None = None
) -> str:
    """Remove a preview's page and record (its files go with the next `--prune`). The record
    is first written as being removed (`Preview.removal`), then the page and the record are
    deleted, each only if it is still what was read: a run of this name writing meanwhile
    makes the removal read again and start over, so whichever finishes last wins and
    neither leaves half a preview."""
    from mfe.publish.run import Run

    check_name(name)
    run = Run.start(project, env, outputs, None, only=None, dry_run=True, collect_local=False)
    bucket, removed = (
        run.parent_bucket,
        f"preview '{name}' removed from environment '{run.env.name}'",
    )
    for attempt in range(ATTEMPTS):
        with s3_errors(run.session, bucket, f"looking up preview {name}"):
            page, record, etag = read_state(run.s3, bucket, name)
        if record is None and page is None:
            if attempt:  # removed meanwhile by another command
                return removed
            raise MfeError(
                f"environment '{run.env.name}' has no preview named '{name}'; "
                "see `doit releases` for the previews there are"
            )
        cond = run.conditional
        try:
            with s3_errors(run.session, bucket, f"removing preview {name}"):
                if record is not None:
                    etag = put_record(run, record.removal(), etag, cond)
                if page is not None:  # a page without a record: what older versions left
                    delete_if(run.s3, bucket, page_key(name), page, conditional=cond)
                if record is not None:
                    delete_if(run.s3, bucket, pointer_key(name), etag, conditional=cond)
            return removed
        except Conflict:  # a run of this name wrote meanwhile: read again
            backoff(attempt)
    raise MfeError(
        f"preview '{name}' of environment '{run.env.name}' kept being written while this "
        f"command removed it ({ATTEMPTS} attempts); run `doit preview_rm name={name}` again"
    )
