"""Thread pools that stop at Ctrl-C.

`with ThreadPoolExecutor(...)` exits by waiting for every call still queued, so a
KeyboardInterrupt (or an error) in the thread that submitted them came through only once
all of them ran: Ctrl-C during a rollback's refresh, a CI shard's builds or a restore
waited for the whole lot. `pool` cancels the queued calls then; `parallel` runs a list of
calls on one and stops at the first failure too; `result_of`, `settled` and `completed`
wait on a pool's futures as `parallel` does, waking for Ctrl-C.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

SIGNAL_POLL_SECONDS = 0.05
"""How long the submitting thread waits on its calls at a time. CPython runs a signal's
handler (Ctrl-C's KeyboardInterrupt) only between bytecodes, and a thread blocked on a lock
does not always wake for it: measured, 1 Ctrl-C in 15 came through only once every call of
the phase had run. Waking this often bounds that to 50 ms."""


@contextmanager
def pool(workers: int, name: str = "mfe") -> Iterator[ThreadPoolExecutor]:
    """A thread pool whose exit by an exception (Ctrl-C above all) starts none of the queued
    calls and waits only for the running ones; a normal exit waits for all, as usual."""
    executor = ThreadPoolExecutor(workers, thread_name_prefix=name)
    try:
        yield executor
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def parallel(workers: int, calls: Sequence[Callable[[], T]]) -> list[T]:
    """The calls' results, run on up to `workers` threads. The first failure cancels the
    calls not started and is raised once the running ones are over, so none of them runs
    on after this returns or raises (what the upload phases and the commit step rely on);
    Ctrl-C likewise."""
    if len(calls) <= 1:
        return [call() for call in calls]
    with pool(min(workers, len(calls))) as threads:
        futures = [threads.submit(call) for call in calls]
        _wait_for_first_failure(futures)
        for future in futures:  # after a failure: start none of the queued calls
            future.cancel()
    for future in futures:
        error = None if future.cancelled() else future.exception()
        if error is not None:
            raise error
    return [future.result() for future in futures]


def _wait_for_first_failure(futures: list[Future[T]]) -> None:
    """Until all are done or one failed, waking every `SIGNAL_POLL_SECONDS` for Ctrl-C."""
    with ctrl_c_kept() as check:
        while True:
            check()
            done, pending = wait(futures, SIGNAL_POLL_SECONDS, return_when=FIRST_EXCEPTION)
            if not pending or any(f.exception() is not None for f in done):
                return


@contextmanager
def ctrl_c_kept() -> Iterator[Callable[[], None]]:
    """A Ctrl-C that is not lost while the main thread waits: Python raises its
    KeyboardInterrupt in whatever code runs then, and one raised in a finalizer (a weakref
    callback of the garbage collector) is swallowed, so the wait went on (seen in the
    upload phases). The handler also records it; `check` raises it at the next wake. Only
    over Python's own handler, in the main thread (a signal handler's only place)."""
    own = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if not own or threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    got: list[int] = []

    def record(signum: int, frame: object) -> None:
        got.append(signum)
        raise KeyboardInterrupt

    def check() -> None:
        if got:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, record)
    try:
        yield check
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def completed(futures: Iterable[Future[T]]) -> Iterator[Future[T]]:
    """`as_completed`, waking every `SIGNAL_POLL_SECONDS` for Ctrl-C (it, a bare
    `Future.result()` or `.exception()` waits on a lock that may miss it)."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, SIGNAL_POLL_SECONDS, return_when=FIRST_COMPLETED)
        yield from done


def settled(futures: Iterable[Future[Any]]) -> None:
    """Once every future is done, waking for Ctrl-C."""
    for _ in completed(futures):
        pass


def result_of(future: Future[T]) -> T:
    """`future.result()`, waking every `SIGNAL_POLL_SECONDS` for Ctrl-C."""
    settled([future])
    return future.result()
