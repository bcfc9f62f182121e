"""`--prune`: delete what no kept release and no live preview references.

Kept: the live pointer, the last `keep_releases` history records and every preview
pointer (a pending one's, written before its page, with those it replaces); for each,
every file of its app versions (by their version manifests), the `_ca/` copies of its
fixed-URL files and of its page (a preview record too old to list its files keeps every
file of the version it overlays). Never deleted: release state (`_mfe/`) but the app
version records no kept pointer names (their files go too), fixed URLs, previews' pages,
and any object younger than `[publish] grace_seconds` (an in-flight publish or preview
may be about to use it). The same rule trims this checkout's caches under `.mfe/<env>/`. Right before deleting a
bucket's files it reads the live pointer again and, if a swap happened since, also keeps
what the pointers name now (a publish may have just made an old file live again).
"""

from __future__ import annotations

import functools
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mfe.errors import MfeError
from mfe.publish.history import read_record, record_seqs
from mfe.publish.local import RESERVED_PREFIX, SHELL_KEY
from mfe.publish.plan import young
from mfe.publish.pointer import Damaged, Live
from mfe.publish.previews import PREVIEW_PAGES, Preview, list_previews
from mfe.publish.remote import RemoteObject, list_prefix, s3_errors
from mfe.publish.versions import VERSIONS_PREFIX, ca_key, read_version, version_key
from mfe.threads import parallel

if TYPE_CHECKING:
    from mfe.publish.run import Run

BATCH = 1000


def kept_pointers(run: Run) -> list[Live]:
    """The live pointer, the last `keep_releases` records and the previews' overlays, read
    from their own prefixes: not from a listing of the whole parent bucket."""
    live, _ = run.read_live()
    found = [live] if live else []
    bucket = run.parent_bucket
    with s3_errors(run.session, bucket, "reading the release history"):
        kept = record_seqs(run.s3, bucket)[-run.project.publish.keep_releases :]
        try:
            found += parallel(
                8, [functools.partial(read_record, run.s3, bucket, seq) for seq in kept]
            )
        except Damaged as exc:  # what it names is unknown: deleting anything could break it
            raise PruneRefused(f"--prune deleted nothing: {exc}") from None
        for preview in list_previews(run.s3, bucket):
            # A pending record: the page served may still be one a record it replaced names.
            for record in preview.serving():
                found.append(keep_preview(run, record))
    return found


def keep_preview(run: Run, preview: Preview) -> Live:
    """The pointer of the apps a preview overlays unchanged (kept as a release's are);
    its changed apps' keys go to `run.extra_kept`."""
    overlay = preview.pointer
    # Its changed apps have no version manifest: the record lists their files.
    changed = preview_files(run, preview)
    unchanged = {a: v for a, v in overlay.apps.items() if a not in changed}
    for app, keys in changed.items():
        run.extra_kept.setdefault(app, set()).update(keys)
        for key, blob in overlay.apps[app].mutable.items():
            run.extra_kept[app].add(ca_key(key, blob.sha256))
    return Live(overlay.seq, overlay.release, overlay.created, unchanged, overlay.page)


def preview_files(run: Run, preview: Preview) -> dict[str, set[str]]:
    """The keys of each changed app a preview's page needs. A record written before
    previews listed `files` names only what it uploaded; the rest its page took from the
    version it overlays (what that version had online was not uploaded again), so every
    file of that version, read from the base release record, is kept too."""
    kept = preview.kept()
    old = [app for app in preview.pointer.changed if app not in preview.files]
    if not old:
        return kept
    run.progress.note(
        f"--prune: preview '{preview.name}' was written before preview records listed their "
        f"files: keeping every file of {', '.join(old)} in the release it overlays "
        f"(seq {preview.base}); publish the preview again to keep only what it uses"
    )
    bucket, state = run.parent_bucket, run.project.state_dir(run.env.name)
    doing = f"reading release record {preview.base}, which preview '{preview.name}' overlays"
    with s3_errors(run.session, bucket, doing):
        base = read_record(run.s3, bucket, preview.base)
    for app in old:
        if app not in base.apps or app not in run.buckets:
            continue
        with s3_errors(run.session, run.buckets[app], f"reading the file list of {app}"):
            files = read_version(run.s3, run.buckets[app], app, base.apps[app].version, state)
        kept.setdefault(app, set()).update(
            k if r.immutable else ca_key(k, r.sha256) for k, r in files.items()
        )
        kept[app].add(version_key(app, base.apps[app].version))  # read by every later prune
    return kept


