"""The one exception type users see: a message that names the file, key, app or URL."""

import contextlib
import difflib
import os
import signal
import sys
from collections.abc import Iterable


class MfeError(Exception):
    """A user-facing failure: the message says what is wrong and what to do.

    Task actions turn it into a one-paragraph doit failure instead of a traceback.
    """


class ConfigError(MfeError):
    """`mfe.toml` (or an app folder) is not what the orchestrator needs."""


class NothingPublished(MfeError):
    """The environment holds nothing published (its emulator is not running, or it is not
    provisioned): a command that only reads says so instead of creating it."""


class Interrupted(MfeError):
    """Ctrl-C (SIGINT) stopped the command: the message says what state it left; doit then
    ends by SIGINT, so shells report 130 and a calling script stops too."""


class CtrlC(KeyboardInterrupt):
    """Ctrl-C, told with what the interrupted command left served and what to run next
    (the doit tasks turn it into an `Interrupted` that says so)."""


def aws_error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def aws_status(exc: BaseException) -> int | None:
    """The HTTP status of a botocore ClientError (None for anything else)."""
    response = getattr(exc, "response", None) or {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def missing_key(exc: BaseException) -> bool:
    """`exc` says the object does not exist: NoSuchKey from a GET or a copy, a bare 404 from
    a HEAD (no body to carry a code; SeaweedFS answers some GETs so too), never a missing
    bucket, which needs provisioning rather than a fresh start."""
    code = aws_error_code(exc)
    return code in ("NoSuchKey", "404") or (aws_status(exc) == 404 and code != "NoSuchBucket")


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice a misspelled `name` most likely meant (for a "did you mean" hint), if any."""
    choices = sorted(choices)
    same_case = [choice for choice in choices if choice.lower() == name.lower()]
    close = same_case or difflib.get_close_matches(name, choices, n=1)  # `PROD` is prod
    return close[0] if close else None


SHOWN_CHARACTERS = 60
"""How much of a value a message echoes: a pasted 5000-character value would fill the
terminal, twice when a message names it and what it makes."""


def shown(value: object) -> str:
    """`value` as a message quotes it (repr), cut after SHOWN_CHARACTERS with its length."""
    if isinstance(value, str) and len(value) > SHOWN_CHARACTERS:
        return f"{value[:SHOWN_CHARACTERS]!r}... ({len(value)} characters)"
    text = repr(value)
    if len(text) > SHOWN_CHARACTERS + 2:
        return f"{text[:SHOWN_CHARACTERS]}... ({len(text)} characters)"
    return text


def end_by_signal(signum: int) -> None:
    """End this process by `signum`'s default action, once its output is flushed.

    Exiting 130 is not dying by SIGINT: a calling bash script carries on after a command
    that exits, and stops after one SIGINT killed, as with make, git or Python's own
    KeyboardInterrupt (https://www.cons.org/cracauer/sigint.html). Exits 128 + `signum`
    in the unlikely case the signal is blocked in this thread.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing to say there
            stream.flush()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    raise SystemExit(128 + signum)
