"""Lines printed from worker threads (parallel builds, restores, tests), one write each.

`print` writes the text and then its newline: two threads printing at once could join
two lines in a pipe (`build:a: 3 files in 0.38sbuild:b: 2 files in 0.38s`). Each line
here goes out as one write, text and newline, under one lock.
"""

from __future__ import annotations

import sys
import threading

_LOCK = threading.Lock()


def say(text: str) -> None:
    """Print `text` as whole lines, flushed (a CI log shows them as they happen)."""
    with _LOCK:
        out = sys.stdout  # looked up each time: doit swaps it while an action runs
        out.write(text + "\n")
        out.flush()


_WARNED: set[str] = set()


def warn_once(text: str) -> None:
    """`mfe: warning: TEXT` on stderr (doit shows an action's stderr), once per process:
    `doit serve` renders the page after every rebuild."""
    with _LOCK:
        if text in _WARNED:
            return
        _WARNED.add(text)
        sys.stderr.write(f"mfe: warning: {text}\n")
        sys.stderr.flush()
