"""The `name=value` command-line variables of the tasks: their doc, and the check of a command
line's variables.

doit prints a task's `params` under `doit help TASK` but knows nothing of the variables read
with `doit.get_var` (`env=`, `base=`, ...), so each task's one-line doc names them. doit also
takes any `name=value` silently, so a misspelled one (`doit publish evn=prod`) would be
ignored and the command run with the default (`local`): `check_command_line` refuses it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from doit import doit_cmd

from mfe.errors import MfeError, closest

VARIABLES = {
    "env": "env=NAME (an [env.NAME] of mfe.toml, default local)",
    "base": "base=GITREF (default: every app, the build cache decides)",
    "cache": "cache=on|off|force",
    "shard": "shard=K/N (build one shard of the ci_plan)",
    "shards": "shards=N (at most N shard jobs)",
    "username": "username=NAME (password from MFE_USER_PASSWORD or a prompt)",
    "app": "app=NAME (one app; the others stay as live)",
    "preview": "preview=NAME (a preview at previews/NAME/, nothing live changes)",
    "name": "name=NAME (the preview to remove)",
    "to": "to=RELEASE (a sequence number or release id from `doit releases`)",
    "new_app_name": "name=NAME (the new app's folder under apps/)",
    "stack": "stack=lit|react",
}


def doc(summary: str, *names: str) -> str:
    """`summary` plus the variables the task reads, on one line (doit keeps only one)."""
    if not names:
        return summary
    return f"{summary} Variables: {', '.join(VARIABLES[name] for name in names)}."


def known_names() -> set[str]:
    """The variable names some task reads (`new_app_name` is new_app's `name=`)."""
    return {text.partition("=")[0] for text in VARIABLES.values()}


def check_command_line(extra: Iterable[str] = (), argv: Sequence[str] = ()) -> None:
    """Refuse a variable no task reads, or one given twice with different values.

    `extra`: names a project's own dodo.py reads. `argv`: the command line's arguments
    (`sys.argv[1:]`), the only record of a repeated name (doit keeps the last value).
    Outside a doit run (doit's variables not parsed) there is nothing to check.
    """
    given: Mapping[str, str] | None = doit_cmd._CMDLINE_VARS  # doit has no public accessor
    if not given:
        return
    known = known_names() | set(extra)
    for name, value in given.items():
        if name not in known:
            raise MfeError(_unknown(name, value, known))
    repeated = _repeated(argv, given)
    if repeated:
        name, values = repeated
        shown = ", ".join(f"{name}={value}" for value in values)
        raise MfeError(f"variable {name}= given more than once ({shown}); give it once")


def _unknown(name: str, value: str, known: set[str]) -> str:
    close = closest(name, known)
    hint = f" (did you mean {close}={value}?)" if close else ""
    return (
        f"unknown variable '{name}={value}' on the command line{hint}; the tasks read "
        f"{', '.join(sorted(known))} (`doit help TASK` lists the ones a task reads)"
    )


def _repeated(argv: Sequence[str], given: Mapping[str, str]) -> tuple[str, list[str]] | None:
    """A name `argv` gives with two different values, parsed as doit parses variables."""
    pairs = [arg.split("=", 1) for arg in argv if arg[:1] != "-" and "=" in arg]
    if {name: value for name, value in pairs} != given:
        return None  # not the command line doit parsed (doit run from code)
    for name in given:
        values = [value for other, value in pairs if other == name]
        if len(set(values)) > 1:
            return name, values
    return None
