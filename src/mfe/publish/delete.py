"""`--prune`: delete the objects no kept release references, in batches of 1000 keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mfe.errors import MfeError
from mfe.publish.plan import Plan
from mfe.publish.remote import s3_errors

if TYPE_CHECKING:
    from mfe.envs.session import Session

BATCH = 1000


def delete_pruned(session: Session, plan: Plan) -> int:
    env, s3 = session.env, session.s3
    deleted = 0
    for ap in plan.apps.values():
        for start in range(0, len(ap.deletes), BATCH):
            keys = ap.deletes[start : start + BATCH]
            with s3_errors(session, ap.bucket, "pruning old files"):
                answer = s3.delete_objects(
                    Bucket=ap.bucket,
                    Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
                )
            errors = answer.get("Errors", [])
            if errors:
                first = errors[0]
                raise MfeError(
                    f"could not delete {first.get('Key')} from bucket '{ap.bucket}' "
                    f"(environment '{env.name}'): {first.get('Code')} {first.get('Message')}"
                )
            deleted += len(keys)
    return deleted
