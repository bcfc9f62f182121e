"""Files written atomically: a reader (a browser, doit, another command) sees the old
content or the new one, never half of it, and a failed write leaves the old file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomic(path: Path | str, data: str | bytes) -> None:
    """Write `data` (str as UTF-8) to a temporary file next to `path`, then rename it over."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    """The JSON in `path`, past a UTF-8 byte order mark: npm reads a package.json that
    starts with one (Windows editors save it), so every reader here does too."""
    return parse_json(path.read_text(encoding="utf-8"))


def parse_json(text: str) -> Any:
    """`read_json` for text read another way (`git show`, bytes npm wrote): a leading
    byte order mark is skipped, as npm skips it (json.loads refuses it)."""
    return json.loads(text.removeprefix("\ufeff"))
