"""Reading one TOML table with typed getters whose errors name the file and dotted key,
and that reject keys nobody read (typos)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mfe.errors import ConfigError, closest, shown

__all__ = ["Table", "shown", "type_name"]


class Table:
    """One TOML table being read: typed getters that name the dotted key on error."""

    def __init__(self, file: Path, prefix: str, data: Any) -> None:
        self.file, self.prefix = file, prefix
        if not isinstance(data, dict):
            raise self.error(prefix, f"must be a table, got {type_name(data)}")
        self.data: dict[str, Any] = data
        self.read: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.file}: key '{key}' {problem}")

    def get(self, name: str, kind: type, default: Any = None) -> Any:
        self.read.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            raise self.error(
                self.key(name),
                f"must be {kind.__name__}, got {type_name(value)} {shown(value)}",
            )
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        values = self.get(name, list, [])
        for value in values:
            if not isinstance(value, str):
                raise self.error(self.key(name), f"must be a list of strings, got {shown(value)}")
        return tuple(values)

    def port(self, name: str, default: int | None = None) -> int | None:
        value: int | None = self.get(name, int, default)
        if value is not None and not 1 <= value <= 65535:
            raise self.error(self.key(name), f"must be a TCP port (1-65535), got {value}")
        return value

    def sub(self, name: str) -> Table:
        return Table(self.file, self.key(name), self.get(name, dict, {}))

    def expect(self, *names: str) -> None:
        """Refuse a key that is none of `names` now, before any is read: a misspelled table
        (`[projet]`) would otherwise be reported as the one it meant missing."""
        self.read.update(names)
        self.done()

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            known = ", ".join(sorted(self.read)) or "none"
            meant = closest(unknown[0], self.read)
            hint = f"did you mean '{self.key(meant)}'? " if meant else ""
            raise self.error(
                self.key(unknown[0]), f"is not a known setting ({hint}known here: {known})"
            )


def type_name(value: Any) -> str:
    return {dict: "table", list: "array", str: "string", bool: "boolean"}.get(
        type(value), type(value).__name__
    )
