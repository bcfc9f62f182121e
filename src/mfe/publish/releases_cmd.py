"""`doit releases`: the history in served order, which record is live, and the previews."""

from __future__ import annotations

from mfe.config import Environment, Project
from mfe.envs.outputs import Outputs
from mfe.publish.history import commit_label, read_records, recorded_seqs, table
from mfe.publish.remote import s3_errors

SHOWN = 50
"""Releases `doit releases` shows without `limit=`: the newest."""


def show(project: Project, env: Environment, outputs: Outputs, limit: int | None = SHOWN) -> str:
    """The table of the newest `limit` records (None: all), saying when older ones exist."""
    from mfe.publish.previews import list_previews
    from mfe.publish.run import Run

    run = Run.start(project, env, outputs, None, only=None, dry_run=True, collect_local=False)
    bucket = run.parent_bucket
    live, _ = run.read_live()
    with s3_errors(run.session, bucket, "reading the release history"):
        known = recorded_seqs(run.s3, bucket)
        records = read_records(run.s3, bucket, known if limit is None else known[-limit:])
        found = list_previews(run.s3, bucket)
    if not records:
        return f"environment '{run.env.name}' has no release yet"
    out = table(records)
    if len(records) < len(known):
        env_name = run.env.name
        out.append(
            f"showing the newest {len(records)} of {len(known)} releases; `doit releases "
            f"env={env_name} limit=all` (or limit=N) lists more"
        )
    if live is not None:
        state = "" if records[-1].seq == live.seq else " (its commit step is unfinished)"
        out.append(f"live: seq {live.seq}, release {live.release}{state}")
    for preview in found:
        url = run.session.backend.preview_url(run.outputs, preview.name)
        changed = ",".join(preview.pointer.changed) or "-"
        source = f" from {commit_label(preview.commit, preview.dirty)}" if preview.commit else ""
        out.append(f"preview {preview.name}: {changed} over seq {preview.base}{source}  {url}")
    return "\n".join(out)
