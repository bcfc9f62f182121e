"""Size budgets: the gzip size of an app's entry bundles and the files they import statically.

That is what a browser must download before the app can run (dynamic `import()` chunks
load later and are not counted). Each file counts as served: gzip level 9 on its own.
"""

from __future__ import annotations

import gzip
import posixpath
import re
from pathlib import Path

from mfe.build.manifest import JS_SUFFIXES, read_manifest
from mfe.config import App
from mfe.errors import MfeError
from mfe.publish.report import human

COMPRESSION = "gzip -9"
MEASURE = f"{COMPRESSION}, entries and their static imports, v1"
"""How `compressed_size` measures; cache entries record sizes under it (bump it when the
measure changes, so recorded sizes stop verifying and are measured again)."""
# `import "./x.js"`, `import {a} from "./x.js"`, `export * from "./x.js"` (minified or not);
# `import("./x.js")` is dynamic and does not match (a parenthesis, not a quote, follows).
# The keyword comes first and the check that it is not the end of a longer name (`.import`,
# `reexport`) after it, as lookbehinds: the regex engine then only tries the positions
# of an `i` or an `e`, ~9x faster on a 200 kB bundle than trying every position.
_STATIC_IMPORT = re.compile(
    r"""(?:import|export)(?<![.\w$]import)(?<![.\w$]export)"""
    r"""\s*(?:[\w$\s{},*]*?\bfrom\s*)?["']([^"'\n]+)["']"""
)


def initial_files(dist: Path, entries: list[str]) -> list[str]:
    """The entries and, transitively, every dist file they import statically."""
    seen: list[str] = []
    queue = list(entries)
    while queue:
        name = queue.pop(0)
        if name in seen or not (dist / name).is_file():
            continue
        seen.append(name)
        if not name.endswith(JS_SUFFIXES):
            continue
        text = (dist / name).read_text(encoding="utf-8", errors="replace")
        for specifier in _STATIC_IMPORT.findall(text):
            if specifier.startswith(("./", "../")):
                target = posixpath.normpath(posixpath.join(posixpath.dirname(name), specifier))
                if not target.startswith("../"):
                    queue.append(target)
    return seen


def compressed_size(app: App) -> int:
    """Bytes (gzip -9, each file alone) of what loading the app's entries downloads."""
    manifest = read_manifest(app.name, app.dist)
    return sum(
        len(gzip.compress((app.dist / name).read_bytes(), compresslevel=9, mtime=0))
        for name in initial_files(app.dist, manifest.entries)
    )


def check(sizes: dict[str, int], apps: dict[str, App]) -> None:
    """Fail naming every app over its budget, its size and the budget."""
    over = [
        f"{name} is over its size budget: {human(size)} ({COMPRESSION}, entry bundles and "
        f"their static imports) > {human(budget)} ([apps.{name}] budget in mfe.toml)"
        for name, size in sizes.items()
        if (budget := apps[name].budget) is not None and size > budget
    ]
    if over:
        raise MfeError("\n".join(over) + "\nnothing was published")
