"""Size budgets: what counts (entries + static imports, gzip), and `doit ci` failing over budget."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from mfe.build.manifest import write_manifest
from mfe.ci import budget
from mfe.config import App
from mfe.errors import MfeError


def app_with(tmp_path: Path, files: dict[str, str], limit: int | None = None) -> App:
    app = App("shop", tmp_path / "apps" / "shop", "fragment", 5171, "mfe-shop", limit)
    for name, text in files.items():
        (app.dist / name).parent.mkdir(parents=True, exist_ok=True)
        (app.dist / name).write_text(text)
    write_manifest("shop", app.dist)
    return app


def test_entries_and_their_static_imports_count_dynamic_ones_do_not(tmp_path: Path) -> None:
    files = {
        "main-AAAA1111.js": 'import{a as b}from"./chunks/c-BBBB2222.js";import"./side-CCCC3333.js";'
        'const lazy=()=>import("./chunks/lazy-DDDD4444.js");export*from"./re-EEEE5555.js";'
        # Not statements: the end of a longer name, a property.
        'reimport"./chunks/lazy-DDDD4444.js";o.export"./chunks/lazy-DDDD4444.js";',
        "chunks/c-BBBB2222.js": 'import {x} from "../shared-FFFF6666.js"; export const a = x;',
        "side-CCCC3333.js": "console.log('side effect')",
        "re-EEEE5555.js": "export const r = 1",
        "shared-FFFF6666.js": "export const x = 2",
        "chunks/lazy-DDDD4444.js": "export default 'lazy'" + " " * 5000,
        "main-AAAA1111.js.map": "{}" * 3000,
    }
    app = app_with(tmp_path, files)
    # Top-level .js files are entries (the manifest's rule); lazy/map are not loaded up front.
    initial = budget.initial_files(app.dist, ["main-AAAA1111.js"])
    assert initial == [
        "main-AAAA1111.js",
        "chunks/c-BBBB2222.js",
        "side-CCCC3333.js",
        "re-EEEE5555.js",
        "shared-FFFF6666.js",
    ]
    manifest_entries = [
        "main-AAAA1111.js",
        "re-EEEE5555.js",
        "shared-FFFF6666.js",
        "side-CCCC3333.js",
    ]
    expected = sum(
        len(gzip.compress((app.dist / name).read_bytes(), compresslevel=9, mtime=0))
        for name in budget.initial_files(app.dist, manifest_entries)
    )
    assert budget.compressed_size(app) == expected
    assert "lazy" not in str(budget.initial_files(app.dist, manifest_entries))


def test_over_budget_names_the_app_its_size_and_the_budget(tmp_path: Path) -> None:
    app = app_with(tmp_path, {"main-AAAA1111.js": "x" * 10}, limit=10)
    size = budget.compressed_size(app)
    assert size > 10
    budget.check({"shop": 5}, {"shop": app})  # under: fine
    with pytest.raises(MfeError) as info:
        budget.check({"shop": size}, {"shop": app})
    message = str(info.value)
    assert f"shop is over its size budget: {size} B" in message and "> 10 B" in message
    assert "gzip" in message and "[apps.shop] budget" in message
