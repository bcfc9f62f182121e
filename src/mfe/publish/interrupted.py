"""What a publish stopped by Ctrl-C left served, as rollback's message says it.

A release switches by one pointer write, so the site serves a whole one; which one depends
on how far the publish got: its swap returned (`Run.swapped`) and its commit step finished
(`Run.finished`), or it was inside the swap, when only the store can say whether the
write landed (the pointer is read once more).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mfe.errors import CtrlC
from mfe.publish.pointer import Live

if TYPE_CHECKING:
    from mfe.publish.run import Run

UNREAD = object()
"""The pointer could not be read after the Ctrl-C (unreachable, or Ctrl-C again)."""


def interrupted(run: Run) -> CtrlC:
    """The message for Ctrl-C anywhere in `run`'s publish, naming the release served."""
    again = f"`doit publish env={run.env.name}`"
    if run.swapped is not None:
        new, previous = run.swapped
        return finished(new, again) if run.finished else switched(new, previous, again)
    now = _pointer(run)
    if run.made is not None and isinstance(now, Live) and now.release == run.made[0].release:
        return switched(now, run.made[1], again)
    if now is UNREAD:
        mine = f"this publish's {run.made[0].release}" if run.made else "this publish's"
        return CtrlC(
            f"the site serves one whole release, the one served before or, if its switch "
            f"was made, {mine}; `doit releases env={run.env.name}` shows which; run {again} "
            "again: it uploads only what is missing and finishes"
        )
    served = f"{_release(now)} is still served" if isinstance(now, Live) else "none is served yet"
    return CtrlC(
        f"nothing was switched: {served}; run {again} again: it uploads only what is "
        "missing and finishes"
    )


def switched(new: Live, previous: Live | None, again: str) -> CtrlC:
    """Its swap was made, its commit step (page, invalidation, release record) is not."""
    before = f"the page of {_release(previous)}" if previous else "no page"
    return CtrlC(
        f"its switch was made: the live pointer names {_release(new)}, served once its "
        f"commit step is finished (until then {before}); run {again} again to finish it"
    )


def finished(new: Live, again: str) -> CtrlC:
    """Its swap and commit step were done: only the checks after them were stopped."""
    return CtrlC(
        f"its switch and commit step were done: {_release(new)} is served; run {again} "
        "again only to finish what comes after them (the smoke check, `--prune`)"
    )


def _release(live: Live) -> str:
    return f"release {live.release} (seq {live.seq})"


def _pointer(run: Run) -> Live | object | None:
    """The live pointer read once more; `UNREAD` when that fails or is interrupted too."""
    try:
        live, _ = run.read_live()
    except (Exception, KeyboardInterrupt):
        return UNREAD
    return live
