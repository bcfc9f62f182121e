"""`serve`: the dev server (shell + every app on 127.0.0.1, watch, rebuild, live reload)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from doit.dependency import UptodateCalculator
from doit.exceptions import BaseFail

from mfe.config import Environment, Project
from mfe.tasks.actions import guarded
from mfe.tasks.reporter import CTRL_C_STOPPED
from mfe.tasks.variables import REFUSE_KEY


class DoitState(UptodateCalculator):  # type: ignore[misc]
    """Never up to date, and keeps the run's dependency manager (doit's `setup` hook).

    The running `doit serve` holds the dep file in memory and would write it when it
    exits, erasing every rebuild done meanwhile. `flush` writes it once, before the
    first build, and closes it, so the in-process runs own the file. The task has no
    `task_dep` on `build`: serve builds in-process (a failing app must not stop it).
    """

    def __init__(self) -> None:
        super().__init__()
        self.dep_manager: Any = None

    def setup(self, dep_manager: Any, tasks_dict: dict[str, Any]) -> None:
        super().setup(dep_manager, tasks_dict)
        self.dep_manager = dep_manager

    def __call__(self) -> bool:
        return False

    def flush(self) -> None:
        if self.dep_manager is not None:
            self.dep_manager.close()


def _serve(root: str, state: DoitState, port: int) -> None:
    """Ctrl-C is how serve ends, cleanly: doit then ends by SIGINT, as vite does, so a
    script running `doit serve; next` stops there too (SIGTERM: exit 0, as before)."""
    from mfe.serve import serve

    if serve(Path(root), port or None, state.flush) == signal.SIGINT:
        CTRL_C_STOPPED.set()


def run_serve(root: str, state: DoitState, port: int) -> BaseFail | None:
    """The action; `port` comes from `--port` (0: `[env.dev] port`)."""
    return guarded(_serve, root, state, port)


def port_option(text: str) -> int | str:
    """doit's parse of `--port`: the number, or the text as given, which `refusal` refuses
    in one line (with `int`, doit prints its parser's error and exits 3)."""
    try:
        return int(text)
    except ValueError:
        return text


def refusal(project: Project) -> Callable[[dict[str, Any]], str | None]:
    """The check of serve's command line, before any task runs (`variables.REFUSE_KEY`):
    a `--port` that is no port, or one mfe.toml gives an app or the emulator."""

    def check(options: dict[str, Any]) -> str | None:
        from mfe.serve.ports import option_problem  # the dev server's modules: serve only

        problem = option_problem(project, options.get("port"))
        return f"serve: {problem}" if problem else None

    return check


def tasks(project: Project, env: Environment) -> dict[str, Callable[[], dict[str, Any]]]:
    del env  # serve always renders and serves the `dev` environment

    def task_serve() -> dict[str, Any]:
        """Serve the shell and every app on 127.0.0.1; rebuild changed apps; live reload."""
        state = DoitState()
        # mfe.toml is loaded already (its default filled in): this costs `doit list` nothing
        port = project.env("dev").port
        return {
            "actions": [(run_serve, [str(project.root), state])],
            "params": [
                {
                    "name": "port",
                    "long": "port",
                    "type": port_option,
                    "default": 0,
                    "help": f"shell port (default: {port}, [env.dev] port in mfe.toml)",
                }
            ],
            "uptodate": [state],
            "meta": {REFUSE_KEY: refusal(project)},
            "verbosity": 2,
            # doit keeps a copy of a python-action's output (to replay on failure) as well
            # as printing it: serve's runs all day, and would keep every line it printed
            "io": {"capture": False},
        }

    return {"task_serve": task_serve}