def kept_keys(run: Run, pointers: list[Live]) -> dict[str, set[str]]:
    kept: dict[str, set[str]] = {}
    seen: set[tuple[str, str]] = set()
    state = run.project.state_dir(run.env.name)
    for pointer in pointers:
        kept.setdefault(run.parent, set()).update(
            {SHELL_KEY, ca_key(SHELL_KEY, pointer.page.sha256)}
        )
        for app, version in pointer.apps.items():
            keys = kept.setdefault(app, set())
            keys.add(version_key(app, version.version))
            for key, blob in version.mutable.items():
                keys.update({key, ca_key(key, blob.sha256)})
            if (app, version.version) in seen or app not in run.buckets:
                continue
            seen.add((app, version.version))
            bucket = run.buckets[app]
            with s3_errors(run.session, bucket, f"reading the file list of {app}"):
                files = read_version(run.s3, bucket, app, version.version, state)
            keys.update(k if r.immutable else ca_key(k, r.sha256) for k, r in files.items())
    return kept


def kept_now(
    run: Run, extra: dict[str, set[str]] | None
) -> tuple[list[Live], dict[str, set[str]], int]:
    """The kept pointers, app -> kept keys, and the live seq they were read at."""
    pointers = kept_pointers(run)
    kept = kept_keys(run, pointers)
    for app, keys in [*(extra or {}).items(), *run.extra_kept.items()]:
        kept.setdefault(app, set()).update(keys)
    return pointers, kept, max((p.seq for p in pointers), default=0)


class PruneRefused(MfeError):
    """More deletes than `publish.max_deletes`: nothing deleted."""


def prune(run: Run, extra: dict[str, set[str]] | None = None, *, delete: bool = True) -> int:
    """Fill each app plan's `deletes` and (unless `delete=False`) delete them, and the
    local caches of what no kept pointer names."""
    pointers, kept, seq = kept_now(run, extra)
    now = datetime.now(UTC)
    grace = run.project.publish.grace_seconds
    total = young_kept = 0
    records: dict[str, list[str]] = {}
    for name, plan in run.plans.items():
        if name not in run.buckets:
            continue
        records[name] = unused_records(run, name, kept.get(name, set()), now)
        unused = {
            key: remote
            for key, remote in list_fresh(run, name).items()
            if not key.startswith((RESERVED_PREFIX, PREVIEW_PAGES))
            and key not in kept.get(name, set())
        }
        plan.deletes = sorted(
            key for key, remote in unused.items() if not young(remote, now, grace)
        )
        young_kept += len(unused) - len(plan.deletes)
        total += len(plan.deletes)
    limit = run.project.publish.max_deletes
    why = kept_young(young_kept, grace)
    if total > limit and delete:
        for plan in run.plans.values():
            plan.deletes = []  # the report lists nothing as deleted
        raise PruneRefused(
            f"--prune would delete {total} objects in environment '{run.env.name}', more than "
            f"publish.max_deletes = {limit} in mfe.toml; `doit plan env={run.env.name} "
            "--prune` lists them: raise the limit if that is intended (nothing was deleted"
            + (f"; it would also keep {why}" if young_kept else "")
            + ")"
        )
    if total > limit:
        run.progress.note(
            f"--prune would delete {total} objects, more than publish.max_deletes = {limit} "
            "in mfe.toml: `doit publish --prune` deletes nothing until the limit is raised"
        )
    if total == 0:
        keep = run.project.publish.keep_releases
        run.progress.note(
            "--prune: nothing to delete: "
            + (
                f"kept {why}"
                if young_kept
                else f"every file is named by the live release, the last {keep} release "
                "record(s) (publish.keep_releases) or a preview"
            )
        )
    elif young_kept:
        run.progress.note(f"--prune: kept {why}")
    if delete:
        for name, plan in run.plans.items():
            if not plan.deletes and not records.get(name):
                continue
            # A swap since `kept` was read may name an old file again, uploaded again by its
            # publish after our listing (mfe.publish.refresh): read the pointer once more
            # right before deleting, so only a swap in the next instant can still lose one.
            live, _ = run.read_live()
            if live is not None and live.seq != seq:
                pointers, kept, seq = kept_now(run, extra)
            plan.deletes = [key for key in plan.deletes if key not in kept.get(name, set())]
            delete_keys(run, plan.bucket, plan.deletes)
            # After the files they list: a prune stopped in between leaves a record naming
            # deleted files, which refuses a rollback ("pruned?") as a missing one does.
            records[name] = [key for key in records[name] if key not in kept.get(name, set())]
            delete_keys(run, plan.bucket, records[name], "pruning old app version records")
        prune_local(run.project.state_dir(run.env.name), pointers, grace)
    if any(records.values()):
        count = sum(len(keys) for keys in records.values())
        run.progress.note(
            f"--prune: {'deleted' if delete else 'would delete'} {count} app version record(s) "
            f"({VERSIONS_PREFIX}) that no kept release or preview names: a rollback to "
            "a release that used one is refused"
        )
    return sum(len(plan.deletes) for plan in run.plans.values())


