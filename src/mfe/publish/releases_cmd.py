"""`doit releases`: the history in served order, which record is live, and the previews."""

from __future__ import annotations

from mfe.config import Environment, Project
from mfe.envs.outputs import Outputs
from mfe.publish.history import (
    Scan,
    behind,
    commit_label,
    history_key,
    missing_note,
    scan_records,
    table,
)
from mfe.publish.pointer import Damaged, Live
from mfe.publish.remote import s3_errors

SHOWN = 50
"""Releases `doit releases` shows without `limit=`: the newest."""


def show(project: Project, env: Environment, outputs: Outputs, limit: int | None = SHOWN) -> str:
    """The table of the newest `limit` records (None: all), saying when older ones exist."""
    from mfe.publish.previews import list_previews
    from mfe.publish.run import Run

    run = Run.start(project, env, outputs, None, only=None, dry_run=True, collect_local=False)
    bucket = run.parent_bucket
    try:
        live, _ = run.read_live()
        unreadable = None
    except Damaged as exc:  # the history stays readable: list it, and say what is wrong
        live, unreadable = None, str(exc)
    with s3_errors(run.session, bucket, "reading the release history"):
        scan = scan_records(run.s3, bucket, limit)
        found = list_previews(run.s3, bucket)
    if scan.newest is None:
        return f"environment '{run.env.name}' has no release yet"
    out = rows(scan, bucket)
    shown = len(scan.records) + len(scan.damaged)
    if shown < scan.total:
        out.append(
            f"showing the newest {shown} of {scan.total} releases; `doit releases "
            f"env={run.env.name} limit=all` (or limit=N) lists more"
        )
    if unreadable is not None:
        out.append(f"warning: {unreadable}")
    elif live is None or live.seq < scan.newest:
        out.append(f"warning: {behind(bucket, live, scan.newest)}")
    else:
        state = "" if scan.newest == live.seq else f" ({unfinished(scan, live, run.env.name)})"
        out.append(f"live: seq {live.seq}, release {live.release}{state}")
    if scan.missing:
        out.append(f"warning: {missing_note(bucket, scan.missing)}")
    for preview in found:
        url = run.session.backend.preview_url(run.outputs, preview.name)
        changed = ",".join(preview.pointer.changed) or "-"
        source = f" from {commit_label(preview.commit, preview.dirty)}" if preview.commit else ""
        out.append(f"preview {preview.name}: {changed} over seq {preview.base}{source}  {url}")
        if preview.removing:
            out.append(f"warning: {unfinished_removal(preview.name)}")
        elif preview.pending:
            out.append(f"warning: {unfinished_preview(preview.name)}")
    return "\n".join(out)


def rows(scan: Scan, bucket: str) -> list[str]:
    """The table of the readable records, with a row in seq order for each damaged or
    missing one naming its key, so a gap in the history is never silent."""
    lines = table(scan.records)
    by_seq = {rec.seq: line for rec, line in zip(scan.records, lines[1:], strict=True)}
    for seq, why in scan.damaged.items():
        by_seq[seq] = f"{seq:>5}  unreadable: {history_key(seq)} in bucket '{bucket}' ({why})"
    for seq in scan.missing:
        by_seq[seq] = f"{seq:>5}  missing: {history_key(seq)} (deleted?)"
    return [lines[0], *(by_seq[seq] for seq in sorted(by_seq))]


def unfinished_preview(name: str) -> str:
    """Why a pending preview record's page may not be the one it describes."""
    return (
        f"preview {name} was not finished (its command was stopped, or is still running): "
        f"its page may still be an earlier one, or missing; `doit publish preview={name}` "
        f"finishes it, `doit preview_rm name={name}` removes it"
    )


def unfinished_removal(name: str) -> str:
    """What a record written by a `preview_rm` that has not deleted it yet means."""
    return (
        f"preview {name} is being removed (its `doit preview_rm` was stopped, or is still "
        f"running): its page may still be up; `doit preview_rm name={name}` finishes it, "
        f"`doit publish preview={name}` publishes it again"
    )


def unfinished(scan: Scan, live: Live, env: str) -> str:
    """What a live pointer without its record is: a rollback stopped past its swap says so,
    and the command that finishes it (a plain rollback stops there, `rollback.repeats`)."""
    if live.action != "rollback" or live.rollback_of is None:
        return "its commit step is unfinished"
    seqs = [rec.seq for rec in scan.records if rec.release == live.rollback_of]
    where = f" (seq {seqs[-1]})" if seqs else ""
    of, app = (
        (f" of {live.rollback_app}", f" app={live.rollback_app}") if live.rollback_app else ("", "")
    )
    return (
        f"its commit step is unfinished: a rollback{of} to release {live.rollback_of}{where}, "
        f"stopped after its switch; `doit rollback env={env}{app}` finishes it and rolls back "
        "no further"
    )
