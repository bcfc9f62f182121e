"""The doit tasks of a monorepo, generated from its `mfe.toml`.

A project's `dodo.py` is two lines: `globals().update(generate(__file__))`.
Each submodule contributes the tasks of one concern (`build`, `shell`, `infra`,
`publish`, `serve`, `ci`), with `actions` (library calls as doit actions), `variables`
(their command-line variables), `reporter` (doit's console output) and `pipes` (a closed
stdout pipe ends `doit list` and the listings quietly). Heavy libraries
(botocore, jinja2, rich) are imported inside actions so `doit list` and no-op runs stay fast.
"""

from __future__ import annotations

import atexit
import gc
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from doit import get_var

from mfe.config import STATE_DIR, defaults_only, load_project
from mfe.errors import ConfigError, MfeError
from mfe.tasks import build, ci, infra, publish, scaffold, serve, shell
from mfe.tasks.described import described, describing
from mfe.tasks.pipes import quiet_broken_pipe
from mfe.tasks.reporter import reporter_for
from mfe.tasks.variables import check_command_line

DEFAULT_ENV = "local"
NOT_RUNNABLE = (
    "mfe: the tasks are listed without their per-app subtasks; every task refuses to run "
    "until that is fixed"
)

# A doit command ends with the interpreter's shutdown, whose last garbage collection walks
# every object still alive, botocore's service models included: 65-120 ms of a command that
# made AWS clients (measured). Frozen objects are skipped; the OS takes the memory back.
atexit.register(gc.freeze)


def generate(dodo_file: str, variables: Iterable[str] = ()) -> dict[str, Any]:
    """Everything doit looks for in a dodo module: DOIT_CONFIG and the task_* creators.

    `variables`: the names of command-line variables the calling dodo.py reads itself
    (`get_var`); any other name that the tasks run do not read stops doit, as a typo would.
    A dodo's own task lists the ones it reads in its `meta` (`mfe.tasks.variables.reads`).
    """
    root = Path(dodo_file).resolve().parent
    quiet_broken_pipe(sys.argv[1:])  # `doit list | head -1`: no BrokenPipeError traceback
    broken: ConfigError | None = None
    try:
        check_command_line(variables, sys.argv[1:])
        try:
            project = load_project(root)
        except ConfigError as exc:
            if not describing(sys.argv[1:]):
                raise
            broken, project = exc, defaults_only(root)  # help works while mfe.toml is broken
        env = project.env(DEFAULT_ENV if broken else get_var("env", DEFAULT_ENV) or DEFAULT_ENV)
    except MfeError as exc:
        print(f"mfe: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if broken is not None:
        print(f"mfe: error: {broken}", file=sys.stderr)
        print(NOT_RUNNABLE, file=sys.stderr)
    (root / STATE_DIR).mkdir(exist_ok=True)
    found: dict[str, Any] = {
        "DOIT_CONFIG": {
            "default_tasks": ["build"],
            "dep_file": f"{STATE_DIR}/doit-db.json",
            "backend": "mfe-json",
            "verbosity": 1,
            "reporter": reporter_for(variables),
        }
    }
    for concern in (build, shell, infra, publish, serve, ci, scaffold):
        found.update(concern.tasks(project, env))
    return found if broken is None else described(found, broken)
