"""The order of `doit serve`'s terminal lines around a save: the save first, then what it
caused (a failure once), as Vite prints them. Real `doit serve`, npm and esbuild."""

from __future__ import annotations

import re
from pathlib import Path

from fixtures.serve import serving


def test_a_save_that_breaks_the_build_is_named_before_its_failure(
    monorepo_built: Path, tmp_path: Path
) -> None:
    """doit's failure report (and esbuild's error) came before `serve: changed: ...`, so the
    terminal showed a failure, then the save that caused it."""
    with serving(monorepo_built, tmp_path) as served:
        server, source = served.server, served.root / "apps/payments/src/format.js"
        good = source.read_text()
        mark = len(server.lines)
        source.write_text(good + "\nexport const broken = ;\n")
        told = server.wait_for(r"^serve: payments failed", since=mark)
        said = server.lines[mark : told + 1]
        saved = "serve: changed: apps/payments/src/format.js"
        assert said[0] == saved, "\n".join(said)
        assert said.count(saved) == 1, "\n".join(said)
        errors = [line for line in said if re.search(r"Unexpected \";\"", line)]
        assert len(errors) == 1, "\n".join(said)  # esbuild's error, once
        fixed = len(server.lines)
        source.write_text(good)
        server.wait_for(r"^serve: rebuilt payments in ", since=fixed)
