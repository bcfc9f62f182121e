"""Does the S3 store honour conditional writes? Checked once per environment (and store)
and remembered in `.mfe/<env>/conditional-writes.json`.

A store that silently ignores `If-Match` / `If-None-Match` would turn the pointer's
compare-and-swap into "last writer wins"; publishing there is refused with a clear
message unless `[publish] locking = "none"` says only one publish runs at a time.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mfe.errors import MfeError, aws_status
from mfe.files import write_atomic
from mfe.publish.local import RESERVED_PREFIX

if TYPE_CHECKING:
    from mfe.envs.session import Session

PROBE_KEY = RESERVED_PREFIX + "cas-probe"
STATE_FILE = "conditional-writes.json"


def probe(s3: Any, bucket: str) -> bool:
    """Three requests: a plain write, then two conditional writes that must be refused."""
    from botocore.exceptions import ClientError

    body = uuid.uuid4().hex.encode()
    s3.put_object(Bucket=bucket, Key=PROBE_KEY, Body=body, CacheControl="no-store")
    refused = 0
    for condition in ({"IfNoneMatch": "*"}, {"IfMatch": '"00000000000000000000000000000000"'}):
        try:
            s3.put_object(Bucket=bucket, Key=PROBE_KEY, Body=body, **condition)
        except ClientError as exc:
            if aws_status(exc) not in (409, 412):
                raise
            refused += 1
    return refused == 2


def conditional_writes(session: Session, bucket: str) -> bool:
    """True when the pointer is written conditionally; raises when the store can't and
    `[publish] locking` is not "none"."""
    project, env, s3 = session.project, session.env, session.s3
    endpoint = env.endpoint_url
    if project.publish.locking == "none":
        return False
    known_by_kind = session.backend.conditional_writes()
    if known_by_kind is not None:
        return _refuse_unless(known_by_kind, env.name, endpoint or "aws", bucket, None)
    path: Path = project.state_dir(env.name) / STATE_FILE
    store = {"endpoint": endpoint or "aws", "bucket": bucket}
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    # Keyed by bucket: the same store may be reached through another endpoint (a proxy).
    if known.get("bucket") == bucket and isinstance(known.get("supported"), bool):
        supported = bool(known["supported"])
    else:
        supported = probe(s3, bucket)
        write_atomic(path, json.dumps({**store, "supported": supported}) + "\n")
    return _refuse_unless(supported, env.name, store["endpoint"], bucket, path)


def _refuse_unless(
    supported: bool, env_name: str, endpoint: str, bucket: str, path: Path | None
) -> bool:
    if not supported:
        again = f" (delete {path} to check again)" if path else ""
        raise MfeError(
            f"the S3 store of environment '{env_name}' ({endpoint}, bucket '{bucket}') "
            "ignores conditional writes (If-Match / If-None-Match), so two publishes at the "
            "same time could silently overwrite each other's release; use a store that "
            'honours them (AWS S3, moto), or set `locking = "none"` under [publish] in '
            f"mfe.toml if only one publish ever runs at a time{again}"
        )
    return True
