"""The `name=value` command-line variables of the tasks: their doc, and the check of a command
line's variables.

doit prints a task's `params` under `doit help TASK` but knows nothing of the variables read
with `doit.get_var` (`env=`, `base=`, ...), so each task declares them with `declare`: once,
for its one-line doc and for its `meta`. doit also takes any `name=value` silently, so a
misspelled one (`doit publish evn=prod`) would be ignored and the command run with the
default (`local`): `check_command_line` refuses a name no task reads, and `check_tasks` one
that the tasks being run do not read (`doit publish name=pr-1` meant `preview=pr-1`). An empty
value (`preview=`, what a script's unset `preview=$PR` passes) is refused too: the tasks read
it as the default, so that would publish the live page instead of a preview.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from doit import doit_cmd

from mfe.errors import MfeError, closest

VARIABLES = {
    "env": "env=NAME (an [env.NAME] of mfe.toml, default local)",
    "base": "base=GITREF (default: every app, the build cache decides)",
    "cache": "cache=on|off|force (the build cache; default on, force: despite uncommitted changes)",
    "shard": "shard=K/N (build one shard of the ci_plan)",
    "shards": "shards=N (at most N shard jobs, default 1)",
    "username": "username=NAME (password from MFE_USER_PASSWORD or a prompt)",
    "app": "app=NAME (one app; the others stay as live)",
    "preview": "preview=NAME (a preview at previews/NAME/, nothing live changes)",
    "name": "name=NAME (the preview to remove)",
    "to": "to=RELEASE (a sequence number or release id from `doit releases`, default the previous)",
    "limit": "limit=N|all (the newest N releases, default 50)",
    "new_app_name": "name=NAME (the new app's folder under apps/)",
    "stack": "stack=lit|react (required)",
}


REFUSE_KEY = "refuse"
"""The key of a task's `meta` holding a check of its command line, `(options) -> message
or None`, that the reporter runs before any task: a mistake known from the command line
alone (`app=nope`, `preview=` with `--prune`) stops doit with exit 2, as a misspelled
variable does, not after the tasks it depends on ran."""


def refusals(tasks: Mapping[str, Any], selected: Sequence[str]) -> None:
    """Raise MfeError with the first refusal of a `selected` task's command line."""
    for name in selected:
        task = tasks.get(name)
        if task is None:
            continue
        check = (task.meta or {}).get(REFUSE_KEY)
        if check is None:
            continue
        message = check(dict(task.options or {}))
        if message:
            raise MfeError(message)


META_KEY = "variables"
"""The key of a task's `meta` listing the command-line names it reads (a dodo's own tasks
may list theirs there too)."""


def declare(summary: str, *keys: str) -> dict[str, Any]:
    """A task's `doc` and `meta` from the one list of the variables (VARIABLES keys) it reads."""
    return {"doc": _doc(summary, keys), **reads(*keys)}


def reads(*keys: str) -> dict[str, Any]:
    """`meta` alone, for a hidden task (its docstring stays its doc)."""
    return {"meta": {META_KEY: [_name(key) for key in keys]}}


def _doc(summary: str, keys: Sequence[str]) -> str:
    """`summary` plus the variables the task reads, on one line (doit keeps only one)."""
    if not keys:
        return summary
    return f"{summary} Variables: {', '.join(VARIABLES[key] for key in keys)}."


def _name(key: str) -> str:
    """The command-line name of a VARIABLES key (`new_app_name` is new_app's `name=`)."""
    return VARIABLES[key].partition("=")[0]


def known_names() -> set[str]:
    """The variable names some task reads."""
    return {_name(key) for key in VARIABLES}


def check_command_line(extra: Iterable[str] = (), argv: Sequence[str] = ()) -> None:
    """Refuse a variable no task reads, one of theirs given empty, or one given twice with
    different values.

    `extra`: names a project's own dodo.py reads. `argv`: the command line's arguments
    (`sys.argv[1:]`), the only record of a repeated name (doit keeps the last value).
    Outside a doit run (doit's variables not parsed) there is nothing to check.
    """
    given = _given()
    if not given:
        return
    known = known_names() | set(extra)
    for name, value in given.items():
        if name not in known:
            raise MfeError(_unknown(name, value, known))
        if not value and name in known_names():  # a dodo's own names may mean something empty
            raise MfeError(_empty(name))
    repeated = _repeated(argv, given)
    if repeated:
        name, values = repeated
        shown = ", ".join(f"{name}={value}" for value in values)
        raise MfeError(f"variable {name}= given more than once ({shown}); give it once")


def check_tasks(
    tasks: Mapping[str, Any], selected: Sequence[str], extra: Iterable[str] = ()
) -> None:
    """Refuse a command-line variable that none of the `selected` tasks (doit's Task objects,
    defaults included) nor the tasks they run first read: doit would ignore it.

    `extra`: names the project's dodo.py reads itself, which any task may depend on.
    """
    given = _given()
    if not given:
        return
    read = task_variables(tasks, selected) | set(extra)
    stray = [f"{name}={value}" for name, value in given.items() if name not in read]
    if stray:
        raise MfeError(_not_read(stray, selected, read))


def _given() -> Mapping[str, str] | None:
    """The `name=value` variables doit parsed (None outside a doit run)."""
    given: Mapping[str, str] | None = doit_cmd._CMDLINE_VARS  # doit has no public accessor
    return given


def task_variables(tasks: Mapping[str, Any], selected: Sequence[str]) -> set[str]:
    """The names the `selected` tasks and their task_dep/setup chains declare in `meta`."""
    read: set[str] = set()
    seen: set[str] = set()
    todo = list(selected)
    while todo:
        name = todo.pop()
        task = tasks.get(name)
        if name in seen or task is None:
            continue
        seen.add(name)
        read.update((task.meta or {}).get(META_KEY, ()))
        todo += [*task.task_dep, *task.setup_tasks]
    return read


def _not_read(stray: Sequence[str], selected: Sequence[str], read: set[str]) -> str:
    name, _, value = stray[0].partition("=")
    hint = _did_you_mean(name, value, read)
    reading = ", ".join(f"{name}=" for name in sorted(read)) or "no variable"
    return (
        f"'{' '.join(stray)}' on the command line is read by none of the tasks this command "
        f"runs ({', '.join(selected)} and the tasks run first), so doit would ignore it{hint}; "
        f"they read {reading} (`doit help {selected[0] if selected else 'TASK'}` lists a "
        "task's variables)"
    )


def _unknown(name: str, value: str, known: set[str]) -> str:
    hint = _did_you_mean(name, value, known)
    return (
        f"unknown variable '{name}={value}' on the command line{hint}; the tasks read "
        f"{', '.join(sorted(known))} (`doit help TASK` lists the ones a task reads)"
    )


def _empty(name: str) -> str:
    usage = " or ".join(
        dict.fromkeys(doc.partition(" ")[0] for key, doc in VARIABLES.items() if _name(key) == name)
    )
    return (
        f"variable '{name}=' is empty on the command line (an unset shell variable?), and "
        f"the tasks would read it as not given; give a value ({usage}) or leave it out"
    )


def _did_you_mean(name: str, value: str, names: set[str]) -> str:
    close = closest(name, names)
    return f" (did you mean {close}={value}?)" if close else ""


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
