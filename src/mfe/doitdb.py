"""doit's JSON dependency file, written atomically and only when it changed.

Registered as the doit backend `mfe-json` (entry point `doit.BACKEND`). Atomic writes
keep the file valid when `doit serve` and a `doit` in another terminal both finish a
run; skipping unchanged dumps keeps a no-op `doit` cheap on large monorepos.

doit loads the file when a run starts and writes all of it when the run ends, so of two
runs at once (`doit publish app=A` and `doit publish app=B`) the later writer would put
back the other's tasks as they were when it started: the next run rebuilds an app for
nothing, or loses a task's entry. A save therefore writes only the tasks this run changed
(set or removed) over the file as it is now, one save at a time (`<file>.lock`).

A file that is not a dependency file (invalid JSON, or valid JSON of another shape such as
`[]`) is set aside with one warning naming it, as deleting it would: every task runs once
and the file is written anew, instead of a traceback from doit or from `_store`.

It also keeps build state true: a task whose values carry `READ_KEY` (its inputs'
fingerprints taken before the bundler read them, see `mfe.build.snapshot`) gets those
as its file_dep states. doit's `save_success` writes the values first, then a state per
file_dep computed *now*, then `deps:`; the states in between are ignored for the files
the task fingerprinted, so a file saved during the build is "changed" on the next run.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path
from typing import Any

from doit.dependency import DatabaseException, JsonDB

from mfe.build.snapshot import READ_KEY
from mfe.files import write_atomic


class AtomicJsonDB(JsonDB):  # type: ignore[misc]
    desc = "JSON file, written atomically and only when changed"

    def __init__(self, name: str, codec: Any, *, module_name: str | None = None) -> None:
        self._unusable = False
        super().__init__(name, codec, module_name=module_name)
        self._dirty = self._unusable  # written anew at the end of the run
        self._pinned: dict[str, dict[str, Any]] = {}
        """task -> file_dep states as its action read them, until `deps:` ends the save."""
        self._touched: set[str] = set()
        """Tasks this run changed or removed: the only entries its save writes."""
        self._cleared = False
        """`remove_all` ran (`doit forget --all`): the save replaces the whole file."""

    def _load(self) -> dict[str, Any]:
        try:
            db = super()._load()
        except DatabaseException:
            problem = "invalid JSON"
        else:
            if isinstance(db, dict) and all(isinstance(deps, dict) for deps in db.values()):
                return db
            problem = "JSON, but not an object of tasks"
        print(
            f"mfe: warning: {os.path.abspath(self.name)} is not doit's dependency file "
            f"({problem}): starting a new one, so every task runs once",
            file=sys.stderr,
        )
        self._unusable = True
        return {}

    def set(self, task_id: str, dependency: str, value: Any) -> None:
        if isinstance(value, dict) and READ_KEY in value:
            read = value[READ_KEY]
            value = {k: v for k, v in value.items() if k != READ_KEY}
            if dependency == "_values_:":  # save_success passes the action's values first
                self._pinned[task_id] = read
                for dep, state in read.items():
                    self._store(task_id, dep, state)
        if dependency == "deps:":  # ...and the file_dep list last
            self._pinned.pop(task_id, None)
        elif dependency in self._pinned.get(task_id, {}):
            return  # a state taken after the bundler ran: keep the one it read
        self._store(task_id, dependency, value)

    def _store(self, task_id: str, dependency: str, value: Any) -> None:
        if isinstance(value, tuple):  # JSON reads tuples back as lists: compare like for like
            value = list(value)
        if self._db.get(task_id, {}).get(dependency, object()) != value:
            self._dirty = True
            self._touched.add(task_id)
            super().set(task_id, dependency, value)

    def remove(self, task_id: str) -> None:
        if task_id in self._db:
            self._dirty = True
            self._touched.add(task_id)
        super().remove(task_id)

    def remove_all(self) -> None:
        self._dirty = self._dirty or bool(self._db)
        self._cleared = True
        super().remove_all()

    def dump(self) -> None:
        if not self._dirty and os.path.exists(self.name):
            return
        path = Path(self.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(f".{path.name}.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            merged = self._merged()
            write_atomic(path, self.codec.encode(merged))
        self._db, self._dirty, self._touched, self._cleared = merged, False, set(), False

    def _merged(self) -> dict[str, Any]:
        """The file as another run may have saved it since this one loaded it, with this
        run's changed tasks over it (the whole of this run's state after a `remove_all`,
        or when the file is missing or unusable)."""
        if self._cleared:
            return dict(self._db)
        on_disk = self._read_current()
        for task_id in self._touched:
            if task_id in self._db:
                on_disk[task_id] = self._db[task_id]
            else:
                on_disk.pop(task_id, None)
        return on_disk

    def _read_current(self) -> dict[str, Any]:
        """The dependency file now, or this run's state if there is none to merge into."""
        try:
            with open(self.name, encoding="utf-8") as current:
                db = self.codec.decode(current.read())
        except (OSError, ValueError):
            return dict(self._db)
        if isinstance(db, dict) and all(isinstance(deps, dict) for deps in db.values()):
            return db
        return dict(self._db)
