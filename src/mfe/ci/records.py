"""Small JSON records next to the build cache: each app's last build time (for packing
shards) and the size of each app's live version (for the budget summary).

They live under `<prefix>/meta/`, outside the entry scopes. Only trusted runs write
them (read-modify-write: two concurrent trusted runs may lose one's update, which costs
a less even packing or an older size in a summary, never a wrong build).
"""

from __future__ import annotations

import json
from typing import Any

from mfe.ci.cache import RemoteCache, warn

BUILD_TIMES = "build-times.json"


def _key(cache: RemoteCache, name: str) -> str:
    return f"{cache.prefix.strip('/')}/meta/{name}".lstrip("/")


def read(cache: RemoteCache, name: str) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        body = cache.s3.get_object(Bucket=cache.bucket, Key=_key(cache, name))["Body"].read()
        data = json.loads(body)
    except ClientError:
        return {}  # none yet (or no bucket yet)
    except (BotoCoreError, ValueError) as exc:
        warn(f"could not read s3://{cache.bucket}/{_key(cache, name)} ({exc}); ignoring it")
        return {}
    return data if isinstance(data, dict) else {}


def merge(cache: RemoteCache, name: str, updates: dict[str, Any]) -> None:
    """Best effort: a record that cannot be written is a warning."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not updates:
        return
    current = read(cache, name)
    data = {**current, **updates}
    if data == current:
        return  # a warm run re-records the same sizes: no write
    try:
        cache.ready()
        cache.s3.put_object(
            Bucket=cache.bucket,
            Key=_key(cache, name),
            Body=json.dumps(data, indent=1, sort_keys=True).encode(),
            ContentType="application/json",
        )
    except (BotoCoreError, ClientError) as exc:
        warn(f"could not update s3://{cache.bucket}/{_key(cache, name)} ({exc}); continuing")


def sizes_name(env: str) -> str:
    return f"live-sizes-{env}.json"
