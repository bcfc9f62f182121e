"""Where the shared build's bytes go: `python bench/shared_sizes.py [--keep DIR]`.

Builds this monorepo twice (`doit build`, no emulator, no browser): as it is and without
`[shared]`, then lists per file the gzip -9 bytes of the JavaScript the page loads (each
app's entries and, through the import map, the shared modules they import with their
chunks), so the overhead of sharing (export lists, extra files, lost compression
context) shows file by file. bench_shared.py measures the same totals in Chromium.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import tempfile
from pathlib import Path

from bench_shared import unshare
from common import copy_sources, doit

# Static imports in bundler output, as mfe.importmap reads them.
IMPORT = re.compile(r"""(?:\bfrom|\bimport)\s*["']([^"']+)["']""")


def page_files(repo: Path) -> list[Path]:
    """Every JS file the page loads: the apps' entries, then what they import."""
    shared_dist = repo / "build/shared/dist"
    manifest = shared_dist / "asset-manifest.json"
    shared = json.loads(manifest.read_text())["modules"][""] if manifest.is_file() else {}
    found: list[Path] = []

    def visit(path: Path) -> None:
        if path in found:
            return
        found.append(path)
        for spec in IMPORT.findall(path.read_text()):
            if spec.startswith("."):
                visit((path.parent / spec).resolve())
            elif spec in shared:
                visit(shared_dist / shared[spec])

    for app in sorted((repo / "apps").iterdir()):
        dist = app / "dist"
        if (dist / "asset-manifest.json").is_file():
            for entry in json.loads((dist / "asset-manifest.json").read_text())["entries"]:
                visit(dist / entry)
    return found


def table(repo: Path, title: str) -> int:
    print(f"{title}: {'raw':>8} {'gzip -9':>8}")
    total = 0
    files = page_files(repo)
    for path in files:
        body = path.read_bytes()
        size = len(gzip.compress(body, 9))
        total += size
        print(f"  {path.relative_to(repo).as_posix():50} {len(body):8} {size:8}")
    print(f"  {f'total ({len(files)} files)':50} {'':8} {total:8}")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build the copies here and keep them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mfe-shared-sizes-") as tmp:
        work = args.keep or Path(tmp)
        shared = copy_sources(work / "shared")
        unshared = copy_sources(work / "unshared")
        unshare(unshared)
        for repo in (shared, unshared):
            doit(repo, "build")
        with_shared = table(shared, "with [shared]")
        without = table(unshared, "without [shared]")
    print(f"saving: {without - with_shared} B")


if __name__ == "__main__":
    main()
