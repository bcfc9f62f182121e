"""doit's JSON dependency file, written atomically and only when it changed.

Registered as the doit backend `mfe-json` (entry point `doit.BACKEND`). Atomic writes
keep the file valid when `doit serve` and a `doit` in another terminal both finish a
run; skipping unchanged dumps keeps a no-op `doit` cheap on large monorepos.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from doit.dependency import JsonDB


class AtomicJsonDB(JsonDB):  # type: ignore[misc]
    desc = "JSON file, written atomically and only when changed"

    def __init__(self, name: str, codec: Any, *, module_name: str | None = None) -> None:
        super().__init__(name, codec, module_name=module_name)
        self._dirty = False

    def set(self, task_id: str, dependency: str, value: Any) -> None:
        if isinstance(value, tuple):  # JSON reads tuples back as lists: compare like for like
            value = list(value)
        if self._db.get(task_id, {}).get(dependency, object()) != value:
            self._dirty = True
            super().set(task_id, dependency, value)

    def remove(self, task_id: str) -> None:
        self._dirty = self._dirty or task_id in self._db
        super().remove(task_id)

    def remove_all(self) -> None:
        self._dirty = self._dirty or bool(self._db)
        super().remove_all()

    def dump(self) -> None:
        if not self._dirty and os.path.exists(self.name):
            return
        folder = os.path.dirname(os.path.abspath(self.name))
        fd, tmp = tempfile.mkstemp(prefix=".doit-db-", dir=folder)
        with os.fdopen(fd, "w") as stream:
            stream.write(self.codec.encode(self._db))
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.name)
        self._dirty = False
