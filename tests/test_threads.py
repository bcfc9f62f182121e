"""`mfe.threads`: a Ctrl-C that Python swallows in a finalizer still stops a wait."""

from __future__ import annotations

import signal
import weakref

import pytest

from mfe.threads import ctrl_c_kept


class Box:
    """Something with a finalizer."""


def swallowing_finalizer() -> Box:
    """A Box whose finalizer takes a Ctrl-C: the KeyboardInterrupt its handler raises comes
    inside the finalizer, where Python prints "Exception ignored" and goes on."""
    box = Box()

    def finalizer() -> None:
        signal.raise_signal(signal.SIGINT)
        sum(range(1000))  # bytecodes, so the handler runs here, inside the finalizer

    weakref.finalize(box, finalizer)
    return box


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_a_finalizer_swallowed_is_raised_at_the_next_wake() -> None:
    """What `parallel` (the upload phases) waits under: a Ctrl-C whose KeyboardInterrupt
    landed in a weakref callback of the garbage collector (seen in a full suite run) is
    raised at the wait's next wake, not lost."""
    box = swallowing_finalizer()
    del box  # Python's own handler: swallowed, nothing stops
    with ctrl_c_kept() as check:
        check()  # nothing yet
        box = swallowing_finalizer()
        del box
        with pytest.raises(KeyboardInterrupt):
            check()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