def unused_records(run: Run, app: str, kept: set[str], now: datetime) -> list[str]:
    """The version records (`_mfe/versions/<app>/`) of `app`'s bucket that no kept pointer
    or preview names, once older than the grace period: a publish writes (or rewrites, when
    reusing an old one) the record of its version before its swap, as it does its files
    (`mfe.publish.refresh`). Their files are gone or going: nothing can serve them again."""
    bucket, grace = run.buckets[app], run.project.publish.grace_seconds
    prefix = f"{VERSIONS_PREFIX}{app}/"
    listed = list_prefix(run.session, bucket, prefix)
    return sorted(k for k, r in listed.items() if k not in kept and not young(r, now, grace))


def kept_young(count: int, grace_seconds: int) -> str:
    """Why `--prune` left files no kept release names."""
    return (
        f"{count} file(s) no kept release names: younger than publish.grace_seconds "
        f"({grace_seconds} s), an in-flight publish may use them"
    )


def prune_local(state: Path, pointers: list[Live], grace_seconds: int) -> None:
    """Drop the cached version lists (`versions/`), other builds' JavaScript (`dist-cache/`)
    and rendered pages (`pages/`) that no kept pointer names, and what killed writes left
    (`write_atomic`'s `.*.tmp`), once older than the grace period (another command of this
    checkout may have just cached a newer live version, or be writing). Each is fetched or
    rendered again when needed."""
    versions = {(app, v.version) for pointer in pointers for app, v in pointer.apps.items()}
    pages = {pointer.page.sha256 for pointer in pointers}
    cutoff = time.time() - grace_seconds
    unused = [
        *(p for p in state.glob("versions/*/*.json") if (p.parent.name, p.stem) not in versions),
        *(p for p in state.glob("dist-cache/*/*") if (p.parent.name, p.name) not in versions),
        *(p for p in state.glob("pages/*.html") if p.stem not in pages),
        *state.rglob(".*.tmp"),
    ]
    for path in unused:
        try:
            recent = path.stat().st_mtime >= cutoff
        except FileNotFoundError:  # another prune was first
            continue
        if recent:
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def list_fresh(run: Run, app: str) -> dict[str, RemoteObject]:
    """After a commit the plan's listing is stale: what went up since must not look unused."""
    run.listings.pop(app, None)
    return run.listing(app)


def delete_keys(run: Run, bucket: str, keys: list[str], doing: str = "pruning old files") -> None:
    """DeleteObjects in batches. S3 answers 200 even when it refused some keys (a policy
    denying s3:DeleteObject on them): those come back as `Errors` and fail the command."""
    for start in range(0, len(keys), BATCH):
        batch = keys[start : start + BATCH]
        with s3_errors(run.session, bucket, doing):
            answer = run.s3.delete_objects(
                Bucket=bucket,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
        errors = answer.get("Errors", [])
        if errors:
            first = errors[0]
            names = ", ".join(str(e.get("Key")) for e in errors[:5])
            more = f" and {len(errors) - 5} more" if len(errors) > 5 else ""
            denied = first.get("Code") == "AccessDenied"
            raise MfeError(
                f"S3 refused to delete {names}{more} from bucket '{bucket}' while {doing} "
                f"(environment '{run.env.name}'): {first.get('Code')} {first.get('Message')}"
                + ("; the credentials need s3:DeleteObject on those keys" if denied else "")
            )
