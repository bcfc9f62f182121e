"""What a publish stopped by Ctrl-C left served, as rollback's message says it.

A release switches by one pointer write, so the site serves a whole one; which one depends
on how far the publish got: its swap returned (`Run.swapped`) and its commit step finished
(`Run.finished`), or it was inside the swap, when only the store can say whether the
write landed (the pointer is read once more). A swap back over a pointer naming deleted
files (`mfe.publish.undo`, by a publish or a rollback) is told the same way (`SwapBack`):
the release served is the one whose commit step was seen done, never one swapped away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mfe.errors import CtrlC
from mfe.publish.pointer import Live

if TYPE_CHECKING:
    from mfe.publish.run import Run

UNREAD = object()
"""The pointer could not be read after the Ctrl-C (unreachable, or Ctrl-C again)."""


@dataclass
class SwapBack:
    """How far a swap back from `broken` to a new pointer serving `before` again got, as
    the command doing it knows after each step (`mfe.publish.undo.undo`)."""

    broken: Live
    before: Live
    made: Live | None = None
    """The pointer its swap last built (it may be written: the store is asked)."""
    swapped: bool = False
    done: bool = False
    """Its commit step finished: `made` is served."""

    def landed(self, now: Live | object | None) -> bool:
        """Whether its swap was made (`now`: the pointer read after the Ctrl-C)."""
        made = self.made is not None and _same(now, self.made)
        return self.made is not None and (self.done or self.swapped or made)

    def told(self, now: Live | object | None, own: bool = False) -> str:
        """What is served, `now` being the pointer read after the Ctrl-C (or `UNREAD`);
        `own`: `broken` is this command's own swap (a rollback's)."""
        broken, before = _release(self.broken), f"release {self.before.release}"
        if self.made is not None and self.landed(now):
            back = f"it swapped {broken} back (files it names are gone)"
            if self.done:
                return f"{back}: {_release(self.made)} serves {before} again and is served"
            return (
                f"{back}: the live pointer names {_release(self.made)}, serving {before} again "
                "once its commit step is finished"
            )
        if now is UNREAD or self.made is not None:  # its swap was sent, not answered
            return (
                f"{broken} names files that are gone; the live pointer names it, or, if the "
                f"swap back was made, a new release serving {before} again"
            )
        if own:  # its commit step may have run: the files went after it
            return (
                f"its switch was made: {broken} is live, but files it names are gone (the "
                f"next command swaps back to {before})"
            )
        return (
            f"nothing was switched: {broken} is live but its commit step is not done and "
            f"files it names are gone (the next command swaps back to {before})"
        )


def interrupted(run: Run) -> CtrlC:
    """The message for Ctrl-C anywhere in `run`'s publish, naming the release served."""
    again = f"`doit publish env={run.env.name}`"
    if run.swapped is not None:
        new, previous = run.swapped
        return finished(new, again) if run.finished else switched(new, previous, again)
    now = _pointer(run)
    if run.swap_back is not None and not run.swap_back.done:
        return CtrlC(f"{run.swap_back.told(now)}; run {again} again to finish it")
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
    back, finishing = run.swap_back, run.finishing
    if finishing is not None and isinstance(now, Live) and _same(now, finishing):
        return CtrlC(
            f"nothing was switched: {_release(now)} is live but its commit step is not done "
            f"(this command was finishing it); run {again} again to finish it"
        )
    if back is not None and back.made is not None and _same(now, back.made):
        served = back.told(now)  # it swapped back, then switched nothing of its own
    else:
        served = f"nothing was switched: {served}"
    return CtrlC(f"{served}; run {again} again: it uploads only what is missing and finishes")


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


def _same(now: Live | object | None, made: Live) -> bool:
    """Whether the pointer read is `made` (its swap landed)."""
    return isinstance(now, Live) and (now.seq, now.release) == (made.seq, made.release)


def _release(live: Live) -> str:
    return f"release {live.release} (seq {live.seq})"


def _pointer(run: Run) -> Live | object | None:
    """The live pointer read once more; `UNREAD` when that fails or is interrupted too."""
    try:
        live, _ = run.read_live()
    except (Exception, KeyboardInterrupt):
        return UNREAD
    return live
